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
from .evolution import evolve_layer
from .importance import importance_prune
from .model import SparseMLP
from .pruning import PRUNE_CRITERIA
from .regrowth import NEEDS_GRADIENT, GradientSignals
from .schedules import learning_rate
from .topology import layer_densities
from .update_schedule import UpdateSchedule

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


def update_schedule(config: TrainConfig) -> UpdateSchedule:
    """The topology-update schedule a configuration describes."""
    steps = config.update_schedule == "steps"
    every = config.update_every_steps if steps else config.update_every_epochs
    return UpdateSchedule(config.update_schedule, every, config.update_end, config.zeta,
                          config.zeta_decay)


SignalsFn = Callable[[], "list[GradientSignals]"]


def evolve_model(model: SparseMLP, config: TrainConfig, rng: np.random.Generator,
                 zeta: float | None = None, signals: SignalsFn | None = None) -> int:
    """One prune-and-regrow step on every evolvable sparse layer; returns connections
    replaced.  ``zeta`` is this step's drop fraction (default ``config.zeta``);
    ``signals`` computes a mini-batch's gradient signals when the regrowth needs them."""
    zeta = config.zeta if zeta is None else zeta
    last = len(model.layers) - 1
    targets = [li for li, layer in enumerate(model.layers)
               if not layer.dense and not (config.evolve_layers == "hidden" and li == last)]
    if zeta <= 0 or not targets:
        return 0
    sig = None
    if config.regrow in NEEDS_GRADIENT:
        if signals is None:
            raise ValueError(f"regrow={config.regrow!r} needs gradient signals")
        sig = signals()
    replaced = 0
    for li in targets:
        layer = model.layers[li]
        stats = evolve_layer(layer, PRUNE_CRITERIA[config.prune](layer.w, zeta), rng,
                             config.weight_init, config.regrow_init, config.regrow,
                             None if sig is None else sig[li], config.regrow_candidates)
        replaced += stats.regrown
    model.after_structure_change()
    return replaced


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
    schedule = update_schedule(config)
    total_steps = n_epochs * math.ceil(n / bs)

    def signals() -> list:
        rows = np.sort(rngs["signals"].choice(n, size=min(bs, n), replace=False))
        return model.gradient_signals(x_train, y_train, rows, rngs["signals"])

    def update(step: int) -> tuple[int, float]:
        zeta = schedule.drop_fraction(step, total_steps)
        return evolve_model(model, config, rngs["evolution"], zeta, signals), zeta

    step = 0
    for epoch in range(n_epochs):
        lr = learning_rate(config.lr_schedule, config.lr, epoch, n_epochs, config.lr_step_every,
                           config.lr_gamma, config.lr_final_fraction)
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
            if schedule.mode == "steps" and schedule.due(step, total_steps, False, epoch + 1):
                t1 = time.perf_counter()
                r, zeta = update(step)
                replaced, updates = replaced + r, updates + 1
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
        if schedule.mode == "epoch" and schedule.due(step, total_steps, True, epoch + 1):
            r, zeta = update(step)
            replaced, updates = replaced + r, updates + 1
        row.update(evolution_s=evolution_s + time.perf_counter() - t1, replaced=replaced,
                   updates=updates, zeta=zeta, neurons_removed=removed, nnz=model.nnz,
                   n_params=model.n_params, hidden=model.sizes[1:-1])
        result.history.append(row)
        if on_epoch is not None and on_epoch(row) is True and epoch < n_epochs - 1:
            result.status = "stopped"
            result.message = f"stopped after epoch {epoch + 1} by the caller"
            return result
    return result
