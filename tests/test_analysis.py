"""The analysis: fANOVA against Monte Carlo, importance and ablation on stores whose truth
is known, the paired tests, the report files, and the commands end to end."""

from __future__ import annotations

import csv
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from aac_sparse.analysis import forest
from aac_sparse.analysis.ablation import surrogate_ablation
from aac_sparse.analysis.encoding import dims_of, encode, order_choices
from aac_sparse.analysis.fanova import TreeANOVA, fanova
from aac_sparse.analysis.importance import fanova_importance, local_importance
from aac_sparse.analysis.report import report
from aac_sparse.analysis.rundata import RunError, load_run, parse_where
from aac_sparse.analysis.stats import paired
from aac_sparse.analysis.surrogate import Surrogate
from aac_sparse.errors import UserError
from aac_sparse.space.changes import in_space, is_forbidden, next_changes
from aac_sparse.space.definition import get_space, preset_values
from aac_sparse.tuning.ablation import friedman_survivors
from aac_sparse.tuning.store import TrialStore
from aac_sparse.tuning.trial import TrialOutcome, TrialSpec

sys.path.insert(0, str(Path(__file__).parent))
from synthetic_store import INTERACTING, make_store  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "aac_sparse"]
MOVING = {"lr", "momentum", "dropout", "regrow", "regrow_candidates"}


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    return make_store(tmp_path_factory.mktemp("synthetic") / "run", n_configs=200, seed=0)


def run_cli(*args: str, timeout: float = 300, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "160"}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout,
                          env=env, **kw)


# -- the decomposition itself ------------------------------------------------------------

def test_tree_decomposition_equals_monte_carlo_integration():
    """Exact per-tree fANOVA (with a split instance column) against sampling the tree."""
    from ConfigSpace import ConfigurationSpace, Float

    cs = ConfigurationSpace({"c": ["a", "b", "c"], "x0": (0.0, 1.0)}, seed=1)
    cs.add(Float("x1", (1e-3, 1.0), log=True))
    rng = np.random.default_rng(0)
    configs = [dict(c) for c in cs.sample_configuration(600)]
    dims = dims_of(cs, list(cs.keys()))
    x = encode(dims, configs)
    inst = rng.integers(0, 3, len(x)).astype(float)[:, None]
    y = 2 * x[:, 1] + np.where(x[:, 0] == 1, 0.5, 0.0) + x[:, 1] * x[:, 2] + 0.3 * inst[:, 0]
    fitted = forest.fit(x, inst, y, np.arange(3.0)[:, None], n_forests=1, n_trees=2)
    tree = fitted.trees[0]
    anova = TreeANOVA(forest.leaves(tree, 4), dims, fitted.instances)
    assert np.any(anova.inst_mass < 1)  # the instance column is split: the O(L²) path

    def predict(z):
        return np.mean([tree.predict(np.hstack([z, np.full((len(z), 1), i)]))
                        for i in range(3)], axis=0)

    u = rng.random((40_000, 3))
    u[:, 0] = rng.integers(0, 3, len(u))
    f = predict(u)
    assert anova.mean == pytest.approx(f.mean(), rel=0.01)
    assert anova.total() == pytest.approx(f.var(), rel=0.05)
    group_means = [f[u[:, 0] == k].mean() for k in range(3)]
    assert anova.main(0) == pytest.approx(np.var(group_means), rel=0.15, abs=1e-4)
    grid = np.linspace(0.0005, 0.9995, 101)
    marginal = []
    for g in grid:
        z = u[:2000].copy()
        z[:, 1] = g
        marginal.append(predict(z).mean())
    assert anova.main(1) == pytest.approx(np.var(marginal), rel=0.05)


