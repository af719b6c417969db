"""Instances: stable ids, folds, training-only preprocessing, the on-disk cache, features."""

from __future__ import annotations

import json

import numpy as np
import pytest

from aac_sparse.data import instances as inst_mod
from aac_sparse.data.dataset import Dataset, drop_small_classes
from aac_sparse.data.instances import FEATURE_NAMES, Instance, InstanceSet, folds
from aac_sparse.data.prepare import fold_indices, scale, split_dataset
from aac_sparse.errors import DataError


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("AAC_SPARSE_CACHE", str(tmp_path / "prepared"))
    monkeypatch.setenv("AAC_SPARSE_DATA", str(tmp_path / "data"))
    inst_mod._RAW.clear()


@pytest.mark.parametrize("inst", [
    Instance.make("digits"),
    Instance.make("all-leukemia", {"label": "mol.biol", "min_class_count": 4}, fold=3,
                  n_folds=5),
    Instance.make("synthetic", {"n_features": 40, "n_samples": 200, "seed": 2}, seed=7,
                  val_fraction=0.25, test_fraction=0.3, max_train=50, preprocessing="minmax"),
    Instance.make("higgs", {"path": "/data/with space & hash#/HIGGS.csv.gz", "n_rows": 1000}),
])
def test_ids_are_canonical_and_parse_back(inst):
    assert Instance.parse(inst.id) == inst
    assert Instance.parse(inst.id).id == inst.id


def test_id_leaves_defaults_out_and_rejects_nonsense():
    assert Instance.make("digits").id == "digits#holdout"
    assert Instance.make("digits", fold=1, n_folds=4).id == "digits#fold=1/4"
    with pytest.raises(DataError, match="unknown dataset"):
        Instance.make("nope")
    with pytest.raises(DataError, match="fold"):
        Instance.make("digits", fold=5, n_folds=5)
    with pytest.raises(DataError, match="cannot read"):
        Instance.parse("digits#fold=a/b")
    with pytest.raises(DataError, match="preprocessing"):
        Instance.make("digits", preprocessing="pca")


def test_folds_partition_the_data_and_keep_class_balance():
    y = np.repeat(np.arange(3), [20, 30, 50])
    tests = [fold_indices(y, f, 5, seed=0)[1] for f in range(5)]
    assert sorted(np.concatenate(tests).tolist()) == list(range(100))
    for t in tests:
        assert np.bincount(y[t]).tolist() == [4, 6, 10]
    with pytest.raises(DataError, match="smallest class"):
        fold_indices(np.array([0, 0, 0, 1, 1, 1, 1, 1, 1, 1]), 0, 4, seed=0)


def test_scaling_uses_training_statistics_only():
    rng = np.random.default_rng(0)
    train = rng.normal(5, 2, (200, 3)).astype(np.float32)
    train[:, 2] = 1.0  # constant feature
    other = rng.normal(50, 9, (40, 3)).astype(np.float32)
    a, b = scale(train, other)
    np.testing.assert_allclose(a[:, :2].mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(a[:, :2].std(0), 1, atol=1e-4)
    assert np.all(a[:, 2] == 0)
    expected = (other[:, 0] - train[:, 0].mean()) / train[:, 0].std()
    np.testing.assert_allclose(b[:, 0], expected, rtol=1e-4)  # not other's own statistics
    lo, hi = scale(train, other, method="minmax")
    assert lo[:, :2].min() == 0 and lo[:, :2].max() == pytest.approx(1)
    assert a.dtype == b.dtype == np.float32


def test_fold_split_uses_fold_as_test_and_stratified_validation():
    data = Dataset("t", np.arange(300, dtype=np.float32).reshape(100, 3),
                   np.repeat(np.arange(2), 50), ["a", "b"])
    s = split_dataset(data, val_fraction=0.2, seed=1, fold=0, n_folds=5)
    assert (len(s.y_train), len(s.y_val), len(s.y_test)) == (64, 16, 20)
    assert np.bincount(s.y_val).tolist() == [8, 8]


def test_cache_second_load_does_not_touch_the_loader(monkeypatch):
    inst = Instance.make("synthetic", {"n_features": 30, "n_samples": 150})
    first = inst.load()
    calls = []
    monkeypatch.setattr(inst_mod, "load_dataset", lambda *a, **k: calls.append(a))
    inst_mod._RAW.clear()
    again = inst.load()
    assert calls == []
    for name in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(first, name), getattr(again, name))
    assert not again.x_train.flags.writeable  # memory-mapped, shared between workers
    assert again.x_train.dtype == np.float32 and again.x_train.flags.c_contiguous


