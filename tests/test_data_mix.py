"""The training mix of several URL sources: one owner per host, balanced cells, popular
hosts bare and with paths, left-out hosts gone."""
import numpy as np
import pytest

from minidl.data import url_host
from minidl.data.labelled import read_labelled_urls
from minidl.data.mix import (
    MIXES,
    describe_mix,
    is_mix,
    load_mix,
    popular_urls,
    source_mix,
)


def sources():
    one = ([f"a{i}.com/p" for i in range(10)] + ["shared.org/x", "Shared.org/y", "evil.ru/login"],
           np.array([0] * 10 + [0, 0, 1]))
    two = (["shared.org/z", "b.net/1", "b.net/2", "http://www.c.net/q", "bad.cn/verify"],
           np.array([1, 0, 0, 1, 1]))
    return {"one": one, "two": two}


def test_a_host_in_two_sources_stays_with_the_first_only():
    urls, labels, names = source_mix(sources(), per_cell=100)
    owners = {url_host(url): name for url, name in zip(urls, names)}
    assert owners["shared.org"] == "one" and "shared.org/z" not in urls
    assert "c.net/q" in urls  # normalised as minidl train normalises
    assert len(urls) == len(labels) == len(names) == 13 + 4


def test_cells_are_capped_per_source_and_label_with_the_seed():
    urls, labels, names = source_mix(sources(), per_cell=3, seed=1)
    cells = {(name, label): 0 for name in ("one", "two") for label in (0, 1)}
    for label, name in zip(labels, names):
        cells[name, int(label)] += 1
    assert cells == {("one", 0): 3, ("one", 1): 1, ("two", 0): 2, ("two", 1): 2}
    assert urls == source_mix(sources(), per_cell=3, seed=1)[0]
    assert urls != source_mix(sources(), per_cell=3, seed=2)[0]


def test_popular_hosts_come_bare_with_a_slash_and_a_path_unless_a_source_knows_them():
    assert popular_urls(["x.com"], seed=0)[:2] == ["x.com", "x.com/"]
    assert popular_urls(["x.com"], seed=0)[2].startswith("x.com/")
    urls, labels, names = source_mix(sources(), per_cell=100, popular_hosts=["good.io", "evil.ru", "b.net"])
    popular = [url for url, name in zip(urls, names) if name == "popular"]
    assert len(popular) == 3 and all(url_host(url) == "good.io" for url in popular)
    assert all(label == 0 for label, name in zip(labels, names) if name == "popular")
    assert describe_mix(labels, names)[-1] == "popular: 3 URLs, 0 malicious"


def test_excluded_hosts_leave_every_source():
    urls, _, _ = source_mix(sources(), per_cell=100, popular_hosts=["good.io"], exclude_hosts={"b.net", "good.io"})
    assert not any(url_host(url) in {"b.net", "good.io"} for url in urls)


def test_an_unknown_mix_names_the_known_ones():
    with pytest.raises(ValueError, match="known: url-mix"):
        load_mix("no-such-mix")


@pytest.mark.shared_data
def test_the_registered_mix_leaves_a_source_out_entirely(shared_data):
    shared_data("url-hannousse2020/urls.csv")  # skips with a reason when ../shared/data is absent
    _, labels, names = load_mix(leave_out="url-iscx2016")
    assert "url-iscx2016" not in names and set(names) == {*MIXES["url-mix"]["sources"], "popular"} - {"url-iscx2016"}
    assert max(np.bincount(labels[[name == "url-phishstorm" for name in names]])) <= MIXES["url-mix"]["per_cell"]


def test_a_mix_is_a_registered_mix_or_registered_sets_joined_by_commas():
    assert is_mix("url-mix") and is_mix("url-iscx2016,url-phishstorm")
    assert not is_mix("url-iscx2016") and not is_mix("urls.csv") and not is_mix("url-iscx2016,nope.csv")


@pytest.mark.shared_data
def test_every_command_reads_a_mix_as_data(shared_data):
    shared_data("url-hannousse2020/urls.csv")
    found = read_labelled_urls("url-iscx2016,url-hannousse2020", limit=500, seed=5)
    assert len(found.urls) == len(found.labels) == 500 and "(a mix: url-iscx2016:" in found.where
    assert found.urls == read_labelled_urls("url-iscx2016,url-hannousse2020", limit=500, seed=5).urls
    assert not any(url.startswith(("http://", "https://", "www.")) for url in found.urls)


@pytest.mark.shared_data
def test_the_registered_mix_drops_the_hosts_it_is_told_to(shared_data):
    shared_data("url-hannousse2020/urls.csv")
    urls, _, _ = load_mix(exclude_hosts={"facebook.com"} | {url_host(url) for url in load_mix()[0][:50]})
    assert not {url_host(url) for url in urls} & ({"facebook.com"} | {url_host(url) for url in load_mix()[0][:50]})