def test_fanova_recovers_an_additive_function_with_an_interaction():
    from ConfigSpace import ConfigurationSpace

    cs = ConfigurationSpace({"a": (0.0, 1.0), "b": (0.0, 1.0), "c": (0.0, 1.0),
                             "inert": (0.0, 1.0)}, seed=2)
    configs = [dict(c) for c in cs.sample_configuration(1500)]
    dims = order_choices(dims_of(cs, list(cs.keys())), configs, np.zeros(len(configs)))
    x = encode(dims, configs)
    y = 3 * x[:, 0] + 2 * x[:, 1] * x[:, 2]
    fitted = forest.fit(x, np.zeros((len(x), 1)), y, np.zeros((1, 1)), n_forests=2,
                        n_trees=16)
    mains, pairs = fanova(fitted, dims)
    got = {e.names[0]: e.importance for e in mains}
    # truth: Var(3a) = .75, Var(b/1) main = 1/12 each, interaction 4/144 (total .9444)
    assert got["a"] == pytest.approx(0.75 / 0.9444, abs=0.04)
    assert got["b"] == pytest.approx((1 / 12) / 0.9444, abs=0.03)
    assert got["inert"] < 0.01
    assert pairs[0].names == ("b", "c")
    assert pairs[0].importance == pytest.approx((4 / 144) / 0.9444, abs=0.015)


# -- importance and ablation on a store whose truth is known ---------------------------

def test_fanova_ranks_the_known_truth(synthetic):
    run = load_run(synthetic)
    imp = fanova_importance(run, "val_error")
    rows = {r.parameter: r for r in imp.main}
    top = [r for r in imp.main if r.subspace == "all trials"]
    assert top[0].parameter == "lr"
    # the conditional parameter is analysed where it is active, and there it matters
    cand = rows["regrow_candidates"]
    assert cand.subspace == "regrow=gradient_sampled"
    assert cand.importance > 0.1
    gs = sum(t.config["regrow"] == "gradient_sampled" for t in run.model_trials())
    assert cand.n_trials == gs < rows["lr"].n_trials == len(run.model_trials())
    # no conditional parameter is scored over trials where it is inactive
    for name in ("regrow_candidates", "epsilon", "density", "alpha", "ip_every",
                 "update_every_steps", "lr_final_fraction"):
        assert rows[name].subspace != "all trials"
    for name, row in rows.items():
        if name not in MOVING:
            assert row.importance < 0.05, (name, row)
    for name in INTERACTING:
        assert rows[name].importance > max(rows[n].importance for n in rows
                                           if n not in MOVING)
    assert imp.interactions[0].parameter == " × ".join(sorted(INTERACTING))


def test_where_restricts_the_trials_and_flags_thin_data(synthetic):
    run = load_run(synthetic)
    where = parse_where(run.cs, ["regrow=gradient_sampled"])
    imp = fanova_importance(run, "val_error", where, n_forests=2, n_trees=16)
    main = [r for r in imp.main if r.subspace == "regrow=gradient_sampled"]
    # within the sub-space candidates (variance .013) and lr (.015) carry most
    assert {r.parameter for r in main[:2]} == {"regrow_candidates", "lr"}
    assert "regrow" not in {r.parameter for r in imp.main}  # fixed by the filter
    assert any(r.flagged for r in imp.main) and imp.warnings  # ~180 trials, 20+ parameters
    with pytest.raises(UserError, match="not a value of regrow"):
        parse_where(run.cs, ["regrow=sideways"])
    with pytest.raises(UserError, match="not a parameter"):
        parse_where(run.cs, ["colour=red"])
    with pytest.raises(UserError, match="NAME=VALUE"):
        parse_where(run.cs, ["regrow"])


def test_surrogate_ablation_takes_the_dominant_step_first_and_shares_sum_to_one(synthetic):
    run = load_run(synthetic)
    surrogate = Surrogate(run, "val_error", n_forests=2, n_trees=24)
    inc = run.incumbent()
    path = surrogate_ablation(surrogate, run.default_config(), run.configs[inc])
    assert path[0].change is None and path[0].config == run.default_config()
    assert path[1].change.names == ("lr",)
    assert path[-1].config == run.space_part(run.configs[inc])
    assert sum(s.share for s in path) == pytest.approx(1.0)
    assert path[-1].cost < path[0].cost
    for step in path:  # every point of the path is a valid, allowed configuration
        assert in_space(run.cs, step.config, f"step {step.step}") == step.config
    changed = [n for s in path[1:] for n in s.change.names]
    assert len(changed) == len(set(changed))  # each parameter changes once


