"""Data sources with named (or numbered, incomplete) classes, written as real image files, and a model trained on one.

Shared by the class-name tests of ml, ui and cli: an image folder with sub-folders "cat" and "dog" (MNIST zeros
and ones, so that a tiny network tells them apart in a few epochs), and a digit folder with one digit missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from neuralstudio.core.design import Design
from neuralstudio.core.graph import Graph
from neuralstudio.core.training_settings import TrainingSettings

PETS = {"cat": 0, "dog": 1}  # class folder -> the MNIST digit its pictures are


def _sample() -> Any:
    from neuralstudio.ml.data import load_dataset

    return load_dataset("mnist-sample")


def write_image_folder(root: Path, classes: dict[str, int], per_class: int = 20) -> Path:
    """``root/<name>/<i>.png`` for every class name, each holding MNIST pictures of the digit it maps to."""
    ds = _sample()
    for name, digit in classes.items():
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for k, i in enumerate(np.flatnonzero(ds.y_train == digit)[:per_class]):
            Image.fromarray((ds.x_train[i] * 255).astype(np.uint8)).save(folder / f"{k}.png")
    return root


def write_pets(root: Path, per_class: int = 20) -> Path:
    """An image folder of two named classes, "cat" and "dog"."""
    return write_image_folder(root, PETS, per_class)


def write_digits_without(root: Path, missing: int, per_class: int = 6) -> Path:
    """A digit image folder ("0".."9") with no folder for the digit ``missing``."""
    return write_image_folder(root, {str(d): d for d in range(10) if d != missing}, per_class)


def pet_picture(path: Path, pet: str) -> Path:
    """A test picture of ``pet`` (an MNIST test image of its digit) as a PNG file."""
    ds = _sample()
    i = int(np.flatnonzero(ds.y_test == PETS[pet])[0])
    Image.fromarray((ds.x_test[i] * 255).astype(np.uint8)).save(path)
    return path


def classifier_design(units: int, *, activation: str = "softmax", loss: str = "sparse_categorical_crossentropy",
                      epochs: int = 4) -> Design:
    """Input 28x28 -> Flatten -> Dense(units, activation): trains on the pets in a second or two."""
    g = Graph()
    ids = [g.add_node("InputLayer", {"batch_shape": [None, 28, 28]}, name="image").id,
           g.add_node("Flatten", {}, name="flat").id,
           g.add_node("Dense", {"units": units, "activation": activation}, name="out").id]
    for a, b in zip(ids, ids[1:]):
        g.connect(a, b)
    settings = TrainingSettings(batch_size=8, epochs=epochs, validation_split=0.0, learning_rate=0.01, loss=loss,
                                seed=1)
    return Design(graph=g, training=settings, name="pets")


def train_on(folder: Path, out: Path, design: Design | None = None) -> Any:
    """Train ``design`` (two softmax outputs by default) on the data in ``folder``, saving it to ``out``."""
    from neuralstudio.ml.trainer import Trainer

    result = Trainer(design or classifier_design(2), dataset=str(folder), out_path=str(out)).run()
    assert result.ok, result.message
    return result
