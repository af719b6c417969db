"""The irace export in the real irace (R): every bundled space's files are read by
``irace::readParameters`` and ``readConfigurationsFile``, and a tiny real irace tuning (600
experiments, a synthetic cost computed from the parameters by a Python target runner)
samples only configurations that are valid in ConfigSpace; the shipped target runner
runs the real target as irace calls it.  Skipped, saying so, where R's irace is
not installed (``.ci/run`` installs Debian's ``r-cran-irace``)."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ConfigSpace import Configuration

from aac_sparse.space.definition import SPACES, get_space
from aac_sparse.space.export import irace_files

REPO = Path(__file__).resolve().parents[1]


def _has_irace() -> bool:
    if shutil.which("Rscript") is None:
        return False
    res = subprocess.run(["Rscript", "-e", "library(irace)"], capture_output=True)
    return res.returncode == 0


pytestmark = pytest.mark.skipif(not _has_irace(), reason="R's irace is not installed "
                                "(apt install r-cran-irace)")


def rscript(code: str, cwd: Path) -> str:
    res = subprocess.run(["Rscript", "-e", code], capture_output=True, text=True, cwd=cwd,
                         timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout


@pytest.mark.parametrize("name", list(SPACES))
def test_irace_reads_every_exported_space(tmp_path, name):
    cs = get_space(name)
    for file, text in irace_files(cs, name).items():
        (tmp_path / file).write_text(text)
    digits = next(line.split("=")[1].strip() for line in
                  (tmp_path / f"{name}.irace-scenario.txt").read_text().splitlines()
                  if line.startswith("digits"))
    out = rscript(f"""
        library(irace)
        p <- readParameters(file = "{name}.irace.txt", digits = {digits})
        d <- readConfigurationsFile("{name}.irace-default.txt", p)
        cat(length(p$names), nrow(d), ncol(d), "\\n")
        cat(paste(p$names, collapse = " "), "\\n")
    """, tmp_path)
    counts, names = out.strip().splitlines()[-2:]
    n, rows, _ = map(int, counts.split())
    assert n == len(cs) and rows == 1
    assert set(names.split()) == set(cs.keys())


RUNNER = '''#!{python}
"""irace target runner: a synthetic cost from the parameters (no training)."""
import math, sys
args = sys.argv[1:]
config = {{}}
for a in args[4:]:
    if a.startswith("--") and "=" in a:
        k, v = a[2:].split("=", 1)
        config[k] = v
lr = float(config.get("lr", 0.01))
cost = abs(math.log10(lr) + 2.0) + (0.5 if config.get("activation") == "relu" else 0.0)
cost += 0.1 * float(config.get("dropout", 0.0)) + 0.01 * (hash(args[1]) % 7)
print(cost)
'''


def test_a_tiny_real_irace_tuning_samples_only_valid_configurations(tmp_path):
    """irace 3 (Debian) tunes over the full meta space with the forbidden file and the
    default configuration; every configuration it sampled is valid in ConfigSpace."""
    cs = get_space("meta")
    for file, text in irace_files(cs, "meta").items():
        (tmp_path / file).write_text(text)
    runner = tmp_path / "target-runner"
    runner.write_text(RUNNER.format(python=sys.executable))
    runner.chmod(0o755)
    (tmp_path / "instances.txt").write_text("i1\ni2\ni3\n")
    scenario = (tmp_path / "meta.irace-scenario.txt").read_text() + (
        'targetRunner = "./target-runner"\ntrainInstancesFile = "instances.txt"\n'
        'maxExperiments = 600\nparallel = 2\nlogFile = "irace.Rdata"\nseed = 1\n'
        'execDir = "."\n')
    (tmp_path / "scenario.txt").write_text(scenario)
    out = rscript("""
        library(irace)
        s <- readScenario("scenario.txt")
        irace.main(scenario = s)
        load("irace.Rdata")
        cfgs <- iraceResults$allConfigurations
        names <- iraceResults$parameters$names
        write.csv(cfgs[, names, drop = FALSE], "configs.csv", row.names = FALSE)
    """, tmp_path)
    assert "best" in out.lower()
    with open(tmp_path / "configs.csv", newline="") as fh:
        configs = [{k: v for k, v in row.items() if v != "NA"} for row in csv.DictReader(fh)]
    assert len(configs) >= 5
    for values in configs:
        typed = {}
        for k, v in values.items():
            hp = cs[k]
            if hasattr(hp, "choices") or hasattr(hp, "sequence"):
                choices = list(getattr(hp, "choices", None) or hp.sequence)
                typed[k] = next(c for c in choices if str(c) == str(v))
            elif hasattr(hp, "value"):
                typed[k] = hp.value
            else:
                typed[k] = type(hp.default_value)(v)
        Configuration(cs, values=typed).check_valid_configuration()


def test_irace_target_runner_runs_the_real_target_as_irace_calls_it(tmp_path, monkeypatch):
    """``irace-target --write`` gives files irace 3.5 accepts (readScenario and
    checkScenario), and the generated target-runner, called as irace calls it with the
    default configuration, prints the validation error of a real training run."""
    from aac_sparse.target import target
    from aac_sparse.tuning.scenario import load_scenario

    monkeypatch.setenv("AAC_SPARSE_CACHE", str(tmp_path / "cache"))
    spec = {"name": "irace-tiny", "space": "set", "fixed": {"hidden": [16], "epochs": 2},
            "instances": {"train": [{"dataset": "synthetic", "folds": 3, "use": [0, 1],
                                     "options": {"n_samples": 150, "n_features": 12,
                                                 "n_classes": 3}}]},
            "budget": {"n_trials": 300, "trial_wall_time": 60}}
    file = tmp_path / "sc.yaml"
    file.write_text(json.dumps(spec))
    files = tmp_path / "irace"
    res = subprocess.run([sys.executable, "-m", "aac_sparse", "irace-target", "-s", str(file),
                          "--write", str(files)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    out = rscript("""
        library(irace)
        s <- checkScenario(readScenario("scenario.txt"))
        p <- readParameters(s$parameterFile, digits = s$digits)
        cat(length(p$names), length(s$instances), file.exists(s$targetRunner), "\\n")
    """, files)
    n, n_inst, runner = out.strip().splitlines()[-1].split()
    assert int(n_inst) == 2 and runner == "TRUE"
    header, values = (files / "space.irace-default.txt").read_text().splitlines()[:2]
    args = ["1", "1", "7", "1"] + [f"--{k}={v}" for k, v in
                                   zip(header.split(), values.split(), strict=True) if v != "NA"]
    run = subprocess.run([str(files / "target-runner"), *args], capture_output=True,
                         text=True, timeout=300, cwd=files)
    assert run.returncode == 0, run.stderr
    cost = float(run.stdout.strip().splitlines()[-1])
    sc, _ = load_scenario(file)
    cs = get_space("set", sc.fixed)
    default = {**dict(cs.get_default_configuration()), **sc.fixed}
    inst = sc.train_instances().instances[1]
    assert cost == pytest.approx(target(default, inst, 7)["val_error"])
    bad = subprocess.run([str(files / "target-runner"), "1", "1", "7", "1", "--lr=abc"],
                         capture_output=True, text=True, timeout=120, cwd=files)
    assert bad.returncode == 2 and "lr" in bad.stderr and "Traceback" not in bad.stderr