def test_local_importance_is_about_the_incumbent(synthetic):
    run = load_run(synthetic)
    surrogate = Surrogate(run, "val_error", n_forests=2, n_trees=24)
    inc = run.incumbent()
    lpi = local_importance(surrogate, inc, run.configs[inc])
    assert sum(r.importance for r in lpi.rows) == pytest.approx(1.0)
    assert set(lpi.inactive) == set(surrogate.names) - set(run.configs[inc])
    assert lpi.rows[0].parameter in MOVING
    for r in lpi.rows:
        if r.parameter not in MOVING:
            assert r.importance < 0.1, r
    assert all(len(c) >= 2 for c in lpi.curves.values())


def test_changes_move_children_and_skip_forbidden_configurations():
    cs = get_space("meta", {"hidden": [8], "epochs": 5})
    source = dict(cs.get_default_configuration())  # regrow random, regrow_init random
    target = {**source, "regrow": "gradient_sampled", "regrow_candidates": 7.0,
              "regrow_init": "zero"}
    steps = {c.names: c for c in next_changes(cs, source, target)}
    assert ("regrow_init",) not in steps  # random regrowth at zero weight is forbidden
    assert is_forbidden(cs, {**source, "regrow_init": "zero"})
    regrow = steps[("regrow",)]
    assert regrow.moved == ("regrow_candidates",)
    assert regrow.config["regrow_candidates"] == 7.0  # switched on at the target's value
    back = next_changes(cs, target, source)  # regrow alone would give random at zero
    assert [c.names for c in back] == [("regrow_init",)]
    off = next_changes(cs, back[0].config, source)
    assert [c.names for c in off] == [("regrow",)] and off[0].moved == ("regrow_candidates",)
    assert "regrow_candidates" not in off[0].config and off[0].config == source
    # a preset that is not in a run's space is a clear error
    with pytest.raises(ValueError, match="prune is fixed to 'set'"):
        in_space(get_space("set"), preset_values("rigl"), "preset rigl")


# -- statistics ---------------------------------------------------------------------------

def test_paired_tests_agree_with_known_values():
    from scipy import stats

    a = [0.30, 0.32, 0.25, 0.40, 0.30, 0.28]
    b = [0.20, 0.22, 0.21, 0.30, 0.31, 0.20]
    p = paired(a, b)
    assert p.n == 6 and p.mean_delta == pytest.approx(np.mean(np.subtract(b, a)))
    assert p.wilcoxon_p == pytest.approx(stats.wilcoxon(np.subtract(b, a)).pvalue)
    assert p.permutation_exact
    # exact sign-flip test: 2 of the 64 sign patterns reach |mean| >= observed here
    flips = np.array(np.meshgrid(*[[1, -1]] * 6)).reshape(6, -1).T
    d = np.subtract(b, a)
    expected = np.mean(np.abs(flips @ d) >= abs(d.sum()) - 1e-12)
    assert p.permutation_p == pytest.approx(expected)
    assert -1 <= p.rank_biserial < 0 and p.cohens_dz < 0
    assert p.min_wilcoxon_p == pytest.approx(2 / 64)
    same = paired([0.3, 0.3], [0.3, 0.3])
    assert np.isnan(same.wilcoxon_p) and same.permutation_p == 1.0
    big = paired(np.zeros(30), np.full(30, -0.1) + np.linspace(0, 0.01, 30))
    assert not big.permutation_exact and big.permutation_p < 0.001


def test_racing_elimination_drops_only_clearly_worse_candidates():
    rng = np.random.default_rng(0)
    costs = rng.normal(0, 0.01, (6, 4))
    costs[:, 2] += 0.2
    costs[:, 3] += 0.3
    assert list(friedman_survivors(costs, 0.05)) == [0, 1]
    assert list(friedman_survivors(costs[:2], 0.05)) == [0, 1, 2, 3]  # too few blocks
    assert list(friedman_survivors(rng.normal(0, 1, (6, 3)), 0.05)) == [0, 1, 2]
    two = np.column_stack([np.zeros(8), np.linspace(0.1, 0.2, 8)])
    assert list(friedman_survivors(two, 0.05)) == [0]


