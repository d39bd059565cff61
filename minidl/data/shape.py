"""A URL's shape (bare host or a path, length, query, IP host, TLD group) and rows that
make the shape carry no label.

Each labelled URL set was collected in its own way, and its classes differ in shape as
much as in content: phishing40k's benign side is crawled pages with paths while many of
its phishing URLs are a bare host, PhishStorm has no bare host at all, ISCX-2016's benign
URLs are long crawled paths. A model learns such a difference first, and then calls
`google.com` malicious because it has no path. `url_shape` names the shape, so that a
table can show how much of a set it gives away (benchmarks/url_shortcuts.py);
`shape_features` is the few numbers of a shape-only baseline; `host_rows` adds, for each
host of a set, the host itself with the label of that host's URLs, so that "a bare host"
stops being evidence of either class.

Every function takes URLs already normalised (`minidl.data.normalize_url`: no scheme, no
leading `www.`), as minidl trains and scores them.
"""
import ipaddress
import math
from collections import defaultdict

import numpy as np

from minidl.data.split import url_host

#: Upper ends of the length bins (characters of the normalised URL); the last is open.
LENGTH_BINS = (20, 40, 80)
#: TLD groups: the generic TLDs most URLs use, then every two-letter (country) TLD.
GENERIC_TLDS = {"com": "com", "org": "org/net", "net": "org/net"}
SHAPES = ("bare host", "length", "query", "IP host", "TLD group")


def url_path(url):
    """What follows the host: '' for a bare host, '/' alone counts as none."""
    rest = url[len(url_host(url)):]
    return "" if rest in ("", "/") else rest


def is_ip_host(host):
    """True for a dotted IPv4 or bracketed IPv6 host (a port after it allowed)."""
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


def tld_group(host):
    """'com', 'org/net', 'country' (a two-letter TLD), 'IP' or 'other'."""
    if is_ip_host(host):
        return "IP"
    tld = host.rsplit(":", 1)[0].rsplit(".", 1)[-1].lower()
    if tld in GENERIC_TLDS:
        return GENERIC_TLDS[tld]
    return "country" if len(tld) == 2 and tld.isalpha() else "other"


def length_bin(url):
    """'<=20', '21-40', '41-80' or '>80' characters."""
    lower = 0
    for upper in LENGTH_BINS:
        if len(url) <= upper:
            return f"<={upper}" if lower == 0 else f"{lower + 1}-{upper}"
        lower = upper
    return f">{LENGTH_BINS[-1]}"


def url_shape(url):
    """{shape name: value} of one normalised URL, the names of SHAPES."""
    host = url_host(url)
    return {
        "bare host": "bare host" if not url_path(url) else "with a path",
        "length": length_bin(url),
        "query": "query" if "?" in url else "no query",
        "IP host": "IP host" if is_ip_host(host) else "named host",
        "TLD group": tld_group(host),
    }


def shape_table(urls, labels):
    """[(shape, value, URLs, malicious rate)] of every shape value that occurs, in
    SHAPES order and, within a shape, most URLs first."""
    counts = defaultdict(lambda: np.zeros(2, dtype=np.int64))
    for url, label in zip(urls, labels):
        for shape, value in url_shape(url).items():
            counts[shape, value][int(label)] += 1
    rows = []
    for shape in SHAPES:
        found = [(value, pair) for (name, value), pair in counts.items() if name == shape]
        for value, pair in sorted(found, key=lambda item: -item[1].sum()):
            rows.append((shape, value, int(pair.sum()), float(pair[1] / pair.sum())))
    return rows


#: Column names of `shape_features`.
FEATURES = ("bare host", "log length", "log host length", "path depth", "host labels", "query", "query fields",
            "IP host", "TLD com", "TLD org/net", "TLD country", "TLD other")


def shape_features(urls):
    """(n, len(FEATURES)) float64 matrix of shape numbers that say nothing about what
    the characters mean: lengths, counts of separators, the TLD's group."""
    rows = np.zeros((len(urls), len(FEATURES)))
    for i, url in enumerate(urls):
        host, path = url_host(url), url_path(url)
        group = tld_group(host)
        rows[i] = (
            not path, math.log1p(len(url)), math.log1p(len(host)), path.split("?", 1)[0].count("/"),
            host.count(".") + 1, "?" in url, url.split("?", 1)[1].count("&") + 1 if "?" in url else 0,
            group == "IP", group == "com", group == "org/net", group == "country", group == "other",
        )
    return rows


def host_rows(urls, labels, forms=("{host}", "{host}/"), only_label=None):
    """(urls, labels) to add to a set so that its shape carries less of its label: for
    every host whose URLs all have one label, the host in each of `forms` with that label,
    unless the set already holds that form. Hosts with both labels (a free hosting
    site's pages) are left alone: their bare form has no one label. `only_label` keeps
    the hosts of one label (0: benign hosts only). The new rows share their URLs' host,
    so a split by host keeps them together."""
    labels_of, present = defaultdict(set), set(urls)
    for url, label in zip(urls, labels):
        labels_of[url_host(url)].add(int(label))
    added, added_labels = [], []
    for host in sorted(labels_of):
        (label, *others) = labels_of[host]
        if others or not host or (only_label is not None and label != only_label):
            continue
        for form in forms:
            if form.format(host=host) not in present:
                added.append(form.format(host=host))
                added_labels.append(label)
    return added, np.asarray(added_labels, dtype=np.asarray(labels).dtype)
