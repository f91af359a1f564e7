"""The base of every error whose message is written for the user, not the developer."""


class UserError(Exception):
    """An error the CLI prints as one line and the GUI shows in a message box, never as a traceback."""
