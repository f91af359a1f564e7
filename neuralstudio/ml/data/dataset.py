"""The :class:`Dataset` every source ends as, and what all sources share.

Here because every loader needs it and none owns it: the error type, the fixed
stratified split (and the hold-out of a test part for sources that have none),
the scaling of pixels to [0, 1] and of labels to 0..K-1 (class numbers keep their meaning), and the shape helpers
(:func:`adapt_inputs`, :func:`one_hot`, :func:`describe_shape`) that the trainer,
``evaluate`` and export verification use on any data set.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from neuralstudio.core.class_names import MAX_CLASS_NAMES
from neuralstudio.core.errors import UserError

SPLIT_SEED = 20_240_601  # fixed: the same split on every machine, every time
HOLDOUT_FRACTION = 0.2


class DataError(UserError, ValueError):
    """A data source that cannot be loaded; the message says what is wrong and what to do."""


@dataclass
class Dataset:
    """Images (float32 in [0, 1]) and labels (int64 0..K-1), split into train and test.

    Args:
        name: what the user chose: ``"mnist-sample"``, ``"mnist"`` or a path.
        x_train: training inputs, ``(n, h, w)`` for greyscale images.
        y_train: training labels.
        x_test: held-out inputs, or None when the source has none.
        y_test: held-out labels, or None.
        class_names: the name of each class, indexed by label.
        source: a one-line human description of where the data came from.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray | None
    y_test: np.ndarray | None
    class_names: list[str]
    source: str = ""

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """The shape of one example, without the batch axis."""
        return tuple(int(d) for d in self.x_train.shape[1:])

    def description(self) -> dict[str, Any]:
        """What a run record stores about the data, enough to tell two runs' data apart."""
        return {
            "name": self.name,
            "source": self.source,
            "train_size": int(len(self.x_train)),
            "test_size": int(len(self.x_test)) if self.x_test is not None else 0,
            "sample_shape": list(self.sample_shape),
            "num_classes": self.num_classes,
            "class_names": list(self.class_names),
        }


