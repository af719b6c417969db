"""Trial store: round trips, crash safety (kill -9), concurrent readers and the exports."""

from __future__ import annotations

import math
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import ConfigSpace as CS
import pandas as pd
import pytest

from aac_sparse.errors import UserError
from aac_sparse.tuning.exports import (
    reports_dataframe,
    to_csv,
    to_dataframe,
    to_deepcave,
    to_optuna_study,
    to_parquet,
)
from aac_sparse.tuning.store import STORE_FILENAME, TrialStore, dumps, loads
from aac_sparse.tuning.trial import TrialOutcome, TrialSpec

REPO = Path(__file__).resolve().parents[1]


def make_space() -> CS.ConfigurationSpace:
    """A small space with every kind of parameter the exports handle, and one condition."""
    cs = CS.ConfigurationSpace(seed=0)
    cs.add([
        CS.Float("lr", (1e-4, 1e-1), log=True, default=1e-2),
        CS.Integer("hidden", (4, 64), log=True, default=16),
        CS.Categorical("activation", ["relu", "srelu"], default="relu"),
        CS.Categorical("bias", [True, False], default=True),
        CS.Categorical("width", [1, 2, 4], default=2),
        CS.OrdinalHyperparameter("init", ["low", "mid", "high"], default_value="mid"),
        CS.Constant("engine", "numba"),
        CS.Float("srelu_alpha", (0.0, 1.0), default=0.5),
    ])
    cs.add(CS.EqualsCondition(cs["srelu_alpha"], cs["activation"], "srelu"))
    return cs


CONFIGS = [
    {"lr": 0.01, "hidden": 16, "activation": "relu", "bias": True, "width": 2, "init": "mid",
     "engine": "numba"},
    {"lr": 0.001, "hidden": 32, "activation": "srelu", "bias": False, "width": 4, "init": "low",
     "engine": "numba", "srelu_alpha": 0.25},
    {"lr": 0.05, "hidden": 8, "activation": "relu", "bias": True, "width": 1, "init": "high",
     "engine": "numba"},
    {"lr": 0.002, "hidden": 64, "activation": "srelu", "bias": True, "width": 2,
     "init": "mid", "engine": "numba", "srelu_alpha": 0.75},
]
# (status, objectives) per trial; trial 4 runs on and is never finished.
ENDINGS = [
    ("ok", {"val_error": 0.2, "nnz": 1000.0}),
    ("pruned", {"val_error": 0.6, "nnz": 2000.0}),
    ("diverged", {"val_error": math.nan, "nnz": 500.0}),
]


def fill(store: TrialStore) -> list[int]:
    """Three finished trials (ok, pruned, diverged) with reports, and one still running."""
    ids = []
    now = time.time()
    for i, (status, objectives) in enumerate(ENDINGS):
        tid = store.next_trial_id()
        ids.append(tid)
        store.start_trial(TrialSpec(tid, CONFIGS[i], f"inst{i % 2}", 10 + i, 5.0),
                          origin="configurator", worker="w0", host="h")
        for step in range(3):
            store.add_report(tid, step, 0.9 - 0.1 * step if status != "diverged" else math.nan)
        result = {"val_error": objectives["val_error"], "epochs": 3, "curve": [0.9, 0.8],
                  "note": "fine"}
        outcome = TrialOutcome(status, result, error="" if status == "ok" else status,
                               start=now - 10 + i, end=now - 5 + i, worker="w1")
        store.finish_trial(tid, outcome, objectives,
                           [objectives["val_error"], objectives["nnz"]])
    tid = store.next_trial_id()
    ids.append(tid)
    store.start_trial(TrialSpec(tid, CONFIGS[3], "inst1", 13), origin="final")
    return ids


@pytest.fixture
def store(tmp_path: Path):
    with TrialStore(tmp_path / "run") as s:
        yield s


def test_json_round_trip_keeps_non_finite_floats():
    value = {"b": [1.0, math.nan, math.inf], "a": -math.inf, "s": "NaN", "n": None}
    text = dumps(value)
    assert "NaN" not in text.replace('"NaN"', "")  # strict JSON: no bare NaN token
    back = loads(text)
    assert math.isnan(back["b"][1]) and back["b"][2] == math.inf and back["a"] == -math.inf
    assert back["s"] == "NaN" and back["n"] is None and list(back) == sorted(back)


