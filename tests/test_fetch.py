"""`data fetch` over a URL, served from this machine: progress, checksum, atomic files."""

from __future__ import annotations

import hashlib
import http.server
import threading
from functools import partial

import pytest

from aac_sparse.data import fetch
from aac_sparse.errors import DataError


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    handler.log_message = lambda *a: None
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


def test_url_route_downloads_verifies_and_reports_progress(tmp_path, server, monkeypatch):
    root, base = server
    payload = b"x" * 3_000_000
    (root / "a.bin").write_bytes(payload)
    (root / "b.bin").write_bytes(b"no published checksum")
    md5 = hashlib.md5(payload).hexdigest()
    monkeypatch.setitem(fetch.URL_SOURCES, "demo", (
        fetch.UrlFile(base + "a.bin", "a.bin", md5), fetch.UrlFile(base + "b.bin", "b.bin")))
    seen = []
    dest = fetch.fetch_dataset("demo", tmp_path / "data", say=lambda m: None,
                               progress=lambda f, done, total: seen.append((f, done, total)),
                               route="url")
    assert (dest / "a.bin").read_bytes() == payload
    assert seen[-1] == ("b.bin", 21, 21) and any(d < 3_000_000 for f, d, _ in seen
                                                 if f == "a.bin")
    assert (dest / "b.bin.sha256").read_text().startswith(
        hashlib.sha256(b"no published checksum").hexdigest())
    messages = []
    fetch.fetch_dataset("demo", tmp_path / "data", say=messages.append, route="url")
    assert "already present" in messages[0]


def test_checksum_mismatch_and_unreachable_urls_keep_nothing(tmp_path, server, monkeypatch):
    root, base = server
    (root / "a.bin").write_bytes(b"tampered")
    monkeypatch.setitem(fetch.URL_SOURCES, "demo", (
        fetch.UrlFile(base + "a.bin", "a.bin", "0" * 32),))
    with pytest.raises(DataError, match="checksum mismatch"):
        fetch.fetch_dataset("demo", tmp_path / "data", say=lambda m: None, route="url")
    assert not list((tmp_path / "data" / "demo").iterdir())
    monkeypatch.setitem(fetch.URL_SOURCES, "demo", (
        fetch.UrlFile(base + "missing.bin", "a.bin"),))
    with pytest.raises(DataError, match="Download it by hand"):
        fetch.fetch_dataset("demo", tmp_path / "data", say=lambda m: None, route="url")
    assert not list((tmp_path / "data" / "demo").iterdir())


def test_unknown_routes_and_datasets():
    with pytest.raises(DataError, match="cannot be fetched"):
        fetch.fetch_dataset("digits")
    with pytest.raises(DataError, match="--source"):
        fetch.fetch_dataset("cifar10", route="ftp")
    assert {"all-leukemia", "fashion-mnist", "cifar10"} <= set(fetch.fetchable())
