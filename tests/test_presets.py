"""Presets: seed 004's per-dataset settings, where each value comes from, and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from aac_sparse.engine.config import PRESET_SOURCES, PRESETS, preset_config

# seed 004, Table 7: epsilon, learning rate, batch size, weight init, All-ReLU alpha
TABLE7 = {
    "leukemia": (10, 0.005, 5, "normal", 0.75),
    "higgs": (10, 0.01, 128, "xavier", 0.05),
    "madelon": (10, 0.01, 32, "normal", 0.5),
    "fashion-mnist": (20, 0.01, 128, "he_uniform", 0.6),
    "cifar10": (20, 0.01, 128, "he_uniform", 0.75),
}
TABLE2_HIDDEN = {"leukemia": [27500, 27500], "higgs": [1000, 1000, 1000],
                 "madelon": [400, 100, 400], "fashion-mnist": [1000, 1000, 1000],
                 "cifar10": [4000, 1000, 4000]}


@pytest.mark.parametrize("dataset", sorted(TABLE7))
@pytest.mark.parametrize("ip", [False, True])
def test_seed_presets_follow_the_paper_and_say_where_each_value_comes_from(dataset, ip):
    name = f"set-allrelu{'-ip' if ip else ''}@{dataset}"
    cfg = preset_config(name)
    eps, lr, batch, init, alpha = TABLE7[dataset]
    assert (cfg.epsilon, cfg.lr, cfg.batch_size, cfg.weight_init, cfg.alpha) == \
        (eps, lr, batch, init, alpha)
    assert cfg.hidden == TABLE2_HIDDEN[dataset] and cfg.activation == "all_relu"
    assert (cfg.momentum, cfg.dropout, cfg.lr_schedule) == (0.9, 0.3, "constant")
    assert cfg.importance_pruning is ip and (not ip or cfg.ip_start == 200)
    sources = PRESET_SOURCES[name]
    assert {sources[k] for k in ("epsilon", "lr", "batch_size", "weight_init", "alpha")} == \
        {"seed 004, Table 7"}
    assert set(sources) == {k for k in sources if k in PRESETS[name]}  # no stray source


def test_presets_command_lists_presets_and_shows_one_with_sources(tmp_path):
    cli = [sys.executable, "-m", "aac_sparse"]
    # readline, which pytest loads, exports COLUMNS=80 to children; without it a pipe is wide
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    listed = subprocess.run([*cli, "presets"], capture_output=True, text=True, timeout=60,
                            env=env)
    assert listed.returncode == 0, listed.stderr
    assert all(name in listed.stdout for name in PRESETS)
    shown = subprocess.run([*cli, "presets", "set-allrelu@madelon"], capture_output=True,
                           text=True, timeout=60, env=env)
    assert shown.returncode == 0, shown.stderr
    rows = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:]]
            for line in shown.stdout.splitlines() if line.count("│") >= 5}
    assert rows["batch_size"][0] == "32" and rows["batch_size"][2] == "seed 004, Table 7"
    assert rows["weight_init"][0] == "normal"
    assert rows["ip_start"][2] == "default"  # no importance pruning in this preset
    bad = subprocess.run([*cli, "presets", "set@nowhere"], capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode == 2 and "set-allrelu@madelon" in bad.stderr
    out = tmp_path / "run"
    done = subprocess.run([*cli, "train", "--preset", "set-allrelu@madelon", "--dataset",
                           "digits", "--hidden", "40,20,40", "--epochs", "2", "--quiet",
                           "-o", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    config = json.loads((out / "config.json").read_text())
    assert (config["batch_size"], config["alpha"], config["weight_init"]) == (32, 0.5, "normal")
