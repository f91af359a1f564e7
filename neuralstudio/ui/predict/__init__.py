"""The Predict workspace: draw a digit (or open an image) and watch the network's probabilities."""
