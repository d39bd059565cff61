"""The URL sample inside the package: registered, loadable with no data folder, balanced,
whole hosts, licensed, declared as package data, and drawn again byte for byte."""
import fnmatch
import gzip
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from minidl.data import DATASETS, fetch, load_dataset, load_text_csv, load_url_csv, shared_data_dir, url_host
from minidl.data.registry import EMBEDDED_DIR
from minidl.data.sample import NAME, draw_whole_hosts, gzip_csv

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def no_data_folders(monkeypatch, tmp_path):
    """Nothing but the package: an empty cache, no shared folder."""
    monkeypatch.setenv("MINIDL_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MINIDL_SHARED_DATA_DIR", str(tmp_path / "no-shared"))


def test_the_sample_loads_by_name_with_no_data_folder(no_data_folders):
    urls, labels, report = load_dataset(NAME)
    assert fetch(NAME).parent == EMBEDDED_DIR
    assert len(urls) == DATASETS[NAME].rows == 6152 and report.n_skipped == 0
    assert np.bincount(labels).tolist() == [4152, 2000]
    # normalised as the shared data: no scheme, no leading www.
    assert not any(url.startswith(("http://", "https://", "www.")) for url in urls)


def test_the_licence_notice_sits_beside_the_sample():
    notice = (EMBEDDED_DIR / f"{NAME}.LICENSE").read_text(encoding="utf-8")
    assert "Copyright (c) 2016 Alejandro Correa Bahnsen" in notice
    assert "The above copyright notice and this permission notice shall be included" in notice


def test_pyproject_ships_every_embedded_file_as_package_data():
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["minidl.data"]
    shipped = [path.relative_to(EMBEDDED_DIR.parent).as_posix() for path in EMBEDDED_DIR.iterdir()]
    assert sorted(shipped) == sorted(name for name in shipped if any(fnmatch.fnmatch(name, p) for p in patterns))
    assert {f"files/{NAME}.csv.gz", f"files/{NAME}.LICENSE"} <= set(shipped)


def test_draw_whole_hosts_balances_the_classes_and_keeps_hosts_whole():
    urls = [f"h{i % 30}.com/p{i}" for i in range(300)]
    labels = np.array([(i % 30) % 2 for i in range(300)])  # each host has one label
    rows = draw_whole_hosts(urls, labels, per_class=40, seed=0, max_host_urls=10)
    assert np.bincount(labels[rows]).tolist() == [40, 40]
    chosen = {url_host(urls[row]) for row in rows}
    assert sum(url_host(url) in chosen for url in urls) == len(rows)
    assert rows == draw_whole_hosts(urls, labels, per_class=40, seed=0, max_host_urls=10)
    with pytest.raises(ValueError, match="only"):
        draw_whole_hosts(urls, labels, per_class=1000, seed=0, max_host_urls=10)


def test_gzip_csv_is_reproducible_and_read_by_the_csv_loader(tmp_path):
    content = gzip_csv(["a.com/x", "b.ru/login,1"], [0, 1])
    assert content == gzip_csv(["a.com/x", "b.ru/login,1"], [0, 1])  # no time stamp inside
    (tmp_path / "t.csv.gz").write_bytes(content)
    urls, labels, _ = load_url_csv(tmp_path / "t.csv.gz")
    assert urls == ["a.com/x", "b.ru/login,1"] and labels.tolist() == [0, 1]


def test_shared_data_dir_prefers_the_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("MINIDL_SHARED_DATA_DIR", str(tmp_path))
    assert shared_data_dir() == tmp_path
    assert shared_data_dir(tmp_path / "given") == tmp_path / "given"


# ------------------------------------------------------------------- the shared data set
def full_set():
    folders = [os.environ.get("MINIDL_DATA_DIR"), REPO.parent / "shared" / "data"]
    for folder in filter(None, folders):
        path = Path(folder) / DATASETS["url-bahnsen-phishing40k"].path
        if path.is_file():
            return path
    pytest.skip("shared data absent: url-bahnsen-phishing40k/urls.csv is in neither $MINIDL_DATA_DIR "
                f"nor {folders[1]}")


@pytest.mark.shared_data
def test_the_sample_is_drawn_again_from_the_full_set_and_holds_whole_hosts():
    from minidl.data.sample import draw_sample

    source = full_set()
    assert gzip.decompress(draw_sample(source)) == gzip.decompress(fetch(NAME).read_bytes())
    urls, labels, _ = load_dataset(NAME)
    full_urls, full_labels, _ = load_text_csv(source, "url", "isMalicious")
    label_of = dict(zip(full_urls, full_labels))
    drawn = [url for url in urls if url in label_of]
    assert len(drawn) == 4000 and all(label_of[url] == label for url, label in zip(urls, labels) if url in label_of)
    sample_hosts = Counter(url_host(url) for url in drawn)
    full_hosts = Counter(url_host(url) for url in full_urls)
    assert all(full_hosts[host] == count for host, count in sample_hosts.items())
    # every other row is a legitimate host of the drawn rows, bare or with "/"
    legitimate_hosts = {url_host(url) for url in drawn if label_of[url] == 0}
    added = [(url, label) for url, label in zip(urls, labels) if url not in label_of]
    assert len(added) == 2152 and all(label == 0 for _, label in added)
    assert all(url.rstrip("/") in legitimate_hosts for url, _ in added)


def test_a_checkout_finds_registered_files_in_the_shared_data_beside_it(monkeypatch, tmp_path):
    from minidl.data import registry

    checkout, shared = tmp_path / "minidl", tmp_path / "shared" / "data"
    checkout.mkdir()
    (checkout / "pyproject.toml").write_text("")
    monkeypatch.setattr(registry, "_CHECKOUT", checkout)
    monkeypatch.delenv("MINIDL_SHARED_DATA_DIR", raising=False)
    assert shared_data_dir() is None  # no folder beside it yet
    shared.mkdir(parents=True)
    assert shared_data_dir() == shared
    (checkout / "pyproject.toml").unlink()
    assert shared_data_dir() is None  # an installed package has no checkout around it
