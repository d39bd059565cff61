"""The end-to-end row: what `minidl train` costs per training sample, from a CSV file to
the trained model, against a plain PyTorch loop over the same tokenised arrays.

minidl's run is the user's path, as `minidl train` takes it (minidl/cli.py): read the
CSV (`load_url_csv`, `normalize_url`), tokenise (`CharTokenizer`), split off a
validation quarter (`train_test_split`), build the model, and `minidl.train.fit` for
`epochs` epochs at `batch_size` with the validation metrics after each epoch and the
progress bar, drawn to a terminal-like buffer (so it redraws as on a terminal, and
nothing reaches the benchmark's own output). PyTorch's is what a user writes by hand:
per epoch a shuffled pass of training steps (forward, BCE + L2, backward, Adam, the
loss read back with `.item()`) and a validation pass with its loss and accuracy, over
the arrays minidl's tokeniser made. Both give ms per training sample (the run's time
over training samples x epochs); the loading and tokenising are minidl's alone.

The CSV is generated (`write_url_csv`): random but URL-like strings, seeded, in the
source's `url,isMalicious` format, so the row needs no data set.
"""
import csv
import io
import string
import time
from contextlib import redirect_stderr

import numpy as np

#: The generated file's size and the run's settings (the CLI's batch size).
ROWS, EPOCHS, BATCH_SIZE, VALIDATION = 3000, 2, 32, 0.25

_HOST_CHARACTERS = string.ascii_lowercase + string.digits
_PATH_CHARACTERS = string.ascii_lowercase + string.digits + "-_"
#: Benign and malicious URLs differ a little (top-level domain, words, query), so the
#: metrics the run prints are those of a model that learns something.
_STYLE = {
    0: {"tlds": ("com", "org", "net", "de", "co.uk", "edu"), "words": ("about", "news", "blog", "docs", "shop")},
    1: {"tlds": ("ru", "info", "tk", "biz", "xyz", "cn"), "words": ("login", "verify", "account", "secure", "update")},
}


def _token(rng, characters, shortest, longest):
    return "".join(rng.choice(list(characters), size=int(rng.integers(shortest, longest + 1))))


def random_url(rng, label):
    """One URL-like string: optional scheme and www, a host of one to three labels under
    a top-level domain, a path of up to four segments, sometimes a file and a query."""
    style = _STYLE[label]
    scheme = rng.choice(["", "http://", "https://"])
    host = ".".join(_token(rng, _HOST_CHARACTERS, 3, 12) for _ in range(int(rng.integers(1, 4))))
    url = f"{scheme}{'www.' if rng.random() < 0.3 else ''}{host}.{rng.choice(style['tlds'])}"
    segments = [rng.choice(style["words"]) if rng.random() < 0.3 else _token(rng, _PATH_CHARACTERS, 2, 10)
                for _ in range(int(rng.integers(0, 5)))]
    if rng.random() < 0.4:
        segments.append(_token(rng, _PATH_CHARACTERS, 3, 10) + rng.choice([".php", ".html", ".htm", ".aspx"]))
    if segments:
        url += "/" + "/".join(segments)
    if rng.random() < (0.5 if label else 0.2):
        url += "?" + "&".join(f"{_token(rng, string.ascii_lowercase, 2, 6)}={_token(rng, _HOST_CHARACTERS, 1, 12)}"
                              for _ in range(int(rng.integers(1, 4))))
    return url


def write_url_csv(path, rows=ROWS, seed=0):
    """Write `rows` labelled URLs (about half malicious) to `path` as `url,isMalicious`."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=rows)
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["url", "isMalicious"])
        writer.writerows([random_url(rng, int(label)), int(label)] for label in labels)
    return path


class _Terminal(io.StringIO):
    """A buffer the progress bar takes for a terminal, so it redraws as a user sees it."""

    def isatty(self):
        return True


def load_and_split(path, max_len=75, seed=33):
    """`minidl train`'s data path: ((x_train, y_train), (x_val, y_val), tokenizer) and
    the seconds of its two phases {"load": ..., "tokenise": ...}."""
    from minidl.data import CharTokenizer, load_url_csv, normalize_url, train_test_split

    start = time.perf_counter()
    urls, labels, _ = load_url_csv(path)
    urls = [normalize_url(url) for url in urls]
    loaded = time.perf_counter()
    tokenizer = CharTokenizer(max_len=max_len)
    x = tokenizer.encode(urls)
    x_train, x_val, y_train, y_val = train_test_split(x, labels, test_size=VALIDATION, stratify=labels, seed=seed)
    phases = {"load": loaded - start, "tokenise": time.perf_counter() - loaded}
    return (x_train, y_train), (x_val, y_val), tokenizer, phases


def minidl_run(path, name, epochs=EPOCHS, batch_size=BATCH_SIZE, phases=None, seed=33):
    """A closure running minidl's whole path once, from the CSV at `path` to a model
    `name` trained for `epochs`; each call appends its phases' seconds (load,
    tokenise, fit) to the list `phases` when one is given."""
    import minidl
    from minidl.models import build_model
    from minidl.train import fit

    def run():
        train, validation, tokenizer, seconds = load_and_split(path, seed=seed)
        start = time.perf_counter()
        minidl.manual_seed(seed)
        model = build_model(name, max_vocab_len=tokenizer.vocab_size)
        with redirect_stderr(_Terminal()):
            fit(model, train[0], train[1], epochs=epochs, batch_size=batch_size, optimizer=model.make_optimizer(),
                validation_data=validation, verbose=1)
        seconds["fit"] = time.perf_counter() - start
        if phases is not None:
            phases.append(seconds)

    return run


def _batches(n, batch_size):
    """(start, stop) of each batch; a last batch of one sample joins the one before it,
    as in minidl's fit (batch normalisation needs two samples)."""
    bounds = [(start, min(start + batch_size, n)) for start in range(0, n, batch_size)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
        bounds[-2:] = [(bounds[-2][0], n)]
    return bounds


def torch_run(name, train, validation, vocab_size, epochs=EPOCHS, batch_size=BATCH_SIZE, seed=33):
    """A closure running a plain PyTorch training loop over the tokenised arrays
    `train` and `validation` ((ids, 0/1 labels) each), on the twin of minidl's `name`."""
    import torch
    from torch.nn import functional

    from benchmarks import models
    from minidl.models import build_model

    x_train, x_val = (torch.as_tensor(x.astype(np.int64)) for x in (train[0], validation[0]))
    y_train, y_val = (torch.as_tensor(y.astype(np.float32).reshape(-1, 1)) for y in (train[1], validation[1]))
    shape = build_model(name, max_vocab_len=vocab_size)

    def run():
        model = models.torch_model(shape, seed)
        optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-4, eps=1e-8)
        generator = torch.Generator().manual_seed(seed)
        for _ in range(epochs):
            model.train()
            order = torch.randperm(len(y_train), generator=generator)
            loss_sum = 0.0
            for start, stop in _batches(len(y_train), batch_size):
                index = order[start:stop]
                optimizer.zero_grad(set_to_none=True)
                loss = functional.binary_cross_entropy(model(x_train[index]), y_train[index]) + model.penalty()
                loss.backward()
                optimizer.step()
                loss_sum += loss.item() * (stop - start)
            model.eval()
            with torch.inference_mode():
                outputs = torch.cat([model(x_val[start:stop]) for start, stop in _batches(len(y_val), batch_size)])
                val_loss = functional.binary_cross_entropy(outputs, y_val).item()
                val_accuracy = ((outputs > 0.5).float() == y_val).float().mean().item()
        return loss_sum / len(y_train), val_loss, val_accuracy

    return run