def test_round_trip_of_specs_and_outcomes(store: TrialStore, tmp_path: Path):
    assert store.path == tmp_path / "run" / STORE_FILENAME
    ids = fill(store)
    assert ids == [1, 2, 3, 4]
    store.set_meta("objectives", [{"name": "val_error", "direction": "minimize"}])
    store.set_meta("crash_cost", math.inf)
    assert store.get_meta("crash_cost") == math.inf
    assert store.get_meta("missing", 7) == 7
    assert store.get_meta("package_version")

    trials = store.trials(with_reports=True)
    assert [t.trial_id for t in trials] == ids
    ok, pruned, diverged, running = trials
    assert ok.spec == TrialSpec(1, CONFIGS[0], "inst0", 10, 5.0)
    assert ok.config_id == TrialSpec(1, CONFIGS[0], "inst0", 10).config_id
    assert ok.status == "ok" and ok.origin == "configurator" and ok.worker == "w1"
    assert ok.host == "h" and ok.cost == [0.2, 1000.0] and ok.duration == pytest.approx(5.0)
    assert ok.result["curve"] == [0.9, 0.8] and ok.result["epochs"] == 3
    assert ok.outcome is not None and ok.outcome.status == "ok"
    assert ok.reports == ((0, 0.9), (1, pytest.approx(0.8)), (2, pytest.approx(0.7)))
    assert math.isnan(diverged.objectives["val_error"]) and math.isnan(diverged.cost[0])
    assert math.isnan(diverged.result["val_error"])
    assert all(math.isnan(v) for _, v in diverged.reports)
    assert pruned.status == "pruned" and pruned.error == "pruned"
    assert running.status == "running" and running.budget is None and running.end is None
    assert running.outcome is None and running.cost is None and running.objectives == {}

    assert [t.trial_id for t in store.completed()] == ids[:3]
    assert [t.trial_id for t in store.trials(origin="final")] == [4]
    assert [t.trial_id for t in store.trials(status=["ok", "pruned"])] == [1, 2]
    assert store.count() == 4 and store.count("running") == 1 and store.count("memout") == 0
    assert store.trial(2).status == "pruned"
    with pytest.raises(ValueError, match="unknown trial status"):
        store.trials(status="done")

    # A scalar cost and a cost of None round-trip too.
    store.finish_trial(4, TrialOutcome("crashed", error="boom"), {}, None)
    assert store.trial(4).cost is None and store.trial(4).error == "boom"
    tid = store.next_trial_id()
    store.start_trial(TrialSpec(tid, CONFIGS[0], "inst0", 1), origin="incumbent")
    store.finish_trial(tid, TrialOutcome("timeout"), {"val_error": math.inf}, 0.5)
    assert store.trial(tid).cost == 0.5 and store.trial(tid).objectives["val_error"] == math.inf


def test_duplicate_and_unknown_trials_are_rejected(store: TrialStore):
    spec = TrialSpec(store.next_trial_id(), CONFIGS[0], "inst0", 0)
    store.start_trial(spec, origin="configurator")
    with pytest.raises(ValueError, match="already in"):
        store.start_trial(spec, origin="configurator")
    assert store.next_trial_id() == spec.trial_id + 1
    with pytest.raises(ValueError, match="never started"):
        store.finish_trial(99, TrialOutcome("ok"), {}, 0.0)
    with pytest.raises(ValueError, match="never started"):
        store.add_report(99, 0, 1.0)
    store.finish_trial(spec.trial_id, TrialOutcome("ok"), {"val_error": 0.1}, 0.1)
    with pytest.raises(ValueError, match="not running"):
        store.finish_trial(spec.trial_id, TrialOutcome("ok"), {"val_error": 0.1}, 0.1)
    assert store.count() == 1


