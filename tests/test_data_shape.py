"""URL shapes, the shape-only features and the host rows that take the label out of a shape."""
import numpy as np
import pytest

from minidl.data.shape import (
    FEATURES,
    host_rows,
    is_ip_host,
    length_bin,
    shape_features,
    shape_table,
    tld_group,
    url_path,
    url_shape,
)


@pytest.mark.parametrize("url, path", [("a.com", ""), ("a.com/", ""), ("a.com/x", "/x"), ("a.com?q=1", "?q=1")])
def test_url_path_is_what_follows_the_host_and_a_lone_slash_is_none(url, path):
    assert url_path(url) == path


@pytest.mark.parametrize("host, group", [("10.0.0.1", "IP"), ("10.0.0.1:8080", "IP"), ("a.com", "com"),
                                         ("a.net", "org/net"), ("b.co.uk", "country"), ("a.info", "other")])
def test_tld_groups(host, group):
    assert tld_group(host) == group
    assert is_ip_host(host) == (group == "IP")


def test_length_bins_cover_every_length_once():
    assert [length_bin("x" * n) for n in (1, 20, 21, 40, 41, 80, 81)] == \
        ["<=20", "<=20", "21-40", "21-40", "41-80", "41-80", ">80"]


def test_url_shape_and_the_table_of_malicious_rates():
    assert url_shape("paypal.com.verify.ru/login.php?id=1") == {
        "bare host": "with a path", "length": "21-40", "query": "query", "IP host": "named host", "TLD group": "country"}
    rows = shape_table(["a.com", "b.com", "c.com/x", "1.2.3.4/y"], [1, 0, 0, 1])
    assert ("bare host", "bare host", 2, 0.5) in rows and ("bare host", "with a path", 2, 0.5) in rows
    assert ("IP host", "IP host", 1, 1.0) in rows and ("TLD group", "com", 3, 1 / 3) in rows
    assert [shape for shape, *_ in rows] == sorted((shape for shape, *_ in rows), key=list(url_shape("a.com")).index)


def test_shape_features_see_the_shape_not_the_words():
    features = shape_features(["paypal.com/login", "kitten.com/about"])
    assert features.shape == (2, len(FEATURES))
    np.testing.assert_array_equal(features[0], features[1])  # same lengths and separators: same row
    bare, ip = shape_features(["a.com", "1.2.3.4/x?a=1&b=2"])
    assert bare[FEATURES.index("bare host")] == 1 and ip[FEATURES.index("bare host")] == 0
    assert ip[FEATURES.index("IP host")] == 1 and ip[FEATURES.index("query fields")] == 2


def test_host_rows_add_each_single_label_host_in_each_missing_form():
    urls = ["good.org/a", "good.org/b", "bad.ru/x", "bad.ru", "mixed.net/1", "mixed.net/2"]
    labels = np.array([0, 0, 1, 1, 0, 1])
    added, added_labels = host_rows(urls, labels)
    assert list(zip(added, added_labels.tolist())) == [("bad.ru/", 1), ("good.org", 0), ("good.org/", 0)]
    added, added_labels = host_rows(urls, labels, forms=("{host}",), only_label=0)
    assert added == ["good.org"] and added_labels.tolist() == [0]
