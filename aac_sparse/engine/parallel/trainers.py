"""WASSP-SGD and WASAP-SGD (seed 004, Algorithm 1 and §2.3) on an MPI communicator.

Both are built from :class:`~aac_sparse.engine.trainer.TrainingLoop`'s pieces, so the
divergence check, topology updates, importance pruning, history and the caller's stop work
exactly as in sequential training.  Rank 0 owns the run: validation, topology evolution,
importance pruning and the history happen there, and the new structure is sent to the
others.  Everything that crosses ranks is aligned with the sparse structure (nnz floats
per layer plus biases), never a dense matrix.

* **WASSP** (synchronous): every rank is a worker.  Each global batch of ``workers x
  batch_size`` samples is split between the workers, their gradients (weighted by their
  share of the batch) are summed with one ``Allreduce`` and every rank applies the same
  update, so one worker is sequential training bit for bit and k workers are sequential
  training with batch k x b up to summation order.  Goyal et al.'s linear learning-rate
  scaling with gradual warm-up is on by default.
* **WASAP** (asynchronous phase 1): rank 0 is a parameter server, ranks 1..k workers with
  a fixed shard of the data each.  A worker sends the gradient of its replica; the server
  applies gradients in arrival order (their staleness -- server updates since the
  worker's weights were sent -- is recorded) and answers with fresh weights.  Topology
  updates scheduled by steps run on the server between updates; a gradient computed on an
  older structure keeps only the entries of connections that still exist (seed 004's
  "retain valid updates").  At each epoch's end the server waits for all workers (the
  seed's pause for evolution), evolves, prunes neurons and broadcasts the model.
* **Phase 2** (both; from ``phase2_from``): each worker trains its own copy on its shard
  (own topology evolution, or frozen); every ``sync_every`` local steps -- an integer,
  where the seed code used a float count of batches -- and at the end of training the
  workers' models are averaged on rank 0 on the union of their structures and pruned back
  to the target nnz.  Local models are never overwritten by a sync (the seed code's
  second defect): the workers keep training their own models, and the result is the
  running mean of the sync averages (``averaging="swa"``) or the last one (``"final"``).
  Importance pruning needs the workers' neuron sets aligned, so it runs in phase 1 only.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from ..config import TrainConfig
from ..model import model_arrays, model_from_arrays
from ..trainer import EpochCallback, EpochTally, TrainingLoop, TrainResult
from .averaging import average_models, running_mean, target_nnz
from .config import ParallelConfig

GRAD, WEIGHTS = 11, 12


@dataclass
class ParallelLog:
    """What the parallel run did, beyond the history: where phase 2 synced, staleness."""

    syncs: list[tuple[int, int]] = field(default_factory=list)  # (epoch 1-based, local step)
    staleness: list[int] = field(default_factory=list)

    def to_dict(self) -> dict:
        stale = np.asarray(self.staleness or [0])
        return {"syncs": [list(s) for s in self.syncs],
                "staleness_mean": float(stale.mean()), "staleness_max": int(stale.max())}


class FlatBuffer:
    """One float32 buffer holding a list of arrays back to back (what is reduced or sent)."""

    def __init__(self, arrays: list[np.ndarray]) -> None:
        self.sizes = [a.shape[0] for a in arrays]
        self.buf = np.empty(sum(self.sizes), dtype=np.float32)

    def fits(self, arrays: list[np.ndarray]) -> bool:
        return [a.shape[0] for a in arrays] == self.sizes

    def pack(self, arrays: list[np.ndarray], scale: float = 1.0) -> np.ndarray:
        np.concatenate(arrays, out=self.buf)
        if scale != 1.0:
            self.buf *= np.float32(scale)
        return self.buf

    def unpack(self, arrays: list[np.ndarray], buf: np.ndarray | None = None) -> None:
        src, offset = self.buf if buf is None else buf, 0
        for a, n in zip(arrays, self.sizes, strict=True):
            a[:] = src[offset:offset + n]
            offset += n


def _buffer_for(current: FlatBuffer | None, arrays: list[np.ndarray]) -> FlatBuffer:
    return current if current is not None and current.fits(arrays) else FlatBuffer(arrays)


def _shards(seed: int, n: int, k: int) -> list[np.ndarray]:
    """A fixed split of the training samples into k shards (one per worker)."""
    perm = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(7,))).permutation(n)
    return [np.sort(s) for s in np.array_split(perm, k)]


def _worker_loop(config: TrainConfig, x, y, n_classes: int, epochs: int, shard: np.ndarray,
                 worker: int, steps: int) -> TrainingLoop:
    return TrainingLoop(config, x, y, None, None, n_classes, None, epochs, rows=shard,
                        steps_per_epoch=steps, stream_key=worker + 1)


def _local_batches(order: np.ndarray, steps: int) -> list[np.ndarray]:
    """``steps`` near-equal batches, so every worker takes the same number of steps."""
    return np.array_split(order, steps)


# -- WASSP ---------------------------------------------------------------------------
def train_wassp(comm, config: TrainConfig, parallel: ParallelConfig, x_train, y_train,
                x_val=None, y_val=None, n_classes: int | None = None,
                on_epoch: EpochCallback | None = None,
                epochs: int | None = None) -> TrainResult | None:
    """Synchronous data-parallel SGD on ``comm`` (every rank a worker); the result on
    rank 0, None elsewhere."""
    MPI = _mpi()
    rank, k = comm.Get_rank(), comm.Get_size()
    root = rank == 0
    n = np.asarray(y_train).shape[0]
    global_batch = k * config.batch_size
    loop = TrainingLoop(config, x_train, y_train, x_val if root else None,
                        y_val if root else None, n_classes, on_epoch if root else None,
                        epochs, steps_per_epoch=math.ceil(n / global_batch))
    x, y, model = loop.x_train, loop.y_train, loop.model
    dropout = (loop.rngs["dropout"] if root else
               np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(100, rank))))
    log = ParallelLog()
    phase2 = parallel.phase2_epoch(loop.n_epochs)
    grads: FlatBuffer | None = None
    stats = np.zeros(3, dtype=np.float64)
    for epoch in range(phase2):
        tally = loop.start_epoch(epoch)
        lr = tally.lr * parallel.lr_factor(epoch)
        order = loop.order()
        for start in range(0, n, global_batch):
            rows = np.array_split(order[start:start + global_batch], k)[rank]
            total = min(global_batch, n - start)
            model = loop.model
            grads = _buffer_for(grads, model.gradient_arrays())
            if rows.shape[0]:
                loss, correct = model.compute_gradients(x, y, rows, dropout)
                grads.pack(model.gradient_arrays(), rows.shape[0] / total if k > 1 else 1.0)
            else:
                loss, correct = 0.0, 0
                grads.buf[:] = 0
            stats[:] = (loss * rows.shape[0], correct, rows.shape[0])
            if k > 1:
                comm.Allreduce(MPI.IN_PLACE, grads.buf, op=MPI.SUM)
                comm.Allreduce(MPI.IN_PLACE, stats, op=MPI.SUM)
            if not loop.record_batch(tally, float(stats[0]), int(stats[1]), int(stats[2])):
                return loop.result if root else None
            grads.unpack(model.gradient_arrays())
            model.step(lr, config.momentum, config.weight_decay)
            if loop.after_step(tally, evolve=root) and k > 1:
                _share_model(comm, loop)
        go = _end_epoch(comm, loop, tally, extra={"bytes_per_step": 2 * grads.buf.nbytes
                                                  if grads else 0})
        if not go:
            return loop.result if root else None
    if phase2 < loop.n_epochs:
        shards = _shards(config.seed, n, k)
        steps = math.ceil(max(s.shape[0] for s in shards) / config.batch_size)
        local = _worker_loop(config, x_train, y_train, loop.n_classes, loop.n_epochs,
                             shards[rank], rank, steps)
        _phase_two(comm, loop if root else None, local, parallel, phase2, steps, log)
    if root:
        loop.result.parallel = log.to_dict()
        return loop.result
    return None


def _share_model(comm, loop: TrainingLoop) -> None:
    """Rank 0's model (structure, weights and momentum) replaces every other rank's."""
    state = comm.bcast(model_arrays(loop.model, momentum=True) if comm.Get_rank() == 0
                       else None, root=0)
    if comm.Get_rank() != 0:
        loop.set_model(model_from_arrays(state))


def _end_epoch(comm, loop: TrainingLoop, tally: EpochTally, extra: dict) -> bool:
    """Rank 0 validates, prunes neurons, evolves and records; every rank then has its
    model and learns whether to go on."""
    go = True
    if comm.Get_rank() == 0:
        row = loop.epoch_row(tally)
        if row is None:
            go = False
        else:
            loop.after_epoch(tally, row)
            row.update(extra)
            go = loop.close_epoch(tally, row)
    go = comm.bcast(go, root=0)
    if go and comm.Get_size() > 1:
        _share_model(comm, loop)
    return go


# -- WASAP ---------------------------------------------------------------------------
def train_wasap(comm, config: TrainConfig, parallel: ParallelConfig, x_train, y_train,
                x_val=None, y_val=None, n_classes: int | None = None,
                on_epoch: EpochCallback | None = None,
                epochs: int | None = None) -> TrainResult | None:
    """Asynchronous parameter-server SGD (rank 0 the server, ranks 1..k workers), then
    phase 2; the result on rank 0, None elsewhere."""
    rank, size = comm.Get_rank(), comm.Get_size()
    k = size - 1
    if k < 1:
        raise ValueError("wasap needs at least 2 ranks (a server and a worker)")
    n = np.asarray(y_train).shape[0]
    shards = _shards(config.seed, n, k)
    steps = math.ceil(max(s.shape[0] for s in shards) / config.batch_size)
    log = ParallelLog()
    if rank == 0:
        loop = TrainingLoop(config, x_train, y_train, x_val, y_val, n_classes, on_epoch,
                            epochs, steps_per_epoch=k * steps)
        n_epochs, n_cls = loop.n_epochs, loop.n_classes
    else:
        n_cls = int(n_classes if n_classes is not None else np.asarray(y_train).max() + 1)
        n_epochs = int(epochs if epochs is not None else config.epochs)
        local = _worker_loop(config, x_train, y_train, n_cls, n_epochs, shards[rank - 1],
                             rank - 1, steps)
    phase2 = parallel.phase2_epoch(n_epochs)
    for epoch in range(phase2):
        if rank == 0:
            go = _serve_epoch(comm, loop, epoch, k, log)
            if not go:
                comm.bcast(None, root=0)
                loop.result.parallel = log.to_dict()
                return loop.result
        else:
            state = comm.bcast(None, root=0)
            if state is None:
                return None
            _work_epoch(comm, local, state, steps)
    if phase2 < n_epochs:
        if rank == 0:
            comm.bcast(model_arrays(loop.model, momentum=True), root=0)
        else:
            state = comm.bcast(None, root=0)
            if state is None:
                return None
            local.set_model(model_from_arrays(state))
        _phase_two(comm, loop if rank == 0 else None, None if rank == 0 else local,
                   parallel, phase2, steps, log)
    if rank == 0:
        loop.result.parallel = log.to_dict()
        return loop.result
    return None


def _serve_epoch(comm, loop: TrainingLoop, epoch: int, k: int, log: ParallelLog) -> bool:
    """The server's epoch: broadcast the model, apply gradients as they arrive, answer
    with fresh weights; then the after-epoch work.  False if the run ends here."""
    MPI = _mpi()
    comm.bcast((model_arrays(loop.model), loop.step), root=0)
    model, config = loop.model, loop.config
    tally = loop.start_epoch(epoch)
    version, keys = 0, {0: [layer.keys() for layer in model.layers]}
    params = FlatBuffer(model.parameter_arrays())
    status, remaining, sent = MPI.Status(), k, 0
    ok = True
    while remaining:
        ver, weights_step, loss_sum, correct, count, grad, last = comm.recv(
            source=MPI.ANY_SOURCE, tag=GRAD, status=status)
        src = status.Get_source()
        sent += grad.nbytes
        log.staleness.append(loop.step - weights_step)
        if ok and not loop.record_batch(tally, loss_sum, correct, count):
            ok = False
        if ok:
            _unpack_gradient(model, grad, keys[ver], version)
            model.step(tally.lr, config.momentum, config.weight_decay)
            if loop.after_step(tally):
                version += 1
                keys[version] = [layer.keys() for layer in model.layers]
                params = FlatBuffer(model.parameter_arrays())
        if last:
            remaining -= 1
            continue
        if ver == version:
            reply = (version, loop.step, params.pack(model.parameter_arrays()).copy())
        else:
            reply = (version, loop.step, model_arrays(model))
        sent += _nbytes(reply[2])
        comm.send(reply, dest=src, tag=WEIGHTS)
    if not ok:
        return False
    row = loop.epoch_row(tally)
    if row is None:
        return False
    loop.after_epoch(tally, row)
    row["bytes_per_step"] = sent / max(1, loop.steps_per_epoch)
    recent = log.staleness[-loop.steps_per_epoch:]
    row.update(staleness_mean=float(np.mean(recent)) if recent else 0.0,
               staleness_max=int(max(recent)) if recent else 0)
    return loop.close_epoch(tally, row)


def _nbytes(payload) -> int:
    if isinstance(payload, np.ndarray):
        return payload.nbytes
    return sum(a.nbytes for a in payload.values() if isinstance(a, np.ndarray))


def _unpack_gradient(model, grad: np.ndarray, old_keys: list[np.ndarray],
                     version: int) -> None:
    """Install a worker's flat gradient; entries of connections that no longer exist
    are dropped and new connections get zero (a gradient from an older structure)."""
    offset = 0
    for li, layer in enumerate(model.layers):
        n_old = old_keys[li].shape[0]
        g = grad[offset:offset + n_old]
        offset += n_old
        if version == 0 or n_old == layer.nnz and np.array_equal(old_keys[li], layer.keys()):
            layer.grad[:] = g
        else:
            new = layer.keys()
            pos = np.searchsorted(new, old_keys[li])
            pos_c = np.minimum(pos, new.shape[0] - 1)
            valid = (pos < new.shape[0]) & (new[pos_c] == old_keys[li])
            layer.grad[:] = 0
            layer.grad[pos[valid]] = g[valid]
        layer.grad_bias[:] = grad[offset:offset + layer.n_out]
        offset += layer.n_out
    for act in model.activations:
        if act.has_params:
            for name in act.names:
                n_p = act.grads[name].shape[0]
                act.grads[name][:] = grad[offset:offset + n_p]
                offset += n_p


def _work_epoch(comm, local: TrainingLoop, state, steps: int) -> None:
    """A worker's phase-1 epoch: gradients of its replica on its shard, fresh weights
    from the server after each."""
    arrays, server_step = state
    local.set_model(model_from_arrays(arrays))
    model, version = local.model, 0
    params = FlatBuffer(model.parameter_arrays())
    grads: FlatBuffer | None = None
    batches = _local_batches(local.order(), steps)
    for i, rows in enumerate(batches):
        last = i == len(batches) - 1
        if rows.shape[0]:
            loss, correct = model.compute_gradients(local.x_train, local.y_train, rows,
                                                    local.rngs["dropout"])
        else:  # pragma: no cover - only when a shard has fewer samples than steps
            loss, correct = 0.0, 0
        grads = _buffer_for(grads, model.gradient_arrays())
        flat = grads.pack(model.gradient_arrays()).copy()
        comm.send((version, server_step, loss * rows.shape[0], correct, rows.shape[0], flat,
                   last), dest=0, tag=GRAD)
        if last:
            break
        version_now, server_step, payload = comm.recv(source=0, tag=WEIGHTS)
        if version_now != version:
            local.set_model(model_from_arrays(payload))
            model, version = local.model, version_now
            params = FlatBuffer(model.parameter_arrays())
        else:
            params.unpack(model.parameter_arrays(), payload)


# -- phase 2 -------------------------------------------------------------------------
def _phase_two(comm, loop: TrainingLoop | None, local: TrainingLoop | None,
               parallel: ParallelConfig, start: int, steps: int, log: ParallelLog) -> None:
    """Local training on each worker with weight-averaging syncs (see the module text).

    ``loop`` is rank 0's run (history, validation), ``local`` this rank's worker run
    (None on WASAP's server).  Every rank takes part in every sync, so the syncs happen at
    the same local step everywhere.
    """
    root = comm.Get_rank() == 0
    if local is not None:
        if loop is not None:  # WASSP's rank 0 is also worker 0
            local.set_model(model_from_arrays(model_arrays(loop.model, momentum=True)))
        local.step = start * steps
        if parallel.phase2_topology == "frozen":
            local.evolution.schedule = None
    target = target_nnz(model_arrays(loop.model)) if root else None
    mean, count, step = None, 0, 0
    n_epochs = loop.n_epochs if root else local.n_epochs  # type: ignore[union-attr]
    healthy = True

    def sync(epoch: int) -> None:
        nonlocal mean, count
        snaps = comm.gather(model_arrays(local.model) if local is not None else None, root=0)
        if root:
            avg = average_models([s for s in snaps if s is not None], target=target)
            mean = running_mean(mean, count, avg, target) if parallel.averaging == "swa" \
                else avg
            count += 1
            log.syncs.append((epoch + 1, step))

    for epoch in range(start, n_epochs):
        t0 = time.perf_counter()
        sums = np.zeros(3)
        tally = local.start_epoch(epoch) if local is not None else None
        batches = (_local_batches(local.order(), steps) if local is not None
                   else [None] * steps)
        for rows in batches:
            step += 1
            if local is not None and healthy and rows.shape[0]:
                loss, correct = local.model.train_batch(
                    local.x_train, local.y_train, rows, tally.lr, local.config.momentum,
                    local.config.weight_decay, local.rngs["dropout"])
                if not local.record_batch(tally, loss * rows.shape[0], correct,
                                          rows.shape[0]):
                    healthy = False
                else:
                    local.after_step(tally)
            if parallel.sync_every and step % parallel.sync_every == 0:
                sync(epoch)
        last = epoch == n_epochs - 1
        if last and not (parallel.sync_every and step % parallel.sync_every == 0):
            sync(epoch)  # the final averaging
        if local is not None:
            if healthy:
                local.after_epoch(tally, {}, prune_neurons=False)
            sums[:] = (tally.loss_sum if healthy else math.nan, tally.correct, tally.seen)
        gathered = comm.gather(sums if local is not None else None, root=0)
        go = True
        if root:
            total = np.sum([g for g in gathered if g is not None], axis=0)
            row_tally = loop.start_epoch(epoch)
            row_tally.t0 = t0
            if not loop.record_batch(row_tally, float(total[0]), int(total[1]),
                                     int(total[2])):
                go = False
            else:
                if mean is not None:
                    loop.set_model(model_from_arrays(mean))
                row = loop.epoch_row(row_tally)
                if row is None:
                    go = False
                else:
                    row.update(nnz=loop.model.nnz, n_params=loop.model.n_params,
                               hidden=loop.model.sizes[1:-1], evolution_s=0.0,
                               replaced=0, updates=0, zeta=0.0, neurons_removed=0,
                               phase=2, syncs=count)
                    go = loop.close_epoch(row_tally, row)
        go = comm.bcast(go, root=0)
        if not go:
            return


def _mpi():
    from .runtime import mpi

    return mpi()
