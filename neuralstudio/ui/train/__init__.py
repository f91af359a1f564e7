"""The Train workspace: hyperparameters, live training plots, and run comparison."""

from neuralstudio.ui.train.workspace import TrainWorkspace

__all__ = ["TrainWorkspace"]
