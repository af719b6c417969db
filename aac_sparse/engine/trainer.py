"""The training loop: epochs of seeded mini-batches, topology evolution, importance pruning.

``train`` is the one entry point: it builds a model from a :class:`TrainConfig`, trains
it and returns a :class:`TrainResult` with per-epoch history and a status.  A NaN or
infinite loss stops training with status ``diverged`` instead of producing garbage.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .config import TrainConfig
from .densities import layer_densities
from .evolution import TopologyEvolution
from .importance import importance_prune
from .model import SparseMLP
from .schedules import LearningRate

EpochCallback = Callable[[dict], "bool | None"]


@dataclass
class TrainResult:
    """Outcome of a training run."""

    model: SparseMLP
    history: list[dict] = field(default_factory=list)
    status: str = "ok"  # ok | diverged | stopped
    message: str = ""
    parallel: dict = field(default_factory=dict)  # what a parallel run did (syncs, staleness)

    @property
    def last(self) -> dict:
        return self.history[-1] if self.history else {}


def build_model(config: TrainConfig, n_features: int, n_classes: int,
                rng: np.random.Generator) -> SparseMLP:
    """The network ``n_features -> hidden... -> n_classes`` of ``config``."""
    sizes = [n_features, *config.hidden, n_classes]
    densities = layer_densities(sizes, config.density_distribution, config.epsilon,
                                config.density)
    return SparseMLP.build(sizes, densities, rng, activation=config.activation,
                           alpha=config.alpha, weight_init=config.weight_init,
                           dropout=config.dropout,
                           activation_memory=int(config.activation_memory_mb * 2**20))


def _streams(seed: int | list[int]) -> dict[str, np.random.Generator]:
    # Names are only ever appended: SeedSequence.spawn keeps earlier children unchanged.
    names = ("init", "shuffle", "dropout", "evolution", "signals")
    seqs = np.random.SeedSequence(seed).spawn(len(names))
    return {n: np.random.default_rng(s) for n, s in zip(names, seqs, strict=True)}


def _ip_due(config: TrainConfig, epoch1: int) -> bool:
    return (config.importance_pruning and epoch1 >= config.ip_start
            and (epoch1 - config.ip_start) % config.ip_every == 0)


@dataclass
class EpochTally:
    """What one epoch has done so far: its batches' loss and hits, its evolution steps."""

    epoch: int
    lr: float
    t0: float
    loss_sum: float = 0.0
    correct: int = 0
    seen: int = 0
    evolution_s: float = 0.0
    replaced: int = 0
    updates: int = 0
    zeta: float = 0.0


