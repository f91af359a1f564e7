"""Experiments on Optuna, end to end on a tiny network and a slice of the MNIST sample: real trainings."""

from __future__ import annotations

import numpy as np
import optuna
import pytest

from neuralstudio.core.design import Design
from neuralstudio.core.graph import Graph
from neuralstudio.core.runs import RunsStore
from neuralstudio.core.search_space import parse_param
from neuralstudio.core.training_settings import TrainingSettings
from neuralstudio.ml.sweep import SweepControl, SweepError, SweepSpec, load_study, new_study, run_sweep, study_names
from neuralstudio.ml.sweep_budget import estimate_sweep
from neuralstudio.ml.sweep_results import results_of


@pytest.fixture(scope="module")
def small():
    from neuralstudio.ml.data import Dataset, load_dataset

    ds = load_dataset("mnist-sample")
    return Dataset("slice", ds.x_train[:600], ds.y_train[:600], ds.x_test[:100], ds.y_test[:100], ds.class_names)


def _design(**training) -> Design:
    g = Graph()
    i = g.add_node("InputLayer", {"batch_shape": [None, 28, 28]})
    f = g.add_node("Flatten", {})
    h = g.add_node("Dense", {"units": 16, "activation": "relu"}, name="hidden")
    o = g.add_node("Dense", {"units": 10, "activation": "softmax"}, name="out")
    g.connect(i.id, f.id)
    g.connect(f.id, h.id)
    g.connect(h.id, o.id)
    settings = TrainingSettings(**{"epochs": 1, "batch_size": 64, "optimizer": "sgd", "learning_rate": 0.1,
                                   "validation_split": 0.2, **training})
    return Design(graph=g, name="tiny", training=settings, id="tiny-id")


def _spec(tmp_path, params, **kw) -> SweepSpec:
    return SweepSpec(_design(**kw.pop("training", {})), [parse_param(p) for p in params],
                     storage=str(tmp_path / "studies.journal"), **kw)


def test_a_grid_runs_every_combination_once_and_records_each_trial_as_a_run(tmp_path, small):
    spec = _spec(tmp_path, ["learning_rate=0.001,0.5", "hidden.units=8,32"], strategy="grid", study="grid")
    store = RunsStore(tmp_path / "runs")
    outcomes = run_sweep(new_study(spec), spec, runs_store=store, dataset=small)
    assert sorted((o.values["learning_rate"], o.values["hidden.units"]) for o in outcomes) == [
        (0.001, 8), (0.001, 32), (0.5, 8), (0.5, 32)]
    res = results_of(load_study("grid", spec.storage)[0])
    assert [r.state for r in res.rows] == ["complete"] * 4
    assert res.best.values["learning_rate"] == 0.5  # 0.001 barely moves in one epoch of SGD
    assert res.sentence.startswith("Learning rate") and "0.5 worked" in res.sentence
    runs = store.list()
    assert len(runs) == 4 and {r.hyperparameters["experiment"] for r in runs} == {"grid"}
    assert {r.id for r in runs} == {r.run_id for r in res.rows}
    assert all(r.history.get("val_accuracy") for r in res.rows)  # curves for the overlay, in the study itself
    assert study_names(spec.storage)[0]["name"] == "grid"


