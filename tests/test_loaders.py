"""Loaders of the file-based datasets, on small files written here in each real format."""

from __future__ import annotations

import gzip
import io
import pickle
import tarfile

import numpy as np
import pytest

from aac_sparse.data.loaders import cifar10, gse13159, higgs, madelon, user_file
from aac_sparse.data.registry import REGISTRY, load_dataset
from aac_sparse.errors import DataError


@pytest.fixture(autouse=True)
def private_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("AAC_SPARSE_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


# -- GSE13159: GEO series matrix ------------------------------------------------------

def series_matrix(path, labels=("CML", "CML", "AML", "AML", "ALL", "ALL"), n_probes=20,
                  truncate=False, gap=True):
    gsm = [f"GSM{329400 + i}" for i in range(len(labels))]
    rng = np.random.default_rng(0)
    values = rng.normal(8, 2, (n_probes, len(labels))).round(3)
    lines = ['!Series_title\t"MILE study"', "!Sample_geo_accession\t"
             + "\t".join(f'"{g}"' for g in gsm),
             "!Sample_characteristics_ch1\t" + "\t".join('"tissue: bone marrow"' for _ in gsm),
             "!Sample_characteristics_ch1\t" + "\t".join(f'"leukemia class: {c}"'
                                                        for c in labels),
             "!series_matrix_table_begin", '"ID_REF"\t' + "\t".join(f'"{g}"' for g in gsm)]
    for p in range(n_probes):
        cells = [str(v) for v in values[p]]
        if gap and p == 3:
            cells[2] = "null"
        lines.append(f'"{p}_at"\t' + "\t".join(cells))
    if not truncate:
        lines.append("!series_matrix_table_end")
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join(lines) + "\n")
    return values


def test_gse13159_stream_parses_labels_values_and_gaps(tmp_path):
    f = tmp_path / "GSE13159_series_matrix.txt.gz"
    values = series_matrix(f)
    data = gse13159.load(f, min_class_count=1)
    assert data.x.shape == (6, 20) and data.x.dtype == np.float32
    assert data.classes == ["ALL", "AML", "CML"] and data.y.tolist() == [2, 2, 1, 1, 0, 0]
    np.testing.assert_allclose(data.x[0], values[:, 0], rtol=1e-6)
    others = np.delete(values[3], 2)
    assert data.x[2, 3] == pytest.approx(others.mean(), rel=1e-5)
    assert any("1 missing" in n for n in data.notes)
    tissue = gse13159.load(f, label_key="tissue", min_class_count=1)
    assert tissue.classes == ["bone marrow"]
    with pytest.raises(DataError, match="found: 'tissue', 'leukemia class'"):
        gse13159.load(f, label_key="subtype")
    with pytest.raises(DataError, match="fewer than two classes have at least 3"):
        gse13159.load(f, min_class_count=3)


