"""What a data source holds, in a few numbers and example images: the Train window's data preview.

Qt-free, so that the command line can print the same summary the window shows.
A preview loads the source with :func:`~neuralstudio.ml.data.load_dataset`, whose
loaders already check sizes and the memory budget of untrusted files, keeps a
handful of examples (copied, so that the loaded arrays are freed with the data
set) and drops the rest.  It is meant to run in the background: loading a large
CSV or image folder takes seconds.

The Keras sets (``mnist``, ``fashion-mnist``) are previewed from Keras's cache
only: a preview never downloads anything; a set not downloaded yet is described
from what is known about it, without example images.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from neuralstudio.ml.data.dataset import describe_shape
from neuralstudio.ml.data.idx import DIGIT_NAMES
from neuralstudio.ml.data.keras_sets import _FASHION_FILES, FASHION_NAMES, keras_datasets_dir

__all__ = ["PREVIEW_EXAMPLES", "DataPreview", "preview_dataset", "preview_source", "thumbnail_pixels"]

PREVIEW_EXAMPLES = 8  # example images a preview keeps
_NAMES_SHOWN = 12  # class names written out in the summary; the rest are counted

# (training examples, test examples, shape, class names, download size) of the Keras sets, for a preview
# that must not download them
_KERAS_SETS: dict[str, tuple[int, int, tuple[int, ...], list[str], str]] = {
    "mnist": (60_000, 10_000, (28, 28), DIGIT_NAMES, "about 11 MB"),
    "fashion-mnist": (60_000, 10_000, (28, 28), FASHION_NAMES, "about 30 MB"),
}


@dataclass(frozen=True)
class DataPreview:
    """A data source in brief: counts, the shape of one example, the classes and a few examples.

    Args:
        source: the spec it was made from (a named set or a path).
        train_size: training examples (before any validation split).
        test_size: test examples (0 when there is no test part).
        sample_shape: the shape of one example, without the batch axis.
        class_names: the name of each class, indexed by label.
        examples: up to :data:`PREVIEW_EXAMPLES` examples, float32 in [0, 1], shape ``(k, *sample_shape)``.
        example_labels: the class name of each example.
        description: where the data came from, in one line (the data set's own description).
        note: anything else the user should know (e.g. that a set is downloaded on first use).
    """

    source: str
    train_size: int
    test_size: int
    sample_shape: tuple[int, ...]
    class_names: list[str]
    examples: np.ndarray = field(repr=False)
    example_labels: list[str]
    description: str = ""
    note: str = ""

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def summary_lines(self) -> list[str]:
        """The preview in words, one fact a line, as the window and the command line show it."""
        test = f"{self.test_size:,} test examples" if self.test_size else "no test examples"
        shown = ", ".join(self.class_names[:_NAMES_SHOWN])
        more = len(self.class_names) - _NAMES_SHOWN
        if more > 0:
            shown += f" and {more:,} more"
        shape = ", ".join(str(d) for d in self.sample_shape)
        lines = [f"{self.train_size:,} training and {test}",
                 f"examples: {describe_shape(self.sample_shape)}, shape ({shape})",
                 f"{self.num_classes:,} classes: {shown}"]
        return lines + ([self.note] if self.note else [])


def preview_dataset(dataset: Any, source: str | None = None, examples: int = PREVIEW_EXAMPLES) -> DataPreview:
    """The preview of a loaded data set (cheap: it only counts and copies a few examples).

    The examples are one of each class in turn (the first of class 0, of class 1, ...,
    then the second of each), so that a few images show as many classes as they can.
    Class names are those the data set offers; where it offers none, or fewer than its
    labels need, the label values stand in.
    """
    x = dataset.x_train
    y = np.asarray(dataset.y_train).reshape(-1)
    x_test = getattr(dataset, "x_test", None)
    offered = [str(n) for n in (getattr(dataset, "class_names", None) or [])]
    top = int(y.max()) + 1 if y.size and y.dtype.kind in "iu" and int(y.min()) >= 0 else 0
    if offered and len(offered) >= top:
        names = offered
    else:  # no names, or fewer than the labels need: the label values stand in
        names = [str(v) for v in range(top)] if top else [str(v) for v in np.unique(y)]
    picked = _spread_over_classes(y, examples)
    kept = np.array(x[picked], dtype=np.float32, copy=True)
    example_labels = [_name_of(y[i], names) for i in picked]
    return DataPreview(
        source=str(source if source is not None else getattr(dataset, "name", "")),
        train_size=int(len(x)), test_size=int(len(x_test)) if x_test is not None else 0,
        sample_shape=tuple(int(d) for d in x.shape[1:]), class_names=names, examples=kept,
        example_labels=example_labels, description=str(getattr(dataset, "source", "") or ""))


def preview_source(spec: str, examples: int = PREVIEW_EXAMPLES) -> DataPreview:
    """Load ``spec`` (a named set or a path, as :func:`~neuralstudio.ml.data.load_dataset` takes) and preview it.

    Raises :class:`~neuralstudio.ml.data.DataError` with the loader's message when the
    source cannot be loaded. A Keras set that is not downloaded yet is described without
    loading it: a preview never goes to the internet.
    """
    from neuralstudio.ml.data import load_dataset  # the package imports this module's siblings, not this one

    key = spec.strip().lower().replace("_", "-")
    if key in _KERAS_SETS and not _keras_set_cached(key):
        train, test, shape, names, size = _KERAS_SETS[key]
        return DataPreview(
            source=spec, train_size=train, test_size=test, sample_shape=shape, class_names=list(names),
            examples=np.zeros((0, *shape), np.float32), example_labels=[],
            note=f"Not downloaded yet: Keras downloads it ({size}) the first time a run uses it, which needs "
                 "the internet once.")
    return preview_dataset(load_dataset(spec), spec, examples)


def thumbnail_pixels(example: np.ndarray) -> np.ndarray | None:
    """One example as uint8 pixels to draw: ``(h, w)`` grey or ``(h, w, 3)`` colour; None if it is no image.

    Vectors (a CSV row whose pixel count is not a square) and other shapes have no
    natural picture, so they get none rather than a guessed one.
    """
    a = np.asarray(example, dtype=np.float32)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[-1] == 3)) or min(a.shape[:2]) < 1:
        return None
    return np.ascontiguousarray(np.clip(np.nan_to_num(a) * 255.0 + 0.5, 0, 255).astype(np.uint8))


def _spread_over_classes(y: np.ndarray, k: int) -> list[int]:
    """Up to ``k`` indices of ``y``: the first example of each class in turn, then the second..."""
    if not len(y) or k <= 0:
        return []
    order = np.argsort(y, kind="stable")  # by class, each class in the data's own order
    _classes, starts, counts = np.unique(y[order], return_index=True, return_counts=True)
    out: list[int] = []
    for rank in range(min(k, int(counts.max()))):
        for start, count in zip(starts, counts):
            if rank < count:
                out.append(int(order[start + rank]))
                if len(out) == k:
                    return out
    return out


def _name_of(label: Any, names: list[str]) -> str:
    """The class name of one label (labels are indices into ``names``; anything else is its own name)."""
    try:
        i = int(label)
    except (TypeError, ValueError):
        return str(label)
    return names[i] if 0 <= i < len(names) else str(label)


def _keras_set_cached(key: str) -> bool:
    """Whether ``keras.datasets`` would read ``key`` from its cache (the files the loaders of keras_sets read)."""
    folder = keras_datasets_dir()
    if key == "mnist":
        return (folder / "mnist.npz").exists()
    return all((Path(folder) / "fashion-mnist" / f).exists() for f in _FASHION_FILES)
