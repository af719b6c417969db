"""Soak test of resume: ``aac-sparse tune`` is killed with SIGKILL at random moments and
re-run, again and again, and the store must come out as if nothing had happened.

Kinds of kill: the whole process group, the tuner only (its workers are orphaned), one
worker only (the tuner goes on), and inside the start-up window (before or just after the
store file appears).  After every round: ``PRAGMA integrity_check`` is ok, no finished
trial vanished or changed, no key finished twice, no process outlived the tuner by more
than a few seconds.  At the end: the budget is met exactly, every interrupted trial was
re-run, summary and incumbent agree with the store, and re-running the finished command
adds no row.

The default run does four rounds for each of smac-ac and optuna over the full ``meta``
space.  The long version (every configurator, more rounds) is marked ``slow``::

    AAC_SPARSE_SOAK_ROUNDS=12 python -m pytest tests/test_resume_soak.py -m slow
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import psutil
import pytest
import yaml

from aac_sparse.tuning.store import TrialStore

SYNTH = {"n_samples": 150, "n_features": 12, "n_classes": 3}
KINDS = ("startup", "group", "tuner", "worker")


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("AAC_SPARSE_CACHE", str(tmp_path / "prepared"))


def scenario(tmp_path: Path, configurator: str, n_trials: int, options: dict | None = None,
             **extra) -> Path:
    """A tiny scenario over the full meta space (nothing but the network shape fixed)."""
    entry = {"dataset": "synthetic", "options": SYNTH, "folds": 3}
    spec = {
        "name": f"soak-{configurator}", "space": "meta", "seed": 3,
        "fixed": {"hidden": [16, 16], "epochs": 2},
        "instances": {"train": [{**entry, "use": [0, 1]}], "test": [{**entry, "use": [2]}]},
        "budget": {"n_trials": n_trials, "trial_wall_time": 60},
        "configurator": {"name": configurator, "options": options or {}},
        "execution": {"workers": 2}, "output": str(tmp_path / "run"),
        **extra,
    }
    file = tmp_path / "scenario.yaml"
    file.write_text(yaml.safe_dump(spec))
    return file


def start(file: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "aac_sparse", "tune", "-s", str(file)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def read(run_dir: Path) -> list:
    store = TrialStore.open_readonly(run_dir / "trials.sqlite")
    try:
        assert store.integrity_check() == "ok"
        return store.trials()
    finally:
        store.close()


def n_done(store_file: Path) -> int:
    try:
        store = TrialStore.open_readonly(store_file)
    except Exception:  # not there yet, or being created this very moment
        return 0
    try:
        return len(store.completed(origin="configurator"))
    except Exception:
        return 0
    finally:
        store.close()


def workers_of(proc: subprocess.Popen) -> list[psutil.Process]:
    try:
        return [p for p in psutil.Process(proc.pid).children(recursive=True)
                if "aac_sparse.tuning.worker" in " ".join(p.cmdline())]
    except psutil.Error:
        return []


def key(t) -> tuple:
    return (t.config_id, t.instance, t.seed, t.budget)


def wait_for(cond, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None and not cond():
        time.sleep(0.05)


def _kill(proc: subprocess.Popen, group: bool) -> None:
    """SIGKILL the tuner (and its process group); it must not have died on its own."""
    if proc.poll() is not None:
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, f"the tuner failed before it was killed:\n{err}"
        return  # it finished the whole run before the moment came
    try:
        os.killpg(proc.pid, signal.SIGKILL) if group else os.kill(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass  # it ended between the check and the kill


def kill_round(file: Path, run_dir: Path, kind: str, rng: random.Random) -> str:
    """Start the tuner, kill it the ``kind`` way at a random moment; its stderr."""
    store_file = run_dir / "trials.sqlite"
    before = n_done(store_file)
    proc = start(file)
    family: list[psutil.Process] = []
    if kind == "startup":
        if rng.random() < 0.5:
            time.sleep(rng.uniform(0.2, 2.5))  # before or while the store is created
        else:
            wait_for(store_file.exists, proc, 60)
            time.sleep(rng.uniform(0.0, 0.4))
        family = workers_of(proc)
        _kill(proc, group=True)
    else:
        target = before + rng.randint(1, 3)
        wait_for(lambda: n_done(store_file) >= target, proc, 120)
        if kind == "worker" and proc.poll() is None:
            wait_for(lambda: bool(workers_of(proc)), proc, 30)
            victims = workers_of(proc)
            if victims:
                rng.choice(victims).kill()  # the tuner records a crash and goes on
            target = n_done(store_file) + 1
            wait_for(lambda: n_done(store_file) >= target, proc, 120)
        family = workers_of(proc)
        _kill(proc, group=kind != "tuner")  # tuner only: its workers are orphaned
    proc.wait(timeout=30)
    _, alive = psutil.wait_procs(family, timeout=5)
    assert not alive, f"{kind}: processes outlived the tuner: {[p.pid for p in alive]}"
    if proc.stderr is None or proc.stderr.closed:
        return ""
    _, err = proc.communicate(timeout=30)
    return err


def soak(tmp_path: Path, configurator: str, rounds: int, seed: int, n_trials: int = 16,
         options: dict | None = None, **extra) -> None:
    rng = random.Random(seed)
    file = scenario(tmp_path, configurator, n_trials, options, **extra)
    run_dir = tmp_path / "run"
    kinds = [KINDS[i % len(KINDS)] for i in range(rounds)]
    rng.shuffle(kinds)
    finished: dict[int, tuple] = {}
    for kind in kinds:
        err = kill_round(file, run_dir, kind, rng)
        assert err.count("Traceback") == 0, f"{kind}: {err}"
        if not (run_dir / "trials.sqlite").exists():
            continue
        trials = read(run_dir)
        by_id = {t.trial_id: t for t in trials}
        for trial_id, record in finished.items():  # nothing finished vanished or changed
            t = by_id.get(trial_id)
            assert t is not None and (key(t), t.status, t.cost) == record, (kind, trial_id)
        done = [t for t in trials if t.finished]
        finished.update({t.trial_id: (key(t), t.status, t.cost) for t in done})
        twice = Counter((t.origin, key(t)) for t in done).most_common(1)
        assert not twice or twice[0][1] == 1, f"{kind}: a key finished twice: {twice}"

    proc = start(file)  # the last run goes to the end
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    trials = read(run_dir)
    by_id = {t.trial_id: t for t in trials}
    for trial_id, record in finished.items():
        t = by_id[trial_id]
        assert (key(t), t.status, t.cost) == record
    assert not [t for t in trials if t.status == "running"]
    tuning = [t for t in trials if t.origin == "configurator" and t.finished]
    assert Counter(key(t) for t in tuning).most_common(1)[0][1] == 1
    summary = json.loads((run_dir / "summary.json").read_text())
    if summary["stopped_by"] == "n_trials":
        assert len(tuning) == n_trials
    else:  # a per-configuration configurator drew all its configurations
        assert summary["stopped_by"] == "configurator exhausted"
        assert len(tuning) <= n_trials
    finished_keys = {key(t) for t in tuning}
    for t in trials:  # every interrupted tuning trial was run again
        if t.status == "interrupted" and t.origin == "configurator":
            assert key(t) in finished_keys, t.trial_id
    # summary and incumbent agree with the store
    store = TrialStore.open_readonly(run_dir)
    try:
        meta = store.meta()
    finally:
        store.close()
    inc = meta["incumbents"][0]
    mine = [t for t in tuning if t.config_id == inc["config_id"]]
    top = max((t.budget for t in mine if t.budget is not None), default=None)
    mine = [t for t in mine if t.budget == top]
    assert len(mine) == inc["n_instances"]
    cost = sum(t.cost for t in mine) / len(mine)
    assert cost == pytest.approx(inc["cost"])
    assert summary["incumbents"][0]["cost"] == pytest.approx(inc["cost"])
    assert (run_dir / "incumbent.yaml").is_file()
    comparison = meta["final_comparison"]
    assert comparison["seed"] == summary["comparison_seed"]
    for row in comparison["rows"]:
        for who in ("default", "incumbent"):
            t = by_id[row[f"{who}_trial"]]
            assert t.finished and t.seed == comparison["seed"]
            assert t.status == row[f"{who}_status"]
    finals = Counter(key(t) for t in trials if t.origin == "final" and t.finished)
    assert all(n == 1 for n in finals.values())
    # re-running the finished command repeats nothing
    last_id = max(t.trial_id for t in trials)
    again = start(file)
    _, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    added = [t for t in read(run_dir) if t.trial_id > last_id]
    assert not added, f"re-running the finished command added {added}"


@pytest.mark.parametrize("configurator", ["smac-ac", "optuna"])
def test_kill_minus_nine_at_random_moments_then_resume(tmp_path, configurator):
    seed = int(os.environ.get("AAC_SPARSE_SOAK_SEED", "11"))  # other seeds: other moments
    soak(tmp_path, configurator, rounds=4, seed=seed)


@pytest.mark.slow
@pytest.mark.parametrize("configurator,options,extra", [
    ("smac-ac", {}, {}), ("smac-hpo", {}, {}), ("optuna", {}, {}), ("random", {}, {}),
    ("optuna", {"sampler": "random", "pruner": "none"}, {}),
    ("smac-mf", {}, {"fixed": {"hidden": [16, 16]},
                     "fidelity": {"min_epochs": 1, "max_epochs": 4, "eta": 2}}),
], ids=["smac-ac", "smac-hpo", "optuna", "random", "optuna-random", "smac-mf"])
def test_long_soak(tmp_path, configurator, options, extra):
    rounds = int(os.environ.get("AAC_SPARSE_SOAK_ROUNDS", "12"))
    soak(tmp_path, configurator, rounds=rounds, seed=rounds, n_trials=24, options=options,
         **extra)