def stratified_split(
    x: np.ndarray, y: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split ``(x, y)`` into a and b, with ``fraction`` of every class in b.

    The size of b is exactly ``round(fraction * len(y))``; per-class counts are
    allotted by largest remainder so every class keeps its share.  Both parts
    are shuffled, and the same ``seed`` gives the same split every time.

    Args:
        x: inputs, first axis is examples.
        y: integer labels, same length as ``x``.
        fraction: the share of the data that goes to b, in [0, 1].
        seed: random seed for the split.

    Returns:
        ``(x_a, y_a, x_b, y_b)``.
    """
    if len(x) != len(y):
        raise DataError(f"There are {len(x)} inputs but {len(y)} labels: they must be as many.")
    if not 0.0 <= fraction <= 1.0:
        raise DataError(f"A split fraction must be between 0 and 1, not {fraction}.")
    y = np.asarray(y)
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(y, return_counts=True)
    total_b = int(round(fraction * len(y)))
    exact = counts * fraction
    take = np.floor(exact).astype(np.int64)
    remainder = total_b - int(take.sum())
    if remainder > 0:
        order = np.lexsort((classes, -(exact - take)))  # largest remainder first, ties by class
        for i in order[:remainder]:
            take[i] += 1
    b_parts = []
    a_parts = []
    for cls, k in zip(classes, take):
        idx = np.flatnonzero(y == cls)
        idx = idx[rng.permutation(len(idx))]
        b_parts.append(idx[:k])
        a_parts.append(idx[k:])
    a = np.concatenate(a_parts) if a_parts else np.zeros(0, np.int64)
    b = np.concatenate(b_parts) if b_parts else np.zeros(0, np.int64)
    a = a[rng.permutation(len(a))]
    b = b[rng.permutation(len(b))]
    return x[a], y[a], x[b], y[b]


def adapt_inputs(x: np.ndarray, input_shape: tuple[int | None, ...]) -> np.ndarray:
    """Reshape a batch to what the model's Input wants, where the reshape is unambiguous.

    Allowed: adding or dropping a channel axis of size 1 (``(n, 28, 28)`` <->
    ``(n, 28, 28, 1)``) and flattening or unflattening (``(n, 28, 28)`` <->
    ``(n, 784)``).  Anything else raises :class:`DataError` naming both shapes and
    the Input shape that would fit.

    Args:
        x: a batch, first axis is examples.
        input_shape: the model Input's shape without the batch axis; None means any size.
    """
    x = np.asarray(x)
    if x.dtype != np.float32:
        x = x.astype(np.float32)
    target = tuple(None if d is None else int(d) for d in input_shape)
    have = tuple(int(d) for d in x.shape[1:])
    n = x.shape[0]
    if _matches(have, target):
        return x
    candidates = []
    squeezed = tuple(d for d in have if d != 1)
    if None in target:
        candidates += [have + (1,)]
        if have and have[-1] == 1:
            candidates.append(have[:-1])
    for cand in candidates:
        if _matches(cand, target):
            return x.reshape((n, *cand))
    if None not in target and math.prod(target) == math.prod(have):
        wanted_squeezed = tuple(d for d in target if d != 1)
        if len(target) == 1 or len(have) == 1 or wanted_squeezed == squeezed:
            return x.reshape((n, *target))
    raise DataError(_shape_mismatch(have, target))


def one_hot(y: np.ndarray, num_classes: int) -> np.ndarray:
    """Labels 0..K-1 as float32 one-hot rows, for MSE (Nielsen's quadratic cost) and categorical losses."""
    y = np.asarray(y, dtype=np.int64).reshape(-1)
    if len(y) and (y.min() < 0 or y.max() >= num_classes):
        bad = int(y.min()) if y.min() < 0 else int(y.max())
        raise DataError(f"Labels must be between 0 and {num_classes - 1}, but {bad} was found: give the output "
                        f"layer as many units as there are classes.")
    out = np.zeros((len(y), num_classes), dtype=np.float32)
    out[np.arange(len(y)), y] = 1.0
    return out


def describe_shape(shape: tuple[int, ...]) -> str:
    """``(28, 28)`` -> ``"28x28 greyscale images"``: how the data look, in words."""
    if len(shape) == 2:
        return f"{shape[0]}x{shape[1]} greyscale images"
    if len(shape) == 3 and shape[-1] == 1:
        return f"{shape[0]}x{shape[1]} greyscale images"
    if len(shape) == 3 and shape[-1] == 3:
        return f"{shape[0]}x{shape[1]} colour (RGB) images"
    if len(shape) == 1:
        return f"vectors of {shape[0]} numbers"
    return "arrays of shape " + _fmt(shape)


def _matches(have: tuple[int, ...], target: tuple[int | None, ...]) -> bool:
    return len(have) == len(target) and all(t is None or t == h for h, t in zip(have, target))


def _fmt(shape: tuple[Any, ...]) -> str:
    inner = ", ".join("None" if d is None else str(d) for d in shape)
    return f"({inner},)" if len(shape) == 1 else f"({inner})"


def _suggest(have: tuple[int, ...], rank: int) -> tuple[int, ...]:
    """The Input shape of the model's rank that the data fit."""
    spatial = have if len(have) != 3 or have[-1] != 1 else have[:-1]
    if rank == 1:
        return (math.prod(have),)
    if len(spatial) == 2:
        return spatial if rank == 2 else (*spatial, 1)
    return have


def _shape_mismatch(have: tuple[int, ...], target: tuple[int | None, ...]) -> str:
    fit = _suggest(have, len(target))
    return (
        f"The model's Input expects {_fmt(target)} but the data are {describe_shape(have)} "
        f"(each example is {_fmt(have)}): set the Input shape to {_fmt(fit)}, or choose data of the "
        "shape the model expects."
    )


def _to_unit(x: np.ndarray, what: str, *, reuse: bool = False) -> np.ndarray:
    """Pixels as float32 in [0, 1]: integers and floats up to 255 are divided by 255.

    ``reuse=True`` scales a float32 ``x`` in place (one copy less of a large
    CSV); otherwise ``x`` is left as it was.
    """
    if x.dtype.kind not in "uif":
        raise DataError(f"The images in {what} are not numbers (type {x.dtype}): store pixel values 0-255.")
    if x.size == 0:
        return x.astype(np.float32)
    out = x if reuse and x.dtype == np.float32 and x.flags.writeable else x.astype(np.float32)
    if not np.all(np.isfinite(out)):
        raise DataError(f"The images in {what} contain NaN or infinite values: remove or fix those rows.")
    lo, hi = float(out.min()), float(out.max())
    if lo < 0:
        raise DataError(f"The images in {what} have negative pixel values (down to {lo:g}): use values 0-255 "
                        "or 0-1.")
    if hi > 255:
        raise DataError(f"The images in {what} have pixel values up to {hi:g}: use values 0-255 or 0-1.")
    if x.dtype.kind in "ui" or hi > 1.0:
        out /= 255.0
    return out


def _encode_labels(parts: list[np.ndarray], what: str) -> tuple[list[np.ndarray], list[str]]:
    """Map labels (class numbers or names) to 0..K-1 over all parts together, with one name per class.

    Labels that already are class numbers 0..K-1 keep their meaning (:func:`_kept_class_count`): a digit data
    set without any 3 still labels its 4s as 4, so that a model trained on it reads like any digit model
    (remapping by sorted value, as this once did, shifted every digit after the missing one).  Anything else
    (names, numbers that do not start at 0, sparse codes such as 100 and 200) is numbered in sorted order and
    named by its value.
    """
    parts = [np.asarray(p) for p in parts]
    parts = [p.reshape(-1) if p.ndim > 1 and math.prod(p.shape[1:]) == 1 else p for p in parts]
    for p in parts:
        if p.ndim != 1:
            raise DataError(
                f"The labels in {what} have shape {p.shape}: give one class number per example "
                "(not one-hot rows)."
            )
    allv = np.concatenate(parts) if parts else np.zeros(0)
    if allv.dtype.kind == "f":
        if not np.all(np.isfinite(allv)) or not np.all(allv == np.round(allv)):
            raise DataError(f"The labels in {what} are not whole class numbers: use 0, 1, 2... or class names.")
        if allv.size and float(np.abs(allv).max()) > 2**53:  # past this, floats are not exact whole numbers
            raise DataError(f"The labels in {what} go up to {float(np.abs(allv).max()):g}: use class numbers 0, 1, "
                            "2... or class names.")
        parts = [p.astype(np.int64) for p in parts]
        allv = allv.astype(np.int64)
    elif allv.dtype.kind not in "uiUSO":
        raise DataError(f"The labels in {what} are of type {allv.dtype}: use class numbers or names.")
    if allv.dtype.kind in "SO":
        try:
            parts = [p.astype(str) for p in parts]
        except UnicodeDecodeError:
            raise DataError(f"The labels in {what} are bytes that are not text: use class numbers or names.") from None
        allv = np.concatenate(parts)
    if allv.size == 0:
        raise DataError(f"{what} holds no examples.")
    classes = np.unique(allv)
    if len(classes) < 2:
        raise DataError(f"All labels in {what} are {classes[0]!r}: a classifier needs at least two classes.")
    if allv.dtype.kind == "U" and all(_CLASS_NUMBER.fullmatch(str(c)) for c in classes):
        # "0", "4", "9" as text (an .npz of strings): the same class numbers as 0, 4, 9
        parts = [p.astype(np.int64) for p in parts]
        classes = np.unique(np.concatenate(parts))
    if classes.dtype.kind in "ui":
        k = _kept_class_count(classes)
        if k is not None:
            return [p.astype(np.int64) for p in parts], [str(i) for i in range(k)]
    encoded = [np.searchsorted(classes, p).astype(np.int64) for p in parts]
    return encoded, [str(c) for c in classes]


#: A class number written as text: "0", "7", "12" (not "07", "+1" or " 3", which are names).
_CLASS_NUMBER = re.compile(r"0|[1-9][0-9]{0,8}")


def _kept_class_count(classes: np.ndarray) -> int | None:
    """K when the distinct integer labels ``classes`` (sorted) already are class numbers 0..K-1, else None.

    They are when 0 is one of them, none is negative, K stays within what a model can name
    (:data:`~neuralstudio.core.class_names.MAX_CLASS_NAMES`), and at most half of 0..K-1 has no example
    (a missing digit or two, not codes such as 0 and 5000).
    """
    if not len(classes) or int(classes[0]) != 0:
        return None
    k = int(classes[-1]) + 1
    if k > MAX_CLASS_NAMES or k > 2 * len(classes):
        return None
    return k


def _folder_classes(folders: list[str]) -> tuple[list[str], dict[str, int]]:
    """Class names and each folder's label for class folders named ``folders``.

    Folders named by class numbers ("0", "1", "2", "4"...) keep those numbers as their labels, as numeric
    labels do (:func:`_kept_class_count`); numbered folders that do not start at 0 are ordered by number
    (1, 2, 10, not 1, 10, 2); any other names in sorted order.
    """
    if folders and all(_CLASS_NUMBER.fullmatch(f) for f in folders):
        numbers = sorted(int(f) for f in folders)
        k = _kept_class_count(np.asarray(numbers))
        if k is not None:
            return [str(i) for i in range(k)], {f: int(f) for f in folders}
        ordered = [str(n) for n in numbers]
        return ordered, {f: i for i, f in enumerate(ordered)}
    ordered = sorted(folders)
    return ordered, {f: i for i, f in enumerate(ordered)}


def _holdout(name: str, x: np.ndarray, y: np.ndarray, class_names: list[str], source: str) -> Dataset:
    """A Dataset from data with no test part: hold out a fixed stratified share for testing."""
    xa, ya, xb, yb = stratified_split(x, y, HOLDOUT_FRACTION, SPLIT_SEED)
    if len(xb) == 0:
        return Dataset(name, xa, ya, None, None, class_names, source)
    return Dataset(name, xa, ya, xb, yb, class_names,
                   f"{source}; {len(xb)} examples ({HOLDOUT_FRACTION:.0%} of each class) held out for testing")


def _readonly(*arrays: np.ndarray) -> None:
    for a in arrays:
        a.setflags(write=False)


def _list_dir(folder: Path) -> list[Path]:
    """The entries of ``folder``, sorted; an unreadable folder is a message, not a traceback."""
    try:
        return sorted(folder.iterdir())
    except OSError as exc:
        raise DataError(f"{folder} cannot be read ({exc.strerror or exc}): check that it exists and that you may "
                        "open it.") from None


def _short(exc: BaseException) -> str:
    text = re.sub(r"\s+", " ", str(exc)).strip() or type(exc).__name__
    return text[:200]
