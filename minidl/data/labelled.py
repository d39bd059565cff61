"""Labelled URLs from a CSV file, a folder holding one, a registered data set, or a mix
of URL sources (`minidl.data.mix`: `url-mix`, or registered sets joined by commas): what
`minidl train`, `evaluate` and `embed` read, with the URLs normalised as in the data
sets and a seeded subset for quick runs.

    found = read_labelled_urls("url-iscx2016", limit=5000, seed=33)
    found.urls, found.labels, found.where, found.report.n_skipped
"""
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np

from minidl.data.mix import is_mix, read_mix
from minidl.data.registry import DATASETS, fetch
from minidl.data.split import normalize_url
from minidl.data.tables import BINARY, LoadReport, load_url_csv

#: What is read without a data set named: the sample that ships inside the package.
DEFAULT_DATA = "url-bahnsen-phishing-sample"


class DataNotFound(ValueError):
    """No such file, folder or registered data set; the message starts with the spec."""


class LabelledURLs(NamedTuple):
    urls: list
    labels: np.ndarray
    where: str            # the data as a person would name it: "NAME (path)" or the path
    report: LoadReport    # the rows read and the malformed rows skipped


def resolve_data(spec):
    """(path of the CSV, registered Dataset or None) for a CSV path, a folder holding
    exactly one CSV, or a registered data set name (fetched when not yet local)."""
    path = Path(spec).expanduser()
    if path.is_dir():
        found = sorted(path.glob("*.csv"))
        if len(found) != 1:
            raise DataNotFound(f"{spec}: the folder holds {len(found)} CSV files; name one of them")
        return found[0], None
    if path.is_file():
        return path, None
    if spec in DATASETS:
        return fetch(spec), DATASETS[spec]
    raise DataNotFound(f"{spec}: no such file, and no registered data set of that name "
                     f"(known: {', '.join(sorted(DATASETS))})")


def read_labelled_urls(spec=None, url_column=None, label_column=None, bad_rows="raise", limit=None, seed=33):
    """The URLs (normalised) and 0/1 labels of `spec` (default: DEFAULT_DATA).

    url_column, label_column: default "url" and "isMalicious", or the data set's own.
    bad_rows: "raise" stops at a malformed row (MalformedRowError), "skip" counts it in
        the report. limit: keep a seeded random subset of that many rows, in file order,
        so a quick run sees both classes in their proportions."""
    spec = spec or DEFAULT_DATA
    if is_mix(spec):
        urls, labels, where = read_mix(spec, seed=seed)
        return _subset(urls, labels, where, LoadReport(spec, rows=len(urls), classes=BINARY), limit, seed)
    path, dataset = resolve_data(spec)
    url_column = url_column or (dataset.text_column if dataset else "url")
    label_column = label_column or (dataset.label_column if dataset else "isMalicious")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the skipped rows are in the report
        urls, labels, report = load_url_csv(path, url_column, label_column, on_error=bad_rows)
    urls = [normalize_url(url) for url in urls]
    if not urls:
        raise ValueError(f"{path}: no rows to use")
    return _subset(urls, labels, f"{spec} ({path})" if dataset else str(path), report, limit, seed)


def _subset(urls, labels, where, report, limit, seed):
    """LabelledURLs of a seeded random subset of `limit` rows, in order (all without it)."""
    if limit is not None and limit < len(urls):
        keep = np.sort(np.random.default_rng(seed).choice(len(urls), limit, replace=False))
        urls, labels = [urls[i] for i in keep], labels[keep]
    return LabelledURLs(urls, labels, where, report)