def test_gse13159_reports_truncation_and_bad_rows(tmp_path):
    f = tmp_path / "cut.txt.gz"
    series_matrix(f, truncate=True)
    with pytest.raises(DataError, match="truncated"):
        gse13159.load(f)
    raw = gzip.compress(b"!Sample_geo_accession\t\"GSM1\"\n" * 1000)
    (tmp_path / "broken.txt.gz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match="truncated|cannot read"):
        gse13159.load(tmp_path / "broken.txt.gz")
    bad = tmp_path / "bad.txt.gz"
    series_matrix(bad)
    text = gzip.decompress(bad.read_bytes()).decode().replace('"5_at"\t', '"5_at"\t1\t')
    bad.write_bytes(gzip.compress(text.encode()))
    with pytest.raises(DataError, match="line 12: 7 values for 6 samples"):
        gse13159.load(bad)


def test_gse13159_missing_file_lists_places_and_the_way_to_get_it(tmp_path):
    with pytest.raises(DataError) as info:
        load_dataset("gse13159")
    assert str(tmp_path / "data" / "gse13159") in str(info.value)
    assert "GEO" in str(info.value) and "path=FILE" in str(info.value)
    assert REGISTRY["gse13159"].availability() == "no"


# -- Madelon ---------------------------------------------------------------------------

def madelon_files(folder, n_train=6, n_test=4, bad_columns=False):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    for part, n in (("train", n_train), ("valid", n_test)):
        x = rng.integers(400, 600, (n, 500))
        rows = [" ".join(map(str, r)) + " " for r in x]
        if bad_columns and part == "train":
            rows[2] = " ".join(map(str, x[2][:-1]))
        (folder / f"madelon_{part}.data").write_text("\n".join(rows) + "\n")
        (folder / f"madelon_{part}.labels").write_text(
            "\n".join("1" if i % 2 else "-1" for i in range(n)) + "\n")


def test_madelon_reads_the_uci_files(tmp_path):
    madelon_files(tmp_path / "m")
    data = load_dataset("madelon", path=tmp_path / "m")
    assert data.x.shape == (6, 500) and data.test_x.shape == (4, 500)
    assert data.y.tolist() == [0, 1, 0, 1, 0, 1] and data.x.dtype == np.float32
    assert "generated" not in " ".join(data.notes)
    madelon_files(tmp_path / "bad", bad_columns=True)
    with pytest.raises(DataError, match="line 3: 499 values, 500 expected"):
        madelon.load(tmp_path / "bad")


def test_madelon_generator_follows_guyons_design_and_says_so(tmp_path):
    from sklearn.linear_model import LogisticRegression

    assert REGISTRY["madelon"].availability() == "generator"
    a = madelon.load(seed=3)
    assert a.x.shape == (2000, 500) and a.test_x.shape == (600, 500)
    assert "generated (no Madelon files found in:" in a.notes[0]
    np.testing.assert_array_equal(a.x, madelon.load(seed=3).x)
    assert not np.array_equal(a.x, madelon.load(seed=4).x)
    # 20 of 500 columns carry the signal: they are the ones correlated with each other
    corr = np.abs(np.corrcoef(a.x[:, :], rowvar=False))
    np.fill_diagonal(corr, 0)
    relevant = np.argsort(corr.max(axis=0))[-20:]
    probes = np.setdiff1d(np.arange(500), relevant)[:20]

    def score(cols):
        return LogisticRegression(max_iter=2000).fit(a.x[:, cols], a.y).score(
            a.test_x[:, cols], a.test_y)

    assert score(relevant) > score(probes) + 0.05
    madelon_files(tmp_path / "data" / "madelon")
    assert "generated" in madelon.load(generate=True).notes[0]
    assert "generated" not in madelon.load().notes[0]


# -- HIGGS -------------------------------------------------------------------------------

def higgs_rows(n, seed=0):
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.integers(0, 2, n), rng.normal(size=(n, 28))])


@pytest.mark.parametrize("name", ["HIGGS.csv", "HIGGS.csv.gz"])
def test_higgs_reads_csv_and_gzip_with_a_row_limit(tmp_path, name):
    rows = higgs_rows(50)
    text = "\n".join(",".join(f"{v:.6e}" for v in r) for r in rows) + "\n"
    f = tmp_path / name
    f.write_bytes(gzip.compress(text.encode()) if name.endswith(".gz") else text.encode())
    data = higgs.load(f)
    assert data.x.shape == (50, 28) and data.test_x is None
    assert data.y.tolist() == rows[:, 0].astype(int).tolist()
    part = load_dataset("higgs", path=f, n_rows=20)
    assert part.x.shape == (20, 28) and "first 20 rows" in part.notes[-1]
    np.testing.assert_allclose(part.x, rows[:20, 1:], rtol=1e-5)


def test_higgs_full_file_uses_the_last_rows_as_test_set(tmp_path, monkeypatch):
    monkeypatch.setattr(higgs, "N_TEST", 10)
    f = tmp_path / "HIGGS.csv"
    np.savetxt(f, higgs_rows(40), delimiter=",")
    data = higgs.load(f)
    assert data.x.shape == (30, 28) and data.test_x.shape == (10, 28)