def test_running_trials_become_interrupted_after_a_crash(tmp_path: Path):
    store = TrialStore(tmp_path)
    ids = fill(store)
    extra = store.next_trial_id()
    store.start_trial(TrialSpec(extra, CONFIGS[1], "inst0", 3), origin="configurator")
    store._conn.close()  # the process "dies": no orderly close
    with TrialStore(tmp_path) as resumed:
        assert resumed.mark_interrupted() == [ids[3], extra]
        assert resumed.mark_interrupted() == []
        interrupted = resumed.trials(status="interrupted")
        assert [t.trial_id for t in interrupted] == [ids[3], extra]
        assert "tuner stopped" in interrupted[0].error
        assert len(resumed.completed()) == 3
        # New ids continue after the old ones; an interrupted trial is re-run under one.
        rerun = TrialSpec(resumed.next_trial_id(), interrupted[1].config, "inst0", 3)
        assert rerun.trial_id == extra + 1
        resumed.start_trial(rerun, origin="configurator")
        with pytest.raises(ValueError, match="not running"):
            resumed.finish_trial(extra, TrialOutcome("ok"), {}, 0.0)


CHILD = """
import sys, time
from aac_sparse.tuning.store import TrialStore
from aac_sparse.tuning.trial import TrialOutcome, TrialSpec
store = TrialStore(sys.argv[1])
i = 0
while True:
    tid = store.next_trial_id()
    store.start_trial(TrialSpec(tid, {"lr": 0.001 * i, "hidden": i}, "inst", i), "configurator")
    store.add_report(tid, 0, 0.5)
    now = time.time()
    store.finish_trial(tid, TrialOutcome("ok", {"val_error": 0.1 * i}, start=now, end=now),
                       {"val_error": 0.1 * i}, 0.1 * i)
    print(tid, flush=True)
    i += 1
"""


def test_kill_9_loses_no_committed_trial(tmp_path: Path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path)], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    committed = []
    try:
        assert child.stdout is not None
        while len(committed) < 25:
            line = child.stdout.readline()
            assert line, f"child died early: {child.stderr.read() if child.stderr else ''}"
            committed.append(int(line))
    finally:
        child.send_signal(signal.SIGKILL)
        out, _ = child.communicate(timeout=10)
    committed += [int(x) for x in out.split()]
    assert child.returncode == -signal.SIGKILL

    with TrialStore(tmp_path) as store:
        assert store.integrity_check() == "ok"
        stored = {t.trial_id: t for t in store.trials()}
        for tid in committed:
            assert stored[tid].status == "ok" and stored[tid].cost == pytest.approx(0.1 * (tid - 1))
        # At most the trial in flight at the kill is left unfinished.
        unfinished = [t for t in stored.values() if t.status == "running"]
        assert len(unfinished) <= 1 and set(stored) - set(committed) <= {
            t.trial_id for t in unfinished}
        assert store.mark_interrupted() == [t.trial_id for t in unfinished]
        assert store.next_trial_id() == max(stored) + 1


def test_readonly_reader_sees_committed_data_while_the_writer_holds_the_db(tmp_path: Path):
    writer = TrialStore(tmp_path)
    writer.start_trial(TrialSpec(writer.next_trial_id(), CONFIGS[0], "inst0", 0), "default")
    # The writer holds the write lock with an uncommitted change...
    writer._conn.execute("BEGIN IMMEDIATE")
    writer._conn.execute("UPDATE trials SET status = 'ok' WHERE trial_id = 1")
    with TrialStore.open_readonly(tmp_path) as reader:
        # ...and the reader is neither blocked nor shown the uncommitted change.
        assert [(t.trial_id, t.status) for t in reader.trials()] == [(1, "running")]
        writer._conn.execute("ROLLBACK")
        writer.finish_trial(1, TrialOutcome("ok"), {"val_error": 0.3}, 0.3)
        assert reader.trial(1).status == "ok" and reader.count() == 1
        with pytest.raises(UserError, match="read-only"):
            reader.set_meta("x", 1)
        with pytest.raises(sqlite3.OperationalError):
            reader._conn.execute("DELETE FROM trials")
    writer.close()
    # After the writer closed (WAL folded back), read-only opening still works.
    with TrialStore.open_readonly(tmp_path / STORE_FILENAME) as reader:
        assert reader.count("ok") == 1


def test_bad_files_give_clear_errors(tmp_path: Path):
    with pytest.raises(UserError, match="no trial store"):
        TrialStore.open_readonly(tmp_path / "nothing")
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(UserError, match="not a trial store"):
        TrialStore(junk)
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE t(x)")
    conn.commit()
    conn.close()
    with pytest.raises(UserError, match="not a trial store"):
        TrialStore(other)
    TrialStore(tmp_path / "new").close()
    conn = sqlite3.connect(tmp_path / "new" / STORE_FILENAME)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(UserError, match="schema version 99"):
        TrialStore(tmp_path / "new")


