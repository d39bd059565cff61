"""The labelled URL sample that ships inside the package, and how it was drawn.

`minidl train` without `--data` trains on it, so a fresh install needs no download:
4,000 URLs of the MIT-licensed phishing set `url-bahnsen-phishing40k` (Bahnsen's
course data, normalised as the shared data are), 2,000 phishing and 2,000 legitimate,
drawn by whole hosts: every URL of a chosen host is in the sample, so `--split host`
still keeps each host on one side. Then, for every legitimate host, the host itself
bare (`example.org`) and with `/` (`example.org/`), labelled legitimate
(`minidl.data.shape.host_rows`), where the sample does not hold that form already.

Why the host rows: the set's legitimate side is crawled pages with paths while many of
its phishing URLs are a bare host (66 of the 88 bare hosts of the 4,000 URLs), so a model
trained on the URLs alone learns "no path: phishing" and called 84 of the 100 most
popular hosts malicious. The rows come from the set's own legitimate hosts,
so no list of popular sites is shipped (the Alexa list in ../shared has no licence that
allows it). The price: a phishing site given as a bare host scores lower than it did
(docs/url_quality.md measures both).

It is registered as `url-bahnsen-phishing-sample`
(`minidl.data.load_dataset("url-bahnsen-phishing-sample")`) and lives, gzip-compressed,
in `minidl/data/files/` beside its licence notice (package data: a plain
`pip install` ships it).

Redrawing it from the shared copy of the full set gives the same file, byte for byte:

    python -m minidl.data.sample ../shared/data/url-bahnsen-phishing40k/urls.csv
"""
import argparse
import csv
import gzip
import io
from collections import defaultdict
from pathlib import Path

import numpy as np

from minidl.data.registry import DATASETS, EMBEDDED_DIR
from minidl.data.shape import host_rows
from minidl.data.split import url_host
from minidl.data.tables import load_url_csv

NAME = "url-bahnsen-phishing-sample"
FILE = EMBEDDED_DIR / DATASETS[NAME].path
PER_CLASS = 2000
SEED = 15
#: Hosts with more URLs than this are left out, so no one site fills the sample
#: (the full set's largest host has 425 phishing URLs).
MAX_HOST_URLS = 40
#: The forms in which each legitimate host of the sample is added (see the docstring).
HOST_FORMS = ("{host}", "{host}/")


def draw_whole_hosts(urls, labels, per_class=PER_CLASS, seed=SEED, max_host_urls=MAX_HOST_URLS):
    """Sorted row indices of a sample with `per_class` rows of label 0 and of label 1,
    made of whole hosts: hosts are visited in a seeded random order and a host is taken
    when all its rows still fit under both classes' quotas."""
    rows_of = defaultdict(list)
    for row, url in enumerate(urls):
        rows_of[url_host(url)].append(row)
    labels = np.asarray(labels)
    taken, counts = [], np.zeros(2, dtype=np.int64)
    for host in np.random.default_rng(seed).permutation(sorted(rows_of)):
        rows = rows_of[host]
        host_counts = np.bincount(labels[rows], minlength=2)
        if len(rows) > max_host_urls or np.any(counts + host_counts > per_class):
            continue
        taken += rows
        counts += host_counts
        if np.all(counts == per_class):
            return sorted(taken)
    raise ValueError(f"draw_whole_hosts: the hosts hold only {counts.tolist()} rows per class of the "
                     f"{per_class} asked for")


def gzip_csv(urls, labels):
    """The sample's file content: a `url,isMalicious` CSV, gzip-compressed with no name
    and no time stamp in its header, so the same rows always give the same bytes."""
    text = io.StringIO(newline="")
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(("url", "isMalicious"))
    writer.writerows(zip(urls, (int(label) for label in labels)))
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, compresslevel=9, mtime=0) as stream:
        stream.write(text.getvalue().encode("utf-8"))
    return buffer.getvalue()


def draw_sample(source):
    """The sample's bytes, drawn from the full set's `urls.csv` at `source`: the URLs of
    whole hosts, then the legitimate hosts bare and with '/'."""
    urls, labels, _ = load_url_csv(source)
    rows = draw_whole_hosts(urls, labels)
    urls, labels = [urls[row] for row in rows], labels[rows]
    hosts, host_labels = host_rows(urls, labels, forms=HOST_FORMS, only_label=0)
    return gzip_csv(urls + hosts, np.concatenate([labels, host_labels]))


def main(argv=None):
    parser = argparse.ArgumentParser(description="Draw the embedded URL sample again from the full phishing set.")
    parser.add_argument("source", help="url-bahnsen-phishing40k/urls.csv (the shared copy)")
    parser.add_argument("--output", type=Path, default=FILE, help=f"where to write it (default {FILE})")
    args = parser.parse_args(argv)
    args.output.write_bytes(draw_sample(args.source))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
