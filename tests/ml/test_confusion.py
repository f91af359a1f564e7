"""ml/confusion.py: the confusion report from known outputs, and from real (tiny) models on the MNIST sample."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from support import mnist_slice

from neuralstudio.ml.confusion import (
    BatchPredictor,
    ConfusionError,
    ConfusionJob,
    confusion_report,
    report_from_values,
)

DIGITS = [str(i) for i in range(10)]


def _one_hot_ish(pred: list[int], conf: list[float], k: int = 10) -> np.ndarray:
    """Rows whose largest value is ``conf`` at ``pred``; the rest shared out, the second largest at pred + 1."""
    v = np.zeros((len(pred), k))
    for row, (p, c) in enumerate(zip(pred, conf)):
        rest = 1.0 - c
        v[row, :] = rest * 0.1 / (k - 2)
        v[row, (p + 1) % k] = rest * 0.9
        v[row, p] = c
    return v / v.sum(axis=1, keepdims=True)


def test_counts_sorting_top3_and_the_worst_pair_in_one_sentence():
    # 1,009 nines: 23 called 4, 2 called 7; 10 fours: one called 9
    y = [9] * 1009 + [4] * 10
    pred = [4] * 23 + [7] * 2 + [9] * 984 + [9] + [4] * 9
    rng = np.random.default_rng(0)
    conf = list(rng.uniform(0.55, 0.99, size=len(y)))
    r = report_from_values(_one_hot_ish(pred, conf), y, DIGITS)
    assert r.counts.shape == (10, 10) and r.counts.sum() == 1019
    assert r.counts[9, 4] == 23 and r.counts[9, 7] == 2 and r.counts[9, 9] == 984 and r.counts[4, 9] == 1
    assert r.accuracy == pytest.approx((984 + 9) / 1019) and r.mistakes == 26 and r.complete
    assert r.recall()[9] == pytest.approx(984 / 1009) and r.recall()[0] is None
    # a cell's examples, the surest first
    cell = r.cell(9, 4)
    assert sorted(cell.tolist()) == list(range(23))
    assert list(r.confidence[cell]) == sorted(r.confidence[cell], reverse=True)
    assert r.confidence[cell[0]] == pytest.approx(max(conf[:23]))
    # the top three of an example: the prediction, then the runner-up, largest first
    top = r.top(int(cell[0]))
    assert [name for name, _v in top[:2]] == ["4", "5"] and top[0][1] == pytest.approx(max(conf[:23]))
    assert top[0][1] >= top[1][1] >= top[2][1]
    assert r.worst_pair().as_dict() == {"true": 9, "predicted": 4, "count": 23, "true_total": 1009,
                                        "true_name": "9", "predicted_name": "4"}
    assert r.worst_pair_sentence() == "The network confuses 4 with 9 most: 23 of the 1,009 nines were called 4."
    assert set(r.misclassified().tolist()) == set(range(25)) | {1009}
    d = r.as_dict()
    assert d["confusion"][9][4] == 23 and d["worst_pair"]["count"] == 23 and d["mistakes"] == 26


def test_equal_confidences_keep_the_splits_order_and_ties_go_to_the_larger_share():
    y = [1, 1, 1, 2, 2, 2, 2, 2, 2]
    pred = [0, 0, 1, 0, 0, 2, 2, 2, 2]
    r = report_from_values(_one_hot_ish(pred, [0.7] * 9, k=3), y, ["cat", "dog", "bird"])
    assert r.cell(1, 0).tolist() == [0, 1]
    # two cells of 2 mistakes: 2 of 3 dogs beats 2 of 6 birds; names that are no digits are named as they are
    assert r.worst_pair_sentence() == "The network confuses cat with dog most: 2 of the 3 dog images were called cat."


def test_no_mistakes_partial_reports_and_odd_shapes():
    r = report_from_values(np.eye(3)[[0, 1, 2]], [0, 1, 2], DIGITS[:3])
    assert r.worst_pair() is None and r.worst_pair_sentence() == "The network made no mistakes on these 3 examples."
    partial = report_from_values(np.eye(3)[[0, 1]], [0, 0], None, examples_total=10)
    assert not partial.complete and "so far: 2 of 10 checked" in partial.worst_pair_sentence()
    assert partial.class_names == ("0", "1", "2")
    # more labels than outputs: the table grows to the largest label; non-finite outputs count as the smallest
    wide = report_from_values(np.array([[0.2, np.nan], [0.9, 0.1]]), [3, 0], ["a"])
    assert wide.counts.shape == (4, 4) and wide.counts[3, 0] == 1 and wide.class_names == ("a", "1", "2", "3")
    with pytest.raises(ConfusionError, match="predictions for"):
        report_from_values(np.zeros((2, 3)), [0, 1, 2], None)
    with pytest.raises(ConfusionError, match="one value per class"):
        report_from_values(np.zeros(3), [0, 1, 2], None)
    empty = report_from_values(np.zeros((0, 10)), [], DIGITS)
    assert empty.accuracy is None and empty.worst_pair_sentence() == "There are no examples to check."


def test_images_are_shown_as_pictures_whatever_the_models_input():
    flat = np.arange(3 * 784, dtype=np.float32).reshape(3, 784) / 3000
    r = report_from_values(np.eye(2)[[0, 1, 1]], [0, 1, 0], None, images=flat)
    assert r.image(2).shape == (28, 28) and r.image(2).dtype == np.float32
    np.testing.assert_array_equal(r.image(2).reshape(-1), flat[2])
    channel = np.zeros((3, 28, 28, 1), dtype=np.float32)
    assert report_from_values(np.eye(2)[[0, 1, 1]], [0, 1, 0], None, images=channel).image(0).shape == (28, 28)
    assert report_from_values(np.eye(2)[[0, 1, 1]], [0, 1, 0], None, images=np.zeros((3, 5))).image(0) is None


@pytest.fixture(scope="module")
def trained():
    """A small softmax MLP trained one epoch on 600 images (it makes mistakes), and 300 test images."""
    keras = pytest.importorskip("keras")
    from neuralstudio.ml.keras_threads import run_on_python_thread

    ds = mnist_slice(600, 300)

    def train():
        keras.utils.set_random_seed(5)
        model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                                  keras.layers.Dense(16, activation="relu"),
                                  keras.layers.Dense(10, activation="softmax")])
        model.compile("adam", "sparse_categorical_crossentropy")
        model.fit(ds.x_train[..., None], ds.y_train, epochs=1, batch_size=32, verbose=0)
        return model

    return run_on_python_thread(train, "test-train"), ds


def test_a_real_model_slice_by_slice_gives_what_keras_predicts(trained):
    from neuralstudio.ml.keras_threads import run_on_python_thread

    model, ds = trained

    def check():
        expected = keras.ops.convert_to_numpy(model(ds.x_test[..., None], training=False))
        full = confusion_report(model, ds.x_test, ds.y_test, ds.class_names, batch_size=64)
        job = ConfusionJob(model, ds.x_test, ds.y_test, ds.class_names, batch_size=64)
        partials = []
        while not job.done:
            partials.append(job.step(max_seconds=0.0))  # one batch a step
        return expected, full, partials

    expected, full, partials = run_on_python_thread(check, "test-confusion")
    pred = expected.argmax(axis=1)
    counts = np.zeros((10, 10), dtype=np.int64)
    np.add.at(counts, (ds.y_test, pred), 1)
    np.testing.assert_array_equal(full.counts, counts)
    np.testing.assert_allclose(full.confidence, expected.max(axis=1), rtol=1e-5)
    assert full.mistakes > 0 and full.images.shape == (300, 28, 28) and full.predict_seconds > 0
    assert [p.examples for p in partials] == [64, 128, 192, 256, 300]
    assert not partials[0].complete and partials[-1].complete
    np.testing.assert_array_equal(partials[-1].counts, full.counts)
    assert partials[0].counts.sum() == 64 and (partials[0].y_true == ds.y_test[:64]).all()


def test_a_sigmoid_unit_is_a_binary_classifier_and_other_models_are_refused():
    keras = pytest.importorskip("keras")
    from neuralstudio.ml.keras_threads import run_on_python_thread

    def check():
        keras.utils.set_random_seed(1)
        binary = keras.Sequential([keras.Input((784,)), keras.layers.Dense(1, activation="sigmoid")])
        x = np.random.default_rng(0).random((50, 28, 28), dtype=np.float32)
        y = (x.mean(axis=(1, 2)) > 0.5).astype(np.int64)
        r = confusion_report(binary, x, y, ["no", "yes"])
        p = keras.ops.convert_to_numpy(binary(x.reshape(50, 784)))[:, 0]
        inp = keras.Input((28, 28))
        two = keras.Model(inp, [keras.layers.Flatten()(inp), keras.layers.Flatten()(inp)])
        with pytest.raises(ConfusionError, match="several inputs or outputs"):
            BatchPredictor(two)
        return r, p

    r, p = run_on_python_thread(check, "test-confusion")
    assert r.counts.shape == (2, 2) and r.counts.sum() == 50
    np.testing.assert_array_equal(r.y_pred, (p > 0.5).astype(np.int64))
    np.testing.assert_allclose(r.top_values.sum(axis=1), 1.0, rtol=1e-6)


def test_a_runs_own_test_outputs_give_the_report_a_second_pass_gives():
    """The trainer keeps its test pass's outputs; the report made from them (no pass, no trace) is the one that
    predicting the split again gives, on every backend."""
    from support import image_mlp

    from neuralstudio.core.training_settings import TrainingSettings
    from neuralstudio.ml.keras_threads import run_on_python_thread
    from neuralstudio.ml.trainer import Trainer

    ds = mnist_slice(512, 300)
    settings = TrainingSettings(epochs=1, batch_size=32, validation_split=0, learning_rate=0.01)
    result = Trainer(image_mlp("run", hidden=16), dataset=ds, settings=settings).run()
    assert result.status == "finished", result.message
    kept = ConfusionJob.from_outputs(result.model, result.test_outputs, result.test_images, result.test_labels,
                                     result.class_names)
    assert kept.done and kept.predictor is None
    report = kept.step(0.25)
    again = run_on_python_thread(lambda: confusion_report(result.model, ds.x_test, ds.y_test, ds.class_names),
                                 "test-confusion")
    assert report.complete and report.examples == 300 and report.predict_seconds == 0
    np.testing.assert_array_equal(report.counts, again.counts)
    np.testing.assert_array_equal(report.y_pred, again.y_pred)
    np.testing.assert_allclose(report.confidence, again.confidence, rtol=1e-4, atol=1e-5)
    assert report.accuracy == pytest.approx(result.test_accuracy, abs=1e-6)  # the run's score, from the same pass
    np.testing.assert_array_equal(report.image(7), ds.x_test[7])
    assert report.class_names == tuple(ds.class_names) and report.worst_pair_sentence() == again.worst_pair_sentence()
    with pytest.raises(ConfusionError, match="one row of values per example"):
        ConfusionJob.from_outputs(result.model, result.test_outputs[:10], ds.x_test, ds.y_test, None)
