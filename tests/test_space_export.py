"""Exports of configuration spaces: round trips, parsers, Optuna sampling, staleness."""

from __future__ import annotations

import json
import warnings
from collections import Counter
from pathlib import Path

import optuna
import pytest
import yaml
from ConfigSpace import (
    AndConjunction,
    CategoricalHyperparameter,
    Configuration,
    ConfigurationSpace,
    Constant,
    EqualsCondition,
    ForbiddenAndConjunction,
    ForbiddenEqualsClause,
    ForbiddenInClause,
    GreaterThanCondition,
    InCondition,
    NotEqualsCondition,
    OrConjunction,
    OrdinalHyperparameter,
    UniformFloatHyperparameter,
    UniformIntegerHyperparameter,
)

with warnings.catch_warnings():  # deprecated, but it is the reader SMAC users have
    warnings.simplefilter("ignore", DeprecationWarning)
    from ConfigSpace.read_and_write import pcs_new

from aac_sparse.space.definition import SPACES, get_space
from aac_sparse.space.export import (
    ForbiddenConfiguration,
    export_space,
    optuna_suggest,
    parse_irace_parameters,
    to_configspace_json,
    to_configspace_yaml,
    to_irace,
    to_irace4,
    to_irace_default_configuration,
    to_irace_forbidden,
    to_irace_scenario,
    to_optuna_source,
    to_pcs,
)
from aac_sparse.space.generate import generated_files

REPO = Path(__file__).resolve().parents[1]
optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture
def space() -> ConfigurationSpace:
    """Every feature the exporters claim: scales, kinds, condition kinds, forbiddens."""
    cs = ConfigurationSpace(name="everything")
    lr = UniformFloatHyperparameter("lr", 1e-5, 1.0, default_value=1e-2, log=True)
    frac = UniformFloatHyperparameter("frac", 0.0, 1.0, default_value=0.5)
    width = UniformIntegerHyperparameter("width", 8, 4096, default_value=64, log=True)
    depth = UniformIntegerHyperparameter("depth", 1, 5, default_value=2)
    algo = CategoricalHyperparameter("algo", ["a", "b", "c"], default_value="a")
    flag = CategoricalHyperparameter("flag", ["off", "on"], default_value="off")
    batch = OrdinalHyperparameter("batch", [16, 32, 64], default_value=32)
    const = Constant("mode", "fixed")
    b_only = UniformFloatHyperparameter("b_only", 0.1, 0.9, default_value=0.2)
    not_c = CategoricalHyperparameter("not_c", ["x", "y"], default_value="x")
    big = UniformIntegerHyperparameter("big_frac_knob", 1, 10, default_value=3)
    grand = CategoricalHyperparameter("grand", ["u", "v"], default_value="u")
    child = UniformFloatHyperparameter("child", 1.0, 2.0, default_value=1.5)
    both = UniformIntegerHyperparameter("both", 0, 3, default_value=1)
    either = UniformIntegerHyperparameter("either", 0, 3, default_value=1)
    cs.add([lr, frac, width, depth, algo, flag, batch, const, b_only, not_c, big, grand,
            child, both, either])
    cs.add([
        InCondition(b_only, algo, ["b", "c"]),
        NotEqualsCondition(not_c, algo, "c"),
        GreaterThanCondition(big, frac, 0.5),
        EqualsCondition(grand, flag, "on"),
        EqualsCondition(child, grand, "v"),  # chain: flag -> grand -> child
        AndConjunction(EqualsCondition(both, flag, "on"), InCondition(both, algo, ["a", "b"])),
        OrConjunction(EqualsCondition(either, algo, "a"), GreaterThanCondition(either, frac, 0.8)),
    ])
    cs.add([
        ForbiddenAndConjunction(ForbiddenEqualsClause(algo, "c"),
                                ForbiddenEqualsClause(flag, "on")),
        ForbiddenInClause(batch, [16]),
    ])
    return cs


def test_json_and_yaml_round_trip(space):
    assert ConfigurationSpace.from_serialized_dict(json.loads(to_configspace_json(space))) == space
    assert ConfigurationSpace.from_serialized_dict(yaml.safe_load(to_configspace_yaml(space))) \
        == space


