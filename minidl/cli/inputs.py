"""Reading what the commands are given: labelled URLs, model files and lists of URLs,
with the library's errors told in the command line's words (the option that gave
the input)."""
import sys

import numpy as np

from minidl.data import MalformedRowError
from minidl.data.labelled import DataNotFound, read_labelled_urls
from minidl.data.split import normalize_url
from minidl.data.url_lines import url_chunks
from minidl.cli.options import UserError
from minidl.distributed import launch_size, resolve_group
from minidl.models.saved import load_url_model
from minidl.train.calibration import stored_threshold


def load_labelled_urls(args):
    """(urls, labels, where) from --data (default: the sample inside minidl),
    --url-column, --label-column, --bad-rows, --limit and --seed (`args` may be the
    settings a model file records, as a Namespace)."""
    try:
        found = read_labelled_urls(args.data, args.url_column, args.label_column, args.bad_rows, args.limit,
                                   args.seed)
    except DataNotFound as error:
        raise DataNotFound(f"--data {error}") from None
    except MalformedRowError as error:
        raise UserError(f"{error.path}, line {error.line}: {error.reason} "
                        "(give --bad-rows skip to leave such rows out)") from None
    if found.report.n_skipped:
        line, reason = found.report.skipped[0]
        print(f"skipped {found.report.n_skipped} malformed rows of {found.report.path} (first: line {line}, "
              f"{reason})", file=sys.stderr)
    return found.urls, found.labels, found.where


def read_url_lines(source, option="--file"):
    """The non-empty lines of a file, or of stdin for '-', stripped and normalised."""
    return [normalize_url(url) for chunk in url_chunks(source, name=f"{option} {source}") for url in chunk]


def load_model_file(path):
    """(model, tokenizer, extra) of a file written by `minidl train`."""
    return load_url_model(path, name=f"--model {path}")


def decision_threshold(args, extra):
    """(threshold, where it comes from): --threshold, else the model file's, else 0.5."""
    if args.threshold is not None:
        return args.threshold, "--threshold"
    return stored_threshold(extra)


def describe_labels(labels):
    if len(labels) == 1:
        return f"1 URL, {'malicious' if labels[0] else 'benign'}"
    return f"{len(labels)} URLs, {int(np.sum(labels))} malicious ({100 * float(np.mean(labels)):.1f} %)"


def on_rank_zero(read, empty):
    """`read()` -> (data, summary), here; under an MPI launch on rank 0 alone, and the
    other ranks get (`empty`, the summary): fit, evaluate and predict then send them
    their shares of rank 0's data (minidl.distributed). An error on rank 0 reaches
    every rank."""
    if launch_size() == 1:
        return read()
    data, summary = resolve_group("auto").run_on_root(read)
    return empty if data is None else data, summary
