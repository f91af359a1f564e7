"""NeuralStudio: design, train and explore neural networks visually."""

__version__ = "0.1.0"
