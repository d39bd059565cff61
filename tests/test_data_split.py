"""Train / validation / test splits: seeded, stratified, and by host."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minidl.data.split as split_module
from minidl.data import split_by_host, split_indices, train_test_split, train_val_test_split, url_host


def test_default_is_the_source_75_25_and_seeded():
    train, test = train_test_split(100)
    assert (len(train), len(test)) == (75, 25)
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(100))
    again = train_test_split(100)
    np.testing.assert_array_equal(train, again[0])
    other = train_test_split(100, seed=7)
    assert not np.array_equal(train, other[0])


def test_splits_every_array_alike():
    x = np.arange(20) * 10
    names = [f"u{i}" for i in range(20)]
    x_train, x_test, names_train, names_test = train_test_split(x, names, test_size=0.3)
    assert isinstance(x_train, np.ndarray) and isinstance(names_train, list)
    assert [f"u{v // 10}" for v in x_train] == names_train
    assert [f"u{v // 10}" for v in x_test] == names_test
    assert len(x_test) == 6


def test_stratified_split_keeps_class_proportions():
    labels = np.array([0] * 90 + [1] * 30 + [2] * 8)
    y_train, y_val, y_test = train_val_test_split(labels, val_size=0.25, test_size=0.25, stratify=labels)
    assert (len(y_train), len(y_val), len(y_test)) == (64, 32, 32)
    for part, size in ((y_train, 0.5), (y_val, 0.25), (y_test, 0.25)):
        counts = np.bincount(part, minlength=3)
        # each class within one row of its exact share
        assert np.all(np.abs(counts - np.bincount(labels) * size) <= 1), counts


@settings(max_examples=15, deadline=None)
@given(
    counts=st.lists(st.integers(1, 40), min_size=1, max_size=6),
    sizes=st.tuples(st.floats(0.05, 0.45), st.floats(0.05, 0.45)),
    seed=st.integers(0, 1000),
)
def test_stratified_split_is_a_partition_with_each_class_in_proportion(counts, sizes, seed):
    labels = np.repeat(np.arange(len(counts)), counts)
    parts = train_val_test_split(len(labels), val_size=sizes[0], test_size=sizes[1], stratify=labels, seed=seed)
    assert sorted(np.concatenate(parts).tolist()) == list(range(len(labels)))
    for part, size in zip(parts, (1 - sum(sizes), *sizes)):
        assert abs(len(part) - len(labels) * size) < 1
        exact_share = np.array(counts) * len(part) / len(labels)
        assert np.all(np.abs(np.bincount(labels[part], minlength=len(counts)) - exact_share) < 1)


def test_stratified_rounding_that_needs_an_augmenting_path(monkeypatch):
    # a case (found by search) where rounding the largest remainders first strands a row
    calls = []
    search = split_module._augmenting_path
    monkeypatch.setattr(split_module, "_augmenting_path", lambda *args: calls.append(1) or search(*args))
    labels = np.repeat(np.arange(6), [1, 25, 32, 28, 24, 21])
    parts = split_indices(len(labels), [0.274, 0.648, 0.078], stratify=labels, seed=28)
    assert [len(part) for part in parts] == [36, 85, 10]
    for part in parts:
        exact_share = np.bincount(labels) * len(part) / len(labels)
        assert np.all(np.abs(np.bincount(labels[part], minlength=6) - exact_share) < 1)
    assert calls, "the case no longer exercises the augmenting path"


@pytest.mark.parametrize(
    "url, host",
    [
        ("https://www.Example.com/path?q=1", "example.com"),
        ("example.com/a/b", "example.com"),
        ("WWW.example.com", "example.com"),
        ("ftp://files.example.com:21/x", "files.example.com:21"),
        ("evil.ru?id=3", "evil.ru"),
        ("sub.www.example.com/x", "sub.www.example.com"),
        ("  http://a.b#frag", "a.b"),
    ],
)
def test_url_host_follows_the_data_normalisation(url, host):
    assert url_host(url) == host


def test_split_by_host_never_shares_a_host():
    rng = np.random.default_rng(0)
    hosts = [f"h{i}.com" for i in range(60)]
    urls = [f"{hosts[h]}/page{k}" for k, h in enumerate(rng.integers(0, 60, size=600))]
    urls += ["www.H0.com/upper", "http://h1.com/scheme"]  # same hosts after normalisation
    labels = np.arange(len(urls)) % 2
    u_train, u_val, u_test, y_train, y_val, y_test = split_by_host(urls, labels, val_size=0.15, test_size=0.25)
    parts = [{url_host(u) for u in part} for part in (u_train, u_val, u_test)]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert len(u_train) + len(u_val) + len(u_test) == len(urls)
    largest_host = max(np.unique([url_host(u) for u in urls], return_counts=True)[1])
    for part, size in ((u_test, 0.25), (u_val, 0.15)):
        assert abs(len(part) - size * len(urls)) <= largest_host
    assert [labels[urls.index(u)] for u in u_test] == y_test.tolist()
    again = split_by_host(urls, labels, val_size=0.15, test_size=0.25)
    assert again[2] == u_test


def test_two_way_host_split_and_groups_argument():
    urls = [f"h{i % 10}.com/{i}" for i in range(100)]
    u_train, u_test = split_by_host(urls)
    assert not {url_host(u) for u in u_train} & {url_host(u) for u in u_test}
    assert len(u_test) == 20 or len(u_test) == 30  # whole hosts of 10 rows around the 25 % target
    train, test = split_indices(100, [0.75, 0.25], groups=[i % 10 for i in range(100)])
    assert not set(np.array(train) % 10) & set(np.array(test) % 10)


def test_split_errors_name_the_problem():
    with pytest.raises(ValueError, match="different lengths"):
        train_test_split([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="test_size must be a fraction"):
        train_test_split(10, test_size=1.5)
    with pytest.raises(ValueError, match="leave nothing for training"):
        train_val_test_split(10, val_size=0.5, test_size=0.5)
    with pytest.raises(ValueError, match="stratify has 3 entries for 10 rows"):
        train_test_split(10, stratify=[0, 1, 0])
    with pytest.raises(ValueError, match="cannot be combined"):
        train_test_split(4, stratify=[0, 1, 0, 1], groups=[0, 0, 1, 1])
