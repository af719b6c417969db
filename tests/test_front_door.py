"""The front door: every broken scenario is one clear error (exit 2, the file and the
field named, no traceback, nothing written), usage errors of every command, hostile YAML,
and the crash text of the real target kept in the store."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from aac_sparse.cli import app as cli_app
from aac_sparse.tuning.evaluation import record_outcome
from aac_sparse.tuning.executor import Finished, LocalExecutor
from aac_sparse.tuning.store import TrialStore
from aac_sparse.tuning.trial import TrialSpec

REPO = Path(__file__).resolve().parents[1]
SYNTH = {"n_samples": 120, "n_features": 8, "n_classes": 3}


def base() -> dict:
    """A valid scenario (each case below breaks one thing of it)."""
    entry = {"dataset": "synthetic", "options": dict(SYNTH), "folds": 3}
    return {"name": "door", "space": "meta",
            "fixed": {"hidden": [8], "epochs": 1, "batch_size": 32},
            "instances": {"train": [{**entry, "use": [0, 1]}], "test": [{**entry, "use": [2]}]},
            "budget": {"n_trials": 2, "trial_wall_time": 30},
            "configurator": {"name": "random"}, "execution": {"workers": 1}, "seed": 0}


def change(path: str, value, data: dict | None = None) -> dict:
    """``base()`` with the value at a dotted path replaced (``DELETE`` removes it)."""
    data = data or base()
    *parents, last = path.split(".")
    node = data
    for p in parents:
        node = node[int(p)] if isinstance(node, list) else node[p]
    if value is DELETE:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return data


DELETE = object()
TWO_OBJECTIVES = change("objectives", ["val_error", "n_params"])
ONE_INSTANCE = change("instances.train.0.use", [0])


def text(data: dict) -> str:
    return yaml.safe_dump(data, sort_keys=False)


BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{n}: &{n} [{', '.join(['*' + p] * 10)}]\n"
    for p, n in zip("abcdefg", "bcdefgh", strict=True)) + "name: door\n"

# (case, scenario text or a function of the case directory returning it, text the message
# must contain)
CASES = [
    # -- structure and names
    ("unknown top-level key", text({**base(), "nmae": "x"}), "nmae: unknown field"),
    ("not a mapping", "- 1\n- 2\n", "expected a mapping"),
    ("empty name", text(change("name", "")), "name"),
    ("name ..", text(change("name", "..")), "name: '..' is not a usable name"),
    ("name .", text(change("name", ".")), "name"),
    ("name with a slash", text(change("name", "a/b")), "name"),
    ("name too long", text(change("name", "n" * 300)), "name"),
    ("objective unknown", text(change("objectives", ["accuracy"])), "objectives"),
    ("objective twice", text(change("objectives", ["val_error", "val_error"])), "objectives"),
    # -- space and fixed
    ("space file missing", text(change("space", "nope.json")), "space"),
    ("space is a directory", lambda d: (d / "spacedir").mkdir() or
     text(change("space", "spacedir")), "space: "),
    ("space not ConfigSpace JSON", lambda d: (d / "s.json").write_text('{"a": 1}') and
     text(change("space", "s.json")), "not a ConfigSpace JSON"),
    ("fixed unknown", text(change("fixed.zetta", 1)), "zetta"),
    ("fixed out of range", text(change("fixed.lr", 5.0)), "fixed.lr: 5.0 is outside"),
    ("fixed bool for number", text(change("fixed.lr", True)), "fixed.lr"),
    ("fixed ordinal value", text(change("fixed.batch_size", 100)), "fixed.batch_size"),
    ("fixed category", text(change("fixed.prune", "random")), "fixed.prune"),
    ("fixed int as float", text(change("fixed.update_every_epochs", 1.5)),
     "fixed.update_every_epochs"),
    ("fixed hidden of bools", text(change("fixed.hidden", [True])), "fixed.hidden"),
    ("fixed hidden a string", text(change("fixed.hidden", "wide")), "fixed.hidden"),
    # -- instances
    ("dataset unknown", text(change("instances.train.0.dataset", "nope")),
     "instances.train.0.dataset"),
    ("loader option misspelt", text(change("instances.train.0.options.lable", 1)),
     "instances.train.0.options.lable"),
    ("one fold", text(change("instances.train.0.folds", 1)), "instances.train.0.folds"),
    ("fold out of range", text(change("instances.train.0.use", [7])), "instances.train.0"),
    ("more folds than a class has samples",
     text(change("instances.train.0.folds", 50, change("instances.test.0.folds", 50))),
     "stratified folds"),
    ("validation fraction", text(change("instances.train.0.val_fraction", 0.95)),
     "val_fraction"),
    ("preprocessing", text(change("instances.train.0.preprocessing", "zscore")),
     "preprocessing"),
    ("split seed negative", text(change("instances.train.0.seed", -1)),
     "instances.train.0.seed"),
    ("held-out overlaps training", text(change("instances.test.0.use", [1])),
     "instances.test.0"),
    ("instance listed twice", text(change("instances.train.0.use", [0, 0])), "listed twice"),
    ("dataset name as markup", text(change("instances.train.0.dataset", "[red]x[/red]")),
     "'[red]x[/red]'"),
    # -- configurator
    ("configurator unknown", text(change("configurator.name", "hyperopt")),
     "configurator.name"),
    ("configurator option unknown", text(change("configurator.options", {"foo": 1})),
     "configurator.options.foo"),
    ("optuna sampler", text(change("configurator", {"name": "optuna",
                                                    "options": {"sampler": "cmaes"}})),
     "configurator.options.sampler"),
    ("optuna option as string", text(change("configurator", {
        "name": "optuna", "options": {"n_startup_trials": "5"}})),
     "configurator.options.n_startup_trials"),
    ("smac-ac with fidelity", text(change("fidelity", {"min_epochs": 1, "max_epochs": 3},
                                          change("fixed.epochs", DELETE,
                                                 change("configurator.name", "smac-ac")))),
     "fidelity"),
    ("smac-mf without fidelity", text(change("configurator.name", "smac-mf")), "fidelity"),
    ("pruning with two objectives", text(change("configurator", {
        "name": "optuna", "options": {"pruner": "median"}}, TWO_OBJECTIVES)),
     "configurator.options.pruner"),
    ("wilcoxon on one instance", text(change("configurator", {
        "name": "optuna", "options": {"pruner": "wilcoxon"}}, change(
            "instances.train.0.use", [0]))), "configurator.options.pruner"),
    ("hyperband without fidelity", text(change("configurator", {
        "name": "optuna", "options": {"pruner": "hyperband"}}, ONE_INSTANCE)),
     "configurator.options.pruner"),
    ("fidelity bounds", text(change("fidelity", {"min_epochs": 5, "max_epochs": 3})),
     "fidelity"),
    ("fidelity and fixed epochs", text(change("fidelity", {"min_epochs": 1, "max_epochs": 3})),
     "fixed.epochs and fidelity"),
    # -- seeds and budgets
    ("seed negative", text(change("seed", -1)), "seed"),
    ("seed too large", text(change("seed", 2**40)), "seed"),
    ("n_trials a boolean", text(change("budget.n_trials", True)), "budget.n_trials"),
    ("n_trials zero", text(change("budget.n_trials", 0)), "budget.n_trials"),
    ("n_trials a string", text(change("budget.n_trials", "10")), "budget.n_trials"),
    ("infinite wall time", text(change("budget", {"n_trials": None,
                                                  "wall_time": float("inf")})),
     "budget.wall_time"),
    ("no limit at all", text(change("budget", {"n_trials": None})), "budget"),
    ("absurd trial count", text(change("budget.n_trials", 10**8)), "at most 100000"),
    ("trial longer than the run", text(change("budget", {"n_trials": 5, "wall_time": 10,
                                                         "trial_wall_time": 60})),
     "longer than the whole run"),
    ("workers far above the cores", text(change("execution.workers", 10_000)), "at most"),
    ("workers zero", text(change("execution.workers", 0)), "execution.workers"),
    ("dask address", text(change("execution", {"backend": "dask",
                                               "scheduler": "localhost:8786"})), "tcp://"),
    ("crash cost infinite", text(change("crash_cost", {"val_error": float("inf")})),
     "crash_cost"),
    ("crash cost better than failure", text(change("crash_cost", {"val_error": -1.0})),
     "crash_cost.val_error"),
    ("crash cost of a non-objective", text(change("crash_cost", {"n_params": 5.0})),
     "crash_cost"),
    # -- output places
    ("output is a file", lambda d: (d / "afile").write_text("x") and
     text(change("output", str(d / "afile"))), "is a file"),
    ("output not empty", lambda d: (d / "full").mkdir() or (d / "full" / "x").write_text("x")
     and text(change("output", str(d / "full"))), "not empty and holds no aac-sparse run"),
    ("output the root", text(change("output", "/")), "system or home directory"),
    ("output in /etc", text(change("output", "/etc/aac")), "inside /etc"),
    # -- YAML hazards
    ("duplicate key", "name: door\nname: other\n", "duplicate key 'name'"),
    ("alias bomb", BOMB, "alias"),
    ("tab indentation", "name: door\ninstances:\n\ttrain: []\n", "tab"),
    ("python tag", "name: !!python/object/apply:os.system [ls]\n", "not allowed"),
    ("broken YAML", "name: [door\n", "not valid YAML"),
]


def write_case(tmp: Path, case) -> Path:
    name, content, _ = case
    body = content(tmp) if callable(content) else content
    data = None
    try:
        data = yaml.safe_load(body)
    except yaml.YAMLError:
        pass
    if isinstance(data, dict) and "output" not in data and name not in (
            "duplicate key", "alias bomb"):
        body += f"output: {tmp / 'run'}\n"
    file = tmp / "scenario.yaml"
    file.write_text(body)
    return file


def snapshot(d: Path) -> set[str]:
    return {str(p.relative_to(d)) for p in d.rglob("*")}


def test_there_are_enough_cases():
    assert len(CASES) >= 40


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_broken_scenario_is_one_clear_error_and_writes_nothing(case, tmp_path, monkeypatch,
                                                                capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AAC_SPARSE_CACHE", str(tmp_path / "cache"))
    file = write_case(tmp_path, case)
    before = snapshot(tmp_path)
    monkeypatch.setattr(sys, "argv", ["aac-sparse", "tune", "-s", str(file)])
    t0 = time.perf_counter()
    with pytest.raises(SystemExit) as exit_info:
        cli_app.main()
    elapsed = time.perf_counter() - t0
    err = capsys.readouterr().err
    assert exit_info.value.code == 2, err
    assert "Traceback" not in err and "error:" in err
    flat = " ".join(err.split())
    assert case[2] in flat, flat
    assert str(file) in flat
    assert elapsed < 5.0
    created = snapshot(tmp_path) - before
    assert not {p for p in created if not p.startswith("cache")}, created  # data cache only
    assert not (tmp_path / "runs").exists() and not (tmp_path / "run").exists()


def test_non_utf8_and_oversized_files(tmp_path, capsys, monkeypatch):
    for content, needle in ((b"name: d\xffoor\n", "not UTF-8"),
                            (b"name: door\n" + b"#" * 1_100_000, "at most")):
        file = tmp_path / "s.yaml"
        file.write_bytes(content)
        monkeypatch.setattr(sys, "argv", ["aac-sparse", "tune", "-s", str(file)])
        with pytest.raises(SystemExit) as info:
            cli_app.main()
        err = capsys.readouterr().err
        assert info.value.code == 2 and needle in err and "Traceback" not in err


SUBPROCESS_SAMPLE = ["loader option misspelt", "fixed out of range", "alias bomb",
                     "held-out overlaps training", "optuna sampler", "output not empty",
                     "dataset name as markup"]


@pytest.mark.parametrize("name", SUBPROCESS_SAMPLE)
def test_broken_scenarios_through_the_real_command(name, tmp_path):
    case = next(c for c in CASES if c[0] == name)
    file = write_case(tmp_path, case)
    before = snapshot(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(REPO), "AAC_SPARSE_CACHE": str(tmp_path / "c"),
           "COLUMNS": "200"}
    proc = subprocess.run([sys.executable, "-m", "aac_sparse", "tune", "-s", str(file)],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert case[2] in " ".join(proc.stderr.split()) and "Traceback" not in proc.stderr
    assert not {p for p in snapshot(tmp_path) - before if not p.startswith("c")}


# -- usage errors of every command ----------------------------------------------------

COMMANDS = [["train"], ["presets"], ["tune"], ["scenarios"], ["report"], ["importance"],
            ["ablate"], ["data", "list"], ["data", "info"], ["data", "fetch"],
            ["space", "show"], ["space", "export"], ["study"], ["export"]]
MISSING = {("tune",): "Missing option '--scenario'", ("report",): "Missing argument",
           ("study",): "Missing argument", ("export",): "Missing argument",
           ("importance",): "Missing argument", ("ablate",): "Missing argument",
           ("data", "info"): "Missing argument", ("data", "fetch"): "Missing argument"}
BAD_VALUE = [(["train", "--epochs", "many"], "Invalid value for '--epochs'"),
             (["tune", "-s", "leukemia.yaml", "--workers", "0"], "Invalid value"),
             (["report", "x", "--trees", "one"], "Invalid value for '--trees'"),
             (["space", "export", "--space", "meta", "--format"], "requires an argument")]


def run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "aac_sparse", *args], capture_output=True,
                          text=True, env=env, timeout=60)


@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(c) for c in COMMANDS])
def test_usage_errors_print_the_usage_line_and_exit_2(command):
    proc = run(*command, "--bogus-option")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "Usage: aac-sparse " + " ".join(command) in proc.stderr
    assert "No such option: --bogus-option" in proc.stderr
    if tuple(command) in MISSING:
        proc = run(*command)
        assert proc.returncode == 2 and MISSING[tuple(command)] in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("args,needle", BAD_VALUE)
def test_bad_option_values_are_usage_errors(args, needle):
    proc = run(*args)
    assert proc.returncode == 2 and needle in proc.stderr and "Traceback" not in proc.stderr


def test_an_internal_error_still_shows_its_traceback(monkeypatch, capsys):
    import typer

    broken = typer.Typer()

    @broken.command()
    def explode() -> None:
        raise RuntimeError("a real bug")

    monkeypatch.setattr(cli_app, "app", broken)
    monkeypatch.setattr(sys, "argv", ["aac-sparse"])
    with pytest.raises(RuntimeError, match="a real bug"):
        cli_app.main()
    assert "this is a bug in aac-sparse" in capsys.readouterr().err


def test_user_text_is_never_console_markup(monkeypatch, capsys):
    import typer

    from aac_sparse.errors import UserError

    broken = typer.Typer()

    @broken.command()
    def say() -> None:
        raise UserError("file [bold]x[/bold] and [link=http://e]y[/link]")

    monkeypatch.setattr(cli_app, "app", broken)
    monkeypatch.setattr(sys, "argv", ["aac-sparse"])
    with pytest.raises(SystemExit):
        cli_app.main()
    assert "file [bold]x[/bold] and [link=http://e]y[/link]" in capsys.readouterr().err


# -- a failed start does not block the corrected scenario ----------------------------

def test_a_run_without_finished_trials_does_not_block_a_corrected_scenario(tmp_path,
                                                                          monkeypatch):
    from aac_sparse.tuning.scenario import Scenario
    from aac_sparse.tuning.tuner import open_run, tune

    monkeypatch.setenv("AAC_SPARSE_CACHE", str(tmp_path / "cache"))
    first = Scenario(**change("output", str(tmp_path / "run")))
    run_dir, store, _ = open_run(first)
    store.set_meta("scenario_fingerprint", first.fingerprint())
    store.close()  # the start died before any trial finished
    corrected = Scenario(**change("output", str(tmp_path / "run"),
                                  change("fixed.hidden", [12])))
    result = tune(corrected)
    assert result.n_trials >= 2
    # an empty store file (killed while creating it) does not block either
    (tmp_path / "run2").mkdir()
    (tmp_path / "run2" / "trials.sqlite").write_bytes(b"")
    second = Scenario(**change("output", str(tmp_path / "run2")))
    _, store, resumed = open_run(second)
    assert not resumed
    store.close()


# -- crash text of the real target -------------------------------------------------------

def test_real_target_crash_inside_training_keeps_its_traceback_in_the_store(tmp_path,
                                                                          monkeypatch):
    from aac_sparse.data.instances import Instance

    monkeypatch.setenv("AAC_SPARSE_CACHE", str(tmp_path / "cache"))
    inst = Instance.make("synthetic", SYNTH)
    inst.load()
    configs = {
        "crash": {"hidden": [10**19], "epochs": 1},  # the layer cannot be built
        "bad": {"hidden": [8], "epochs": 1, "lr": -1.0},  # not a valid configuration
        "ok": {"hidden": [8], "epochs": 1},
    }
    store = TrialStore(tmp_path / "store")
    with LocalExecutor("aac_sparse.target:target", n_workers=1, wall_time=60) as ex:
        specs = {}
        for name, cfg in configs.items():
            spec = TrialSpec(store.next_trial_id(), cfg, inst.id, 0, None)
            store.start_trial(spec, "configurator")
            specs[spec.trial_id] = name
        pending = list(specs)
        done = 0
        deadline = time.time() + 120
        while done < len(specs) and time.time() < deadline:
            while pending and ex.free_slots():
                tid = pending.pop(0)
                ex.submit(TrialSpec(tid, configs[specs[tid]], inst.id, 0, None))
            for event in ex.poll(0.2):
                if isinstance(event, Finished):
                    record_outcome(store, event.spec, event.outcome, ["val_error"],
                                   {"val_error": 1.0})
                    done += 1
    by_name = {specs[t.trial_id]: t for t in store.trials()}
    store.close()
    crash = by_name["crash"]
    assert crash.status == "crashed" and crash.cost == 1.0
    assert "Traceback" in crash.error and "Maximum allowed size exceeded" in crash.error
    assert "layers.py" in crash.error  # where in training it failed
    assert by_name["bad"].status == "crashed" and "ConfigError" in by_name["bad"].error
    assert "lr" in by_name["bad"].error and "Traceback" not in by_name["bad"].error
    assert by_name["ok"].status == "ok" and by_name["ok"].error == ""
