"""Class names: what a classifier's outputs mean, checked wherever they come from.

A model predicts an index; only the data it was trained on says that index 3 is
"cat" or "Dress".  The names come from a data source (folder names, CSV label
values, a named data set), travel with the trained model (``ml/model_metadata.py``)
and are shown by Predict, ``neuralstudio predict`` and ``neuralstudio evaluate``.
A model file is untrusted (docs/ARCHITECTURE.md, "Untrusted files"), so names read
from one are validated here: a list of at most :data:`MAX_CLASS_NAMES` strings of
at most :data:`MAX_CLASS_NAME_CHARS` characters each, no control characters.

Also here, because the analysis, ``check`` and the trainer share it without loading
any data: the data sets whose classes NeuralStudio knows by name (:func:`known_data`).

Pure Python: no Qt, no Keras, no numpy.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

#: ImageNet has 1,000 classes, the largest label sets in common use about 20,000: 10,000 names cover
#: every classifier a learner trains here and bound what a hostile file can make us hold.
MAX_CLASS_NAMES = 10_000
#: A class name is a word or a few; a CSV label of more is a mistake (the CSV loader's own limit is the same).
MAX_CLASS_NAME_CHARS = 200
#: A data set's label as stored with a model ("Fashion-MNIST", a folder's name).
MAX_DATA_LABEL_CHARS = 200


class ClassNamesError(ValueError):
    """Class names that are not a short list of short texts (a damaged or hostile file)."""


@dataclass(frozen=True)
class KnownData:
    """A data set whose classes are known without loading it."""

    label: str  # how messages name it: "MNIST sample"
    num_classes: int


_KNOWN = {
    "mnist-sample": KnownData("MNIST sample", 10),
    "mnist": KnownData("MNIST", 10),
    "fashion-mnist": KnownData("Fashion-MNIST", 10),
}
_ALIASES = {"mnist_sample": "mnist-sample", "sample": "mnist-sample", "fashion_mnist": "fashion-mnist"}


def known_data(source: str | None) -> KnownData | None:
    """The named data set ``source`` ("mnist-sample", "fashion-mnist"...), or None for a path or anything else."""
    if not isinstance(source, str):
        return None
    key = source.strip().lower()
    return _KNOWN.get(_ALIASES.get(key, key))


def data_label(source: str | None) -> str:
    """How a data source is named in messages and stored with a model: "MNIST sample", or a file's own name.

    Only the last part of a path is kept: a model file is shared, and the folders of whoever trained it are
    not the business of whoever opens it.
    """
    known = known_data(source)
    if known is not None:
        return known.label
    text = str(source or "").strip()
    name = PurePath(text.replace("\\", "/")).name or text
    return _clip(_printable(name) or "the data", MAX_DATA_LABEL_CHARS)


def data_classes(data: Any) -> tuple[str, int] | None:
    """``(label, number of classes)`` of a design's ``data`` section when known without loading the data.

    A named data set is known; a path is known only when the design records ``num_classes``.
    """
    if not isinstance(data, dict):
        return None
    source = data.get("source")
    n = data.get("num_classes")
    if isinstance(n, int) and not isinstance(n, bool) and 0 < n <= MAX_CLASS_NAMES:
        return data_label(source if isinstance(source, str) else None), n
    known = known_data(source if isinstance(source, str) else None)
    return (known.label, known.num_classes) if known is not None else None


def digit_names(k: int) -> list[str]:
    """``"0".."k-1"``: the names of a model's outputs when nothing says what they mean."""
    return [str(i) for i in range(max(0, int(k)))]


def is_digit_names(names: Sequence[str]) -> bool:
    """True when ``names`` are just the numbers ``"0".."k-1"`` in order (nothing more is known)."""
    return list(names) == digit_names(len(names))


def names_for_outputs(names: Sequence[str] | None, k: int) -> list[str]:
    """One name per output for a model with ``k`` classes: the stored names, numbered where they run short.

    A model trained on 2 classes with 10 output units still has 10 outputs: the 8 unused ones are named by
    their index; stored names beyond ``k`` (a damaged file) are dropped.
    """
    given = list(names or ())[:k]
    return given + [str(i) for i in range(len(given), k)]


def validate_class_names(value: Any) -> list[str]:
    """``value`` as a list of class names, or :class:`ClassNamesError` saying why not.

    For names read from a file: a list of at most :data:`MAX_CLASS_NAMES` strings, each at most
    :data:`MAX_CLASS_NAME_CHARS` characters, without control characters or unpaired surrogates.
    """
    if not isinstance(value, list):
        raise ClassNamesError(f"class names must be a list, not {type(value).__name__}")
    if len(value) > MAX_CLASS_NAMES:
        raise ClassNamesError(f"{len(value):,} class names, more than {MAX_CLASS_NAMES:,}")
    for i, name in enumerate(value):
        if not isinstance(name, str):
            raise ClassNamesError(f"class name {i} is a {type(name).__name__}, not text")
        if len(name) > MAX_CLASS_NAME_CHARS:
            raise ClassNamesError(f"class name {i} has {len(name):,} characters, more than {MAX_CLASS_NAME_CHARS}")
        if _printable(name) != name:
            raise ClassNamesError(f"class name {i} holds control characters")
    return list(value)


def validate_data_label(value: Any) -> str:
    """A stored data set label: short text without control characters, else :class:`ClassNamesError`."""
    if not isinstance(value, str) or len(value) > MAX_DATA_LABEL_CHARS or _printable(value) != value:
        raise ClassNamesError("the data set label is not a short text")
    return value


def clean_class_names(names: Iterable[Any]) -> list[str] | None:
    """Names as they can be stored with a model: text, control characters replaced, long ones shortened.

    None when there are more than :data:`MAX_CLASS_NAMES` (such a model is stored without names rather than
    with a list a reader would refuse).
    """
    out = []
    for name in names:
        if len(out) >= MAX_CLASS_NAMES:
            return None
        out.append(_clip(_printable(str(name)), MAX_CLASS_NAME_CHARS))
    return out


def _printable(text: str) -> str:
    """``text`` with control characters (newlines, escapes, NUL) and unpaired surrogates replaced by "?"."""
    return "".join("?" if unicodedata.category(c) in ("Cc", "Cs") else c for c in text)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
