"""Data-set registry and fetch: checksums, local lookups, downloads over a loopback HTTP
server, atomic rename, the offline message; and the registered shared data sets."""
import hashlib
import http.server
import os
import socket
import threading
from pathlib import Path

import numpy as np
import pytest

from minidl.data import (
    DATASETS,
    ChecksumError,
    Dataset,
    DatasetNotFound,
    fetch,
    file_sha256,
    get_dataset,
    git_blob_sha1,
    load_text_csv,
    resolve_data_dir,
)

CONTENT = b"url,isMalicious\ngoogle.com,0\nevil.ru/login,1\n"


def make_dataset(url=None, sha256=hashlib.sha256(CONTENT).hexdigest(), git_blob=None, name="tiny"):
    return Dataset(
        name=name,
        path=f"{name}/urls.csv",
        columns=("url", "isMalicious"),
        text_column="url",
        label_column="isMalicious",
        licence="test data",
        description="made by the test",
        rows=2,
        url=url,
        sha256=sha256,
        git_blob_sha1=git_blob,
    )


@pytest.fixture(autouse=True)
def _no_proxy_no_env(monkeypatch, tmp_path):
    # the loopback server must be reached directly, and no developer setting may leak in
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.delenv("MINIDL_DATA_DIR", raising=False)
    # nor the shared data beside the checkout
    monkeypatch.setenv("MINIDL_SHARED_DATA_DIR", str(tmp_path / "no-shared-data"))


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves the server's `files` dict; '/truncated' promises more bytes than it sends."""

    def do_GET(self):
        if self.path == "/truncated":
            self.send_response(200)
            self.send_header("Content-Length", str(len(CONTENT) * 10))
            self.end_headers()
            self.wfile.write(CONTENT)
            self.close_connection = True
            return
        body = self.server.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # keep test output clean
        pass


