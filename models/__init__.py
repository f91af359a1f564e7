"""Pretrained models shipped with NeuralStudio (installed as ``neuralstudio.models``)."""