class TrainingLoop:
    """One run's state and the pieces every trainer is made of.

    A sequential run (:func:`train`) and the data-parallel ones
    (:mod:`aac_sparse.engine.parallel`) share them: :meth:`start_epoch`, per batch
    :meth:`record_batch` and :meth:`after_step` (step-scheduled topology updates), then
    :meth:`epoch_row` (train and validation metrics, divergence), :meth:`after_epoch`
    (importance pruning, epoch-scheduled topology updates) and :meth:`close_epoch`
    (history, the caller's stop).  ``rows`` restricts training to those samples (a
    worker's shard); ``steps_per_epoch`` overrides the batch count the topology schedule
    is laid out on (a parameter server counts every worker's updates).
    """

    def __init__(self, config: TrainConfig, x_train: np.ndarray, y_train: np.ndarray,
                 x_val: np.ndarray | None = None, y_val: np.ndarray | None = None,
                 n_classes: int | None = None, on_epoch: EpochCallback | None = None,
                 epochs: int | None = None, rows: np.ndarray | None = None,
                 steps_per_epoch: int | None = None, stream_key: int | None = None) -> None:
        self.config = config
        self.x_train = np.ascontiguousarray(x_train, dtype=np.float32)
        self.y_train = np.asarray(y_train, dtype=np.int64)
        self.x_val, self.y_val = x_val, None if y_val is None else np.asarray(y_val, np.int64)
        self.n_classes = int(n_classes if n_classes is not None else self.y_train.max() + 1)
        self.n_epochs = int(epochs if epochs is not None else config.epochs)
        self.on_epoch = on_epoch
        self.rows = rows
        self.n = self.x_train.shape[0] if rows is None else int(rows.shape[0])
        seed = config.seed if stream_key is None else [config.seed, stream_key]
        self.rngs = _streams(seed)
        self.model = build_model(config, self.x_train.shape[1], self.n_classes,
                                 self.rngs["init"])
        self.result = TrainResult(self.model)
        self.steps_per_epoch = (steps_per_epoch if steps_per_epoch is not None
                                else math.ceil(self.n / config.batch_size))
        self.evolution = TopologyEvolution.from_config(
            config, self.n_epochs * self.steps_per_epoch, self.steps_per_epoch)
        self.lr_at = LearningRate(config.lr_schedule, config.lr, self.n_epochs,
                                  config.lr_step_every, config.lr_gamma,
                                  config.lr_final_fraction)
        self.step = 0

    def set_model(self, model: SparseMLP) -> None:
        """Continue with ``model`` (a state received from another rank)."""
        self.model = model
        self.result.model = model

    # -- topology ------------------------------------------------------------------
    def _signals(self) -> list:
        pool = self.n if self.rows is None else self.rows
        picked = self.rngs["signals"].choice(pool, size=min(self.config.batch_size, self.n),
                                             replace=False)
        return self.model.gradient_signals(self.x_train, self.y_train, np.sort(picked),
                                           self.rngs["signals"])

    def update_topology(self, tally: EpochTally, zeta: float) -> None:
        """One prune-and-regrow step with drop fraction ``zeta``, counted in ``tally``."""
        t1 = time.perf_counter()
        tally.zeta = zeta
        tally.replaced += self.evolution.evolve(self.model, self.rngs["evolution"], zeta,
                                                self._signals)
        tally.updates += 1
        tally.evolution_s += time.perf_counter() - t1

    # -- one epoch -------------------------------------------------------------------
    def start_epoch(self, epoch: int) -> EpochTally:
        return EpochTally(epoch, self.lr_at(epoch), time.perf_counter())

    def order(self) -> np.ndarray:
        """This epoch's sample order (the loop's rows, shuffled by its own stream)."""
        perm = self.rngs["shuffle"].permutation(self.n)
        return perm if self.rows is None else self.rows[perm]

    def batches(self, order: np.ndarray):
        bs = self.config.batch_size
        for start in range(0, order.shape[0], bs):
            yield order[start:start + bs]

    def record_batch(self, tally: EpochTally, loss_sum: float, correct: int,
                     count: int) -> bool:
        """Add a batch's summed loss and hits; False (status diverged) if not finite."""
        if not math.isfinite(loss_sum):
            self.result.status = "diverged"
            self.result.message = (f"loss became {loss_sum / max(count, 1)} in epoch "
                                   f"{tally.epoch + 1} (learning rate {tally.lr:g}); "
                                   "training stopped")
            return False
        tally.loss_sum += loss_sum
        tally.correct += correct
        tally.seen += count
        return True

    def after_step(self, tally: EpochTally, evolve: bool = True) -> bool:
        """Count an optimizer step; a topology update if one is due (done only where
        ``evolve``).  True if the structure changed or would have."""
        self.step += 1
        due = self.evolution.due(self.step, "step")
        if due is None:
            return False
        if evolve:
            self.update_topology(tally, due)
        return True

    def epoch_row(self, tally: EpochTally) -> dict | None:
        """The epoch's metrics with validation; None (status diverged) if validation
        loss is not finite."""
        model, n = self.model, max(tally.seen, 1)
        row = {"epoch": tally.epoch + 1, "lr": tally.lr, "train_loss": tally.loss_sum / n,
               "train_acc": tally.correct / n,
               "train_s": time.perf_counter() - tally.t0 - tally.evolution_s,
               "train_flops": model.flops_per_sample(training=True) * tally.seen}
        if self.x_val is not None and self.y_val is not None and len(self.y_val):
            val_loss, val_acc = model.evaluate(self.x_val, self.y_val,
                                               self.config.eval_batch_size)
            row.update(val_loss=val_loss, val_acc=val_acc)
            if not math.isfinite(val_loss):
                self.result.status = "diverged"
                self.result.message = (f"validation loss became {val_loss} in epoch "
                                       f"{tally.epoch + 1}")
                self.result.history.append(row)
                return None
        return row

    def after_epoch(self, tally: EpochTally, row: dict, prune_neurons: bool = True) -> None:
        """Importance pruning and epoch-scheduled topology updates; fills ``row``."""
        t1 = time.perf_counter()
        removed = 0
        last = tally.epoch >= self.n_epochs - 1
        if prune_neurons and not last and _ip_due(self.config, tally.epoch + 1):
            removed = sum(importance_prune(self.model, self.config.ip_percentile))
        tally.evolution_s += time.perf_counter() - t1
        due = self.evolution.due(self.step, "epoch")
        if due is not None:
            self.update_topology(tally, due)
        row.update(evolution_s=tally.evolution_s,
                   replaced=tally.replaced, updates=tally.updates, zeta=tally.zeta,
                   neurons_removed=removed, nnz=self.model.nnz,
                   n_params=self.model.n_params, hidden=self.model.sizes[1:-1])

    def close_epoch(self, tally: EpochTally, row: dict) -> bool:
        """Append ``row`` to the history; False if the caller stops the run here."""
        self.result.history.append(row)
        if (self.on_epoch is not None and self.on_epoch(row) is True
                and tally.epoch < self.n_epochs - 1):
            self.result.status = "stopped"
            self.result.message = f"stopped after epoch {tally.epoch + 1} by the caller"
            return False
        return True


def train(
    config: TrainConfig,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray | None = None,
    y_val: np.ndarray | None = None,
    n_classes: int | None = None,
    on_epoch: EpochCallback | None = None,
    epochs: int | None = None,
    on_batch: Callable[[int, int], None] | None = None,
) -> TrainResult:
    """Train a sparse MLP; ``epochs`` overrides ``config.epochs`` (a tuning budget).

    ``on_epoch(row)`` receives each epoch's metrics; if it returns True, training stops
    after that epoch with status ``stopped`` (a configurator pruned the run).
    ``on_batch(done, total)`` is called after each mini-batch (progress of long epochs).
    """
    loop = TrainingLoop(config, x_train, y_train, x_val, y_val, n_classes, on_epoch, epochs)
    cfg, x, y = config, loop.x_train, loop.y_train
    for epoch in range(loop.n_epochs):
        tally = loop.start_epoch(epoch)
        for b, idx in enumerate(loop.batches(loop.order())):
            loss, ok = loop.model.train_batch(x, y, idx, tally.lr, cfg.momentum,
                                              cfg.weight_decay, loop.rngs["dropout"])
            if not loop.record_batch(tally, loss * idx.shape[0], ok, idx.shape[0]):
                return loop.result
            loop.after_step(tally)
            if on_batch is not None:
                on_batch(b + 1, loop.steps_per_epoch)
        row = loop.epoch_row(tally)
        if row is None:
            return loop.result
        loop.after_epoch(tally, row)
        if not loop.close_epoch(tally, row):
            return loop.result
    return loop.result