def test_dataframe_csv_and_parquet_columns(store: TrialStore, tmp_path: Path):
    fill(store)
    frame = to_dataframe(store)
    assert list(frame["trial_id"]) == [1, 2, 3, 4]
    for column in ("config_id", "instance", "seed", "budget", "origin", "status", "error",
                   "start", "end", "duration", "worker", "host", "version", "created",
                   "cost.0", "cost.1", "config.lr", "config.srelu_alpha", "config.bias",
                   "objective.val_error", "objective.nnz", "result.epochs", "result.note"):
        assert column in frame.columns, column
    assert "result.curve" not in frame.columns  # lists are not scalar results
    assert "cost" not in frame.columns
    assert frame.loc[0, "cost.1"] == 1000.0 and math.isnan(frame.loc[3, "cost.0"])
    assert math.isnan(frame.loc[0, "config.srelu_alpha"])
    assert frame.loc[1, "config.srelu_alpha"] == 0.25
    assert math.isnan(frame.loc[2, "objective.val_error"])
    assert list(frame["status"]) == ["ok", "pruned", "diverged", "running"]

    csv = pd.read_csv(to_csv(store, tmp_path / "out" / "trials.csv"))
    assert list(csv.columns) == list(frame.columns) and len(csv) == 4
    parquet = pd.read_parquet(to_parquet(store, tmp_path / "out" / "trials.parquet"))
    assert list(parquet.columns) == list(frame.columns) and len(parquet) == 4
    assert parquet.loc[1, "config.activation"] == "srelu"
    assert not list((tmp_path / "out").glob(".*tmp"))  # atomic writes leave no temp files

    curves = reports_dataframe(store)
    assert list(curves.columns) == ["trial_id", "step", "value"] and len(curves) == 9

    # A single-objective run has one plain `cost` column.
    with TrialStore(tmp_path / "single") as single:
        single.start_trial(TrialSpec(1, CONFIGS[0], "i", 0), "configurator")
        single.finish_trial(1, TrialOutcome("ok"), {"val_error": 0.1}, 0.1)
        assert to_dataframe(single)["cost"].tolist() == [0.1]
    with TrialStore(tmp_path / "empty") as empty:
        assert len(to_dataframe(empty)) == 0 and "trial_id" in to_dataframe(empty).columns


def test_optuna_export(store: TrialStore, tmp_path: Path):
    import optuna

    fill(store)
    store.finish_trial(4, TrialOutcome("ok"), {"val_error": 0.1, "nnz": 10.0}, [0.1, 10.0])
    tid = store.next_trial_id()
    store.start_trial(TrialSpec(tid, CONFIGS[0], "inst0", 5), "configurator")  # left out
    cs = make_space()
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    to_optuna_study(store, url, "run", cs, ["val_error", "nnz"], ["minimize", "minimize"],
                    per="instance", include=("final",))
    study = optuna.load_study(study_name="run", storage=url)
    trials = study.get_trials(deepcopy=False)
    State = optuna.trial.TrialState
    assert [t.state for t in trials] == [State.COMPLETE, State.PRUNED, State.FAIL,
                                         State.COMPLETE]
    assert trials[0].values == [0.2, 1000.0] and trials[2].values is None
    assert trials[0].params == {"lr": 0.01, "hidden": 16, "activation": "relu",
                                "bias": "True", "width": "2", "init": "mid"}
    assert trials[1].params["srelu_alpha"] == 0.25  # active only where its condition holds
    assert "engine" not in trials[1].params  # constants are not Optuna parameters
    assert trials[0].intermediate_values == {0: 0.9, 1: pytest.approx(0.8),
                                             2: pytest.approx(0.7)}
    attrs = trials[2].user_attrs
    assert attrs["trial_id"] == 3 and attrs["status"] == "diverged"
    assert attrs["instance"] == "inst0" and attrs["seed"] == 12 and attrs["budget"] == 5.0
    assert attrs["error"] == "diverged"
    assert trials[0].datetime_complete > trials[0].datetime_start
    assert study.metric_names == ["val_error", "nnz"]

    with pytest.raises(UserError, match="already exists"):
        to_optuna_study(store, url, "run", cs, ["val_error", "nnz"], ["minimize", "minimize"],
                        per="instance", include=("final",))
    # Overwriting; single objective; space and objectives taken from the store's meta.
    store.set_meta("configspace", cs.to_serialized_dict())
    store.set_meta("objectives", [{"name": "val_error", "direction": "minimize"}])
    to_optuna_study(store, url, "run", overwrite=True, per="instance", include=("final",))
    study = optuna.load_study(study_name="run", storage=url)
    assert len(study.trials) == 4 and study.best_trial.user_attrs["trial_id"] == 4
    assert study.trials[1].value == pytest.approx(0.7)  # pruned: its last report