def test_half_written_cache_is_never_used(monkeypatch):
    inst = Instance.make("synthetic", {"n_features": 20, "n_samples": 120})
    d = inst.cache_dir()
    d.mkdir(parents=True)
    (d / "x_train.npy").write_bytes(b"garbage from a crash")  # no meta.json: incomplete
    split = inst.load()
    assert split.x_train.shape[1] == 20
    leftover = d.parent / f".{d.name}.tmp"
    leftover.mkdir()
    assert inst.load().x_train.shape[1] == 20
    # a crash while writing leaves no visible directory behind
    monkeypatch.setattr(inst_mod.np, "save", lambda *a, **k: (_ for _ in ()).throw(OSError))
    other = Instance.make("synthetic", {"n_features": 21, "n_samples": 120})
    with pytest.raises(OSError):
        other.load()
    assert not other.cache_dir().exists()


def test_cache_key_follows_the_source_file(tmp_path, monkeypatch):
    from aac_sparse.data import registry

    a = Instance.make("digits")
    b = Instance.make("digits", seed=1)
    assert a.cache_dir() != b.cache_dir()
    src = tmp_path / "file.bin"
    src.write_text("one")
    monkeypatch.setattr(registry.DatasetSpec, "find", lambda self, path=None: src)
    before = a.cache_dir()
    src.write_text("two, longer")
    assert a.cache_dir() != before


def test_features_describe_the_instance():
    inst = Instance.make("synthetic", {"n_features": 25, "n_samples": 200, "n_classes": 2})
    f = inst.features()
    assert list(f) == list(FEATURE_NAMES)
    assert f["n_features"] == 25 and f["n_classes"] == 2
    assert f["n_samples"] == len(inst.load().y_train)
    assert 0.95 < f["class_entropy"] <= 1.0 and f["input_sparsity"] == 0.0
    info = inst.info()
    assert info["id"] == inst.id and "generated" in " ".join(info["notes"])
    assert json.dumps(InstanceSet([inst]).features())


def test_instance_set_rejects_duplicates_and_expands_folds():
    fs = folds("digits", 4, which=[0, 2])
    assert [f.id for f in fs] == ["digits#fold=0/4", "digits#fold=2/4"]
    with pytest.raises(DataError, match="twice"):
        InstanceSet([fs[0], Instance.parse("digits#fold=0/4")])


def test_drop_small_classes_says_what_it_dropped():
    data = Dataset("t", np.zeros((9, 2), np.float32), np.array([0, 0, 0, 0, 1, 2, 2, 2, 2]),
                   ["a", "b", "c"])
    out = drop_small_classes(data, 3)
    assert out.classes == ["a", "c"] and out.y.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert "b (1)" in out.notes[-1]


def test_real_all_leukemia_when_present():
    from aac_sparse.data.registry import REGISTRY, load_dataset

    if REGISTRY["all-leukemia"].find() is None:
        pytest.skip("ALL not fetched here (aac-sparse data fetch all-leukemia)")
    bt = load_dataset("all-leukemia", label="BT", min_class_count=1)
    assert bt.x.shape == (128, 12625) and bt.n_classes == 10
    assert np.bincount(bt.y).tolist() == [5, 19, 36, 23, 12, 5, 1, 15, 10, 2]
    mol = load_dataset("all-leukemia", label="mol.biol")
    assert mol.classes == ["ALL1/AF4", "BCR/ABL", "E2A/PBX1", "NEG"]
    assert np.bincount(mol.y).tolist() == [10, 37, 5, 74]
    assert "NUP-98 (1)" in mol.notes[-1]