@pytest.fixture
def server():
    """An HTTP server on 127.0.0.1 (loopback only) in a thread; yields its base address."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.files = {"/urls.csv": CONTENT, "/other.csv": CONTENT + b"x.com,1\n"}
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def closed_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def files_under(folder):
    return sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*") if p.is_file())


# ---------------------------------------------------------------------------- checksums
def test_checksums_of_known_contents(tmp_path):
    empty, hello = tmp_path / "empty", tmp_path / "hello"
    empty.write_bytes(b"")
    hello.write_bytes(b"hello\n")
    # git's well-known ids (`git hash-object`) of the empty file and of "hello\n"
    assert git_blob_sha1(empty) == "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
    assert git_blob_sha1(hello) == "ce013625030ba8dba906f756967f9e9ca394464a"
    assert file_sha256(hello) == "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"


def test_dataset_needs_a_valid_checksum_and_its_columns():
    with pytest.raises(ValueError, match="give sha256 or git_blob_sha1"):
        make_dataset(sha256=None)
    with pytest.raises(ValueError, match="sha256 must be 64 hex digits"):
        make_dataset(sha256="abc")
    with pytest.raises(ValueError, match="column 'url' is not among"):
        Dataset("x", "x/x.csv", ("link", "y"), "url", "y", "l", "d", 1, sha256="0" * 64)
    with pytest.raises(ValueError, match="unknown data set 'nope'; known: .*url-iscx2016"):
        get_dataset("nope")


# --------------------------------------------------------------------- local look-ups
def test_data_dir_defaults(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_data_dir() == tmp_path / ".cache" / "minidl"
    monkeypatch.setenv("MINIDL_DATA_DIR", str(tmp_path / "env"))
    assert resolve_data_dir() == tmp_path / "env"
    assert resolve_data_dir(tmp_path / "arg") == tmp_path / "arg"


def test_fetch_finds_and_verifies_a_file_in_the_data_dir(monkeypatch, tmp_path):
    dataset = make_dataset()  # no url: any download attempt would fail
    (tmp_path / "tiny").mkdir()
    (tmp_path / "tiny" / "urls.csv").write_bytes(CONTENT)
    assert fetch(dataset, data_dir=tmp_path) == tmp_path / "tiny" / "urls.csv"
    monkeypatch.setenv("MINIDL_DATA_DIR", str(tmp_path))
    assert fetch(dataset) == tmp_path / "tiny" / "urls.csv"
    (tmp_path / "tiny" / "urls.csv").write_bytes(CONTENT + b"tampered.com,0\n")
    with pytest.raises(ChecksumError, match="sha256 is .* expected .* for data set 'tiny'"):
        fetch(dataset)


def test_fetch_reads_a_shared_folder_without_writing_to_it(monkeypatch, tmp_path):
    shared, cache = tmp_path / "shared", tmp_path / "cache"
    (shared / "tiny").mkdir(parents=True)
    (shared / "tiny" / "urls.csv").write_bytes(CONTENT)
    assert fetch(make_dataset(), data_dir=cache, shared_dir=shared) == shared / "tiny" / "urls.csv"
    monkeypatch.setenv("MINIDL_SHARED_DATA_DIR", str(shared))
    assert fetch(make_dataset(), data_dir=cache) == shared / "tiny" / "urls.csv"
    assert not cache.exists()


# ---------------------------------------------------------------------------- download
def test_download_over_http_verifies_and_renames(server, tmp_path):
    path = fetch(make_dataset(url=f"{server}/urls.csv"), data_dir=tmp_path)
    assert path == tmp_path / "tiny" / "urls.csv"
    assert path.read_bytes() == CONTENT
    assert files_under(tmp_path) == ["tiny/urls.csv"]  # no temporary file left behind
    urls, labels, _ = load_text_csv(path, "url", "isMalicious")
    assert urls == ["google.com", "evil.ru/login"] and labels.tolist() == [0, 1]


def test_download_from_a_local_path_and_by_git_blob_id(tmp_path):
    source = tmp_path / "published.csv"
    source.write_bytes(CONTENT)
    dataset = make_dataset(url=source.as_uri(), sha256=None, git_blob=git_blob_sha1(source))
    path = fetch(dataset, data_dir=tmp_path / "cache")
    assert path.read_bytes() == CONTENT


def test_rename_is_atomic_from_the_same_folder(server, tmp_path, monkeypatch):
    seen = []
    real_replace = os.replace

    def spy(source, target):
        seen.append((Path(source), Path(target), Path(source).read_bytes(), Path(target).exists()))
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", spy)
    fetch(make_dataset(url=f"{server}/urls.csv"), data_dir=tmp_path)
    [(source, target, content, target_existed)] = seen
    # a complete, verified temporary file in the target's own folder, renamed in one step
    assert source.parent == target.parent and source.name.endswith(".part")
    assert content == CONTENT and not target_existed


def test_checksum_mismatch_discards_the_download(server, tmp_path):
    with pytest.raises(ChecksumError, match="was discarded"):
        fetch(make_dataset(url=f"{server}/other.csv"), data_dir=tmp_path)
    assert files_under(tmp_path) == []
    with pytest.raises(ChecksumError, match="git blob sha1 is"):
        fetch(make_dataset(url=f"{server}/other.csv", sha256=None, git_blob="0" * 40), data_dir=tmp_path)
    assert files_under(tmp_path) == []


def test_interrupted_download_leaves_no_partial_file(server, tmp_path):
    with pytest.raises(DatasetNotFound, match="the download failed"):
        fetch(make_dataset(url=f"{server}/truncated"), data_dir=tmp_path)
    assert files_under(tmp_path) == []
    with pytest.raises(DatasetNotFound, match="404"):
        fetch(make_dataset(url=f"{server}/missing.csv"), data_dir=tmp_path)
    assert files_under(tmp_path) == []


def test_offline_says_where_to_put_the_file(tmp_path):
    url = f"http://127.0.0.1:{closed_port()}/urls.csv"
    with pytest.raises(DatasetNotFound) as error:
        fetch(make_dataset(url=url), data_dir=tmp_path, timeout=5)
    message = str(error.value)
    assert f"Put the file at {tmp_path / 'tiny' / 'urls.csv'}" in message
    assert url in message and "MINIDL_DATA_DIR" in message
    assert "sha256 " + make_dataset().sha256 in message
    assert files_under(tmp_path) == []


def test_a_derived_file_is_not_downloaded(tmp_path):
    with pytest.raises(DatasetNotFound, match="derived from https://raw.githubusercontent.com/harpomaxx/deepseq/"):
        fetch("botnet-ctu13-deepseq", data_dir=tmp_path)


# ---------------------------------------------------------------------------- registry
def test_registry_entries_are_complete():
    assert {"url-incertum-mega", "url-incertum-sample", "url-iscx2016", "url-bahnsen-phishing40k"} <= set(DATASETS)
    for name, dataset in DATASETS.items():
        assert dataset.name == name and dataset.path.startswith(name + ("." if dataset.embedded else "/"))
        assert dataset.licence and dataset.rows > 0
        assert dataset.url or dataset.sources, f"{name}: no address at all"
        assert all(source.url.startswith("https://") and len(source.sha256) == 64 for source in dataset.sources)
    mega = DATASETS["url-incertum-mega"]
    assert mega.url == (
        "https://raw.githubusercontent.com/incertum/cyber-matrix-ai/master/"
        "Malicious-URL-Detection-Deep-Learning/data/url_data_mega_deep_learning.csv"
    )
    assert mega.git_blob_sha1 == "ebfe4946eb44ca1d0915794455490096887026f1" and mega.sha256 is None


# ------------------------------------------------------------------- the shared data sets
@pytest.mark.shared_data
@pytest.mark.parametrize("name", sorted(name for name, dataset in DATASETS.items()
                                         if name != "url-incertum-mega" and not dataset.embedded))
def test_shared_files_match_the_registry(name, shared_data):
    dataset = DATASETS[name]
    path = shared_data(dataset.path)
    assert fetch(dataset, data_dir=path.parents[len(Path(dataset.path).parts) - 1]) == path
    texts, labels, report = load_text_csv(path, dataset.text_column, dataset.label_column)
    assert report.rows == dataset.rows == len(texts) and report.n_skipped == 0
    assert set(np.unique(labels)) <= {0, 1}
    with open(path, encoding="utf-8") as stream:
        assert tuple(stream.readline().strip().split(",")) == dataset.columns
