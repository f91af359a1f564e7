"""Data files shipped with NeuralStudio (installed as ``neuralstudio.resources``)."""