@pytest.mark.backend_neutral  # Optuna's side; trials run on every backend in the grid test
def test_stopping_keeps_the_finished_trials_and_the_experiment_can_be_continued(tmp_path, small):
    spec = _spec(tmp_path, ["learning_rate=0.05,0.1,0.2"], strategy="grid", study="stop")
    control = SweepControl()

    class StopAfterFirst:
        def on_trial_started(self, number, values):
            if number == 1:
                control.request_stop()  # during the second trial, as the Stop button does

        def on_batch(self, *args):
            pass

        def on_epoch(self, *args):
            pass

        def on_log(self, message):
            pass

        def on_trial_finished(self, outcome):
            pass

    run_sweep(new_study(spec), spec, reporter=StopAfterFirst(), control=control, dataset=small)
    study, again = load_study("stop", spec.storage)
    states = [t.state for t in study.trials]
    assert states[0] == optuna.trial.TrialState.COMPLETE and len(states) == 2
    assert study.trials[1].user_attrs["status"] == "stopped"
    run_sweep(study, again, dataset=small)  # another worker, or the same later: the grid is finished
    done = [t for t in load_study("stop", spec.storage)[0].trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert sorted(trial.params["learning_rate"] for trial in done) == [0.05, 0.1, 0.2]


@pytest.mark.backend_neutral  # Optuna's side; trials run on every backend in the grid test
def test_median_pruning_stops_clearly_worse_trials(tmp_path, small):
    spec = _spec(tmp_path, ["learning_rate=0.3,0.00001,0.00002"], strategy="random", trials=6, prune="median",
                 study="prune", training={"epochs": 3})
    study = new_study(spec)
    for _ in range(2):  # good trials first: the median they set is one the slow ones fall clearly below
        study.enqueue_trial({"learning_rate": 0.3})
    run_sweep(study, spec, dataset=small)
    res = results_of(load_study("prune", spec.storage)[0])
    pruned = [r for r in res.rows if r.state == "pruned"]
    assert pruned and all(r.values["learning_rate"] < 0.001 for r in pruned)
    assert all(r.epochs < 3 for r in pruned) and all("Pruned after epoch 1" in r.message for r in pruned)
    assert res.best.values["learning_rate"] == 0.3
    assert len(res.rows) == 6


@pytest.mark.backend_neutral  # Optuna's side; trials run on every backend in the grid test
def test_a_learning_rate_that_blows_up_is_marked_diverged_and_never_best(tmp_path, small):
    spec = _spec(tmp_path, ["learning_rate=0.1,80"], strategy="grid", study="diverge", training={"epochs": 2})
    run_sweep(new_study(spec), spec, dataset=small)
    res = results_of(load_study("diverge", spec.storage)[0])
    by_lr = {r.values["learning_rate"]: r for r in res.rows}
    assert by_lr[80].status == "diverged" and "diverged" in by_lr[80].message
    assert res.best.values["learning_rate"] == 0.1
    assert "80 diverged" in res.sentence


@pytest.mark.backend_neutral  # Optuna's side; trials run on every backend in the grid test
def test_nielsens_rate_30_saturates_his_network_and_is_marked_diverged(tmp_path):
    """Chapter 1's lesson on his quadratic cost: 3.0 learns, 30 throws every sigmoid into saturation at once.

    The loss does not rise (it falls to 0.5, all outputs 0, and freezes): the run's diagnosis calls that
    diverged (``core/run_outcome._saturated``), as the book does.
    """
    from neuralstudio.core.templates import load_template
    from neuralstudio.ml.data import Dataset, load_dataset

    ds = load_dataset("mnist-sample")
    data = Dataset("slice", ds.x_train[:2000], ds.y_train[:2000], ds.x_test[:500], ds.y_test[:500], ds.class_names)
    design = load_template("nielsen-784-30-10")
    design.training.epochs = 2
    spec = SweepSpec(design, [parse_param("learning_rate=3,30")], storage=str(tmp_path / "studies.journal"),
                     strategy="grid", study="nielsen")
    # with a runs store, as the app and the CLI run it: the record's batch losses show the fall in the first steps
    run_sweep(new_study(spec), spec, dataset=data, runs_store=RunsStore(tmp_path / "runs"))
    res = results_of(load_study("nielsen", spec.storage)[0])
    by_lr = {r.values["learning_rate"]: r for r in res.rows}
    assert by_lr[30].status == "diverged" and "saturated the units" in by_lr[30].message
    assert by_lr[3].status == "finished" and by_lr[3].value > 0.8
    assert res.best.values["learning_rate"] == 3 and "30 diverged" in res.sentence


@pytest.mark.backend_neutral  # Optuna's side; trials run on every backend in the grid test
def test_a_tpe_search_samples_inside_the_ranges(tmp_path, small):
    spec = _spec(tmp_path, ["learning_rate=log:0.01:0.5", "hidden.units=4:24"], strategy="tpe", trials=3,
                 study="tpe")
    outcomes = run_sweep(new_study(spec), spec, dataset=small)
    assert len(outcomes) == 3
    for o in outcomes:
        assert 0.01 <= o.values["learning_rate"] <= 0.5 and 4 <= o.values["hidden.units"] <= 24


def test_a_study_of_the_same_name_with_another_space_is_refused(tmp_path):
    new_study(_spec(tmp_path, ["learning_rate=0.1,0.2"], study="taken"))
    with pytest.raises(SweepError, match="already exists with another design or search space"):
        new_study(_spec(tmp_path, ["learning_rate=0.3,0.4"], study="taken"))
    new_study(_spec(tmp_path, ["learning_rate=0.1,0.2"], study="taken"))  # the same one: joined


def test_unknown_studies_and_unusable_storages_say_what_is_wrong(tmp_path):
    with pytest.raises(SweepError, match="No experiment called 'nope'.*no experiments there yet"):
        load_study("nope", str(tmp_path / "s.journal"))
    with pytest.raises(SweepError, match="Cannot open the experiment storage"):
        load_study("x", "postgresql+psycopg2://nobody@/db?host=/nonexistent-socket-dir")
    with pytest.raises(SweepError, match="Nothing varies"):
        new_study(_spec(tmp_path, []))


def test_the_estimate_counts_trials_time_and_flags_a_batch_that_cannot_fit(tmp_path):
    spec = _spec(tmp_path, ["batch_size=32,100000000"], strategy="grid")
    est = estimate_sweep(spec, train_examples=1000, samples_per_second=1000.0, sample_shape=(28, 28))
    assert est.trials == 2
    assert est.seconds == pytest.approx(2 * 1 * 1000 * 0.8 / 1000.0)
    assert est.peak_bytes > est.available_bytes
    assert len(est.too_big) == 1 and "Batch size 100000000" in est.too_big[0]
    small_only = estimate_sweep(_spec(tmp_path, ["batch_size=16,32"], strategy="grid"), train_examples=1000)
    assert not small_only.too_big and small_only.seconds is None and "no time estimate" in small_only.text()


def test_results_of_a_study_whose_trials_are_still_running_or_failed(tmp_path):
    study = optuna.create_study(direction="maximize")
    study.add_trial(optuna.trial.create_trial(params={"learning_rate": 0.1}, distributions={
        "learning_rate": optuna.distributions.CategoricalDistribution([0.1, 1.0])}, value=None,
        state=optuna.trial.TrialState.FAIL, user_attrs={"status": "failed", "message": "Out of memory."}))
    res = results_of(study)
    assert res.best is None and "Out of memory." in res.sentence
    assert np.isnan(np.nan)  # numpy is imported for the data slice


@pytest.mark.backend_neutral  # Optuna's side; trials run on every backend in the grid test
def test_a_trial_reruns_from_what_the_study_recorded_and_reproduces_its_metrics(tmp_path, small):
    from neuralstudio.core.search_space import apply_values
    from neuralstudio.ml.sweep import trial_values
    from neuralstudio.ml.trainer import Trainer

    spec = _spec(tmp_path, ["learning_rate=0.05,0.2"], strategy="grid", study="again")
    run_sweep(new_study(spec), spec, dataset=small)
    study, recorded = load_study("again", spec.storage)  # the design and the space, from the study alone
    trial = study.trials[0]
    result = Trainer(apply_values(recorded.design, trial_values(trial)), dataset=small).run()
    assert result.val_accuracy == pytest.approx(trial.value, abs=1e-6)
    assert study.user_attrs["neuralstudio"]["versions"]["keras"]
