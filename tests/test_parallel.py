"""WASSP-SGD and WASAP-SGD over real MPI ranks (mpi4py + the mpich wheel's mpiexec).

Every test starts real ranks: through the launcher of ``train_parallel``, through the CLI
(which starts them itself or runs under the user's ``mpiexec``), or through the tuning
executor with the real target.  Tiny models on digits, seconds each.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from aac_sparse.engine.config import preset_config
from aac_sparse.engine.model import model_arrays
from aac_sparse.engine.parallel import ParallelConfig, train_parallel
from aac_sparse.engine.parallel.averaging import average_models, target_nnz
from aac_sparse.engine.trainer import build_model, train

# The default suite needs MPI (make installs the 'mpi' extra): a missing one fails here,
# loudly, instead of skipping the data-parallel trainers.
MPIEXEC = Path(sys.executable).parent / "mpiexec"
CLI = [sys.executable, "-m", "aac_sparse"]
RANK_MODULE = "aac_sparse.engine.parallel.rank"


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.data / 16).astype(np.float32)
    return x[:1400], d.target[:1400], x[1400:], d.target[1400:]


def same_model(a, b) -> bool:
    return all(np.array_equal(p, q) for la, lb in zip(a.layers, b.layers, strict=True)
               for p, q in ((la.w, lb.w), (la.indices, lb.indices), (la.bias, lb.bias),
                            (la.indptr, lb.indptr)))


@pytest.mark.parametrize("preset,extra", [
    ("set", {}),
    ("rigl", {"update_every_steps": 7}),  # step-scheduled gradient regrowth on rank 0
    ("set-allrelu-ip", {"ip_start": 2, "ip_every": 1}),  # neurons removed, then broadcast
])
def test_wassp_with_one_worker_is_sequential_training_bit_for_bit(digits, preset, extra):
    x, y, xv, yv = digits
    cfg = preset_config(preset, hidden=[40, 30], epochs=4, batch_size=32, **extra)
    seq = train(cfg, x, y, xv, yv)
    par = train_parallel(cfg, ParallelConfig(strategy="wassp", workers=1), x, y, xv, yv)
    assert par.status == seq.status == "ok"
    assert same_model(seq.model, par.model)
    drop = ("train_s", "evolution_s", "bytes_per_step")
    assert ([{k: v for k, v in r.items() if k not in drop} for r in par.history]
            == [{k: v for k, v in r.items() if k not in drop} for r in seq.history])


def test_wassp_with_k_workers_is_sequential_training_with_k_times_the_batch(digits):
    x, y, xv, yv = digits
    cfg = preset_config("set", hidden=[40, 30], epochs=2, batch_size=25, dropout=0.0,
                        zeta=0.0)
    seq = train(cfg.model_copy(update={"batch_size": 50}), x, y, xv, yv)
    par = train_parallel(cfg, ParallelConfig(strategy="wassp", workers=2, lr_scaling="none"),
                         x, y, xv, yv)
    for a, b in zip(seq.model.layers, par.model.layers, strict=True):
        assert np.array_equal(a.indices, b.indices)
        np.testing.assert_allclose(b.w, a.w, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose([r["train_loss"] for r in par.history],
                               [r["train_loss"] for r in seq.history], rtol=1e-5)
    # what crosses ranks per step is the structure-aligned gradient: O(nnz), never dense
    nnz_floats = sum(layer.nnz + layer.n_out for layer in par.model.layers)
    assert par.history[-1]["bytes_per_step"] == 2 * 4 * nnz_floats


def test_wassp_scales_the_learning_rate_linearly_after_warm_up():
    p = ParallelConfig(strategy="wassp", workers=4, warmup_epochs=2)
    assert [p.lr_factor(e) for e in range(4)] == [1.0, 2.5, 4.0, 4.0]
    assert ParallelConfig(strategy="wasap", workers=4).lr_factor(0) == 1.0


def test_wasap_converges_like_sequential_training_at_equal_epochs(digits):
    x, y, xv, yv = digits
    cfg = preset_config("set", hidden=[64, 64], epochs=10, batch_size=32)
    seq = train(cfg, x, y).model.evaluate(xv, yv)[1]
    res = train_parallel(cfg, ParallelConfig(strategy="wasap", workers=2), x, y, xv, yv)
    wasap = res.model.evaluate(xv, yv)[1]
    assert wasap >= seq - 0.05, (wasap, seq)  # asynchronous: the order of updates varies
    assert res.history[-1]["val_acc"] == pytest.approx(wasap)
    assert res.parallel["staleness_max"] >= 1  # two workers really were served out of turn
    assert {r["nnz"] for r in res.history} == {res.history[0]["nnz"]}


def test_phase_two_syncs_exactly_where_configured_and_keeps_the_target_nnz(digits):
    x, y, xv, yv = digits
    cfg = preset_config("set", hidden=[40, 30], epochs=6, batch_size=32)
    par = ParallelConfig(strategy="wasap", workers=2, phase2_from=0.5, sync_every=5)
    res = train_parallel(cfg, par, x, y, xv, yv)
    steps = int(np.ceil(700 / 32))  # local steps per epoch: the larger shard of 1400 / 2
    phase2 = range(par.phase2_epoch(6), 6)
    expected = [(e + 1, s) for i, e in enumerate(phase2) for s in
                range(i * steps + 1, (i + 1) * steps + 1) if s % 5 == 0]
    last = len(phase2) * steps
    if last % 5:
        expected.append((6, last))  # the final averaging
    assert [tuple(s) for s in res.parallel["syncs"]] == expected
    assert res.history[-1]["nnz"] == res.history[0]["nnz"]  # pruned back after the union
    # with syncs only at the end the result is one average of the workers' last models
    end = train_parallel(cfg, par.model_copy(update={"sync_every": 0, "averaging": "final"}),
                         x, y, xv, yv)
    assert end.parallel["syncs"] == [[6, last]]


def test_sparse_average_works_on_the_union_and_prunes_back_by_magnitude():
    rng = np.random.default_rng(0)
    cfg = preset_config("set", hidden=[12], epsilon=2)
    a = model_arrays(build_model(cfg, 10, 3, rng))
    b = model_arrays(build_model(cfg, 10, 3, rng))
    avg = average_models([a, b], target=target_nnz(a))
    assert target_nnz(avg) == target_nnz(a)

    def dense(m, li, n_in, n_out):
        out = np.zeros((n_out, n_in))
        rows = np.repeat(np.arange(n_out), np.diff(m[f"layer{li}_indptr"]))
        out[rows, m[f"layer{li}_indices"]] = m[f"layer{li}_w"]
        return out

    for li, (n_in, n_out) in enumerate(((10, 12), (12, 3))):
        mean = (dense(a, li, n_in, n_out) + dense(b, li, n_in, n_out)) / 2
        got = dense(avg, li, n_in, n_out)
        kept = got != 0
        np.testing.assert_allclose(got[kept], mean[kept], rtol=1e-6)
        assert np.abs(mean[~kept]).max(initial=0) <= np.abs(mean[kept]).min() + 1e-7


def test_cli_starts_the_ranks_itself_and_writes_the_run(tmp_path):
    out = tmp_path / "run"
    res = subprocess.run([*CLI, "train", "--preset", "set", "--dataset", "digits", "--hidden",
                          "32,32", "--epochs", "3", "--parallel", "wassp", "--workers", "2",
                          "-q", "-o", str(out)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    import json

    summary = json.loads((out / "metrics.json").read_text())["summary"]
    assert summary["status"] == "ok" and summary["test_error"] < 0.6
    assert json.loads((out / "config.json").read_text())["parallel"]["strategy"] == "wassp"


def test_cli_under_the_users_mpiexec_reports_once(tmp_path):
    out = tmp_path / "run"
    res = subprocess.run([str(MPIEXEC), "-n", "3", *CLI, "train", "--preset", "set",
                          "--dataset", "digits", "--hidden", "32,32", "--epochs", "2",
                          "--parallel", "wasap", "--workers", "2", "-o", str(out)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("done in") == 1 and res.stdout.count("epoch    2") == 1
    assert (out / "model.npz").exists()
    wrong = subprocess.run([str(MPIEXEC), "-n", "2", *CLI, "train", "--dataset", "digits",
                            "--parallel", "wasap", "--workers", "2", "-o", str(out)],
                           capture_output=True, text=True, timeout=120)
    assert wrong.returncode == 2 and "mpiexec -n 3" in wrong.stderr


def test_missing_mpi_is_a_clear_error_not_a_traceback(tmp_path):
    code = ("import sys; sys.modules['mpi4py'] = None; "
            "sys.argv = ['aac-sparse', 'train', '--dataset', 'digits', '--epochs', '1', "
            f"'--parallel', 'wasap', '-o', {str(tmp_path / 'r')!r}]; "
            "from aac_sparse.cli.app import main; main()")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 2
    assert "pip install 'aac-sparse[mpi]'" in res.stderr and "Traceback" not in res.stderr


def _ranks_of(pid: int) -> list[psutil.Process]:
    try:
        kids = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    return [p for p in kids if RANK_MODULE in " ".join(_cmdline(p))]


def _cmdline(p: psutil.Process) -> list[str]:
    try:
        return p.cmdline()
    except psutil.Error:
        return []


def test_a_rank_killed_mid_run_takes_the_others_down_quickly(tmp_path):
    cmd = [*CLI, "train", "--preset", "set", "--dataset", "digits", "--hidden", "256,256",
           "--epochs", "500", "--parallel", "wasap", "--workers", "2", "-q",
           "-o", str(tmp_path / "run")]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.monotonic() + 60
        while len(ranks := _ranks_of(proc.pid)) < 3:
            assert time.monotonic() < deadline and proc.poll() is None, "ranks never started"
            time.sleep(0.1)
        time.sleep(1.0)  # well into training
        worker = next(p for p in ranks if p.environ().get("PMI_RANK") == "2")
        worker.send_signal(signal.SIGKILL)
        t0 = time.monotonic()
        _, err = proc.communicate(timeout=30)
        assert time.monotonic() - t0 < 10
        assert proc.returncode != 0 and "parallel run failed" in err
        assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in ranks)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_an_exception_in_one_rank_aborts_every_rank(tmp_path):
    script = tmp_path / "boom.py"
    script.write_text(
        "import time\n"
        "from aac_sparse.engine.parallel.runtime import abort_on_error, mpi\n"
        "comm = mpi().COMM_WORLD\n"
        "with abort_on_error(comm):\n"
        "    if comm.Get_rank() == 1:\n"
        "        raise RuntimeError('worker failed')\n"
        "    comm.recv(source=1)  # would wait forever without the abort\n")
    t0 = time.monotonic()
    res = subprocess.run([str(MPIEXEC), "-n", "2", sys.executable, str(script)],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode != 0 and "rank 1: RuntimeError: worker failed" in res.stderr
    assert time.monotonic() - t0 < 15


def test_a_tuning_trial_killed_at_its_wall_time_leaves_no_rank_behind(tmp_path, monkeypatch):
    from aac_sparse.data.instances import Instance
    from aac_sparse.tuning.executor import LocalExecutor
    from aac_sparse.tuning.trial import TrialSpec

    monkeypatch.setenv("AAC_SPARSE_CACHE", str(tmp_path / "cache"))
    inst = Instance.make("digits")
    inst.load()
    quick = {"hidden": [16], "epochs": 2, "workers": 2, "parallel": "wasap"}
    slow = {"hidden": [512, 512], "epochs": 500, "workers": 2, "parallel": "wassp"}
    done = {}
    with LocalExecutor("aac_sparse.target:target", n_workers=1, wall_time=8) as ex:
        for trial_id, config in ((1, quick), (2, slow)):
            ex.submit(TrialSpec(trial_id, config, inst.id, 0, None))
            worker_pid = ex.worker_pids()[0]
            deadline = time.monotonic() + 60
            while trial_id not in done and time.monotonic() < deadline:
                for event in ex.poll(0.2):
                    if hasattr(event, "outcome"):
                        done[event.spec.trial_id] = event.outcome
    assert done[1].status == "ok", done[1].error
    assert done[1].result["test_error"] < 0.9
    assert done[2].status == "timeout"
    time.sleep(1)
    leftover = [p for p in psutil.process_iter(["cmdline"])
                if RANK_MODULE in " ".join(p.info["cmdline"] or [])
                and p.pid != os.getpid()]
    assert not leftover, [p.info["cmdline"] for p in leftover]
    assert not psutil.pid_exists(worker_pid) or \
        psutil.Process(worker_pid).status() == psutil.STATUS_ZOMBIE


def test_the_parallel_group_is_tuned_only_where_a_scenario_gives_trials_workers():
    from aac_sparse.space.definition import PARALLEL, get_space

    assert not set(PARALLEL) & set(get_space("meta").keys())  # existing spaces unchanged
    cs = get_space("meta", {"workers": 2})
    assert set(PARALLEL) <= set(cs.keys())
    assert cs["parallel"].default_value == "none"  # off by default
    assert set(get_space("set", {"workers": 2, "parallel": "wasap"}).keys()) >= {
        "phase2_from", "sync_every"}


def test_a_tuned_wassp_incumbent_retrains_exactly_through_the_cli(tmp_path, monkeypatch):
    """A scenario giving each trial 2 MPI workers: trials run WASSP-SGD through the real
    executor and target; incumbent.yaml carries the parallel section, and 'train --config
    incumbent.yaml --instance ID' (which starts the ranks itself) reproduces the stored
    test error bit for bit (synchronous training is deterministic)."""
    import json

    import yaml

    from aac_sparse.tuning.scenario import Scenario
    from aac_sparse.tuning.store import TrialStore
    from aac_sparse.tuning.tuner import tune

    monkeypatch.setenv("AAC_SPARSE_CACHE", str(tmp_path / "prepared"))
    entry = {"dataset": "synthetic", "options": {"n_samples": 180, "n_features": 16,
                                                 "n_classes": 3}, "folds": 3}
    sc = Scenario(name="mpi", space="set",
                  fixed={"hidden": [24, 24], "epochs": 3, "batch_size": 32, "workers": 2,
                         "parallel": "wassp"},
                  instances={"train": [{**entry, "use": [0]}], "test": [{**entry, "use": [2]}]},
                  budget={"n_trials": 3, "trial_wall_time": 60},
                  configurator={"name": "random"}, execution={"workers": 1},
                  output=str(tmp_path / "run"))
    result = tune(sc)
    store = TrialStore.open_readonly(result.run_dir / "trials.sqlite")
    trials = {t.trial_id: t for t in store.trials()}
    store.close()
    assert all(t.status == "ok" for t in trials.values()), [t.error for t in trials.values()]
    incumbent = yaml.safe_load(result.incumbent_file.read_text())
    assert incumbent["parallel"]["strategy"] == "wassp"
    assert incumbent["parallel"]["workers"] == 2
    row = next(r for r in result.comparison if r["split"] == "test")
    stored = trials[row["incumbent_trial"]]
    out = tmp_path / "retrained"
    done = subprocess.run([*CLI, "train", "--config", str(result.incumbent_file), "--instance",
                           row["instance"], "-q", "-o", str(out)], capture_output=True,
                          text=True, timeout=300,
                          env={**os.environ, "AAC_SPARSE_CACHE": str(tmp_path / "prepared")})
    assert done.returncode == 0, done.stderr
    summary = json.loads((out / "metrics.json").read_text())["summary"]
    assert summary["test_error"] == stored.result["test_error"]
    assert summary["val_error"] == stored.result["val_error"]