def test_pcs_parses_back_with_configspace(space):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        back = pcs_new.read(to_pcs(space).splitlines())
    assert set(back.keys()) == set(space.keys())
    for hp in space.values():
        other = back[hp.name]
        if hasattr(hp, "lower"):
            assert (other.lower, other.upper, other.log) == (hp.lower, hp.upper, hp.log)
        elif hasattr(hp, "choices"):
            assert list(map(str, other.choices)) == list(map(str, hp.choices))
        elif hasattr(hp, "sequence"):
            assert list(map(str, other.sequence)) == list(map(str, hp.sequence))
    assert {c.child.name for c in back.conditions} == {c.child.name for c in space.conditions}
    # the membership clause is expanded; the forbidden region is the same
    assert len(back.forbidden_clauses) == 2
    space.seed(0)
    for config in space.sample_configuration(50):
        values = {k: str(v) if not isinstance(v, float | int) or isinstance(v, bool) else v
                  for k, v in dict(config).items()}
        if "batch" in values:
            values["batch"] = str(config["batch"])
        Configuration(back, values=values).check_valid_configuration()


def test_irace_file_parses_back(space):
    text = to_irace(space)
    params = {p["name"]: p for p in parse_irace_parameters(text)}
    assert set(params) == set(space.keys())
    assert params["lr"]["type"] == "r" and params["lr"]["log"]
    assert params["width"]["type"] == "i" and params["width"]["log"]
    assert params["batch"]["type"] == "o" and params["batch"]["values"] == ["16", "32", "64"]
    assert params["mode"]["type"] == "c" and params["mode"]["values"] == ["fixed"]
    assert params["lr"]["values"] == ["1e-05", "1.0"] and params["frac"]["log"] is False
    assert params["b_only"]["condition"] == 'algo %in% c("b", "c")'
    assert params["big_frac_knob"]["condition"] == "frac > 0.5"
    assert params["both"]["condition"] == '(flag == "on") & (algo %in% c("a", "b"))'
    assert params["either"]["condition"] == '(algo == "a") | (frac > 0.8)'
    names = list(params)
    for p in params.values():  # conditions only reference parameters defined above them
        for other in names:
            if other in p["condition"].replace("%in%", ""):
                assert names.index(other) < names.index(p["name"])
    assert "[forbidden]" not in text and "[global]" not in text  # irace 3 has no sections
    assert to_irace_forbidden(space) == '(algo == "c") & (flag == "on")\n(batch %in% c("16"))\n'
    sectioned = to_irace4(space)
    assert '[forbidden]\n(algo == "c") & (flag == "on")\n(batch %in% c("16"))' in sectioned
    assert "digits = 7" in sectioned  # 1e-05 needs five decimals, irace wants two more
    scenario = to_irace_scenario(space, "everything")
    assert "digits = 7" in scenario and 'forbiddenFile = "everything.irace-forbidden.txt"' \
        in scenario and 'parameterFile = "everything.irace.txt"' in scenario
    header, row = to_irace_default_configuration(space).splitlines()
    defaults = dict(zip(header.split(), row.split(), strict=True))
    assert defaults["lr"] == "0.01" and defaults["grand"] == "NA"


def test_irace_parser_rejects_malformed_lines():
    with pytest.raises(ValueError, match="type"):
        parse_irace_parameters('x "--x=" q (1, 2)\n')
    with pytest.raises(ValueError, match="closing"):
        parse_irace_parameters('x "--x=" r (1, 2\n')


def _sample(cs, sampler, n=200):
    fn = optuna_suggest(cs)
    study = optuna.create_study(sampler=sampler)
    out = []
    for i in range(n):
        trial = study.ask()
        try:
            values = fn(trial)
        except ForbiddenConfiguration:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            continue
        out.append(values)
        study.tell(trial, float(i % 7))
    return out


@pytest.mark.parametrize("sampler", [optuna.samplers.RandomSampler(seed=1),
                                     optuna.samplers.TPESampler(seed=1, n_startup_trials=20)])
def test_optuna_samples_only_valid_active_parameters(space, sampler):
    samples = _sample(space, sampler)
    assert len(samples) > 100
    for values in samples:
        config = Configuration(space, values=values)  # raises for inactive/missing/forbidden
        config.check_valid_configuration()
        assert set(values) == set(space.get_active_hyperparameters(config))
    seen = Counter(v["algo"] for v in samples)
    assert set(seen) == {"a", "b", "c"}
    assert any("child" in v for v in samples) and any("grand" in v and "child" not in v
                                                     for v in samples)
    assert all(isinstance(v["batch"], int) and v["batch"] != 16 for v in samples)
    assert all(v["mode"] == "fixed" for v in samples)


