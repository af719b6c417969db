"""``aac-sparse study`` end to end: a tiny study run through the real CLI, killed and
resumed, then its report checked against numbers recomputed from the trial stores."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy import stats

from aac_sparse.errors import ConfigError
from aac_sparse.tuning.store import TrialStore
from aac_sparse.tuning.study import StudyFile, load_study, plan

SYNTH = {"n_samples": 150, "n_features": 12, "n_classes": 3}
N_TRIALS = 4


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("AAC_SPARSE_CACHE", str(tmp_path / "prepared"))


def tiny_study(tmp_path: Path, **extra) -> Path:
    entry = {"dataset": "synthetic", "options": SYNTH, "folds": 4}
    spec = {"name": "tiny-study",
            "instances": {"train": [{**entry, "use": [0, 1]}],
                          "test": [{**entry, "use": [2, 3]}]},
            "fixed": {"hidden": [16, 16], "epochs": 2},
            "spaces": ["set", "meta"], "configurators": ["random"], "seeds": 2,
            "budget": {"n_trials": N_TRIALS, "trial_wall_time": 60},
            "execution": {"workers": 2}, "racing": True, **extra}
    file = tmp_path / "study.yaml"
    file.write_text(yaml.safe_dump(spec))
    return file


def _cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "aac_sparse", "study", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _trials(run_dir: Path):
    store = TrialStore.open_readonly(run_dir)
    try:
        assert store.integrity_check() == "ok"
        return store.trials(), store.meta()
    finally:
        store.close()


def test_a_killed_study_resumes_and_its_report_matches_the_stores(tmp_path):
    file = tiny_study(tmp_path)
    out = tmp_path / "out"
    proc = _cli(str(file), "-o", str(out))
    second = out / "runs" / "set-random-seed1" / "trials.sqlite"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None and not second.exists():
        time.sleep(0.1)
    assert proc.poll() is None, proc.communicate()[1]
    time.sleep(1.0)
    os.killpg(proc.pid, signal.SIGKILL)  # the study, its run and its workers
    proc.wait()
    first_run = out / "runs" / "set-random-seed0"
    before = {t.trial_id: (t.config_id, t.status, t.cost) for t in _trials(first_run)[0]
              if t.finished}
    again = _cli(str(file), "-o", str(out))
    stdout, err = again.communicate(timeout=600)
    assert again.returncode == 0, err
    assert "Traceback" not in err
    assert "study.html" in stdout

    # every run had exactly the same budget; nothing was lost or run twice
    runs = json.loads((out / "study-plan.json").read_text())["runs"]
    assert len(runs) == 4
    stored: dict[str, tuple[list, dict]] = {}
    for r in runs:
        trials, meta = _trials(out / r["run_dir"])
        stored[r["name"]] = (trials, meta)
        tuning = [t for t in trials if t.origin == "configurator" and t.finished]
        assert len(tuning) == N_TRIALS, r["name"]
        for origin in ("configurator", "final", "ablation"):
            keys = Counter((t.config_id, t.instance, t.seed, t.budget) for t in trials
                           if t.origin == origin and t.finished)
            assert not keys or max(keys.values()) == 1, (r["name"], origin)
    after = {t.trial_id: (t.config_id, t.status, t.cost) for t in stored[
        "set-random-seed0"][0]}
    assert all(after[k] == v for k, v in before.items())

    # the report's numbers are the stores' numbers, its tests scipy's
    report = json.loads((out / "study.json").read_text())
    for q1 in report["q1"]:
        default, tuned = [], []
        for r in runs:
            if (r["space"], r["configurator"]) != (q1["space"], q1["configurator"]):
                continue
            trials, meta = stored[r["name"]]
            by_id = {t.trial_id: t for t in trials}
            for row in sorted(meta["final_comparison"]["rows"], key=lambda x: x["instance"]):
                if row["split"] != "test":
                    continue
                d, i = by_id[row["default_trial"]], by_id[row["incumbent_trial"]]
                default.append(d.result["test_error"] if d.status == "ok" else np.nan)
                tuned.append(i.result["test_error"] if i.status == "ok" else np.nan)
        assert q1["default"] == pytest.approx(default, nan_ok=True)
        assert q1["tuned"] == pytest.approx(tuned, nan_ok=True)
        a, b = np.array(default), np.array(tuned)
        keep = np.isfinite(a) & np.isfinite(b)
        d = b[keep] - a[keep]
        test = q1["test"]
        assert test["n"] == len(d)
        assert test["mean_delta"] == pytest.approx(float(d.mean()))
        if np.any(d != 0):
            w = stats.wilcoxon(d, zero_method="wilcox", method="exact")
            assert test["wilcoxon_p"] == pytest.approx(w.pvalue)
        perm = stats.permutation_test((d,), np.mean, permutation_type="samples",
                                      n_resamples=np.inf, alternative="two-sided")
        assert test["permutation_p"] == pytest.approx(min(1.0, perm.pvalue))
    (q2,) = [q for q in report["q2"] if q["best"]]
    assert q2["single"] == "set" and len(q2["meta_tuned"]) == 4
    # racing ablation from both presets ran on the best meta run and was reported
    meta_metas = [stored[r["name"]][1] for r in runs if r["space"] == "meta"]
    assert any("ablation_racing.set" in m for m in meta_metas)
    assert "racing_set" in report["q3"] and "groups" in report["q3"]
    html = (out / "study.html").read_text()
    assert "Q1" in html and "Q2" in html and "Q3" in html and "data:image/png;base64" in html
    assert any(line.startswith("Q2 with random") for line in report["conclusions"])
    for name in ("q1_configurability", "q2_combination", "q3_groups", "runs"):
        assert (out / f"{name}.csv").is_file()

    # re-running the finished study adds nothing
    n_rows = {k: len(v[0]) for k, v in stored.items()}
    final = _cli(str(file), "-o", str(out))
    _, err = final.communicate(timeout=300)
    assert final.returncode == 0, err
    for r in runs:
        assert len(_trials(out / r["run_dir"])[0]) == n_rows[r["name"]]


@pytest.mark.parametrize("change,message", [
    ({"budget": {"n_trials": 4, "wall_time": 60}}, "wall_time"),
    ({"budget": {"n_trials": None}}, "n_trials"),
    ({"seeds": [1, 1]}, "distinct"),
    ({"spaces": []}, "spaces"),
    ({"colour": 1}, "colour"),
])
def test_bad_study_files_are_clear_errors(tmp_path, change, message):
    file = tiny_study(tmp_path, **change)
    with pytest.raises(ConfigError, match=message):
        load_study(file)


def test_bundled_studies_plan_and_check(tmp_path):
    from aac_sparse.tuning.checks import check_scenario

    for name in ("leukemia-study.yaml", "smoke-study.yaml"):
        study, file = load_study(name)
        assert isinstance(study, StudyFile)
        runs = plan(study, file, tmp_path / name)
        assert len(runs) == len(study.spaces) * len(study.configurators) * \
            len(study.seed_list)
        assert len({r.scenario.budget.n_trials for r in runs}) == 1
        for r in runs[:2]:
            check_scenario(r.scenario, file, prepare=False)


def test_study_cli_usage_and_bad_input_exit_2(tmp_path):
    res = subprocess.run([sys.executable, "-m", "aac_sparse", "study", "nope.yaml"],
                         capture_output=True, text=True)
    assert res.returncode == 2 and "not found" in res.stderr + res.stdout
    assert "Traceback" not in res.stderr


def test_every_meta_parameter_belongs_to_one_component_group():
    from aac_sparse.space.definition import COMPONENT_GROUPS, get_space

    names = [n for group in COMPONENT_GROUPS.values() for n in group]
    assert len(names) == len(set(names))
    assert set(get_space("meta", {"workers": 2}).keys()) == set(names)


def test_a_scenario_given_as_a_study_says_so(tmp_path):
    file = tmp_path / "sc.yaml"
    file.write_text(yaml.safe_dump({"name": "x", "space": "meta",
                                    "instances": {"train": [{"dataset": "digits"}]}}))
    with pytest.raises(ConfigError, match="scenario file.*aac-sparse tune"):
        load_study(file)
