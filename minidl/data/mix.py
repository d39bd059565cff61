"""A training mix of several URL sources, so that a model learns what phishing looks like
rather than how one data set was collected.

Every labelled URL set was gathered its own way (crawled pages against PhishTank hosts,
directory listings against a phishing feed, ...), and a model trained on one ranks well
inside it and poorly on the others (docs/url_quality.md). `source_mix` combines sources:

- **deduplicated by host across sources**: a host found in several sources is kept in
  the first one only (the order given), so a host split of the mix keeps it on one side;
- **balanced per source and per label**: at most `per_cell` URLs of each (source, label),
  drawn at random with the seed, so the largest set does not decide what "benign" means;
- **popular benign hosts**, each bare, with `/` and with one of a few common paths
  (`COMMON_PATHS`), so that neither a bare host nor `/login` is evidence of anything.
  They come from the Alexa list of ../shared/data (`domains-alexa100k`, read at training
  time and never shipped: it has no licence that allows it), from ranks `popular_ranks`
  (by default 10,001-13,000, so the popular-hosts check on the top 10,000 scores hosts
  the model never saw). A popular host that is the host of a malicious URL of a source is
  left out.

`load_mix(name)` builds a registered mix (`MIXES`) from the registry's data sets;
`MIXES["url-mix"]` is the four public URL sources. `read_mix` serves `--data url-mix` and
`--data url-iscx2016,url-phishstorm` (comma-joined registered sets) for every command
(`minidl.data.labelled`). Every URL is normalised
(`minidl.data.normalize_url`) as `minidl train` and `minidl predict` normalise them.
"""
from collections import defaultdict

import numpy as np

from minidl.data.registry import DATASETS, load_dataset
from minidl.data.split import normalize_url, url_host

SOURCES = ("url-bahnsen-phishing40k", "url-iscx2016", "url-phishstorm", "url-hannousse2020")
POPULAR = "domains-alexa100k"
#: Paths a popular site's pages commonly have; each popular host gets one, drawn with the seed.
COMMON_PATHS = ("/index.html", "/about", "/login", "/contact", "/en/", "/search?q=news", "/account/signin",
                "/products", "/help", "/index.php?id=1")
#: Registered mixes: name -> source_mix settings.
MIXES = {
    "url-mix": {"sources": SOURCES, "per_cell": 4000, "popular_ranks": (10_000, 13_000)},
}


def balanced_rows(labels, per_cell, rng):
    """Sorted indices of at most `per_cell` rows of each label, drawn with `rng`."""
    labels = np.asarray(labels)
    keep = []
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        keep.append(rows if len(rows) <= per_cell else rng.choice(rows, per_cell, replace=False))
    return np.sort(np.concatenate(keep))


def popular_urls(hosts, seed=0):
    """Each host bare, with '/', and with one of COMMON_PATHS (drawn with `seed`)."""
    rng = np.random.default_rng(seed)
    urls = []
    for host in hosts:
        urls += [host, f"{host}/", host + COMMON_PATHS[rng.integers(len(COMMON_PATHS))]]
    return urls


def source_mix(sources, per_cell=4000, popular_hosts=(), exclude_hosts=(), seed=33):
    """(urls, labels, source of each row) of a mix of `sources`, a dict name -> (urls,
    labels), as the module docstring describes; `popular_hosts` (benign host names) are
    added bare and with paths under the source name "popular"; `exclude_hosts` (e.g. a
    left-out source's hosts) are dropped from every source and from the popular hosts."""
    rng = np.random.default_rng(seed)
    sources = {name: ([normalize_url(url) for url in urls], labels) for name, (urls, labels) in sources.items()}
    owner = {}  # host -> the first source that holds it
    malicious_hosts = set()
    for name, (urls, labels) in sources.items():
        for url, label in zip(urls, labels):
            host = url_host(url)
            owner.setdefault(host, name)
            if label:
                malicious_hosts.add(host)
    excluded = set(exclude_hosts)
    mixed_urls, mixed_labels, mixed_sources = [], [], []
    for name, (urls, labels) in sources.items():
        kept = [row for row, url in enumerate(urls) if owner[url_host(url)] == name and url_host(url) not in excluded]
        labels = np.asarray(labels)[kept]
        for row in balanced_rows(labels, per_cell, rng):
            mixed_urls.append(urls[kept[row]])
            mixed_labels.append(int(labels[row]))
            mixed_sources.append(name)
    hosts = [host for host in (normalize_url(host).lower() for host in popular_hosts)
             if host not in malicious_hosts and host not in excluded and host not in owner]
    added = popular_urls(hosts, seed)
    mixed_urls += added
    mixed_labels += [0] * len(added)
    mixed_sources += ["popular"] * len(added)
    return mixed_urls, np.asarray(mixed_labels, dtype=np.int64), mixed_sources


def load_sources(names, **fetch_options):
    """{name: (urls, labels)} of registered URL sets, fetched as `load_dataset` does."""
    return {name: load_dataset(name, **fetch_options)[:2] for name in names}


def load_popular_hosts(ranks, **fetch_options):
    """The hosts of the Alexa list from rank ranks[0] + 1 to ranks[1] (1-based ranks)."""
    hosts, _, _ = load_dataset(POPULAR, **fetch_options)
    return hosts[ranks[0]:ranks[1]]


def load_mix(name="url-mix", leave_out=None, exclude_hosts=(), seed=33, **fetch_options):
    """(urls, labels, sources) of a registered mix (MIXES); `leave_out` names a source to
    leave out entirely, its hosts included (for a leave-one-source-out run);
    `exclude_hosts` are dropped from every source too (e.g. the hosts scored later)."""
    try:
        settings = MIXES[name]
    except KeyError:
        raise ValueError(f"unknown URL mix {name!r}; known: {', '.join(sorted(MIXES))}") from None
    names = [source for source in settings["sources"] if source != leave_out]
    excluded = set(exclude_hosts)
    if leave_out is not None:
        excluded |= {url_host(url) for url in load_dataset(leave_out, **fetch_options)[0]}
    return _mix_of(names, settings, excluded, seed, fetch_options)


def _mix_of(names, settings, exclude_hosts, seed, fetch_options):
    """source_mix of the registered sets `names` with a MIXES entry's cap and popular hosts."""
    popular = load_popular_hosts(settings["popular_ranks"], **fetch_options) if settings["popular_ranks"] else ()
    return source_mix(load_sources(names, **fetch_options), settings["per_cell"], popular, exclude_hosts, seed)


def is_mix(spec):
    """Whether a --data value names a mix: a registered mix, or registered URL sets joined
    by commas ("url-iscx2016,url-phishstorm")."""
    names = spec.split(",")
    return spec in MIXES or (len(names) > 1 and all(name in DATASETS for name in names))


def read_mix(spec, seed=33, **fetch_options):
    """(urls, labels, description) of a registered mix or of comma-joined registered sets
    (mixed with url-mix's settings: per-cell cap and popular hosts)."""
    if spec in MIXES:
        urls, labels, sources = load_mix(spec, seed=seed, **fetch_options)
    else:
        urls, labels, sources = _mix_of(spec.split(","), MIXES["url-mix"], (), seed, fetch_options)
    return urls, labels, f"{spec} (a mix: {'; '.join(describe_mix(labels, sources))})"


def describe_mix(labels, sources):
    """One line per source: its URLs and malicious share."""
    counts = defaultdict(lambda: [0, 0])
    for label, source in zip(labels, sources):
        counts[source][int(label)] += 1
    return [f"{source}: {sum(pair):,} URLs, {pair[1]:,} malicious" for source, pair in counts.items()]