def test_higgs_damaged_files_are_clear_errors(tmp_path):
    f = tmp_path / "HIGGS.csv"
    np.savetxt(f, higgs_rows(5)[:, :20], delimiter=",")
    with pytest.raises(DataError, match="20 columns, 29 expected"):
        higgs.load(f)
    rows = higgs_rows(5)
    rows[1, 0] = 3
    np.savetxt(f, rows, delimiter=",")
    with pytest.raises(DataError, match="label 0 or 1"):
        higgs.load(f)


# -- CIFAR-10 ----------------------------------------------------------------------------

def cifar_tarball(path, per_batch=4, evil=None):
    rng = np.random.default_rng(0)

    def blob(obj):
        return pickle.dumps(obj, protocol=2)

    members = {}
    for name in [*cifar10.TRAIN, "test_batch"]:
        members[name] = blob({b"batch_label": name.encode(),
                              b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
                              b"labels": [int(v) for v in rng.integers(0, 10, per_batch)]})
    members["batches.meta"] = blob({b"label_names": [f"class{i}".encode() for i in range(10)],
                                    b"num_vis": 3072})
    if evil is not None:
        members["data_batch_2"] = evil
    with tarfile.open(path, "w:gz") as tar:
        for name, raw in members.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))


def test_cifar10_reads_the_python_tarball(tmp_path):
    f = tmp_path / "cifar-10-python.tar.gz"
    cifar_tarball(f)
    data = load_dataset("cifar10", path=f)
    assert data.x.shape == (20, 3072) and data.test_x.shape == (4, 3072)
    assert data.x.dtype == np.float32 and data.x.max() <= 255
    assert data.classes[:2] == ["class0", "class1"] and data.n_classes == 10
    folder = tmp_path / "x"
    with tarfile.open(f) as tar:
        tar.extractall(folder, filter="data")
    again = cifar10.load(folder / "cifar-10-batches-py")
    np.testing.assert_array_equal(again.x, data.x)


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("touch /tmp/aac-sparse-pwned",))


def test_cifar10_refuses_pickles_that_would_run_code(tmp_path):
    import os

    f = tmp_path / "cifar-10-python.tar.gz"
    cifar_tarball(f, evil=pickle.dumps({b"data": _Evil(), b"labels": []}, protocol=2))
    with pytest.raises(DataError, match="refusing to load"):
        cifar10.load(f)
    assert not os.path.exists("/tmp/aac-sparse-pwned")
    (tmp_path / "junk.tar.gz").write_bytes(b"not a tarball")
    with pytest.raises(DataError, match="not a readable tar.gz"):
        cifar10.load(tmp_path / "junk.tar.gz")


# -- the user's own file -----------------------------------------------------------------

def test_user_files_npz_and_csv(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", x=rng.normal(size=(30, 4)), y=np.repeat(["a", "b", "c"], 10))
    data = load_dataset("file", path=tmp_path / "d.npz")
    assert data.x.shape == (30, 4) and data.classes == ["a", "b", "c"]
    csv = tmp_path / "d.csv"
    csv.write_text("f1,f2,kind\n" + "\n".join(f"{i},{i * 2},{'yes' if i % 2 else 'no'}"
                                              for i in range(12)))
    data = load_dataset("file", path=csv, label_column="kind")
    assert data.x.shape == (12, 2) and data.classes == ["no", "yes"]
    with pytest.raises(DataError, match="no column 'label'"):
        user_file.load(csv, label_column="label")
    with pytest.raises(DataError, match="does not exist"):
        user_file.load(tmp_path / "nope.csv")
    np.savez(tmp_path / "nan.npz", x=np.array([[np.nan, 1.0], [1.0, 2.0]]), y=[0, 1])
    with pytest.raises(DataError, match="NaN"):
        user_file.load(tmp_path / "nan.npz")
    assert REGISTRY["file"].availability() == "path"
