"""``aac-sparse export`` on a real tuning run: every format round-trips the store's
configurations, costs and statuses; DeepCAVE keys are unique; finals stay out unless asked."""

from __future__ import annotations

import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import optuna
import pandas as pd
import pytest

from aac_sparse.tuning.scenario import Scenario
from aac_sparse.tuning.store import TrialStore
from aac_sparse.tuning.tuner import tune

SYNTH = {"n_samples": 150, "n_features": 12, "n_classes": 3}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("export")
    entry = {"dataset": "synthetic", "options": SYNTH, "folds": 3}
    sc = Scenario(name="exp", space="meta", fixed={"hidden": [16], "epochs": 2},
                  instances={"train": [{**entry, "use": [0, 1]}],
                             "test": [{**entry, "use": [2]}]},
                  budget={"n_trials": 8, "trial_wall_time": 60},
                  configurator={"name": "random"}, output=str(tmp / "run"))
    return tune(sc).run_dir


def export(run_dir: Path, *args: str) -> subprocess.CompletedProcess:
    res = subprocess.run([sys.executable, "-m", "aac_sparse", "export", str(run_dir), *args],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    return res


def store_view(run_dir: Path, origins=("configurator",)):
    store = TrialStore.open_readonly(run_dir)
    try:
        trials = [t for t in store.trials() if t.origin in origins and t.finished]
    finally:
        store.close()
    configs = defaultdict(list)
    for t in trials:
        configs[(t.origin, t.config_id, t.budget)].append(t)
    return trials, configs


def test_csv_and_parquet_keep_one_row_per_tuning_trial(run_dir, tmp_path):
    trials, _ = store_view(run_dir)
    export(run_dir, "--format", "csv", "-o", str(tmp_path / "t.csv"))
    frame = pd.read_csv(tmp_path / "t.csv")
    assert sorted(frame["trial_id"]) == sorted(t.trial_id for t in trials)
    assert set(frame["origin"]) == {"configurator"}
    export(run_dir, "--format", "parquet", "-o", str(tmp_path / "t.parquet"),
           "--include", "final")
    every, _ = store_view(run_dir, ("configurator", "final"))
    assert len(pd.read_parquet(tmp_path / "t.parquet")) == len(every) > len(trials)


def test_optuna_export_is_one_trial_per_configuration(run_dir, tmp_path):
    _, configs = store_view(run_dir)
    db = tmp_path / "o.db"
    export(run_dir, "--format", "optuna", "-o", str(db))
    (name,) = optuna.study.get_all_study_names(f"sqlite:///{db}")
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{db}")
    assert len(study.trials) == len(configs)  # nothing collides, nothing is lost
    for t in study.trials:
        ts = configs[("configurator", t.user_attrs["config_id"], t.user_attrs["budget"])]
        assert t.user_attrs["instance_costs"] == {x.instance: x.cost for x in ts}
        if all(x.status == "ok" for x in ts):
            assert t.state == optuna.trial.TrialState.COMPLETE
            assert t.value == pytest.approx(sum(x.objectives["val_error"] for x in ts) / len(ts))
        assert t.user_attrs["origin"] == "configurator"
    export(run_dir, "--format", "optuna", "-o", str(db), "--per", "instance")
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{db}")
    assert len(study.trials) == sum(len(v) for v in configs.values())


def test_deepcave_export_keys_are_unique_and_costs_kept(run_dir, tmp_path):
    _, configs = store_view(run_dir)
    export(run_dir, "--format", "deepcave", "-o", str(tmp_path / "dc"))
    trials = pd.read_csv(tmp_path / "dc" / "trials.csv")
    seeds = trials["seed"].where(trials["seed"].notna(), -1).astype(int)
    budgets = trials["budget"].where(trials["budget"].notna(), 0.0)
    keys = list(zip(trials["config_id"], budgets, seeds, strict=True))  # DeepCAVE's key
    assert len(set(keys)) == len(keys) == len(configs)
    metric = next(c for c in trials.columns if c.startswith("metric:val_error"))
    for _, row in trials.iterrows():
        budget = None if pd.isna(row["budget"]) else row["budget"]
        ts = configs[("configurator", row["config_id"], budget)]
        if all(x.status == "ok" for x in ts):
            assert row["status"] == "success"
            assert row[metric] == pytest.approx(sum(x.objectives["val_error"] for x in ts)
                                                / len(ts))
        for x in ts:
            assert row[f"cost:{x.instance}"] == pytest.approx(x.cost)
    export(run_dir, "--format", "deepcave", "-o", str(tmp_path / "dc2"), "--per", "instance")
    per_trial = pd.read_csv(tmp_path / "dc2" / "trials.csv")
    keys = list(zip(per_trial["config_id"], per_trial["budget"].fillna(0.0),
                    per_trial["seed"], strict=True))
    assert len(set(keys)) == len(keys) == sum(len(v) for v in configs.values())


def test_export_mistakes_are_clear(run_dir):
    for args, needle in ((["--format", "xml"], "--format"),
                         (["--include", "everything"], "--include"),
                         (["--format", "optuna", "--per", "seed"], "--per")):
        res = subprocess.run([sys.executable, "-m", "aac_sparse", "export", str(run_dir),
                              *args], capture_output=True, text=True, timeout=60)
        assert res.returncode == 2 and needle in res.stderr and "Traceback" not in res.stderr


def test_the_exported_study_opens_in_optuna_dashboard(run_dir, tmp_path):
    """The real optuna-dashboard serves the exported study: its JSON API lists one trial
    per configuration with the store's values and a config ready for training."""
    import json
    import socket
    import time
    import urllib.request

    _, configs = store_view(run_dir)
    db = tmp_path / "d.db"
    export(run_dir, "--format", "optuna", "-o", str(db))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exe = Path(sys.executable).with_name("optuna-dashboard")
    proc = subprocess.Popen([str(exe), f"sqlite:///{db}", "--host", "127.0.0.1", "--port",
                             str(port), "--quiet"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.time() + 60
        while True:
            try:
                studies = json.load(urllib.request.urlopen(f"{base}/api/studies", timeout=5))
                break
            except OSError:
                assert proc.poll() is None and time.time() < deadline, proc.stderr.read()
                time.sleep(0.3)
        (study,) = studies["study_summaries"]
        detail = json.load(urllib.request.urlopen(
            f"{base}/api/studies/{study['study_id']}", timeout=10))
        trials = detail["trials"]
        assert len(trials) == len(configs)
        for t in trials:
            attrs = {a["key"]: a["value"] for a in t["user_attrs"]}  # JSON text or str()
            budget = json.loads(attrs["budget"])
            ts = configs[("configurator", attrs["config_id"],
                          None if budget is None else float(budget))]
            if all(x.status == "ok" for x in ts):
                assert t["state"] == "Complete"
                assert t["values"][0] == pytest.approx(
                    sum(x.objectives["val_error"] for x in ts) / len(ts))
            assert json.loads(attrs["config"]) == ts[0].config  # ready for training
    finally:
        proc.terminate()
        proc.wait(timeout=10)
