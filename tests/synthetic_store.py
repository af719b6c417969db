"""Trial stores whose truth is known, for testing (and benchmarking) the analysis.

:func:`make_store` fills a store with trials of the ``meta`` space as ``tune`` would
(configurator trials on every training instance, then default and incumbent on every
training and held-out instance as final-comparison trials), with a cost that is a known
function of the configuration:

- ``lr`` dominates (a bowl on its log scale, lowest near the top of its range, far from
  the default);
- ``momentum`` and ``dropout`` interact (a step up where momentum is low *and* dropout
  is high: a third of its variance is the interaction);
- ``regrow_candidates`` matters, strongly, only when ``regrow=gradient_sampled``;
- each instance adds its own offset; Gaussian noise on top; everything else is inert.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from aac_sparse.space.definition import get_space
from aac_sparse.tuning.store import META_CONFIGSPACE, META_OBJECTIVES, TrialStore
from aac_sparse.tuning.trial import TrialOutcome, TrialSpec, config_id

FIXED = {"hidden": [16], "epochs": 5}
TRAIN = ["synthetic#fold=0/5", "synthetic#fold=1/5", "synthetic#fold=2/5"]
TEST = ["synthetic#fold=3/5", "synthetic#fold=4/5"]
OFFSETS = {inst: 0.03 * k for k, inst in enumerate(TRAIN + TEST)}
DOMINANT, INTERACTING, CONDITIONAL = "lr", ("momentum", "dropout"), "regrow_candidates"


def space():
    return get_space("meta", FIXED)


def true_cost(cs, config: dict, instance: str, rng: np.random.Generator | None = None,
              noise: float = 0.005) -> float:
    """The known cost of ``config`` on ``instance`` (plus noise when ``rng`` is given)."""
    def unit(name: str) -> float:
        return float(cs[name].to_vector(config[name]))

    cost = 0.1 + 0.5 * (unit("lr") - 0.9) ** 2
    cost += 0.3 * float(unit("momentum") < 0.5 and unit("dropout") > 0.5)
    if config["regrow"] == "gradient_sampled":
        cost += 0.4 * unit("regrow_candidates")
    cost += OFFSETS[instance]
    if rng is not None:
        cost += rng.normal(0.0, noise)
    return float(cost)


def true_size(cs, config: dict) -> float:
    """A second objective for multi-objective stores: grows with ``zeta`` only."""
    return float(1000.0 * (1.0 + cs["zeta"].to_vector(config["zeta"])))


def make_store(run_dir: Path, n_configs: int = 150, seed: int = 0, noise: float = 0.005,
               final: bool = True, objectives: tuple[str, ...] = ("val_error",)) -> Path:
    """Write a run directory with ``n_configs`` x 3 tuning trials; returns it.  With
    ``objectives=("val_error", "n_params")`` the second objective is :func:`true_size`."""
    cs = space()
    cs.seed(seed)
    rng = np.random.default_rng(seed)
    default = dict(cs.get_default_configuration())
    sampled = cs.sample_configuration(n_configs - 1) if n_configs > 2 else \
        [cs.sample_configuration()] * (n_configs - 1)
    configs = [default] + [dict(c) for c in sampled]
    store = TrialStore(run_dir)
    store.set_meta(META_CONFIGSPACE, cs.to_serialized_dict())
    store.set_meta(META_OBJECTIVES, [{"name": o, "direction": "minimize"} for o in objectives])
    store.set_meta("train_instances", TRAIN)
    store.set_meta("test_instances", TEST)
    store.set_meta("crash_cost", {"val_error": 1.0, "n_params": 1e6})
    store.set_meta("scenario", {"name": "synthetic", "fixed": FIXED})
    clock = [time.time() - 10_000.0]

    def add(config: dict, instance: str, origin: str, cost: float) -> int:
        tid = store.next_trial_id()
        full = {**config, **FIXED}
        store.start_trial(TrialSpec(tid, full, instance, 0, None), origin)
        start, clock[0] = clock[0], clock[0] + 1.0
        values = {"val_error": cost, "n_params": true_size(cs, config)}
        values = {o: values[o] for o in objectives}
        result = {**values, "test_error": cost + 0.01, "status": "ok"}
        store.finish_trial(tid, TrialOutcome("ok", result, "", start, clock[0]), values,
                           cost if len(values) == 1 else list(values.values()))
        return tid

    means = {}
    for config in configs:
        costs = [true_cost(cs, config, inst, rng, noise) for inst in TRAIN]
        for inst, cost in zip(TRAIN, costs, strict=True):
            add(config, inst, "configurator", cost)
        means[config_id({**config, **FIXED})] = (float(np.mean(costs)), config)
    best = min(means, key=lambda c: means[c][0])
    store.set_meta("incumbents", [{"config_id": best, "cost": means[best][0],
                                   "n_instances": len(TRAIN)}])
    if final:
        incumbent = means[best][1]
        rows = []
        for split, insts in (("train", TRAIN), ("test", TEST)):
            for inst in insts:
                row = {"split": split, "instance": inst}
                for name, config in (("default", default), ("incumbent", incumbent)):
                    row[f"{name}_trial"] = add(config, inst, "final",
                                               true_cost(cs, config, inst, rng, noise))
                rows.append(row)
        store.set_meta("final_comparison", {
            "default": config_id({**default, **FIXED}), "incumbent": best, "seed": 0,
            "budget": None, "rows": rows})
    store.close()
    return run_dir
