"""The tuning layer end to end: configurators, failures, resume, parallel workers, scenarios."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml

from aac_sparse.errors import ConfigError, UserError
from aac_sparse.tuning.checks import check_scenario
from aac_sparse.tuning.executor import LocalExecutor
from aac_sparse.tuning.scenario import Scenario, load_scenario
from aac_sparse.tuning.store import TrialStore
from aac_sparse.tuning.trial import config_id
from aac_sparse.tuning.tuner import Tuner, open_run, tune

REPO = Path(__file__).resolve().parents[1]
SYNTH = {"n_samples": 180, "n_features": 16, "n_classes": 3}


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("AAC_SPARSE_CACHE", str(tmp_path / "prepared"))


def tiny(tmp_path: Path, configurator: str = "random", n_trials: int = 8,
         options: dict | None = None, **extra) -> dict:
    """A scenario dict whose trials take a fraction of a second."""
    entry = {"dataset": "synthetic", "options": SYNTH, "folds": 3}
    base = {
        "name": "tiny", "space": "meta",
        "fixed": {"hidden": [24, 24], "epochs": 3, "batch_size": 32},
        "instances": {"train": [{**entry, "use": [0, 1]}], "test": [{**entry, "use": [2]}]},
        "budget": {"n_trials": n_trials, "trial_wall_time": 60},
        "configurator": {"name": configurator, "options": options or {}},
        "execution": {"workers": 1}, "output": str(tmp_path / "run"),
    }
    for key, value in extra.items():  # sections are merged; fixed settings are replaced
        merge = isinstance(value, dict) and key in base and key != "fixed"
        base[key] = {**base[key], **value} if merge else value
    return base


def finished(run_dir: Path, origin: str | None = "configurator"):
    store = TrialStore.open_readonly(run_dir / "trials.sqlite")
    try:
        return store.trials(origin=origin)
    finally:
        store.close()


@pytest.mark.parametrize("configurator,extra", [
    ("random", {}),
    ("smac-ac", {}),
    ("smac-hpo", {}),
    ("smac-mf", {"fixed": {"hidden": [24, 24], "batch_size": 32},
                 "fidelity": {"min_epochs": 1, "max_epochs": 4, "eta": 2}}),
    ("optuna", {}),
])
def test_each_configurator_runs_a_tiny_scenario_end_to_end(tmp_path, configurator, extra):
    sc = Scenario(**tiny(tmp_path, configurator, n_trials=8, **extra))
    result = tune(sc)
    trials = finished(result.run_dir)
    assert result.n_trials == len(trials) >= 8
    assert all(t.status in ("ok", "diverged", "pruned") for t in trials)
    # the incumbent's cost is what its stored trials say, and no proposal beats it
    inc = result.incumbents[0]
    inc_trials = [t for t in trials if t.config_id == config_id(
        {**sc.fixed, **inc.config}) and t.status == "ok"]
    assert inc_trials
    top = max(t.budget or 0 for t in inc_trials)
    costs = [t.result["val_error"] for t in inc_trials if (t.budget or 0) == top]
    assert inc.cost == pytest.approx(sum(costs) / len(costs))
    assert {row["split"] for row in result.comparison} == {"train", "test"}
    incumbent = yaml.safe_load(result.incumbent_file.read_text())
    assert incumbent["hidden"] == [24, 24]
    assert incumbent["tuned_on"]["instances"]["test"] == [r["instance"] for r in
                                                          result.comparison
                                                          if r["split"] == "test"]
    assert (result.run_dir / "trials.csv").is_file()
    if configurator == "smac-mf":
        assert len({t.budget for t in trials}) >= 2  # Hyperband used several budgets
    assert_incumbent_file_retrains_the_stored_comparison(result)


def assert_incumbent_file_retrains_the_stored_comparison(result):
    """incumbent.yaml, trained on each comparison instance through the function behind
    'aac-sparse train', gives exactly the stored test and validation errors."""
    from aac_sparse.config_files import build_config
    from aac_sparse.data.instances import Instance
    from aac_sparse.training_run import fit_and_evaluate

    cfg = build_config(file=result.incumbent_file)
    by_id = {t.trial_id: t for t in finished(result.run_dir, origin=None)}
    for row in result.comparison:
        stored = by_id[row["incumbent_trial"]]
        assert stored.seed == cfg.seed
        _, measured = fit_and_evaluate(cfg, Instance.parse(row["instance"]).load())
        assert measured["status"] == stored.status
        if stored.status == "ok":
            assert measured["test_error"] == stored.result["test_error"]
            assert measured["val_error"] == stored.result["val_error"]
            assert measured["nnz"] == stored.result["nnz"]


def test_failures_are_recorded_with_their_status_and_the_run_goes_on(tmp_path):
    entry = {"dataset": "synthetic", "options": SYNTH, "folds": 5}
    sc = Scenario(**tiny(tmp_path, "random", n_trials=10,
                         instances={"train": [entry]},
                         budget={"n_trials": 10, "trial_wall_time": 2.0,
                                 "trial_memory_mb": 400},
                         execution={"workers": 2}))
    run_dir, store, _ = open_run(sc)
    sys.path.insert(0, str(REPO / "tests"))

    def executor(**limits):
        return LocalExecutor("fake_targets:misbehaving_target", n_workers=2, **limits)

    tuner = Tuner(sc, run_dir, store, executor_factory=executor)
    tuner.prepare_data()
    t0 = time.time()
    result = tuner.run()
    elapsed = time.time() - t0
    by_fold = {}
    for t in store.trials(origin="configurator"):
        by_fold.setdefault(t.instance.split("fold=")[1][0], set()).add(t.status)
        if t.status != "ok":
            assert t.cost == 1.0  # the finite crash cost, not inf
    assert by_fold == {"0": {"ok"}, "1": {"crashed"}, "2": {"timeout"}, "3": {"memout"},
                       "4": {"diverged"}}
    crashed = [t for t in store.trials() if t.status == "crashed"]
    assert all("boom in fold 1" in t.error for t in crashed)
    assert result.n_trials == 10 and elapsed < 30  # two timeouts of 2 s, not 60 s sleeps
    store.close()


def _cli(*args, env=None):
    return subprocess.Popen([sys.executable, "-m", "aac_sparse", "tune", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})}, start_new_session=True)


def _count_done(store_file: Path) -> int:
    if not store_file.exists():
        return 0
    try:
        store = TrialStore.open_readonly(store_file)
    except UserError:  # the tuner is creating it this very moment
        return 0
    try:
        return len(store.completed(origin="configurator"))
    finally:
        store.close()


def test_kill_minus_nine_then_resume_loses_and_repeats_nothing(tmp_path):
    spec = tiny(tmp_path, "smac-ac", n_trials=14, execution={"workers": 2},
                fixed={"hidden": [24, 24], "epochs": 12, "batch_size": 32})  # slow enough
    file = tmp_path / "sc.yaml"
    file.write_text(yaml.safe_dump(spec))
    store_file = tmp_path / "run" / "trials.sqlite"
    proc = _cli("-s", str(file))
    deadline = time.time() + 240
    while _count_done(store_file) < 5 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)  # the tuner and its workers, no clean-up at all
    proc.wait()
    before = finished(tmp_path / "run")
    done_before = {t.trial_id: (t.config_id, t.instance, t.seed, t.cost)
                   for t in before if t.status not in ("running", "interrupted")}
    assert 5 <= len(done_before) < 14
    res = _cli("-s", str(file))
    out, err = res.communicate(timeout=300)
    assert res.returncode == 0, err
    after = finished(tmp_path / "run")
    for trial_id, record in done_before.items():  # nothing finished was lost or changed
        t = next(t for t in after if t.trial_id == trial_id)
        assert (t.config_id, t.instance, t.seed, t.cost) == record
    done_after = [t for t in after if t.status not in ("running", "interrupted")]
    assert len(done_after) == 14  # the budget counts the trials of both sessions
    keys = Counter((t.config_id, t.instance, t.seed) for t in done_after)
    assert max(keys.values()) == 1  # no finished trial was run twice
    assert not [t for t in after if t.status == "running"]
    assert "resum" in out or "tuning" in out


def test_two_workers_lose_and_duplicate_nothing(tmp_path):
    sc = Scenario(**tiny(tmp_path, "random", n_trials=16, execution={"workers": 2}))
    result = tune(sc)
    trials = finished(result.run_dir)
    assert len(trials) == 16 == result.n_trials
    assert len({t.trial_id for t in trials}) == 16
    assert Counter((t.config_id, t.instance) for t in trials).most_common(1)[0][1] == 1
    assert {t.worker for t in trials} == {"local-0", "local-1"}


def test_same_seed_one_worker_reproduces_the_run(tmp_path):
    runs = []
    for name in ("a", "b"):
        sc = Scenario(**tiny(tmp_path, "smac-ac", n_trials=6, output=str(tmp_path / name)))
        tune(sc)
        runs.append([(t.config_id, t.instance, t.seed, t.cost)
                     for t in finished(tmp_path / name)])
    assert runs[0] == runs[1]


def test_changed_scenario_is_refused_with_a_way_out(tmp_path):
    tune(Scenario(**tiny(tmp_path, "random", n_trials=2)))
    changed = Scenario(**tiny(tmp_path, "random", n_trials=2,
                              fixed={"hidden": [8], "epochs": 2, "batch_size": 32}))
    refused = r"(?s)changed: fixed.epochs, fixed.hidden.*--new.*--force"
    with pytest.raises(ConfigError, match=refused):
        open_run(changed)
    run_dir, store, _ = open_run(changed, new=True)
    store.close()
    assert run_dir.name == "run-2"
    # a larger budget or more workers is the same scenario: it resumes
    more = Scenario(**tiny(tmp_path, "random", n_trials=4, execution={"workers": 2}))
    result = tune(more)
    assert result.n_trials == 4 and len(finished(tmp_path / "run")) == 4


BAD_SCENARIOS = [
    ("name: x\n", "instances"),
    ("name: x\ninstances: {train: [{dataset: nope}]}\n", "unknown dataset 'nope'"),
    ("name: x\ninstances: {train: [{dataset: digits, folds: 3, use: [5]}]}\n",
     "instances.train.0: use: folds [5] outside 0..2"),
    ("name: x\ncolour: red\ninstances: {train: [{dataset: digits}]}\n", "colour: unknown field"),
    ("name: x\ninstances: {train: [{dataset: digits}]}\nobjectives: [accuracy]\n",
     "objectives"),
    ("name: x\ninstances: {train: [{dataset: digits}]}\nconfigurator: {name: hyperopt}\n",
     "configurator.name"),
    ("name: x\ninstances: {train: [{dataset: digits}]}\nconfigurator: {name: smac-mf}\n",
     "needs a fidelity"),
    ("name: x\ninstances: {train: [{dataset: digits}]}\nbudget: {n_trials: 0}\n",
     "budget.n_trials"),
    ("name: x\ninstances: {train: [{dataset: digits}]}\nfixed: {zetta: 1}\n", "zetta"),
    ("name: x\ninstances: {train: [{dataset: digits}]}\n"
     "execution: {backend: dask}\n", "scheduler"),
    ("name: bad name\ninstances: {train: [{dataset: digits}]}\n", "name"),
    ("name: x\ninstances: {train: [{dataset: digits}]}\ncrash_cost: {n_params: 5}\n",
     "crash_cost"),
    ("name: [x\n", "not valid YAML"),
]


@pytest.mark.parametrize("text,needle", BAD_SCENARIOS)
def test_malformed_scenarios_give_clear_errors(tmp_path, text, needle):
    file = tmp_path / "bad.yaml"
    file.write_text(text)
    with pytest.raises(ConfigError) as info:
        check_scenario(*load_scenario(file), prepare=False)
    assert needle in str(info.value) and str(file) in str(info.value)


def test_cli_reports_scenario_mistakes_without_traceback(tmp_path):
    file = tmp_path / "bad.yaml"
    file.write_text("name: x\ninstances: {train: [{dataset: digits, folds: 1}]}\n")
    res = subprocess.run([sys.executable, "-m", "aac_sparse", "tune", "-s", str(file)],
                         capture_output=True, text=True)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "instances.train.0.folds" in res.stderr and str(file) in res.stderr
    res = subprocess.run([sys.executable, "-m", "aac_sparse", "tune", "-s", "nope.yaml"],
                         capture_output=True, text=True)
    assert res.returncode == 2 and "leukemia.yaml" in res.stderr


def test_bundled_scenarios_are_valid():
    from aac_sparse.tuning.scenario import bundled

    names = bundled()
    assert {"leukemia.yaml", "fashion-mnist.yaml", "madelon.yaml", "multi.yaml"} <= set(names)
    for name in names:
        sc, _ = load_scenario(name)
        assert sc.train_instances() and sc.test_instances()


@pytest.mark.parametrize("configurator", ["random", "smac-ac", "smac-hpo", "optuna"])
def test_resume_with_a_larger_budget_replays_and_continues(tmp_path, configurator):
    first = tune(Scenario(**tiny(tmp_path, configurator, n_trials=4)))
    assert first.n_trials == 4
    again = tune(Scenario(**tiny(tmp_path, configurator, n_trials=8)))
    trials = finished(tmp_path / "run")
    assert again.n_trials == 8 == len(trials)
    keys = Counter((t.config_id, t.instance, t.seed, t.budget) for t in trials)
    assert max(keys.values()) == 1


def test_optuna_prunes_on_epoch_reports_of_a_single_instance(tmp_path):
    entry = {"dataset": "synthetic", "options": SYNTH}
    sc = Scenario(**tiny(tmp_path, "optuna", n_trials=16,
                         fixed={"hidden": [24, 24], "epochs": 12, "batch_size": 32},
                         instances={"train": [entry], "test": [{**entry, "seed": 1}]},
                         options={"pruner": "median", "n_startup_trials": 3}))
    run_dir, store, _ = open_run(sc)
    sys.path.insert(0, str(REPO / "tests"))
    tuner = Tuner(sc, run_dir, store, executor_factory=lambda **limits: LocalExecutor(
        "fake_targets:curve_target", n_workers=1, **limits))
    tuner.prepare_data()
    tuner.run()
    trials = store.trials(origin="configurator")
    for t in trials:  # every epoch's validation error reached the store, in order
        steps = [s for s, _ in store.reports(t.trial_id)]
        assert steps == list(range(1, len(steps) + 1)) and len(steps) >= 1
    pruned = [t for t in trials if t.status == "pruned"]
    assert pruned and all(t.result["epochs_run"] < 12 for t in pruned)
    assert [t for t in trials if t.status == "ok"]
    store.close()


def test_multi_objective_optuna_keeps_a_pareto_front(tmp_path):
    sc = Scenario(**tiny(tmp_path, "optuna", n_trials=12, objectives=["val_error", "n_params"]))
    result = tune(sc)
    costs = [p.cost for p in result.incumbents]
    assert all(len(c) == 2 for c in costs)
    for a in costs:  # nobody on the front dominates anybody else on it
        assert not any(b[0] <= a[0] and b[1] <= a[1] and b != a for b in costs)


def test_dask_backend_runs_a_scenario_on_a_local_cluster(tmp_path):
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster:
        sc = Scenario(**tiny(tmp_path, "random", n_trials=6,
                             execution={"workers": 2, "backend": "dask",
                                        "scheduler": cluster.scheduler_address}))
        result = tune(sc)
    trials = finished(result.run_dir)
    assert result.n_trials == 6 and all(t.status == "ok" for t in trials)
    assert result.comparison and result.incumbent_file.is_file()


def test_unreachable_dask_scheduler_is_a_clear_error(tmp_path):
    from aac_sparse.errors import UserError

    sc = Scenario(**tiny(tmp_path, "random", n_trials=2,
                         execution={"backend": "dask", "scheduler": "tcp://127.0.0.1:9"}))
    t0 = time.time()
    with pytest.raises(UserError, match="127.0.0.1:9"):
        tune(sc)
    assert time.time() - t0 < 5.0 and not (tmp_path / "run").exists()  # nothing written


FULL_META = {"hidden": [16, 16], "epochs": 2}  # every parameter of the meta space left free
ONE_INSTANCE = {"train": [{"dataset": "synthetic", "options": SYNTH}],
                "test": [{"dataset": "synthetic", "options": SYNTH, "seed": 1}]}
FIDELITY = {"min_epochs": 1, "max_epochs": 4, "eta": 2}


@pytest.mark.parametrize("configurator,options,extra", [
    ("random", {}, {}),
    ("smac-ac", {}, {}),
    ("smac-hpo", {}, {}),
    ("smac-mf", {}, {"fixed": {"hidden": [16, 16]}, "fidelity": FIDELITY}),
    ("optuna", {}, {}),  # TPE, Wilcoxon pruning across the two instances
    ("optuna", {"sampler": "random", "pruner": "none"}, {}),
    ("optuna", {"pruner": "median"}, {"instances": ONE_INSTANCE}),
    ("optuna", {"pruner": "hyperband"}, {"instances": ONE_INSTANCE,
                                         "fixed": {"hidden": [16, 16]},
                                         "fidelity": FIDELITY}),
    ("optuna", {"sampler": "nsga2"}, {"objectives": ["val_error", "n_params"]}),
    ("optuna", {"sampler": "motpe"}, {"objectives": ["val_error", "n_params"]}),
], ids=["random", "smac-ac", "smac-hpo", "smac-mf", "optuna-tpe-wilcoxon", "optuna-random",
        "optuna-median", "optuna-hyperband", "optuna-nsga2", "optuna-motpe"])
def test_every_configurator_resumes_an_earlier_session_over_the_full_meta_space(
        tmp_path, configurator, options, extra):
    """Session 1 runs, then a trial is left 'running' as a kill would leave it (a
    configuration no configurator proposed); session 2 resumes: the stored values replay
    into the configurator (ordinal batch_size, categorical, log-scaled and conditional
    parameters free), the interrupted trial is re-run by the tuner and its configuration
    is not dropped, and no key finishes twice."""
    from aac_sparse.tuning.checks import space_for

    def scenario(n):
        return Scenario(**tiny(tmp_path, configurator, n_trials=n, options=options,
                               **{"fixed": FULL_META, **extra}))

    first = tune(scenario(6))
    assert first.n_trials >= 1
    trials = finished(tmp_path / "run")
    like = trials[-1]
    cs = space_for(scenario(6))
    cs.seed(5)
    from aac_sparse.io import plain
    from aac_sparse.tuning.trial import TrialSpec, config_id

    orphan = plain({**{k: v for k, v in like.config.items() if k not in cs},
                    **dict(cs.sample_configuration())})
    store = TrialStore(tmp_path / "run" / "trials.sqlite")
    orphan_key = (config_id(orphan), like.instance, like.seed, like.budget)
    store.start_trial(TrialSpec(store.next_trial_id(), orphan, like.instance, like.seed,
                                like.budget), "configurator")
    store.close()

    again = tune(scenario(14))
    trials = finished(tmp_path / "run")
    done = [t for t in trials if t.finished]
    keys = Counter((t.config_id, t.instance, t.seed, t.budget) for t in done)
    assert max(keys.values()) == 1
    assert orphan_key in keys  # the interrupted trial ran again
    assert [t.status for t in trials if t.status == "interrupted"] == ["interrupted"]
    if configurator != "smac-ac":  # a per-configuration configurator kept the configuration
        group = [t for t in done if t.config_id == orphan_key[0]
                 and t.budget == orphan_key[3]]
        assert len(group) == len({t.instance for t in trials}) or \
            any(t.status == "pruned" for t in group)
    assert again.n_trials == len(done) <= 14
    assert again.incumbents


def test_a_key_asked_again_joins_the_running_trial_or_is_answered_from_the_store(tmp_path):
    """Exactly once per key: asked while it runs, the request waits for that trial; asked
    after it finished (this session), the store answers; only distinct keys run."""
    from aac_sparse.tuning.configurators import Configurator, TrialRequest

    sc = Scenario(**tiny(tmp_path, "random", n_trials=10, execution={"workers": 2}))
    run_dir, store, _ = open_run(sc)
    tuner = Tuner(sc, run_dir, store)
    tuner.prepare_data()
    config = dict(tuner.cs.get_default_configuration())
    i0, i1 = tuner.train.ids

    class Scripted(Configurator):
        def __init__(self):
            self.queue = [TrialRequest(config, i0, 1, None, "first"),
                          TrialRequest(config, i0, 1, None, "while running"),
                          TrialRequest(config, i1, 1, None, "other instance")]
            self.told: dict[str, float] = {}

        def ask(self):
            return self.queue.pop(0) if self.queue else None

        def tell(self, request, cost, outcome):
            self.told[request.key] = cost
            if request.key == "first":
                self.queue.append(TrialRequest(config, i0, 1, None, "after it finished"))

        def replay(self, trials):
            """Nothing was stored before this session."""

        def incumbents(self):
            return []

    scripted = Scripted()
    tuner._make_configurator = lambda: scripted
    try:
        result = tuner.run()
    finally:
        tuner.close()
    trials = store.trials()
    store.close()
    assert len(trials) == 2 == result.n_trials  # two distinct keys ran, once each
    assert set(scripted.told) == {"first", "while running", "other instance",
                                  "after it finished"}
    assert scripted.told["first"] == scripted.told["while running"] == \
        scripted.told["after it finished"]


def test_final_comparison_runs_each_job_once_whatever_its_status(tmp_path):
    """A comparison job that diverged (or timed out) is not re-run on the next invocation,
    and the comparison uses the seed the configurator tuned with, stated in the summary."""
    import json
    import sqlite3

    sc = Scenario(**tiny(tmp_path, "smac-ac", n_trials=4))
    first = tune(sc)
    tuning_seeds = {t.seed for t in finished(first.run_dir)}
    assert first.comparison_seed in tuning_seeds  # SMAC's own seed, not the scenario's
    summary = json.loads((first.run_dir / "summary.json").read_text())
    assert summary["comparison_seed"] == first.comparison_seed
    finals = finished(first.run_dir, origin="final")
    assert finals and all(t.seed == first.comparison_seed for t in finals)
    with sqlite3.connect(first.run_dir / "trials.sqlite") as conn:  # as if it had diverged
        conn.execute("UPDATE trials SET status = 'diverged', result = '{}' WHERE trial_id = ?",
                     (finals[0].trial_id,))
    n_rows = len(finished(first.run_dir, origin=None))
    again = tune(sc)
    assert len(finished(first.run_dir, origin=None)) == n_rows
    statuses = {row["default_trial"]: row["default_status"] for row in again.comparison}
    statuses |= {row["incumbent_trial"]: row["incumbent_status"] for row in again.comparison}
    assert statuses[finals[0].trial_id] == "diverged"


def test_rerunning_a_finished_run_keeps_its_incumbent_and_adds_no_trial(tmp_path):
    """SMAC's intensifier depends on the order results arrived in, which a replay does not
    reproduce; a re-run that tells nothing new keeps the stored decision, so it runs no
    new comparison trial.  Simulated by storing as the incumbent another finished
    configuration, one a replay would not choose."""
    sc = Scenario(**tiny(tmp_path, "smac-ac", n_trials=6))
    first = tune(sc)
    with TrialStore(first.run_dir / "trials.sqlite") as store:
        meta = store.get_meta("incumbents")
        other = next(t for t in store.completed(origin="configurator")
                     if t.config_id != meta[0]["config_id"])
        store.set_meta("incumbents", [{"config_id": other.config_id, "cost": 0.5,
                                       "n_instances": 1}])
    again = tune(sc)  # runs the comparison of the stored incumbent
    assert again.incumbents[0].cost == 0.5
    assert config_id({**again.incumbents[0].config, **sc.fixed}) == other.config_id
    n_rows = len(finished(first.run_dir, origin=None))
    third = tune(sc)
    assert config_id({**third.incumbents[0].config, **sc.fixed}) == other.config_id
    assert len(finished(first.run_dir, origin=None)) == n_rows


def test_train_command_retrains_the_incumbent_on_an_instance_exactly(tmp_path):
    """The advertised path: 'aac-sparse train --config RUN/incumbent.yaml --instance ID'
    (the real CLI) reproduces the stored test error of the final comparison trial."""
    import json

    result = tune(Scenario(**tiny(tmp_path, "random", n_trials=4)))
    row = next(r for r in result.comparison if r["split"] == "test")
    stored = {t.trial_id: t for t in finished(result.run_dir, origin=None)}[
        row["incumbent_trial"]]
    assert stored.status == "ok"
    out = tmp_path / "retrained"
    env = {**os.environ, "AAC_SPARSE_CACHE": str(tmp_path / "prepared")}
    done = subprocess.run(
        [sys.executable, "-m", "aac_sparse", "train", "--config", str(result.incumbent_file),
         "--instance", row["instance"], "--quiet", "-o", str(out)],
        capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    summary = json.loads((out / "metrics.json").read_text())["summary"]
    assert summary["data"] == row["instance"]
    assert summary["test_error"] == stored.result["test_error"]
    assert summary["val_error"] == stored.result["val_error"]
    # the header says how; an id the file was not tuned on is allowed but said
    assert "--instance" in result.incumbent_file.read_text().splitlines()[3]
    other = row["instance"].replace("fold=2/3", "fold=1/3")
    again = subprocess.run(
        [sys.executable, "-m", "aac_sparse", "train", "--config", str(result.incumbent_file),
         "--instance", other, "--dataset", "digits", "-o", str(tmp_path / "x")],
        capture_output=True, text=True, timeout=120, env=env)
    assert again.returncode == 2 and "drop --dataset" in again.stderr
