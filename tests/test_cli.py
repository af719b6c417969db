"""The command line as a user meets it: files written, clear errors, no tracebacks."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from aac_sparse.data.idx import read_idx
from aac_sparse.data.loaders.fashion_mnist import load as load_fashion_mnist
from aac_sparse.errors import DataError


def cli(*args, env=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "aac_sparse", *args], capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, cwd=cwd, timeout=600)


def test_train_writes_config_metrics_and_model(tmp_path):
    out = tmp_path / "run"
    res = cli("train", "--preset", "set", "--dataset", "digits", "--hidden", "64,64",
              "--epochs", "3", "--set", "batch_size=32", "-o", str(out))
    assert res.returncode == 0, res.stderr
    assert {p.name for p in out.iterdir()} == {"config.json", "metrics.csv", "metrics.json",
                                               "model.npz"}
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["summary"]["status"] == "ok" and len(metrics["history"]) == 3
    assert json.loads((out / "config.json").read_text())["batch_size"] == 32
    assert (out / "metrics.csv").read_text().count("\n") == 4
    assert "test error" in res.stdout and "accuracy" in res.stdout


@pytest.mark.parametrize("args,needle", [
    (["train", "--set", "zeta=3"], "zeta"),
    (["train", "--set", "colour=blue"], "unknown setting"),
    (["train", "--set", "noequals"], "KEY=VALUE"),
    (["train", "--preset", "nope"], "unknown preset"),
    (["train", "--dataset", "nope"], "unknown dataset"),
    (["train", "--config", "/nonexistent.yaml"], "no such file"),
    (["data", "fetch", "synthetic"], "cannot be fetched"),
])
def test_user_mistakes_give_a_message_and_exit_2_without_traceback(args, needle):
    res = cli(*args)
    assert res.returncode == 2
    assert needle in res.stderr and "Traceback" not in res.stderr


def test_bad_config_file_names_file_and_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("preset: set\nepochs: -1\nhidden: [10, 10]\n")
    res = cli("train", "--config", str(bad))
    assert res.returncode == 2 and str(bad) in res.stderr and "epochs" in res.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text("epochs: [1,\n")
    res = cli("train", "--config", str(broken))
    assert res.returncode == 2 and "not valid YAML" in res.stderr


def test_missing_fashion_mnist_names_every_place_and_the_fix(tmp_path):
    res = cli("train", "--dataset", "fashion-mnist",
              env={"AAC_SPARSE_DATA": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache")})
    if res.returncode == 0:
        pytest.skip("FashionMNIST is installed system-wide here")
    assert res.returncode == 2
    assert str(tmp_path / "fashion-mnist") in res.stderr
    assert res.stderr.count(str(tmp_path / "fashion-mnist")) == 1  # each place listed once
    assert "aac-sparse data fetch fashion-mnist" in res.stderr


def test_help_explains_every_command_and_each_command_its_options():
    from aac_sparse.cli.app import app

    res = cli("--help")
    assert res.returncode == 0, res.stderr
    commands = [c.name for c in app.registered_commands] + [g.name for g in app.registered_groups]
    assert len(commands) >= 12
    listed = {line.split("│")[1].split()[0] for line in res.stdout.splitlines()
              if line.startswith("│ ") and line.split("│")[1].split()}
    assert set(commands) <= listed  # every command, each with its one-line help
    for line in res.stdout.splitlines():
        if line.startswith("│ ") and line.split("│")[1].split()[:1] == ["train"]:
            assert "sparse" in line
    train = cli("train", "--help")
    assert train.returncode == 0
    for option in ("--preset", "--config", "--dataset", "--instance", "--set", "--seed"):
        assert option in train.stdout


# Not one of these is needed to show help, list datasets, scenarios or presets.
HEAVY = ("numba", "optuna", "smac", "ConfigSpace", "pandas", "dask", "scipy", "sklearn",
         "matplotlib", "torch")


@pytest.mark.parametrize("command", [["--help"], ["data", "list"], ["scenarios"],
                                     ["presets"]])
def test_quick_commands_import_no_heavy_module(command):
    res = subprocess.run([sys.executable, "-X", "importtime", "-m", "aac_sparse", *command],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    imported = {line.split("|")[-1].strip() for line in res.stderr.splitlines()
                if line.startswith("import time:")}
    assert imported and not {m for m in imported if m.split(".")[0] in HEAVY}
    if command == ["--help"]:  # help needs neither numpy nor pydantic
        assert not {m for m in imported if m.split(".")[0] in ("numpy", "pydantic")}


def test_tables_in_a_pipe_are_not_cut(tmp_path):
    """Piped (a script, a CI log), tables keep every name whole on one line: no ellipsis,
    no name folded over two lines."""
    from aac_sparse.data.registry import REGISTRY
    from aac_sparse.tuning.scenario import bundled

    # readline, which pytest loads, exports COLUMNS=80 to every child process
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    for args, names in ((("data", "list"), list(REGISTRY)), (("scenarios",), bundled()),
                        (("presets",), None)):
        res = subprocess.run([sys.executable, "-m", "aac_sparse", *args], capture_output=True,
                             text=True, env=env, timeout=120)
        assert res.returncode == 0, res.stderr
        assert "…" not in res.stdout, args
        if names is None:
            from aac_sparse.engine.config import PRESETS

            names = list(PRESETS)
        first_cells = [line.split("│")[1].strip() for line in res.stdout.splitlines()
                       if line.startswith("│")]
        assert set(names) <= set(first_cells), args


def write_idx(path, array):
    codes = {np.uint8: 0x08, np.int32: 0x0C}
    header = bytes([0, 0, codes[array.dtype.type], array.ndim])
    header += b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    data = array.astype(array.dtype.newbyteorder(">")).tobytes()
    with gzip.open(path, "wb") as fh:
        fh.write(header + data)


def test_idx_files_load_as_fashion_mnist(tmp_path):
    rng = np.random.default_rng(0)
    d = tmp_path / "fm"
    d.mkdir()
    write_idx(d / "train-images-idx3-ubyte.gz", rng.integers(0, 255, (30, 28, 28), dtype=np.uint8))
    write_idx(d / "train-labels-idx1-ubyte.gz", rng.integers(0, 10, 30, dtype=np.uint8))
    write_idx(d / "t10k-images-idx3-ubyte.gz", rng.integers(0, 255, (7, 28, 28), dtype=np.uint8))
    write_idx(d / "t10k-labels-idx1-ubyte.gz", rng.integers(0, 10, 7, dtype=np.uint8))
    data = load_fashion_mnist(d)
    assert data.x.shape == (30, 784) and data.test_x.shape == (7, 784)
    assert data.x.dtype == np.float32 and data.y.dtype == np.int64
    raw = (d / "t10k-labels-idx1-ubyte.gz").read_bytes()
    (d / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(gzip.decompress(raw)[:-3]))
    with pytest.raises(DataError, match="truncated"):
        read_idx(d / "t10k-labels-idx1-ubyte.gz")


def test_real_fashion_mnist_when_present():
    try:
        data = load_fashion_mnist()
    except DataError:
        pytest.skip("FashionMNIST not fetched here (aac-sparse data fetch fashion-mnist)")
    assert data.x.shape == (60000, 784) and data.test_x.shape == (10000, 784)
    assert np.bincount(data.y).tolist() == [6000] * 10
    assert np.bincount(data.test_y).tolist() == [1000] * 10


def test_exit_codes_reach_the_shell_diverged_run_and_interrupt(tmp_path):
    res = cli("train", "--preset", "set", "--dataset", "digits", "--hidden", "32",
              "--epochs", "3", "--set", "lr=1000000", "--set", "momentum=0", "--set",
              "dropout=0", "-o", str(tmp_path / "run"))
    assert res.returncode == 3 and "diverged" in res.stdout
    import signal
    import time

    proc = subprocess.Popen([sys.executable, "-m", "aac_sparse", "train", "--dataset",
                             "synthetic", "--data-option", "n_samples=4000", "--epochs", "200",
                             "--hidden", "256,256", "-o", str(tmp_path / "long")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (tmp_path / "long" / "metrics.csv").exists() and time.time() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err


def test_ctrl_c_inside_a_numba_kernel_counts_as_an_interrupt():
    """Ctrl-C landing in compiled code surfaces as SystemError (context: the interrupt)."""
    from aac_sparse.cli.app import _caused_by_interrupt

    try:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise SystemError("CPUDispatcher(...) returned a result with an exception set")  # noqa: B904, E501
    except SystemError as exc:
        assert _caused_by_interrupt(exc)
    assert not _caused_by_interrupt(SystemError("a real bug"))
