"""The configuration spaces and the target function built on them."""

from __future__ import annotations

import math

import numpy as np
import pytest
from ConfigSpace import Configuration

from aac_sparse.data.instances import Instance
from aac_sparse.engine.config import PRESETS, TrainConfig
from aac_sparse.engine.trainer import train
from aac_sparse.errors import ConfigError
from aac_sparse.io import plain
from aac_sparse.space.definition import (
    PARAMETERS,
    SPACES,
    get_space,
    preset_values,
    to_train_config,
)
from aac_sparse.target import target

TINY = {"hidden": [16, 12]}


@pytest.fixture(scope="module")
def tiny_instance(tmp_path_factory):
    import os

    os.environ["AAC_SPARSE_CACHE"] = str(tmp_path_factory.mktemp("prepared"))
    inst = Instance.make("synthetic", {"n_samples": 90, "n_features": 12, "n_classes": 3})
    inst.load()
    return inst


@pytest.mark.parametrize("name", list(SPACES))
def test_space_default_is_its_preset(name):
    cs = get_space(name)
    default = to_train_config(dict(cs.get_default_configuration()), TINY)
    preset = TrainConfig(**{**PRESETS[SPACES[name].preset], **TINY})
    assert default == preset


def test_every_parameter_has_a_meaning_and_a_sane_domain():
    cs = get_space("meta", {"workers": 2})  # with trial workers: the parallel group too
    assert {p.name for p in PARAMETERS} == set(cs.keys())
    for hp in cs.values():
        assert hp.meta["meaning"]
    for p in PARAMETERS:
        if p.kind in ("float", "int"):
            lo, hi = p.domain
            assert lo < hi
            if p.log:
                assert lo > 0 and hi / lo >= 10  # log scale only where it spans decades
    assert cs["lr"].log and cs["weight_decay"].log and not cs["momentum"].log


def test_restricted_spaces_fix_the_other_algorithms_components():
    set_cs, rigl_cs = get_space("set"), get_space("rigl")
    assert set_cs["prune"].value == "set" and set_cs["regrow"].value == "random"
    assert rigl_cs["prune"].value == "magnitude" and rigl_cs["regrow"].value == "gradient"
    assert "update_every_steps" not in set_cs and "epsilon" not in rigl_cs
    assert "alpha" not in set_cs  # activation fixed to relu: alpha can never be active
    assert not set_cs.conditions or all(
        c.parent.name in set_cs and not hasattr(set_cs[c.parent.name], "value")
        for c in set_cs.conditions)


def test_forbidden_combination_is_never_sampled():
    cs = get_space("meta")
    cs.seed(0)
    for c in cs.sample_configuration(300):
        assert not (c["regrow"] == "random" and c["regrow_init"] == "zero")
    bad = dict(cs.get_default_configuration())
    bad["regrow_init"] = "zero"
    with pytest.raises(Exception, match="[Ff]orbidden"):
        Configuration(cs, values=bad).check_valid_configuration()


def test_200_random_meta_configurations_train_without_error(tiny_instance):
    cs = get_space("meta")
    cs.seed(42)
    statuses = {}
    for i, c in enumerate(cs.sample_configuration(200)):
        values = {**dict(c), **TINY}
        # three short epochs with frequent updates so evolution, regrowth and importance
        # pruning of every sampled kind really run
        values.update(update_every_steps=1, update_every_epochs=1, ip_every=1)
        if values.get("update_schedule") == "epoch":
            values["update_end"] = 1.0
        res = target(values, tiny_instance, seed=i, budget=3)
        assert res["status"] in ("ok", "diverged"), res["message"]
        statuses[res["status"]] = statuses.get(res["status"], 0) + 1
        if res["status"] == "ok":
            assert 0.0 <= res["val_error"] <= 1.0 and res["epochs_run"] == 3
            assert res["nnz"] > 0 and res["train_flops"] > 0
    assert statuses.get("ok", 0) > 150  # divergence only where lr is extreme