# -- the report ---------------------------------------------------------------------------

HEADERS = {
    "importance.csv": ["parameter", "importance", "std", "n_trials", "subspace"],
    "interactions.csv": ["parameters", "importance", "std"],
    "lpi.csv": ["parameter", "importance", "std", "n_trials", "subspace"],
    "ablation.csv": ["step", "parameter", "value", "cost", "cost_std", "share"],
    "instances.csv": ["split", "instance", "default", "incumbent", "delta"],
    "trajectory.csv": ["trial", "wall_time", "incumbent_cost"],
}


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_report_command_writes_every_file_from_the_store(synthetic, tmp_path):
    out = tmp_path / "report"
    proc = run_cli("report", str(synthetic), "-o", str(out), "--trees", "16")
    assert proc.returncode == 0, proc.stderr
    assert "report.html" in proc.stdout and "Traceback" not in proc.stderr
    for name, header in HEADERS.items():
        with open(out / name, newline="") as fh:
            assert next(csv.reader(fh)) == header, name
    instances = read_csv(out / "instances.csv")
    store = TrialStore.open_readonly(synthetic)
    try:
        comparison = store.get_meta("final_comparison")
        by_id = {t.trial_id: t for t in store.trials()}
    finally:
        store.close()
    assert len(instances) == len(comparison["rows"]) == 5
    for row, rec in zip(instances, comparison["rows"], strict=True):
        d = by_id[rec["default_trial"]].result["test_error"]
        i = by_id[rec["incumbent_trial"]].result["test_error"]
        assert float(row["default"]) == pytest.approx(d, rel=1e-5)
        assert float(row["delta"]) == pytest.approx(i - d, rel=1e-4, abs=1e-6)
    ablation = read_csv(out / "ablation.csv")
    assert ablation[0]["step"] == "0" and ablation[1]["parameter"] == "lr"
    assert sum(float(r["share"]) for r in ablation) == pytest.approx(1.0, abs=1e-4)
    trajectory = read_csv(out / "trajectory.csv")
    assert len(trajectory) == 600
    costs = [float(r["incumbent_cost"]) for r in trajectory]
    assert costs[-1] <= costs[0]
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 6
    # self-contained: nothing is fetched from anywhere
    assert not re.search(r"""(src|href)\s*=\s*["'](?!data:|#)""", html)
    md = (out / "report.md").read_text()
    assert "## Which parameters matter" in md and "| lr |" in md
    assert all((out / "figures" / f"{n}.png").is_file()
               for n in ("importance-val_error", "ablation", "instances", "trajectory",
                         "ecdf", "statuses", "lpi"))


def test_report_of_a_multi_objective_run_covers_each_objective(tmp_path):
    run_dir = make_store(tmp_path / "mo", n_configs=60, objectives=("val_error", "n_params"))
    findings, files = report(run_dir, n_forests=1, n_trees=8)
    assert {"importance.val_error.csv", "importance.n_params.csv", "figures/pareto.png"} <= \
        set(files)
    size = read_csv(files["importance.n_params.csv"])
    assert size[0]["parameter"] == "zeta"  # the size objective depends on zeta alone
    front = findings.run.pareto()
    assert front and all(len(c) == 2 for _, c in front)


def test_html_report_renders_in_a_real_browser(synthetic, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    out = tmp_path / "report"
    report(synthetic, out, n_forests=1, n_trees=8)
    shot, messages = render(chromium, out / "report.html", tmp_path)
    assert messages == []
    from matplotlib.image import imread

    image = imread(shot)
    assert image.shape[0] >= 1000 and image.std() > 0.05  # not blank
    # the check can fail: a page that logs to the console is caught
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><p>x</p><script>console.error('boom')</script></body></html>")
    assert any("boom" in m for m in render(chromium, bad, tmp_path)[1])


def render(chromium: str, page: Path, tmp: Path) -> tuple[Path, list[str]]:
    """A screenshot of ``page`` in headless Chromium and the console messages it logged."""
    shot = tmp / f"{page.stem}.png"
    proc = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp / 'chromium'}", "--enable-logging=stderr",
         "--log-level=0", "--window-size=1200,2400", f"--screenshot={shot}", page.as_uri()],
        capture_output=True, text=True, timeout=120)
    assert shot.is_file(), proc.stderr[-2000:]
    return shot, [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]


