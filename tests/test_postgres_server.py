"""The private PostgreSQL server of tests/postgres_server.py, and an Optuna study shared through it.

Two worker processes run ``study.optimize`` on one study in one PostgreSQL database at the same time, as
``neuralstudio sweep --study NAME --storage URL`` workers on several machines do: every trial is recorded
once, none is lost.  Real PostgreSQL, real Optuna, real processes; nothing is mocked.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from postgres_server import postgres_database_url, postgres_url  # noqa: F401 - pytest fixtures

# One worker: waits until the test says go (so that both run at once), then runs its trials. Each trial
# sleeps a little so that the two workers' trials interleave, and records which worker ran it.
WORKER = textwrap.dedent(
    """
    import os, sys, time
    import optuna

    url, study_name, worker, n_trials, go = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.RDBStorage(url)
    sampler = optuna.samplers.RandomSampler()  # the storage is under test here, not the sampler
    study = optuna.create_study(study_name=study_name, storage=storage, sampler=sampler, load_if_exists=True)
    print("ready", flush=True)
    deadline = time.monotonic() + 60
    while not os.path.exists(go):
        if time.monotonic() > deadline:
            sys.exit("no go signal")
        time.sleep(0.01)

    def objective(trial):
        trial.set_user_attr("worker", worker)
        x = trial.suggest_float("x", -10.0, 10.0)
        time.sleep(0.02)
        return (x - 2.0) ** 2

    study.optimize(objective, n_trials=n_trials)
    """
)


def test_server_starts_and_keeps_a_table(postgres_url):  # noqa: F811 - the imported fixture
    engine = sa.create_engine(postgres_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE runs (id serial PRIMARY KEY, name text NOT NULL)"))
            conn.execute(sa.text("INSERT INTO runs (name) VALUES ('first'), ('second')"))
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT id, name FROM runs ORDER BY id")).all()
            server = conn.execute(sa.text("SHOW server_version")).scalar()
            listen = conn.execute(sa.text("SHOW listen_addresses")).scalar()
            fsync = conn.execute(sa.text("SHOW fsync")).scalar()
            conn.execute(sa.text("DROP TABLE runs"))
            conn.commit()
    finally:
        engine.dispose()
    assert [tuple(r) for r in rows] == [(1, "first"), (2, "second")]
    assert server and int(server.split(".")[0]) >= 10
    assert listen == "" and fsync == "off"  # Unix socket only, no TCP; a throwaway server


def test_two_worker_processes_share_one_optuna_study(postgres_database_url, tmp_path):  # noqa: F811 - the imported fixture
    import optuna

    n_trials = 10
    study_name = f"shared-{uuid.uuid4().hex[:8]}"
    go = tmp_path / "go"
    # The schema is created here first, as `neuralstudio sweep` would on its first start; the workers then
    # create_study(load_if_exists=True) the same study at the same time.
    optuna.storages.RDBStorage(postgres_database_url).engine.dispose()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    workers = [
        subprocess.Popen([sys.executable, "-c", WORKER, postgres_database_url, study_name, name, str(n_trials),
                          str(go)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                         cwd=str(tmp_path))
        for name in ("a", "b")
    ]
    try:
        for worker in workers:  # both have loaded the study before either starts its trials
            line = worker.stdout.readline()
            assert line.strip() == "ready", worker.communicate(timeout=30)[1]
        Path(go).touch()
        started = time.monotonic()
        outputs = [worker.communicate(timeout=120) for worker in workers]
        elapsed = time.monotonic() - started
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    for worker, (_out, err) in zip(workers, outputs):
        assert worker.returncode == 0, err

    storage = optuna.storages.RDBStorage(postgres_database_url)
    try:
        summaries = optuna.get_all_study_summaries(storage)
        trials = optuna.load_study(study_name=study_name, storage=storage).get_trials(deepcopy=False)
    finally:
        storage.remove_session()
        storage.engine.dispose()
    assert [s.study_name for s in summaries] == [study_name]  # one study, not one per worker
    assert len(trials) == 2 * n_trials
    assert sorted(t.number for t in trials) == list(range(2 * n_trials))  # unique and contiguous
    assert len({t._trial_id for t in trials}) == 2 * n_trials
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert sorted(t.user_attrs["worker"] for t in trials) == ["a"] * n_trials + ["b"] * n_trials
    assert all(t.value == pytest.approx((t.params["x"] - 2.0) ** 2) for t in trials)
    # The two workers really ran at the same time (each for at least n_trials * 20 ms): their spans overlap.
    spans = {
        name: (min(t.datetime_start for t in mine), max(t.datetime_complete for t in mine))
        for name in ("a", "b")
        for mine in [[t for t in trials if t.user_attrs["worker"] == name]]
    }
    assert spans["a"][0] < spans["b"][1] and spans["b"][0] < spans["a"][1], (spans, elapsed)


def _no_postgres(monkeypatch):
    import postgres_server as ps

    def missing():
        raise ps.PostgresNotInstalledError(ps._INSTALL_HINT)

    monkeypatch.setattr(ps, "find_bindir", missing)
    return ps


def test_without_postgres_the_tests_skip_saying_what_to_install(monkeypatch):
    ps = _no_postgres(monkeypatch)
    monkeypatch.delenv("NEURALSTUDIO_REQUIRE_POSTGRES", raising=False)
    with contextlib.ExitStack() as stack, pytest.raises(pytest.skip.Exception, match="apt-get install postgresql"):
        ps.start_or_skip(stack)


def test_without_postgres_the_tests_fail_where_it_is_required(monkeypatch):
    ps = _no_postgres(monkeypatch)
    monkeypatch.setenv("NEURALSTUDIO_REQUIRE_POSTGRES", "1")
    with contextlib.ExitStack() as stack, pytest.raises(pytest.fail.Exception, match="apt-get install postgresql"):
        ps.start_or_skip(stack)


def test_as_root_without_a_postgres_user_the_message_says_what_to_install(monkeypatch):
    import postgres_server as ps

    def no_such_user(name):
        raise KeyError(name)

    monkeypatch.setattr(ps.os, "geteuid", lambda: 0)
    monkeypatch.setattr(ps.pwd, "getpwnam", no_such_user)
    with pytest.raises(ps.PostgresNotInstalledError, match="apt-get install postgresql"):
        ps._server_account()
