"""The irace export in the real irace (R): every bundled space's files are read by
``irace::readParameters`` and ``readConfigurationsFile``, and a tiny real irace tuning
(600 experiments; a synthetic cost computed from the parameters by a Python target runner) samples only
configurations that are valid in ConfigSpace.  Skipped, saying so, where R's irace is
not installed (``.ci/run`` installs Debian's ``r-cran-irace``)."""

from __future__ import annotations

import csv
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
