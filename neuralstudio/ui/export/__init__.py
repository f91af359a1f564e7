"""File > Export... and the model information view (standalone widgets the main window opens)."""

from neuralstudio.ui.export.dialog import ExportDialog
from neuralstudio.ui.export.info_view import ModelInfoView

__all__ = ["ExportDialog", "ModelInfoView"]
