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
                           dropout=config.dropout)


def _streams(seed: int) -> dict[str, np.random.Generator]:
    # Names are only ever appended: SeedSequence.spawn keeps earlier children unchanged.
    names = ("init", "shuffle", "dropout", "evolution", "signals")
    seqs = np.random.SeedSequence(seed).spawn(len(names))
    return {n: np.random.default_rng(s) for n, s in zip(names, seqs, strict=True)}


def _ip_due(config: TrainConfig, epoch1: int) -> bool:
    return (config.importance_pruning and epoch1 >= config.ip_start
            and (epoch1 - config.ip_start) % config.ip_every == 0)


def train(
    config: TrainConfig,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray | None = None,
    y_val: np.ndarray | None = None,
    n_classes: int | None = None,
    on_epoch: EpochCallback | None = None,
    epochs: int | None = None,
) -> TrainResult:
    """Train a sparse MLP; ``epochs`` overrides ``config.epochs`` (a tuning budget).

    ``on_epoch(row)`` receives each epoch's metrics; if it returns True, training stops
    after that epoch with status ``stopped`` (a configurator pruned the run).
    """
    x_train = np.ascontiguousarray(x_train, dtype=np.float32)
    y_train = np.asarray(y_train, dtype=np.int64)
    n_classes = int(n_classes if n_classes is not None else y_train.max() + 1)
    n_epochs = int(epochs if epochs is not None else config.epochs)
    rngs = _streams(config.seed)
    model = build_model(config, x_train.shape[1], n_classes, rngs["init"])
    result = TrainResult(model)
    n = x_train.shape[0]
    bs = config.batch_size
    steps_per_epoch = math.ceil(n / bs)
    evolution = TopologyEvolution.from_config(config, n_epochs * steps_per_epoch,
                                              steps_per_epoch)
    lr_at = LearningRate(config.lr_schedule, config.lr, n_epochs, config.lr_step_every,
                         config.lr_gamma, config.lr_final_fraction)

    def signals() -> list:
        rows = np.sort(rngs["signals"].choice(n, size=min(bs, n), replace=False))
        return model.gradient_signals(x_train, y_train, rows, rngs["signals"])

    def update(zeta: float) -> int:
        return evolution.evolve(model, rngs["evolution"], zeta, signals)

    step = 0
    for epoch in range(n_epochs):
        lr = lr_at(epoch)
        flops = model.flops_per_sample(training=True) * n
        t0 = time.perf_counter()
        order = rngs["shuffle"].permutation(n)
        loss_sum, correct = 0.0, 0
        evolution_s, replaced, updates, zeta = 0.0, 0, 0, 0.0
        for start in range(0, n, bs):
            idx = order[start:start + bs]
            loss, ok = model.train_batch(x_train, y_train, idx, lr, config.momentum,
                                         config.weight_decay, rngs["dropout"])
            if not math.isfinite(loss):
                result.status = "diverged"
                result.message = (f"loss became {loss} in epoch {epoch + 1} "
                                  f"(learning rate {lr:g}); training stopped")
                return result
            loss_sum += loss * idx.shape[0]
            correct += ok
            step += 1
            due = evolution.due(step, "step")
            if due is not None:
                t1 = time.perf_counter()
                zeta = due
                replaced, updates = replaced + update(zeta), updates + 1
                evolution_s += time.perf_counter() - t1
        train_s = time.perf_counter() - t0 - evolution_s
        row = {"epoch": epoch + 1, "lr": lr, "train_loss": loss_sum / n,
               "train_acc": correct / n, "train_s": train_s, "train_flops": flops}
        if x_val is not None and y_val is not None and len(y_val):
            val_loss, val_acc = model.evaluate(x_val, np.asarray(y_val, dtype=np.int64),
                                               config.eval_batch_size)
            row.update(val_loss=val_loss, val_acc=val_acc)
            if not math.isfinite(val_loss):
                result.status = "diverged"
                result.message = f"validation loss became {val_loss} in epoch {epoch + 1}"
                result.history.append(row)
                return result
        t1 = time.perf_counter()
        removed = 0
        if epoch < n_epochs - 1 and _ip_due(config, epoch + 1):  # the final net is trained
            removed = sum(importance_prune(model, config.ip_percentile))
        due = evolution.due(step, "epoch")
        if due is not None:
            zeta = due
            replaced, updates = replaced + update(zeta), updates + 1
        row.update(evolution_s=evolution_s + time.perf_counter() - t1, replaced=replaced,
                   updates=updates, zeta=zeta, neurons_removed=removed, nnz=model.nnz,
                   n_params=model.n_params, hidden=model.sizes[1:-1])
        result.history.append(row)
        if on_epoch is not None and on_epoch(row) is True and epoch < n_epochs - 1:
            result.status = "stopped"
            result.message = f"stopped after epoch {epoch + 1} by the caller"
            return result
    return result
