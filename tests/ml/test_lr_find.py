"""The learning-rate range test on real tiny models: the sweep, its suggestion, divergence, stop and bad input."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest
from support import flat_mlp, image_mlp, mnist_slice

from neuralstudio.core.templates import load_template
from neuralstudio.ml.lr_find import (
    FROZEN_STEPS,
    LR_FIND_THREAD,
    find_learning_rate,
    format_lr,
    smoothed_losses,
    suggest_learning_rate,
)
from neuralstudio.ml.trainer import TrainControl


@pytest.fixture(scope="module")
def data():
    """1,000 training images of the bundled MNIST sample (the sweep repeats them when it needs more)."""
    return mnist_slice(1000, 100)


def test_the_sweep_grows_the_rate_and_suggests_one_inside_the_range(data):
    design = image_mlp("sweep", hidden=32, optimizer="adam", learning_rate=0.001, batch_size=32)
    before = design.to_dict()
    steps = []
    threads = set()

    def on_step(step, lr, loss, smoothed):
        steps.append((step, lr, loss, smoothed))
        threads.add(threading.current_thread().name)

    r = find_learning_rate(design, data, min_lr=1e-5, max_lr=10.0, steps=50, on_step=on_step)
    assert r.ok, r.message
    assert r.status in ("finished", "diverged") and 10 <= r.steps_run <= 50 and r.batch_size == 32
    # exponentially growing rates, from min_lr, one per step; the smoothing is the bias-corrected average
    assert r.lrs[0] == pytest.approx(1e-5)
    ratios = np.diff(np.log10(r.lrs))
    np.testing.assert_allclose(ratios, 6 / 49, rtol=1e-9)
    np.testing.assert_allclose(r.smoothed, smoothed_losses(r.losses))
    assert r.smoothed[0] == pytest.approx(r.losses[0])
    # the loss fell: a suggestion inside the range, below the rate of the minimum, named in the sentence
    assert min(r.smoothed) < r.smoothed[0]
    assert 1e-5 <= r.suggested_lr <= 10.0
    assert r.suggested_lr <= r.min_loss_lr
    assert f"{format_lr(r.suggested_lr)}." in r.message  # "try 0.3." (or "a tenth of that, 0.03.")
    # reported live, step by step, from the sweep's own thread; the design was only read
    assert [s[0] for s in steps] == list(range(r.steps_run))
    assert [s[1] for s in steps] == r.lrs
    assert threads == {LR_FIND_THREAD}
    assert design.to_dict() == before
    assert set(r.to_dict()) >= {"suggested_lr", "diverged_at", "steps_run", "message", "lrs", "smoothed"}


def test_nielsens_network_stops_learning_at_high_rates_and_says_so():
    """Sigmoid outputs with the quadratic cost cannot blow up (the loss stays below 5, never 4x its best, never
    NaN): at high rates the units saturate and learning stops. When every output saturates at 0 the loss
    freezes at 0.5 (half of one wrong output squared), which the sweep reports as the rate where training broke
    down. Which outputs saturate depends on the batches seen, so this is the template's own data and seed, in a
    sweep measured to freeze (at about step 61 of 90); other sweeps may leave a mix of 0s and 1s, whose loss
    still differs from batch to batch, and end "did not diverge"."""
    design = load_template("nielsen-784-30-10")
    r = find_learning_rate(design, None, min_lr=1.0, max_lr=3e3, steps=90)  # its own data: mnist-sample
    assert r.status == "diverged", r.message
    # before the sweep's end (TensorFlow froze at about step 61, JAX at 65: the batches' float sums differ)
    assert r.breakdown == "froze" and r.diverged_at is not None and r.steps_run < 90
    assert r.lrs[-FROZEN_STEPS] == r.diverged_at
    assert r.losses[-1] == pytest.approx(0.5, abs=2e-3)
    assert r.suggested_lr is not None and 1.0 <= r.suggested_lr < r.diverged_at
    assert f"above {format_lr(r.diverged_at)} it stopped learning" in r.message
    # its own batch size (10) and optimizer were used
    assert r.batch_size == 10


def test_a_loss_that_blows_up_ends_the_sweep_where_it_diverged(data):
    design = image_mlp("sgd", hidden=32, optimizer="sgd", batch_size=32)
    # 60 steps: on JAX the cross-entropy stays finite (Keras clips the probabilities, the loss tops out near 15)
    # and the smoothed loss needs more steps to pass 4x its best than TensorFlow's, which turns NaN
    r = find_learning_rate(design, data, min_lr=1e-3, max_lr=1e4, steps=60)
    assert r.status == "diverged" and r.breakdown in ("rose", "nan"), r.message
    assert r.diverged_at is not None and r.steps_run < 60
    assert r.suggested_lr is not None and r.suggested_lr < r.diverged_at
    assert all(math.isfinite(v) for v in r.losses)  # a NaN step is not recorded
    assert f"it diverged above {format_lr(r.diverged_at)}" in r.message


def test_a_stop_request_ends_the_sweep_after_the_current_step(data):
    control = TrainControl()

    def on_step(step, *_):
        if step == 4:
            control.request_stop()

    r = find_learning_rate(image_mlp("stop"), data, steps=50, control=control, on_step=on_step)
    assert r.status == "stopped" and r.steps_run == 5, r.message
    assert r.ok and r.message

    early = TrainControl()
    early.request_stop()
    r = find_learning_rate(image_mlp("stop"), data, steps=50, control=early)
    assert r.status == "stopped" and r.steps_run == 0 and r.suggested_lr is None
    assert "too few" in r.message


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"min_lr": 1.0, "max_lr": 0.1}, "must be below"),
    ({"min_lr": 0.0}, "min_lr must be a learning rate"),
    ({"max_lr": math.inf}, "max_lr must be a learning rate"),
    ({"steps": 2}, "steps must be a whole number"),
    ({"batch_size": 0}, "batch size"),
])
def test_bad_ranges_come_back_as_a_sentence(data, kwargs, words):
    r = find_learning_rate(image_mlp("bad"), data, **kwargs)
    assert r.status == "failed" and not r.ok and words in r.message and not r.lrs


def test_a_design_that_does_not_fit_the_data_gets_the_trainers_sentence(data):
    from neuralstudio.core.design import Design

    r = find_learning_rate(flat_mlp(units=5), data, steps=20)
    assert r.status == "failed" and "10 classes" in r.message and "10 units" in r.message
    r = find_learning_rate(Design(name="empty"), data)
    assert r.status == "failed" and "no layers" in r.message
    r = find_learning_rate(image_mlp("nowhere"), "/no/such/folder", steps=20)
    assert r.status == "failed" and r.message and "Traceback" not in r.message


def test_the_suggestion_is_the_steepest_descent_before_the_minimum():
    lrs = list(np.logspace(-6, 1, 100))
    x = np.log10(lrs)
    # falls fastest at 1e-3, lowest near 1e-1, then rises steeply
    loss = 2.0 - 1.5 / (1 + np.exp(-4 * (x + 3))) + np.where(x > -1, 3 * (x + 1) ** 2, 0)
    suggested, lowest, how = suggest_learning_rate(lrs, list(loss))
    assert how == "steepest" and suggested == pytest.approx(1e-3, rel=0.35)
    assert lowest == pytest.approx(0.1, rel=0.5)

    # a loss that only rises: no descent, so a tenth of the rate at its minimum
    rising = list(np.linspace(1.0, 3.0, 50))
    suggested, lowest, how = suggest_learning_rate(lrs[:50], rising)
    assert how == "rising" and lowest == lrs[10]  # the first 10 steps average too few batches to trust
    assert suggested == pytest.approx(float(f"{lrs[10] / 10:.1g}"))
    assert suggest_learning_rate(lrs[:3], rising[:3]) == (None, None, "none")


def test_rates_are_written_as_a_learner_reads_them():
    assert format_lr(0.3) == "0.3"
    assert format_lr(1e-6) == "1e-6"
    assert format_lr(12.34) == "12"
    assert format_lr(1727.0) == "1700"
    assert format_lr(0.000134) == "0.00013"
    assert format_lr(2.5e-5) == "2.5e-5"
