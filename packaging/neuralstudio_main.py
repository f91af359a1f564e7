"""Entry point of the frozen (PyInstaller) app: the same as the ``neuralstudio`` command.

With no arguments the window opens; ``NeuralStudio --self-test`` checks the
bundle headless, and every CLI command works too (``NeuralStudio predict ...``).
"""

import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()  # a frozen app must not re-run itself in worker processes
    from neuralstudio.cli import main

    sys.exit(main())