def test_generated_source_samples_exactly_like_the_function(space):
    namespace: dict = {}
    exec(to_optuna_source(space), namespace)
    a = _sample(space, optuna.samplers.TPESampler(seed=3, n_startup_trials=10), 60)
    fn = namespace["suggest"]
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=3, n_startup_trials=10))
    b = []
    for i in range(60):
        trial = study.ask()
        try:
            b.append(fn(trial))
            study.tell(trial, float(i % 7))
        except namespace["ForbiddenConfiguration"]:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    assert a == b


def test_unsupported_features_are_clear_errors():
    from ConfigSpace import NormalFloatHyperparameter
    from ConfigSpace.forbidden import ForbiddenLessThanRelation

    cs = ConfigurationSpace()
    cs.add(NormalFloatHyperparameter("n", mu=0, sigma=1, lower=-3, upper=3))
    for fmt in ("pcs", "irace", "irace4", "optuna"):
        with pytest.raises(ValueError, match="'n'"):
            export_space(cs, fmt)
    cs = ConfigurationSpace()
    a, b = UniformFloatHyperparameter("a", 0, 1), UniformFloatHyperparameter("b", 0, 1)
    cs.add([a, b, ForbiddenLessThanRelation(a, b)])
    for write in (to_irace4, to_irace_forbidden):
        with pytest.raises(ValueError, match="forbidden clause"):
            write(cs)
    with pytest.raises(ValueError, match="unknown format"):
        export_space(cs, "xml")


@pytest.mark.parametrize("name", list(SPACES))
def test_project_spaces_export_to_every_format(name):
    cs = get_space(name)
    for fmt in ("configspace-json", "configspace-yaml", "pcs", "irace", "optuna"):
        assert export_space(cs, fmt)
    for values in _sample(cs, optuna.samplers.RandomSampler(seed=0), 80):
        Configuration(cs, values=values).check_valid_configuration()


def test_files_in_spaces_are_not_stale():
    stale = [f for f, text in generated_files().items()
             if not (REPO / "spaces" / f).is_file() or (REPO / "spaces" / f).read_text() != text]
    assert not stale, (f"spaces/ is out of date for {stale}; regenerate with "
                       "'python -m aac_sparse.space.generate'")


# -- store values <-> configurator representations (what resume replays) ----------------

def _every_space() -> list[tuple[str, ConfigurationSpace]]:
    spaces = [(name, get_space(name)) for name in SPACES]
    spaces.append(("meta-fixed", get_space("meta", {"batch_size": 64, "regrow": "gradient"})))
    return spaces


@pytest.mark.parametrize("name,cs", _every_space(), ids=lambda x: x if isinstance(x, str)
                         else "")
def test_store_values_convert_both_ways_for_every_parameter(name, cs):
    """Every parameter of every space, every categorical and ordinal value included, goes
    store -> ConfigSpace / Optuna -> store unchanged (through the real JSON of the store
    and a real Optuna study replaying it, as resume does)."""
    from aac_sparse.space.values import (
        from_configuration,
        from_optuna,
        to_configuration,
        to_optuna,
    )
    from aac_sparse.tuning.store import dumps, loads

    cs.seed(7)
    configs = [cs.get_default_configuration(), *cs.sample_configuration(300)]
    seen: dict[str, set] = {n: set() for n in cs}
    suggest = optuna_suggest(cs)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for config in configs:
        stored = loads(dumps(from_configuration(config)))  # what the trial store holds
        for k, v in stored.items():
            seen[k].add(v)
        assert to_configuration(cs, stored) == config
        params = to_optuna(cs, stored)
        assert from_optuna(cs, params) == stored
        study.enqueue_trial(params, skip_if_exists=False)
        trial = study.ask()
        assert suggest(trial) == stored
        study.tell(trial, 0.0)
    for n in cs:
        hp = cs[n]
        assert seen[n], f"{name}: parameter {n} was never active in the sample"
        values = (hp.choices if isinstance(hp, CategoricalHyperparameter) else
                  hp.sequence if isinstance(hp, OrdinalHyperparameter) else None)
        if values is not None:
            assert seen[n] == {v.item() if hasattr(v, "item") else v for v in values}, n


def test_store_values_that_are_not_in_the_space_are_refused():
    from aac_sparse.space.values import to_configuration, to_optuna

    cs = get_space("meta")
    with pytest.raises(ValueError, match="batch_size"):
        to_optuna(cs, {"batch_size": 100})
    # fixed training settings (not parameters of the space) are left out, not refused
    assert "hidden" not in to_optuna(cs, {**dict(cs.get_default_configuration()),
                                          "hidden": [10]})
    assert to_configuration(cs, {**dict(cs.get_default_configuration()), "seed": 3}) == \
        cs.get_default_configuration()