# A parameter the space marks inactive must not change what the engine does, and must
# change it when active: (field, two values, inactive context, active context).
INACTIVE_CASES = [
    ("alpha", 0.1, 0.9, {"activation": "relu"}, {"activation": "leaky_relu"}),
    ("epsilon", 3.0, 6.0, {"density_distribution": "erk", "density": 0.3},
     {"density_distribution": "er"}),
    ("density", 0.1, 0.4, {"density_distribution": "er", "epsilon": 3.0},
     {"density_distribution": "erk"}),
    ("regrow_candidates", 1.0, 50.0, {"regrow": "gradient"}, {"regrow": "gradient_sampled"}),
    ("update_every_steps", 1, 3, {"update_schedule": "epoch"}, {"update_schedule": "steps"}),
    ("update_every_epochs", 1, 2, {"update_schedule": "steps", "update_every_steps": 2},
     {"update_schedule": "epoch"}),
    ("lr_final_fraction", 0.0, 0.5, {"lr_schedule": "constant"}, {"lr_schedule": "cosine"}),
    ("ip_start", 1, 2, {"importance_pruning": False},
     {"importance_pruning": True, "ip_every": 1}),
    ("ip_percentile", 5.0, 30.0, {"importance_pruning": False},
     {"importance_pruning": True, "ip_start": 1}),
]


def _history(split, cfg: TrainConfig) -> list[dict]:
    hist = train(cfg, split.x_train, split.y_train, split.x_val, split.y_val).history
    return [{k: v for k, v in r.items() if not k.endswith("_s")} for r in hist]


@pytest.mark.parametrize("field,a,b,inactive,active", INACTIVE_CASES,
                         ids=[c[0] for c in INACTIVE_CASES])
def test_inactive_parameters_do_not_change_training(tiny_instance, field, a, b, inactive,
                                                    active):
    split = tiny_instance.load()
    base = {**TINY, "epochs": 3, "batch_size": 16, "epsilon": 3.0}  # sparse: evolution runs
    off = [_history(split, TrainConfig(**{**base, **inactive, field: v})) for v in (a, b)]
    assert off[0] == off[1]
    on = [_history(split, TrainConfig(**{**base, **active, field: v})) for v in (a, b)]
    assert on[0] != on[1]


def test_to_train_config_maps_the_space_vocabulary():
    cfg = to_train_config({"importance_pruning": "on", "ip_start_fraction": 0.25,
                           "batch_size": np.int64(32), "epochs": 40}, TINY, epochs=20)
    assert cfg.importance_pruning and cfg.ip_start == 5 and cfg.epochs == 20
    assert cfg.batch_size == 32 and isinstance(cfg.batch_size, int)
    with pytest.raises(ConfigError, match="zeta"):
        to_train_config({"zeta": 2.0}, TINY)
    assert preset_values("set-allrelu-ip")["importance_pruning"] == "on"


def test_target_reports_each_epoch_and_can_be_pruned(tiny_instance):
    seen = []
    cfg = {**dict(get_space("meta").get_default_configuration()), **TINY}
    res = target(cfg, tiny_instance.id, seed=0, budget=4,
                 report=lambda epoch, err: seen.append((epoch, err)) or epoch == 2)
    assert res["status"] == "pruned" and [e for e, _ in seen] == [1, 2]
    assert res["curve"] == [err for _, err in seen] and res["epochs_run"] == 2
    full = target(cfg, tiny_instance, seed=0, budget=4)
    assert full["status"] == "ok" and full["curve"][:2] == res["curve"]
    assert full == {**target(cfg, tiny_instance, seed=0, budget=4),
                    "train_time": full["train_time"], "wall_time": full["wall_time"]}


def test_target_reports_divergence_and_lets_errors_reach_the_worker(tiny_instance):
    cfg = {**dict(get_space("meta").get_default_configuration()), **TINY}
    with pytest.raises(ConfigError, match="lr"):
        target({**cfg, "lr": -1.0}, tiny_instance, seed=0, budget=1)
    boom = target({**cfg, "lr": 1e6, "momentum": 0.0, "dropout": 0.0}, tiny_instance, seed=0,
                  budget=5)
    assert boom["status"] == "diverged" and math.isnan(boom["val_error"])
    assert "loss" in boom["message"]
    with pytest.raises(Exception, match="n_samples"):
        target(cfg, "synthetic?n_samples=-5", seed=0, budget=1)
    assert plain(np.str_("x")) == "x" and plain([np.int64(2)]) == [2]
