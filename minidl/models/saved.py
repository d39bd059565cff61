"""A URL model file as `minidl train` writes it: the model, the tokeniser that makes
its input from URLs, and the record of its training (`extra`), from which the held-out
test part can be drawn again.

    saved = load_url_model("runs/url.mdl")
    probabilities = minidl.train.scoring.score_urls(saved.model, saved.tokenizer, ["github.com"])
    test = recorded_test_part(saved.extra)       # (urls, labels, where)
"""
from pathlib import Path
from typing import NamedTuple

import numpy as np

from minidl.data import CharTokenizer, tokenizer_from_config
from minidl.data.labelled import read_labelled_urls
from minidl.data.split import split_parts
from minidl.io import load
from minidl.schema import construct


class SavedURLModel(NamedTuple):
    model: object
    tokenizer: object     # a CharTokenizer, or the URLEncoder of a model that reads a URL several ways
    extra: dict           # the training record: arch, run settings, rows, threshold, test scores


class SavedModelError(ValueError):
    """A model file that is not a URL model as `minidl train` writes one."""


def load_url_model(path, name=None):
    """The model, tokeniser and training record of a file written by `minidl train`
    (or `ensemble`, `import-keras`). Errors start with `name` (default: the path)."""
    name = name or str(path)
    if Path(path).is_dir():
        raise SavedModelError(f"{name}: is a directory; give the model file (.mdl) inside it")
    if not Path(path).is_file():
        raise SavedModelError(f"{name}: no such file")
    model, extra, _ = load(path)
    if "tokenizer" not in extra:
        raise SavedModelError(f"{name}: the file holds no tokeniser settings (was it written by `minidl train`?)")
    return SavedURLModel(model, file_tokenizer(model, extra["tokenizer"], name), extra)


def file_tokenizer(model, config, name):
    """The tokeniser of a model file's `extra`, checked like the model's own config
    (minidl.schema) and against the model: ids of the width it reads. (An id beyond the
    model's embedding is refused when it occurs, by the embedding itself.)"""
    where = f"{name}: extra.tokenizer"
    if not isinstance(config, dict) or config.get("class_name", "CharTokenizer") == "CharTokenizer":
        settings = {k: v for k, v in config.items() if k != "class_name"} if isinstance(config, dict) else config
        tokenizer = construct(CharTokenizer, settings, where)
        width = tokenizer.max_len
    else:
        try:
            tokenizer = tokenizer_from_config(config)
            width = sum(part_width for _, _, part_width in tokenizer.layout())
        except (AttributeError, KeyError, TypeError, ValueError) as error:
            raise SavedModelError(f"{where}: not a tokeniser's settings ({error})") from None
    expected = model.input_shape[1] if hasattr(model, "input_parts") else getattr(model, "max_len", None)
    if expected is not None and width != expected:
        raise SavedModelError(f"{name}: the tokeniser makes {width} ids per URL, the model reads {expected}")
    return tokenizer


def recorded_test_part(extra, name="the model file"):
    """(urls, labels, where) of the held-out test part a model file records: its
    training run's data, limit and split, drawn again. A ValueError when the file
    records no split (an ensemble, an imported model) or the data have changed."""
    run = extra.get("run")
    if run is None:
        made_by = {"mean_ensemble": "`minidl ensemble`, whose members each have their own"}.get(extra.get("arch"))
        if made_by is None and str(extra.get("arch", "")).startswith("keras:"):
            made_by = "`minidl import-keras`"
        raise SavedModelError(f"{name}: the file records no training split (it was written by "
                              f"{made_by or 'an older minidl train'}); give --data instead of --split test")
    found = read_labelled_urls(run["data"], run["url_column"], run["label_column"], run["bad_rows"], run["limit"],
                               run["seed"])
    _, _, (test_rows, _) = split_parts(found.urls, np.arange(len(found.urls)), found.labels, run["split"],
                                       run["test_size"], run["validation_split"], run["seed"])
    expected = extra.get("rows", {}).get("test")
    if expected is not None and len(test_rows) != expected:
        raise SavedModelError(f"--split test: {found.where} gives {len(test_rows)} test rows, the model was tested "
                              f"on {expected}; the data has changed since training")
    return ([found.urls[i] for i in test_rows], found.labels[test_rows],
            f"{found.where}, the model's test part ({run['split']} split)")
