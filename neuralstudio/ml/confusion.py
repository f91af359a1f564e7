"""The confusion matrix of a classifier on a data split, with the examples behind every cell.

What a learner asks after a run is not only "how accurate" but "which digits does it mix up, and
which images": :func:`confusion_report` predicts every example once and keeps, for each cell
(true class x predicted class), the examples in it sorted by how sure the network was of its
prediction (the surest mistakes first: those say most about what it learned), each example's
three largest outputs, per-class recall and one sentence naming the pair it confuses most.

Predictions go through one traced graph function over batches (:class:`BatchPredictor`), never
``model.predict`` (docs/ARCHITECTURE.md, "Traps": it rebuilds its data pipeline and callbacks on
every call). The forward pass is what costs: everything else here is a few numpy passes over the
outputs (a few milliseconds for 10,000 examples). The pass itself is bounded by the model's
arithmetic, not by this code: mnist-cnn needs about 20 MFLOP an image, 0.5-0.6 CPU-ms on this
project's CI CPU (``tests/benchmarks/bench_confusion.py``). So that a window can show the matrix
while it fills, :class:`ConfusionJob` predicts a split a slice at a time and hands out the report
of what is done so far; each slice is a short background task, so other work queued on the same
runner (Predict's copy of a new model) is not held up behind 10,000 images.

After a training run there is no pass to make: the trainer's own test pass keeps the outputs
(``RunResult.test_outputs``, ``ml/trainer.py``), and :meth:`ConfusionJob.from_outputs` turns them into the
complete report at once (numpy only, a few milliseconds for 10,000 examples). The pass here serves "Check on
test data" of any model, and the runs whose outputs were not kept.

What the outputs mean is read from the model's last layer (:func:`~neuralstudio.ml.inference.output_kind`):
probabilities for softmax, sigmoid and logit outputs, raw activations for others (labelled so, as in Predict).

Keras work (tracing, predicting) runs on the calling thread: call from a plain Python thread
(docs/ARCHITECTURE.md, "Threads"), never from the GUI thread. Qt-free.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neuralstudio.core.class_names import is_digit_names, names_for_outputs
from neuralstudio.core.errors import UserError

__all__ = ["DEFAULT_BATCH_SIZE", "TOP_K", "BatchPredictor", "ConfusionJob", "ConfusionReport", "WorstPair",
           "confusion_report", "report_from_values"]

#: images per call of the traced function: measured fastest for mnist-cnn on CPU (256: 1.19 CPU-s for 2,000
#: images, 1,000: 1.5 s; larger batches leave the caches)
DEFAULT_BATCH_SIZE = 256
#: how many of an example's largest outputs are kept
TOP_K = 3
_DIGIT_PLURALS = ("zeros", "ones", "twos", "threes", "fours", "fives", "sixes", "sevens", "eights", "nines")


class ConfusionError(UserError, ValueError):
    """A model or data that cannot give a confusion matrix; the message says why and what to do."""


@dataclass(frozen=True)
class WorstPair:
    """The off-diagonal cell with the most examples: ``count`` of the ``true_total`` examples of ``true`` were
    predicted as ``predicted``."""

    true: int
    predicted: int
    count: int
    true_total: int
    true_name: str
    predicted_name: str

    def as_dict(self) -> dict[str, Any]:
        return {"true": self.true, "predicted": self.predicted, "count": self.count, "true_total": self.true_total,
                "true_name": self.true_name, "predicted_name": self.predicted_name}


@dataclass(frozen=True, eq=False)
class ConfusionReport:
    """Counts, per-cell examples sorted by confidence, and each example's top outputs.

    Build it with :func:`confusion_report` or :func:`report_from_values`; every array is indexed by the
    example's position in the split given.

    Args:
        counts: ``(K, K)`` int64, rows the true class, columns the predicted one.
        class_names: one name per class (K).
        y_true: ``(n,)`` int64 true classes.
        y_pred: ``(n,)`` int64 predicted classes (the largest output).
        confidence: ``(n,)`` the predicted class's value (a probability unless :attr:`is_probability` is False).
        top_classes: ``(n, t)`` the ``t = min(3, K)`` classes with the largest values, largest first.
        top_values: ``(n, t)`` their values.
        is_probability: the values are probabilities (softmax, sigmoid, logits softmaxed); False for raw
            activations (a sigmoid layer of several units), which need not sum to 1.
        value_label: what a value is, in words ("probability", "output activation (sigmoid)").
        images: the examples as given (``(n, h, w)``, ``(n, h, w, 1)``, ``(n, 784)``...), for pictures; None when
            the report was made from values alone.
        examples_total: the examples of the whole split (more than ``n`` while a :class:`ConfusionJob` is going).
        predict_seconds: wall time of the forward pass(es) so far.
        build_seconds: wall time of building this report from the outputs.
    """

    counts: np.ndarray
    class_names: tuple[str, ...]
    y_true: np.ndarray
    y_pred: np.ndarray
    confidence: np.ndarray
    top_classes: np.ndarray
    top_values: np.ndarray
    is_probability: bool = True
    value_label: str = "probability"
    images: np.ndarray | None = None
    examples_total: int = 0
    predict_seconds: float = 0.0
    build_seconds: float = 0.0
    _order: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64), repr=False)
    _starts: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=np.int64), repr=False)

    # ---------------------------------------------------------------- counts
    @property
    def num_classes(self) -> int:
        return int(self.counts.shape[0])

    @property
    def examples(self) -> int:
        """Examples counted so far."""
        return int(len(self.y_true))

    @property
    def complete(self) -> bool:
        """Every example of the split is counted (False for the partial reports of a :class:`ConfusionJob`)."""
        return self.examples >= self.examples_total

    @property
    def correct(self) -> int:
        return int(np.trace(self.counts))

    @property
    def mistakes(self) -> int:
        return self.examples - self.correct

    @property
    def accuracy(self) -> float | None:
        """Fraction predicted right, None when there are no examples."""
        return self.correct / self.examples if self.examples else None

    def recall(self) -> list[float | None]:
        """Per true class, the fraction of its examples predicted right (None for a class with no examples)."""
        totals = self.counts.sum(axis=1)
        return [float(self.counts[i, i] / t) if t else None for i, t in enumerate(totals)]

    def class_total(self, true: int) -> int:
        """Examples whose true class is ``true``."""
        return int(self.counts[true].sum())

    # ---------------------------------------------------------------- examples
    def cell(self, true: int, predicted: int) -> np.ndarray:
        """Indices of the examples of class ``true`` predicted as ``predicted``, the surest prediction first
        (equal confidences in the split's order)."""
        k = self.num_classes
        if not (0 <= true < k and 0 <= predicted < k):
            return np.zeros(0, dtype=np.int64)
        c = true * k + predicted
        return self._order[self._starts[c]:self._starts[c + 1]]

    def misclassified(self) -> np.ndarray:
        """Indices of every wrongly predicted example, cell by cell (row-major), each cell surest first."""
        k = self.num_classes
        parts = [self.cell(t, p) for t in range(k) for p in range(k) if t != p]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def top(self, index: int) -> list[tuple[str, float]]:
        """Example ``index``'s largest outputs as ``(class name, value)``, largest first."""
        return [(self.name(int(c)), float(v)) for c, v in zip(self.top_classes[index], self.top_values[index])]

    def name(self, k: int) -> str:
        return self.class_names[k] if 0 <= k < len(self.class_names) else str(k)

    def image(self, index: int) -> np.ndarray | None:
        """Example ``index`` as a picture, float32: ``(h, w)`` grey (a flat square vector unflattened, a channel
        axis of 1 dropped) or ``(h, w, 3)``; None when there are no images or the example is not one."""
        if self.images is None:
            return None
        a = np.asarray(self.images[index], dtype=np.float32)
        if a.ndim == 3 and a.shape[-1] == 1:
            a = a[..., 0]
        elif a.ndim == 3 and a.shape[0] == 1:  # channels first
            a = a[0]
        elif a.ndim == 1:
            side = math.isqrt(a.size)
            if side * side != a.size:
                return None
            a = a.reshape(side, side)
        if not (a.ndim == 2 or (a.ndim == 3 and a.shape[-1] == 3)):
            return None
        return np.ascontiguousarray(a)

    # ---------------------------------------------------------------- in words
    def worst_pair(self) -> WorstPair | None:
        """The pair confused most (most examples in one off-diagonal cell; on a tie, the larger share of its true
        class, then the first in the table), or None when there is no mistake."""
        off = self.counts.copy()
        np.fill_diagonal(off, 0)
        if not off.any():
            return None
        totals = self.counts.sum(axis=1)
        best = int(off.max())
        rows, cols = np.nonzero(off == best)
        shares = best / totals[rows]
        i = int(np.argmax(shares))  # the first of the largest shares: row-major order
        t, p = int(rows[i]), int(cols[i])
        return WorstPair(t, p, best, int(totals[t]), self.name(t), self.name(p))

    def worst_pair_sentence(self) -> str:
        """One sentence naming the pair the network confuses most.

        "The network confuses 4 with 9 most: 23 of the 1,009 nines were called 4."  Digit classes get their
        English plural; other classes are named as they are ("7 of the 1,000 Shirt images were called T-shirt/top").
        A partial report says how many examples it has seen.
        """
        seen = "" if self.complete else f" (so far: {self.examples:,} of {self.examples_total:,} checked)"
        if not self.examples:
            return "There are no examples to check." if self.complete else "Checking the examples…"
        pair = self.worst_pair()
        if pair is None:
            return f"The network made no mistakes on these {self.examples:,} examples{seen}."
        them = self._plural(pair.true, pair.true_total)
        return (f"The network confuses {pair.predicted_name} with {pair.true_name} most: {pair.count:,} of the "
                f"{pair.true_total:,} {them} were called {pair.predicted_name}{seen}.")

    def _plural(self, k: int, n: int) -> str:
        digits = is_digit_names(self.class_names) and 0 <= k < len(_DIGIT_PLURALS)
        if digits:
            word = _DIGIT_PLURALS[k]
            return word if n != 1 else word[:-2] if word.endswith("xes") else word[:-1]
        return f"{self.name(k)} image" + ("" if n == 1 else "s")

    def as_dict(self) -> dict[str, Any]:
        """The JSON form (``neuralstudio evaluate --json``): counts, accuracy, recall and the worst pair."""
        pair = self.worst_pair()
        return {"confusion": self.counts.tolist(), "class_names": list(self.class_names),
                "examples": self.examples, "accuracy": self.accuracy, "mistakes": self.mistakes,
                "recall": self.recall(), "worst_pair": pair.as_dict() if pair is not None else None,
                "worst_pair_sentence": self.worst_pair_sentence(), "value_label": self.value_label,
                "is_probability": self.is_probability}


# -------------------------------------------------------------------- building a report
def report_from_values(values: Any, y: Any, class_names: Sequence[str] | None, *, images: np.ndarray | None = None,
                       is_probability: bool = True, value_label: str = "probability",
                       examples_total: int | None = None, predict_seconds: float = 0.0) -> ConfusionReport:
    """A report from the values shown for each example (``(n, K)``: probabilities, or activations) and the labels.

    ``K`` is the largest of the class names, the values' width and the largest label + 1 (a model with more
    outputs than the data has classes, or labels beyond its outputs, still fit the table); names run short are
    numbered. Non-finite values (a diverged model) count as the smallest.
    """
    t0 = time.perf_counter()
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 2:
        raise ConfusionError(f"The outputs have shape {v.shape}: a confusion matrix needs one value per class "
                             "for each example.")
    y_true = np.asarray(y, dtype=np.int64).reshape(-1)
    n = len(y_true)
    if v.shape[0] != n:
        raise ConfusionError(f"There are {v.shape[0]:,} predictions for {n:,} labels.")
    if n and int(y_true.min()) < 0:
        raise ConfusionError("The labels must be class numbers 0, 1, 2...: a negative label was found.")
    units = v.shape[1]
    k = max(len(class_names or ()), units, int(y_true.max()) + 1 if n else 0, 1)
    names = tuple(names_for_outputs(class_names, k))
    ranked = np.where(np.isfinite(v), v, -np.inf)
    y_pred = ranked.argmax(axis=1).astype(np.int64) if units else np.zeros(n, dtype=np.int64)
    t = min(TOP_K, units)
    if t and units > t:
        part = np.argpartition(-ranked, t - 1, axis=1)[:, :t]
    else:
        part = np.tile(np.arange(units), (n, 1))
    part_vals = np.take_along_axis(ranked, part, axis=1)
    within = np.argsort(-part_vals, axis=1, kind="stable")
    top_classes = np.take_along_axis(part, within, axis=1).astype(np.int64)
    top_values = np.take_along_axis(v, top_classes, axis=1)
    confidence = v[np.arange(n), y_pred] if units else np.zeros(n)
    cell_id = y_true * k + y_pred
    counts = np.bincount(cell_id, minlength=k * k).reshape(k, k).astype(np.int64)
    sure = np.where(np.isfinite(confidence), confidence, -np.inf)
    order = np.lexsort((-sure, cell_id)).astype(np.int64)  # by cell, then surest first; stable: split order on ties
    starts = np.zeros(k * k + 1, dtype=np.int64)
    np.cumsum(counts.reshape(-1), out=starts[1:])
    return ConfusionReport(counts=counts, class_names=names, y_true=y_true, y_pred=y_pred, confidence=confidence,
                           top_classes=top_classes, top_values=top_values, is_probability=is_probability,
                           value_label=value_label, images=images,
                           examples_total=n if examples_total is None else int(examples_total),
                           predict_seconds=predict_seconds, build_seconds=time.perf_counter() - t0,
                           _order=order, _starts=starts)


class BatchPredictor:
    """A model's outputs for many examples: one traced graph function called once per batch.

    Like Predict's :class:`~neuralstudio.ml.inference.Predictor`, but for any input shape (a data set's own) and
    big batches. Tracing costs 0.1-0.3 s once; every batch then is one call (no data pipeline, no callbacks, as
    ``model.predict`` builds each time).

    Args:
        model: a built ``keras.Model`` with one input and one flat output ``(None, K)``.
        batch_size: examples per call.

    Raises:
        ConfusionError: several inputs or outputs, or an output that is not one value per class.
    """

    def __init__(self, model: Any, *, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        from neuralstudio.ml.inference import output_kind

        inputs, outputs = getattr(model, "inputs", None), getattr(model, "outputs", None)
        if not inputs or not outputs:
            raise ConfusionError("This model has no defined input (it was never built): save it after training.")
        if len(inputs) != 1 or len(outputs) != 1:
            raise ConfusionError("This model has several inputs or outputs: a confusion matrix needs a classifier "
                                 "with one image input and one output.")
        out_shape = tuple(outputs[0].shape)
        if len(out_shape) != 2 or out_shape[1] is None:
            raise ConfusionError(f"This model's output has shape {out_shape[1:]}: a confusion matrix needs one "
                                 "value per class (end the network with Dense(classes)).")
        if batch_size < 1:
            raise ConfusionError("The batch size must be at least 1.")
        self.model = model
        self.batch_size = int(batch_size)
        self.input_shape = tuple(None if d is None else int(d) for d in inputs[0].shape[1:])
        self.kind = output_kind(model)
        self._fn = self._make_function(model)
        self._copied = False

    def _make_function(self, model: Any) -> Any:
        from neuralstudio.ml.backends import forward_function

        return forward_function(model, self.input_shape)

    def adapt(self, x: Any) -> np.ndarray:
        """``x`` reshaped to the model's input where that is unambiguous (a channel axis, flattening), float32."""
        from neuralstudio.ml.data import adapt_inputs

        return adapt_inputs(np.asarray(x), self.input_shape)

    def raw(self, x: np.ndarray) -> np.ndarray:
        """The model's own outputs ``(n, units)`` for adapted inputs ``x``, batch by batch."""
        n = len(x)
        if n == 0:
            return np.zeros((0, int(self.model.outputs[0].shape[-1])), dtype=np.float32)
        out = [self._batch(np.ascontiguousarray(x[i:i + self.batch_size], dtype=np.float32))
               for i in range(0, n, self.batch_size)]
        return np.concatenate(out, axis=0)

    def _batch(self, xb: np.ndarray) -> np.ndarray:
        y = np.asarray(self._fn(xb))
        if len(y) == len(xb):
            return y.reshape(len(xb), -1)
        # A model built under tf.distribute.MirroredStrategy gave one row per replica per input
        # (docs/ARCHITECTURE.md, "Traps"): predict with a plain copy, once for all.
        if self._copied:
            raise ConfusionError("The model gives a different number of outputs than inputs: it cannot be checked "
                                 "here.")
        from neuralstudio.ml.inference import inference_copy

        self._copied = True
        self._fn = self._make_function(inference_copy(self.model))
        return self._batch(xb)

    def values(self, raw: np.ndarray) -> np.ndarray:
        """Raw outputs -> the values shown (probabilities, or activations), as Predict reads them."""
        return self.kind.values(raw)


class ConfusionJob:
    """Predict a split a slice at a time; :meth:`step` returns the report of everything done so far.

    So that a window can show the matrix as it fills, and so that each background task stays short: a runner
    that runs tasks in order runs other work between two steps. :meth:`from_outputs` makes one that is done
    already, from outputs computed elsewhere (a training run's test pass), so that a window has one way to a report.

    Args:
        model: the classifier (a built ``keras.Model``).
        x: the split's inputs as the data set holds them (``(n, 28, 28)``...): reshaped to the model's input
            where unambiguous, and kept as they are for the pictures.
        y: the split's labels 0..K-1.
        class_names: the data's class names.
        batch_size: examples per call of the traced function.

    Raises:
        ConfusionError: a model that is no single-output classifier, or data that does not fit its input
            (:class:`~neuralstudio.ml.data.DataError` from the reshape, with both shapes named).
    """

    def __init__(self, model: Any, x: Any, y: Any, class_names: Sequence[str] | None, *,
                 batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        self.predictor: BatchPredictor | None = BatchPredictor(model, batch_size=batch_size)
        self.kind = self.predictor.kind
        self.units = int(model.outputs[0].shape[-1])
        self._take_examples(x, y, class_names)
        self.x = self.predictor.adapt(self.images)
        self._raw: list[np.ndarray] = []

    @classmethod
    def from_outputs(cls, model: Any, outputs: Any, x: Any, y: Any, class_names: Sequence[str] | None, *,
                     predict_seconds: float = 0.0) -> ConfusionJob:
        """A job that is already done: the split's outputs were computed elsewhere, in the split's order.

        The trainer's end-of-run test pass keeps them (``RunResult.test_outputs``): the Mistakes tab then shows a
        run's matrix without predicting the split a second time. ``model`` only says how to read the outputs
        (:func:`~neuralstudio.ml.inference.output_kind`: probabilities, logits, activations); nothing is
        predicted or traced. Takes no Keras time: may run on any thread.

        Raises:
            ConfusionError: outputs that are not one row of values per example.
        """
        from neuralstudio.ml.inference import output_kind

        raw = np.asarray(outputs)
        job = cls.__new__(cls)
        job.predictor = None
        job.kind = output_kind(model)
        job._take_examples(x, y, class_names)
        if raw.ndim != 2 or len(raw) != len(job.y):
            raise ConfusionError(f"There are outputs of shape {raw.shape} for {len(job.y):,} examples: a confusion "
                                 "matrix needs one row of values per example.")
        job.units = int(raw.shape[1])
        job.x = job.images
        job._raw = [raw]
        job.done_count = job.total
        job.predict_seconds = float(predict_seconds)
        return job

    def _take_examples(self, x: Any, y: Any, class_names: Sequence[str] | None) -> None:
        self.images = np.asarray(x)
        self.y = np.asarray(y, dtype=np.int64).reshape(-1)
        if len(self.images) != len(self.y):
            raise ConfusionError(f"There are {len(self.images):,} examples but {len(self.y):,} labels.")
        self.class_names = list(class_names or ())
        self.done_count = 0
        self.predict_seconds = 0.0

    @property
    def total(self) -> int:
        return int(len(self.y))

    @property
    def done(self) -> bool:
        return self.done_count >= self.total

    def step(self, max_seconds: float | None = None) -> ConfusionReport:
        """Predict the next batches, for about ``max_seconds`` (None: all that are left), and report so far.

        Runs Keras: call from a plain Python thread (docs/ARCHITECTURE.md, "Threads"). A job that is done (one
        made :meth:`from_outputs`) only reports.
        """
        if self.done or self.predictor is None:
            return self.report()
        t0 = time.perf_counter()
        while not self.done:
            end = min(self.total, self.done_count + self.predictor.batch_size)
            self._raw.append(self.predictor.raw(self.x[self.done_count:end]))
            self.done_count = end
            if max_seconds is not None and time.perf_counter() - t0 >= max_seconds:
                break
        self.predict_seconds += time.perf_counter() - t0
        return self.report()

    def report(self) -> ConfusionReport:
        """The report of the examples predicted so far."""
        n = self.done_count
        if len(self._raw) > 1:
            self._raw = [np.concatenate(self._raw, axis=0)]  # joined once per step, not again and again
        raw = self._raw[0] if self._raw else np.zeros((0, self.units), dtype=np.float32)
        kind = self.kind
        return report_from_values(kind.values(raw), self.y[:n], self.class_names, images=self.images[:n],
                                  is_probability=kind.is_probability, value_label=kind.value_label,
                                  examples_total=self.total, predict_seconds=self.predict_seconds)


def confusion_report(model_or_probs: Any, x: Any, y: Any, class_names: Sequence[str] | None, *,
                     batch_size: int = DEFAULT_BATCH_SIZE) -> ConfusionReport:
    """The confusion report of a model (or of its outputs already computed) on examples ``x`` with labels ``y``.

    Args:
        model_or_probs: a built ``keras.Model`` (predicted here, batch by batch, through one traced function),
            or the values for each example ``(n, K)``, taken as probabilities.
        x: the examples as the data set holds them (kept for the pictures), or None with values given.
        y: labels 0..K-1.
        class_names: the data's class names (numbered where they run short).
        batch_size: examples per prediction call.

    Raises:
        ConfusionError: see :class:`ConfusionJob` and :func:`report_from_values`.
    """
    if _is_values(model_or_probs):
        images = None if x is None else np.asarray(x)
        return report_from_values(model_or_probs, y, class_names, images=images)
    if x is None:
        raise ConfusionError("A model needs the examples to predict: x is None.")
    return ConfusionJob(model_or_probs, x, y, class_names, batch_size=batch_size).step()


def _is_values(obj: Any) -> bool:
    return isinstance(obj, (np.ndarray, list, tuple))