def test_broken_run_directories_are_clear_errors(tmp_path):
    cases = {}
    cases["missing"] = tmp_path / "nope"
    (tmp_path / "empty-dir").mkdir()
    cases["no store"] = tmp_path / "empty-dir"
    TrialStore(tmp_path / "fresh").close()
    cases["no trials"] = tmp_path / "fresh"
    old = tmp_path / "old"
    with TrialStore(old) as s:
        s.start_trial(TrialSpec(1, {"lr": 0.1}, "i", 0), "configurator")
        s.finish_trial(1, TrialOutcome("ok", {"val_error": 0.1}), {"val_error": 0.1}, 0.1)
    cases["older"] = old
    starting = make_store(tmp_path / "starting", n_configs=2, final=False)
    conn = sqlite3.connect(starting / "trials.sqlite")
    conn.execute("UPDATE trials SET status = 'running', cost = NULL")
    conn.commit()
    conn.close()
    cases["still running"] = starting
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "trials.sqlite").write_bytes(b"not a database" * 50)
    cases["junk"] = junk
    expected = {"missing": "no such run directory", "no store": "holds no trial store",
                "no trials": "holds no trials yet", "older": "older aac-sparse",
                "still running": "still running", "junk": "not a trial store"}
    for case, path in cases.items():
        with pytest.raises(UserError, match=expected[case]):
            load_run(path)
    for command in ("report", "importance", "ablate"):
        proc = run_cli(command, str(cases["still running"]))
        assert proc.returncode == 2 and "still running" in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr
    assert issubclass(RunError, UserError)


def test_a_store_being_written_can_be_reported_on(tmp_path):
    run_dir = make_store(tmp_path / "live", n_configs=40)
    writer = TrialStore(run_dir)  # the "tuner" is still running a trial
    writer.start_trial(TrialSpec(writer.next_trial_id(), {"lr": 0.1}, "x", 0), "configurator")
    try:
        findings, files = report(run_dir, n_forests=1, n_trees=8)
        assert any("running" in n for n in findings.notes)
        assert "still running" in files["report.md"].read_text()
    finally:
        writer.close()


def test_importance_and_ablate_commands(synthetic, tmp_path):
    proc = run_cli("importance", str(synthetic), "--where", "regrow=gradient_sampled",
                   "-o", str(tmp_path), "--trees", "8", "--forests", "1")
    assert proc.returncode == 0, proc.stderr
    top = {r["parameter"] for r in read_csv(tmp_path / "importance.csv")[:2]}
    assert top == {"regrow_candidates", "lr"}
    proc = run_cli("importance", str(synthetic), "--method", "lpi", "-o", str(tmp_path),
                   "--trees", "8", "--forests", "1")
    assert proc.returncode == 0, proc.stderr
    assert read_csv(tmp_path / "lpi.csv")[0]["subspace"].startswith("around ")
    proc = run_cli("ablate", str(synthetic), "-o", str(tmp_path), "--trees", "8")
    assert proc.returncode == 0, proc.stderr
    assert read_csv(tmp_path / "ablation.csv")[1]["parameter"] == "lr"
    for args, message in (
            (("importance", str(synthetic), "--method", "shap"), "choose fanova or lpi"),
            (("importance", str(synthetic), "--where", "regrow=up"), "not a value"),
            (("importance", str(synthetic), "--objective", "speed"), "objectives are"),
            (("ablate", str(synthetic), "--source", "nosuch"), "give 'default' or a preset"),
            (("ablate", str(synthetic), "--target", "abc"), "no configuration with this id"),
            (("ablate", str(synthetic), "--mode", "magic"), "surrogate or racing")):
        proc = run_cli(*args)
        assert proc.returncode == 2 and message in proc.stderr, (args, proc.stderr)
        assert "Traceback" not in proc.stderr