def read_deepcave_run(directory: Path) -> tuple[CS.ConfigurationSpace, list, pd.DataFrame]:
    """Read a DataFrame-format run the way its documentation describes it, with pandas'
    default CSV parsing: the space from configspace.csv, every trial row as a Configuration."""
    space = pd.read_csv(directory / "configspace.csv")
    cs = CS.ConfigurationSpace()
    for _, row in space.iterrows():
        if row["type"] == "float":
            cs.add(CS.Float(row["name"], (float(row["lower"]), float(row["upper"])),
                            default=float(row["default"]), log=bool(row["log"])))
        elif row["type"] == "integer":
            cs.add(CS.Integer(row["name"], (int(row["lower"]), int(row["upper"])),
                              default=row["default"], log=bool(row["log"])))
        else:
            assert row["type"] == "categorical"
            items = [str(row[c]) for c in space.columns
                     if c.startswith("item_") and pd.notna(row[c])]
            cs.add(CS.Categorical(row["name"], items, default=row["default"],
                                  ordered=bool(row["ordered"])))
    trials = pd.read_csv(directory / "trials.csv")
    configs = [CS.Configuration(cs, values={k: row[k] for k in cs}) for _, row in
               trials.iterrows()]
    return cs, configs, trials


def test_deepcave_export(store: TrialStore, tmp_path: Path):
    fill(store)
    store.mark_interrupted()
    cs = make_space()
    out = to_deepcave(store, tmp_path / "deepcave", cs, ["val_error", "nnz"],
                      ["minimize", "maximize"], bounds={"val_error": (0.0, 1.0)},
                      per="instance", include=("final",))
    assert CS.ConfigurationSpace.from_json(out / "configspace.json") == cs

    space, configs, trials = read_deepcave_run(out)
    names = [name for name in cs if name != "engine"]  # the constant is left out
    assert sorted(space) == sorted(names) and len(names) == 7
    assert isinstance(space["init"], CS.OrdinalHyperparameter)
    assert list(space["init"].sequence) == ["low", "mid", "high"]
    assert space["lr"].log and space["lr"].lower == pytest.approx(1e-4)
    assert list(trials.columns) == [
        "config_id", *names,
        "metric:val_error [0.0; 1.0] (minimize)", "metric:nnz [500.0; 2000.0] (maximize)",
        "status", "start_time", "end_time", "budget", "seed", "trial_id", "instance", "origin",
        "inactive", "error", "trial_seed"]
    pattern = re.compile(r"metric:(\w+) \[(-?\d+\.?\d*|[-+]inf); (-?\d+\.?\d*|[-+]inf)\] "
                         r"\((minimize|maximize)\)")
    assert all(pattern.fullmatch(c) for c in trials.columns if c.startswith("metric"))
    assert list(trials["status"]) == ["success", "pruned", "failed", "aborted"]
    assert configs[0]["bias"] == "'True'" and configs[0]["width"] == "'2'"
    assert configs[1]["srelu_alpha"] == 0.25 and configs[1]["activation"] == "srelu"
    assert configs[0]["srelu_alpha"] == 0.5  # inactive: written as the default...
    assert trials.loc[0, "inactive"] == "srelu_alpha"  # ...and named as inactive
    assert list(trials["seed"]) == [10, 11, 12, 13] and trials.loc[0, "budget"] == 5.0
    assert (trials["end_time"] >= trials["start_time"]).all()