# -- a real tuning run, reported on and ablated by racing -------------------------------

@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """A real `tune` run (real target, real executor) on synthetic data: the set space
    with four free parameters, so a racing ablation is short."""
    import yaml

    base = tmp_path_factory.mktemp("tiny")
    os.environ["AAC_SPARSE_CACHE"] = str(base / "prepared")
    entry = {"dataset": "synthetic", "options": {"n_samples": 180, "n_features": 16,
                                                 "n_classes": 3}, "folds": 3}
    scenario = {
        "name": "tiny", "space": "set",
        "fixed": {"hidden": [24, 24], "epochs": 3, "batch_size": 32, "momentum": 0.9,
                  "weight_decay": 0.0002, "lr_schedule": "constant", "weight_init":
                  "he_uniform", "update_every_epochs": 1},
        "instances": {"train": [{**entry, "use": [0, 1]}], "test": [{**entry, "use": [2]}]},
        "budget": {"n_trials": 16, "trial_wall_time": 60},
        "configurator": {"name": "random"}, "execution": {"workers": 1},
        "output": str(base / "run"),
    }
    file = base / "tiny.yaml"
    file.write_text(yaml.safe_dump(scenario))
    proc = run_cli("tune", "--scenario", str(file), timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "aac-sparse report" in proc.stdout
    return base / "run"


def test_report_on_a_real_tuning_run(tiny_run, tmp_path):
    proc = run_cli("report", str(tiny_run), "-o", str(tmp_path), "--trees", "8")
    assert proc.returncode == 0, proc.stderr
    rows = read_csv(tmp_path / "instances.csv")
    assert [r["split"] for r in rows] == ["train", "train", "test"]
    importance = {r["parameter"] for r in read_csv(tmp_path / "importance.csv")}
    assert importance == {"zeta", "epsilon", "lr", "dropout"}  # the free parameters
    assert len(read_csv(tmp_path / "trajectory.csv")) == 16


def _ablation_trials(run_dir: Path):
    store = TrialStore.open_readonly(run_dir)
    try:
        return store.trials(origin="ablation")
    finally:
        store.close()


def test_racing_ablation_resumes_after_kill_9_and_repeats_nothing(tiny_run, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    args = [*CLI, "ablate", str(tiny_run), "--mode", "racing", "-o", str(tmp_path)]
    child = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 240
    try:
        while time.time() < deadline and child.poll() is None:
            if sum(t.finished for t in _ablation_trials(tiny_run)) >= 3:
                break
            time.sleep(0.2)
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    before = {t.trial_id: t for t in _ablation_trials(tiny_run) if t.finished}
    assert len(before) >= 3, child.stderr.read().decode() if child.stderr else ""

    proc = run_cli("ablate", str(tiny_run), "--mode", "racing", "-o", str(tmp_path),
                   timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "answered from the store" in proc.stdout
    after = _ablation_trials(tiny_run)
    finished = [t for t in after if t.finished]
    keys = [(t.config_id, t.instance, t.seed, t.budget) for t in finished]
    assert len(keys) == len(set(keys))  # no job ran twice
    for tid, t in before.items():  # and nothing finished earlier changed
        assert next(a for a in after if a.trial_id == tid).cost == t.cost
    assert not [t for t in after if t.status == "running"]
    steps = read_csv(tmp_path / "ablation-racing.csv")
    assert steps[0]["parameter"] == "(source)"
    assert sum(float(s["share"]) for s in steps) == pytest.approx(1.0, abs=1e-4) or \
        all(s["share"] in ("", "0") for s in steps[1:])
    # a third run reuses everything
    again = run_cli("ablate", str(tiny_run), "--mode", "racing", "-o", str(tmp_path))
    assert again.returncode == 0 and "0 trials run now" in again.stdout
    findings, _ = report(tiny_run, tmp_path / "r", n_forests=1, n_trees=8)
    assert findings.racing and len(findings.racing["steps"]) == len(steps)
