"""The `minidl` command: train, evaluate and use the URL models, and pre-train
character embeddings.

    minidl train --arch simple_lstm --data url-bahnsen-phishing40k --split host --epochs 5 --output m.mdl
    minidl evaluate --model m.mdl --data urls.csv
    minidl predict --model m.mdl naureen.net/etisalat.ae/index2.php sixt.com/php/reservation?language=en_US
    minidl summary --arch conv_fully
    minidl embed --data urls.csv --window 2 --dim 32 --output chars.npy --plot chars.png

`--data` takes a CSV path (or a folder holding one CSV) or the name of a registered data
set (`minidl.data.DATASETS`; found in $MINIDL_DATA_DIR, ~/.cache/minidl or
$MINIDL_SHARED_DATA_DIR, downloaded when published). A model file holds the tokeniser
settings, so `predict` and `evaluate` need only the model.

Under an MPI launcher (`mpiexec -n 4 minidl train ...`) train, evaluate and predict
spread their work over the ranks (minidl.distributed); rank 0 alone prints and writes.

Bad input (a missing file, a wrong column, a malformed CSV row, an unknown
architecture, an unreadable model file) ends with one line on stderr and exit status 1
(2 for a wrong command line), never a traceback; MINIDL_DEBUG=1 shows the traceback.
Heavy modules are imported inside the commands so that `--help` answers at once.
"""
import argparse
import contextlib
import inspect
import io
import itertools
import os
import re
import sys
import time
from pathlib import Path

import numpy as np

from minidl.kernels.parallelism import set_num_threads
from minidl.data import normalize_url
from minidl.distributed import FOLLOW_ROOT_SECONDS, RootFailed, launch_rank
from minidl.models.url import ARCHITECTURES, POOLINGS

PROGRAM = "minidl"

#: Command-line size options -> the model constructors' argument names.
SIZE_OPTIONS = {
    "max_len": "max_len", "emb_dim": "emb_dim", "lstm_units": "lstm_output_size", "filters": "filters",
    "kernel_size": "kernel_size", "pool_size": "pool_size", "kernel_sizes": "kernel_sizes",
    "hidden_units": "hidden_units", "pooling": "pooling",
}


class UserError(Exception):
    """Bad input found while running a command: reported as one line, exit status 1."""


# ------------------------------------------------------------------------- inputs
def resolve_data(spec):
    """(path of the CSV, registered Dataset or None) for --data."""
    from minidl.data import DATASETS, fetch

    path = Path(spec).expanduser()
    if path.is_dir():
        found = sorted(path.glob("*.csv"))
        if len(found) != 1:
            raise UserError(f"--data {spec}: the folder holds {len(found)} CSV files; name one of them")
        return found[0], None
    if path.is_file():
        return path, None
    if spec in DATASETS:
        return fetch(spec), DATASETS[spec]
    raise UserError(f"--data {spec}: no such file, and no registered data set of that name "
                    f"(known: {', '.join(sorted(DATASETS))})")


def load_labelled_urls(args):
    """(urls, labels, path) from --data, --url-column, --label-column, --bad-rows, --limit."""
    from minidl.data import load_url_csv

    path, dataset = resolve_data(args.data)
    url_column = args.url_column or (dataset.text_column if dataset else "url")
    label_column = args.label_column or (dataset.label_column if dataset else "isMalicious")
    urls, labels, report = load_url_csv(path, url_column, label_column, on_error=args.bad_rows)
    urls = [normalize_url(url) for url in urls]
    if report.n_skipped:
        print(f"skipped {report.n_skipped} malformed rows of {path} (first: line {report.skipped[0][0]}, "
              f"{report.skipped[0][1]})", file=sys.stderr)
    if not urls:
        raise UserError(f"{path}: no rows to use")
    if args.limit is not None and args.limit < len(urls):
        # a seeded random subset, so a quick run sees both classes in their proportions
        keep = np.sort(np.random.default_rng(args.seed).choice(len(urls), args.limit, replace=False))
        urls, labels = [urls[i] for i in keep], labels[keep]
    return urls, labels, path


def read_url_lines(source, option="--file"):
    """Non-empty lines of a file, or of stdin for '-', stripped (see url_chunks)."""
    return [url for chunk in url_chunks(source, option=option) for url in chunk]


def load_model_file(path):
    """(model, tokenizer, extra) from a file written by `minidl train`."""
    from minidl.io import load

    if not Path(path).is_file():
        raise UserError(f"--model {path}: no such file")
    import minidl.models  # noqa: F401 - registers the URL model classes before loading

    model, extra, _ = load(path)
    if "tokenizer" not in extra:
        raise UserError(f"--model {path}: the file holds no tokeniser settings (was it written by `minidl train`?)")
    return model, file_tokenizer(model, extra["tokenizer"], path), extra


def file_tokenizer(model, config, path):
    """The CharTokenizer of a model file's `extra`, checked like the model's own config
    (minidl.schema) and against the model: ids of the length it reads. (An id beyond the
    model's embedding is refused when it occurs, by the embedding itself.)"""
    from minidl.data import CharTokenizer
    from minidl.schema import construct

    tokenizer = construct(CharTokenizer, config, f"--model {path}: extra.tokenizer")
    max_len = getattr(model, "max_len", None)
    if max_len is not None and tokenizer.max_len != max_len:
        raise UserError(f"--model {path}: the tokeniser makes {tokenizer.max_len} ids per URL, "
                        f"the model reads {max_len}")
    return tokenizer


def model_sizes(args, arch):
    """The size options the user gave, as constructor arguments of `arch`; an option
    that `arch` does not have is an error rather than silently ignored."""
    accepted = inspect.signature(ARCHITECTURES[arch]).parameters
    sizes = {}
    for option, parameter in SIZE_OPTIONS.items():
        value = getattr(args, option, None)
        if value is None:
            continue
        if parameter not in accepted:
            raise UserError(f"--{option.replace('_', '-')} does not apply to {arch}")
        sizes[parameter] = value
    return sizes


def int_list(text):
    """'2,3,4,5' -> (2, 3, 4, 5), for argparse."""
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers separated by commas, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def bounded_number(convert, in_range, expected):
    """An argparse type: `convert(text)`, refused with "expected <expected>" when the text
    is not such a number or `in_range(value)` is false."""
    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not in_range(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value
    return parse


positive_int = bounded_number(int, lambda value: value >= 1, "a positive integer")
fraction = bounded_number(float, lambda value: 0 <= value < 1, "a number in [0, 1)")


# ------------------------------------------------------------------------ output
def format_scores(scores):
    """evaluate's metrics as a two-column table."""
    names = ["loss", "accuracy", "roc_auc", "precision", "recall", "f1", "tpr_at_fpr_1e-2", "tpr_at_fpr_1e-3"]
    lines = [f"{'metric':<18}value"]
    lines += [f"{name:<18}{scores[name]:.4f}" for name in names if name in scores]
    if "confusion_matrix" in scores:
        (tn, fp), (fn, tp) = scores["confusion_matrix"]
        lines.append(f"{'confusion':<18}tn {tn}  fp {fp}  fn {fn}  tp {tp}")
    return "\n".join(lines)


def describe_labels(labels):
    return f"{len(labels)} URLs, {int(np.sum(labels))} malicious ({100 * float(np.mean(labels)):.1f} %)"


# ----------------------------------------------------------------------- commands
def split_data(args, urls, x, y):
    """(train, validation or None, test) pairs of (x, y), by --split."""
    from minidl.data import split_by_host, train_test_split, train_val_test_split

    val_size = args.validation_split * (1 - args.test_size) if args.validation_split else None
    if args.split == "host":
        parts = split_by_host(urls, x, y, test_size=args.test_size, val_size=val_size, seed=args.seed)
        parts = parts[len(parts) // 3:]  # drop the URLs, keep x and y parts
    elif val_size:
        parts = train_val_test_split(x, y, val_size=val_size, test_size=args.test_size, stratify=y, seed=args.seed)
    else:
        parts = train_test_split(x, y, test_size=args.test_size, stratify=y, seed=args.seed)
    if val_size:
        x_train, x_val, x_test, y_train, y_val, y_test = parts
        return (x_train, y_train), (x_val, y_val), (x_test, y_test)
    x_train, x_test, y_train, y_test = parts
    return (x_train, y_train), None, (x_test, y_test)


def command_train(args):
    import minidl
    from minidl.data import CharTokenizer
    from minidl.io import save
    from minidl.models import build_model
    from minidl.train import EarlyStopping, evaluate, fit, predict

    if args.early_stopping is not None and not args.validation_split:
        raise UserError("--early-stopping needs a validation set: give --validation-split too")
    sizes = model_sizes(args, args.arch)
    embedding_init = None
    if args.embedding_init is not None:
        try:
            embedding_init = np.load(args.embedding_init, allow_pickle=False)
        except (OSError, ValueError) as error:
            raise UserError(f"--embedding-init {args.embedding_init}: cannot read a .npy matrix ({error})") from None

    tokenizer = CharTokenizer(max_len=args.max_len or 75, truncating=args.truncating)
    (train, validation, test), found = on_rank_zero(lambda: read_training_data(args, tokenizer),
                                                    ((None, None), None, (None, None)))

    minidl.manual_seed(args.seed)
    model = build_model(args.arch, max_vocab_len=tokenizer.vocab_size, embedding_init=embedding_init, **sizes)
    print(f"model: {args.arch}, {model.count_params():,} parameters")
    callbacks = []
    if args.early_stopping is not None:
        callbacks.append(EarlyStopping(monitor=args.monitor, patience=args.early_stopping, restore_best_weights=True))
    history = fit(model, train[0], train[1], epochs=args.epochs, batch_size=args.batch_size,
                  optimizer=model.make_optimizer(args.lr), validation_data=validation, callbacks=callbacks,
                  verbose=args.verbose, distributed="auto")
    scores = evaluate(model, test[0], test[1], distributed="auto")
    print(f"test set ({found['test']}):")
    print(format_scores(scores))

    if launch_rank() > 0:  # every rank holds the trained model; rank 0 writes it
        return 0
    if args.output:
        extra = {"tokenizer": tokenizer.get_config(), "arch": args.arch, "data": found["path"], "split": args.split,
                 "seed": args.seed, "epochs_run": len(history.get("loss", [])),
                 "test_scores": {k: v for k, v in scores.items() if isinstance(v, float) and np.isfinite(v)}}
        save(args.output, model, extra=extra)
        print(f"saved the model to {args.output}")
    if args.plots:
        from minidl.train.plots import plot_history, plot_roc

        folder = Path(args.plots)
        folder.mkdir(parents=True, exist_ok=True)
        plot_history(dict(history), folder / "history.png", title=args.arch)
        plot_roc(test[1], predict(model, test[0]).reshape(-1), folder / "roc.png", label=args.arch, log_fpr=True)
        print(f"wrote {folder / 'history.png'} and {folder / 'roc.png'}")
    return 0


def read_training_data(args, tokenizer):
    """((train, validation or None, test) pairs of (x, y), {"path", "test"}) from --data:
    read, tokenised and split by --split, with what was found printed."""
    urls, labels, path = load_labelled_urls(args)
    if len(np.unique(labels)) < 2:
        raise UserError(f"{path}: the labels hold one class only; training needs benign and malicious URLs")
    x, unknown = tokenizer.encode(urls, return_unknown=True)
    print(f"data: {path}: {describe_labels(labels)}")
    if unknown.sum():
        print(f"dropped {int(unknown.sum())} characters outside string.printable in {int((unknown > 0).sum())} URLs")
    train, validation, test = split_data(args, urls, x, labels)
    print(f"split ({args.split}): train {len(train[1])}, "
          f"{'validation ' + str(len(validation[1])) + ', ' if validation else ''}test {len(test[1])}")
    return (train, validation, test), {"path": str(path), "test": describe_labels(test[1])}


def on_rank_zero(read, empty):
    """`read()` -> (data, summary), here; under an MPI launch on rank 0 alone, and the
    other ranks get (`empty`, the summary): fit, evaluate and predict then send them
    their shares of rank 0's data (minidl.distributed). An error on rank 0 reaches
    every rank."""
    from minidl.distributed import launch_size, resolve_group

    if launch_size() == 1:
        return read()
    data, summary = resolve_group("auto").run_on_root(read)
    return empty if data is None else data, summary


def command_evaluate(args):
    from minidl.train import evaluate

    model, tokenizer, _ = load_model_file(args.model)

    def read():
        urls, labels, path = load_labelled_urls(args)
        return (tokenizer.encode(urls), labels), f"{path}: {describe_labels(labels)}"

    (x, labels), found = on_rank_zero(read, (None, None))
    scores = evaluate(model, x, labels, batch_size=args.batch_size, distributed="auto")
    print(found)
    print(format_scores(scores))
    return 0


def command_predict(args):
    from minidl.distributed import resolve_group

    if not 0 <= args.threshold <= 1:
        raise UserError(f"--threshold must be between 0 and 1, got {args.threshold}")
    if not args.urls and not args.file:
        raise UserError("no URLs given: pass them as arguments, or with --file (one per line, '-' for stdin)")
    model, tokenizer, _ = load_model_file(args.model)
    group = resolve_group("auto")
    chunks = itertools.chain([list(args.urls)] if args.urls else [],
                             url_chunks(args.file, args.chunk_size) if args.file else [])
    start, count = time.perf_counter(), 0
    for urls, probabilities in scored_chunks(model, tokenizer, chunks, args.batch_size, group,
                                             patient=args.file == "-"):
        sys.stdout.write("".join(f"{probability:.4f}\t{'malicious' if probability > args.threshold else 'benign'}"
                                 f"\t{url}\n" for url, probability in zip(urls, probabilities)))
        count += len(urls)
    if group is not None and not group.is_root:  # it scored its blocks; rank 0 writes and reports
        return 0
    if count == 0:
        raise UserError(f"no URLs given: --file {args.file} holds no non-empty line")
    if args.file:
        seconds = time.perf_counter() - start
        ranks = f" on {group.size} ranks" if group is not None else ""
        print(f"scored {count:,} URLs in {seconds:.1f} s ({count / seconds:,.0f} URLs/s{ranks})", file=sys.stderr)
    return 0


def command_summary(args):
    from minidl.models import build_model, print_layers_dims, summary

    if args.model:
        model, _, _ = load_model_file(args.model)
    elif args.arch:
        model = build_model(args.arch, max_vocab_len=args.vocab_size, **model_sizes(args, args.arch))
    else:
        raise UserError("give --arch (and sizes) or --model")
    summary(model)
    if args.dims:
        print_layers_dims(model)
    return 0


def command_embed(args):
    from minidl.data import CharTokenizer
    from minidl.models import character_labels, plot_embedding, train_cbow

    if args.data == "-" or Path(args.data).suffix.lower() == ".txt":
        if args.data != "-" and not Path(args.data).is_file():
            raise UserError(f"--data {args.data}: no such file")
        urls = [normalize_url(url) for url in read_url_lines(args.data, "--data")][:args.limit]
        print(f"data: {args.data}: {len(urls)} URLs")
    else:
        urls, labels, path = load_labelled_urls(args)
        print(f"data: {path}: {describe_labels(labels)}")
    tokenizer = CharTokenizer()
    sequences, _ = tokenizer.tokenize(urls)
    matrix = train_cbow(sequences, tokenizer.vocab_size, dim=args.dim, window=args.window, epochs=args.epochs,
                        batch_size=args.batch_size, lr=args.lr, seed=args.seed, max_pairs=args.max_pairs,
                        verbose=True)
    np.save(args.output, matrix)
    print(f"saved the {matrix.shape[0]} x {matrix.shape[1]} embedding matrix to {args.output} "
          f"(use it with `minidl train --embedding-init {args.output} --emb-dim {args.dim}`)")
    if args.plot:
        plot_embedding(matrix, character_labels(tokenizer), args.plot)
        print(f"wrote {args.plot}")
    return 0


def lambda_mapping(text):
    """'lambda_1,lambda_2=sum' -> {"lambda_1": "sum", "lambda_2": "sum"}, for argparse."""
    names, separator, reduction = text.partition("=")
    if not separator or not names.strip() or not reduction.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=REDUCTION (e.g. lambda_1=sum), got {text!r}")
    return {name.strip(): reduction.strip() for name in names.split(",") if name.strip()}


def command_import_keras(args):
    """Keras 2 JSON (+ HDF5 weights) -> a minidl model file with the notebook's tokeniser."""
    from minidl.data import CharTokenizer
    from minidl.interop.keras import load_keras_model, read_keras_config
    from minidl.io import save

    lambdas = {}
    for mapping in args.lambdas or []:
        lambdas.update(mapping)
    for option, path in (("--config", args.config), ("--weights", args.weights)):
        if path is not None and not Path(path).is_file():
            raise UserError(f"{option} {path}: no such file")
    model = load_keras_model(args.config, args.weights, lambdas)
    shape = model.input_shape
    ids = isinstance(model.input_dtype, str) and np.issubdtype(np.dtype(model.input_dtype), np.integer)
    if not (ids and isinstance(shape, tuple) and len(shape) == 2 and shape[1] is not None):
        raise UserError(f"{args.config}: the model's input is {shape} {model.input_dtype}; the URL commands need "
                        "one input of character ids (batch, length)")
    # The notebook's tokeniser: string.printable index + 1, padded and cut at the front.
    tokenizer = CharTokenizer(max_len=shape[1], padding="pre", truncating="pre")
    keras_version = read_keras_config(args.config).get("keras_version", "unknown")
    extra = {"tokenizer": tokenizer.get_config(), "arch": f"keras:{model.name}",
             "keras": {"config": str(args.config), "weights": None if args.weights is None else str(args.weights),
                       "keras_version": keras_version, "lambdas": lambdas}}
    save(args.output, model, extra=extra)
    # Keras counts batch normalisation's moving statistics among the parameters.
    total = model.count_params() + sum(int(np.size(values)) for _, values in model.named_buffers())
    print(f"imported {model.name} (Keras {keras_version}): {len(model.layers)} layers, {total:,} parameters "
          f"as Keras counts them")
    if args.weights is None:
        print("no --weights: the model holds minidl's initial (untrained) weights")
    print(f"saved the model to {args.output} (tokeniser: string.printable index + 1, "
          f"padded and cut at the front to {shape[1]})")
    return 0


def add_import_keras_command(commands):
    parser = commands.add_parser(
        "import-keras", help="import a Keras 2 model (JSON architecture, HDF5 weights) as a model file",
        description="Read a Keras 2 model's JSON (model.to_json(), also JSON-encoded twice) and its HDF5 "
                    "weights (model.save_weights; needs h5py: pip install 'minidl[keras]') and write a "
                    "minidl model file with the lecture notebook's tokeniser, for predict, evaluate and "
                    "summary. Lambda layers are never executed: map each to a reduction over time "
                    "with --lambda.")
    parser.add_argument("--config", required=True, help="the model's JSON file")
    parser.add_argument("--weights", help="its HDF5 weights (default: none, minidl's initial weights)")
    parser.add_argument("--output", required=True, help="where to write the minidl model file")
    parser.add_argument("--lambda", dest="lambdas", type=lambda_mapping, action="append", metavar="NAME=REDUCTION",
                        help="treat the Lambda layer(s) NAME (comma-separated) as a reduction over the time "
                             "axis: sum, mean or max (the lecture's conv_fully: lambda_1,lambda_2,lambda_3,"
                             "lambda_4=sum); repeatable")
    parser.set_defaults(run=command_import_keras)


# ------------------------------------------------------------ streaming scoring
#: `predict --file` reads, scores and writes this many URLs at a time: its memory holds
#: one chunk (and the model's activations for one batch) whatever the file's length.
CHUNK_URLS = 8192
#: A longer line is not a URL (servers refuse a few kilobytes; browsers stop at 2 MB)
#: and would make a chunk's memory unbounded.
MAX_URL_CHARS = 2**16
_UNDECODABLE = re.compile("[\udc80-\udcff]")  # bytes that are not UTF-8, read with surrogateescape


@contextlib.contextmanager
def _utf8_lines(source):
    """The text of a file, or of stdin for '-', as UTF-8 with undecodable bytes kept as
    lone surrogates (so that the line holding them can be named)."""
    if source != "-":
        with open(source, encoding="utf-8", errors="surrogateescape") as stream:
            yield stream
    elif hasattr(sys.stdin, "buffer"):  # stdin as UTF-8, whatever the locale says
        stream = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="surrogateescape")
        try:
            yield stream
        finally:
            stream.detach()  # leaves sys.stdin open
    else:
        yield sys.stdin


def url_chunks(source, chunk_urls=CHUNK_URLS, option="--file"):
    """Lists of at most `chunk_urls` URLs, in order: the non-empty lines, stripped, of a
    UTF-8 file or of stdin ('-'), read one line at a time. A line that is not UTF-8, or
    longer than MAX_URL_CHARS, is an error that names it and the `option` that gave the
    file (after the chunks before it)."""
    with _utf8_lines(source) as stream:
        chunk = []
        for number in itertools.count(1):
            line = stream.readline(MAX_URL_CHARS + 1)
            if not line:
                break
            if len(line) > MAX_URL_CHARS:
                raise UserError(f"{option} {source}, line {number}: longer than {MAX_URL_CHARS:,} characters, "
                                "not a URL")
            if _UNDECODABLE.search(line):
                raise UserError(f"{option} {source}, line {number}: not UTF-8 text")
            url = line.strip()
            if url:
                chunk.append(url)
                if len(chunk) == chunk_urls:
                    yield chunk
                    chunk = []
        if chunk:
            yield chunk


def scored_chunks(model, tokenizer, chunks, batch_size, group=None, patient=False):
    """(urls, probabilities) for each chunk of URLs, in input order. With a process
    group rank 0 reads the chunks and gives each rank one contiguous block of every
    chunk to score; the results come back to rank 0, the only rank that yields.
    patient: the other ranks wait for rank 0's next chunk without the watchdog (stdin)."""
    from minidl.distributed import block
    from minidl.train import predict

    def score(urls):
        if not urls:  # a rank's block of a chunk shorter than the number of ranks
            return np.zeros(0, np.float32)
        return predict(model, tokenizer.encode([normalize_url(url) for url in urls]), batch_size=batch_size).reshape(-1)

    if group is None:
        for urls in chunks:
            yield urls, score(urls)
        return
    while True:
        message, failure = None, None
        if group.is_root:
            try:
                urls = next(chunks, None)
            except Exception as error:  # noqa: BLE001 - a missing file, a bad line: every rank stops
                urls, failure = None, error
            if failure is not None:
                message = [("error", str(failure))] * group.size
            elif urls is None:
                message = [("end", None)] * group.size
            else:
                message = [("urls", urls[slice(*block(0, len(urls), rank, group.size))]) for rank in range(group.size)]
        kind, part = group.scatter(message, patient=patient)
        if failure is not None:
            raise failure
        if kind == "error":
            raise RootFailed(f"rank 0: {part}")
        if kind == "end":
            return
        try:
            probabilities = score(part)
        except BaseException as error:
            group.abort(error)  # the other ranks wait for this one's scores
        probabilities = group.gather_to_root(probabilities)
        if group.is_root:
            yield urls, np.concatenate(probabilities)


# ------------------------------------------------------------------------- parser
def add_data_options(parser, required=True):
    parser.add_argument("--data", required=required,
                        help="a CSV file (or a folder holding one), or a registered data set name; "
                             "URLs lose a scheme and a leading www. as in the data sets")
    parser.add_argument("--url-column", help="the URL column (default: url, or the data set's)")
    parser.add_argument("--label-column", help="the 0/1 label column (default: isMalicious, or the data set's)")
    parser.add_argument("--bad-rows", choices=("raise", "skip"), default="raise",
                        help="stop at a malformed row (default) or skip it and count it")
    parser.add_argument("--limit", type=positive_int, help="use a random subset of N rows (quick runs)")
    parser.add_argument("--seed", type=int, default=33, help="random seed (default 33, the source's)")


def add_size_options(parser):
    sizes = parser.add_argument_group("model sizes (default: the source's)")
    sizes.add_argument("--max-len", type=positive_int, help="characters per URL (default 75)")
    sizes.add_argument("--emb-dim", type=positive_int, help="embedding dimension (default 32)")
    sizes.add_argument("--lstm-units", type=positive_int, help="LSTM units (simple_lstm, lstm_conv; default 32)")
    sizes.add_argument("--filters", type=positive_int,
                       help="convolution filters (lstm_conv, conv_fully: default 256; conv_max: 128)")
    sizes.add_argument("--kernel-size", type=positive_int, help="convolution width (lstm_conv; default 5)")
    sizes.add_argument("--pool-size", type=positive_int, help="max-pooling size (lstm_conv; default 4)")
    sizes.add_argument("--kernel-sizes", type=int_list, help="branch widths, e.g. 2,3,4,5 (conv_fully, conv_max)")
    sizes.add_argument("--hidden-units", type=int_list,
                       help="hidden layer sizes, e.g. 1024,1024 (conv_fully; conv_max has none)")
    sizes.add_argument("--pooling", choices=list(POOLINGS),
                       help="each branch's reduction over time (conv_fully: sum, conv_max: max)")


def build_parser():
    parser = argparse.ArgumentParser(prog=PROGRAM, description="Featureless malicious-URL detection with minidl.")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="CPU threads minidl uses (default: every core)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    train = commands.add_parser("train", help="train a URL model on a labelled CSV",
                                description="Train a URL model, report its test metrics, save it.")
    train.add_argument("--arch", choices=list(ARCHITECTURES), default="simple_lstm",
                       help="architecture (default simple_lstm)")
    add_data_options(train)
    add_size_options(train)
    train.add_argument("--truncating", choices=("pre", "post"), default="pre",
                       help="cut long URLs at the start (pre: keep the last --max-len characters, as the "
                            "source) or at the end (post: keep the host; better on long URLs, see "
                            "docs/url_quality.md)")
    train.add_argument("--epochs", type=positive_int, default=5, help="epochs (default 5)")
    train.add_argument("--batch-size", type=positive_int, default=32, help="batch size (default 32)")
    train.add_argument("--lr", type=float, default=1e-4, help="Adam's learning rate (default 1e-4)")
    train.add_argument("--split", choices=("random", "host"), default="random",
                       help="random stratified split, or by host (no host in two parts)")
    train.add_argument("--test-size", type=fraction, default=0.25, help="test fraction (default 0.25)")
    train.add_argument("--validation-split", type=fraction, default=0.0,
                       help="fraction of the training part held out for validation (default none)")
    train.add_argument("--early-stopping", type=positive_int, metavar="PATIENCE",
                       help="stop after PATIENCE epochs without improvement and keep the best weights")
    train.add_argument("--monitor", default="val_loss", help="validation metric for early stopping (default val_loss)")
    train.add_argument("--embedding-init", help="a .npy matrix from `minidl embed` to start the embedding from")
    train.add_argument("--output", help="write the trained model to this file")
    train.add_argument("--plots", help="write training curves and the ROC curve (PNG) into this folder")
    train.add_argument("--verbose", type=int, choices=(0, 1, 2), default=1,
                       help="0 silent, 1 progress bar (default), 2 one line per epoch")
    train.set_defaults(run=command_train)

    evaluate = commands.add_parser("evaluate", help="metrics of a saved model on a labelled CSV",
                                   description="Print a saved model's metrics on a labelled CSV.")
    evaluate.add_argument("--model", required=True, help="a model file written by `minidl train`")
    add_data_options(evaluate)
    evaluate.add_argument("--batch-size", type=positive_int, default=256, help="batch size (default 256)")
    evaluate.set_defaults(run=command_evaluate)

    predict = commands.add_parser("predict", help="score URLs with a saved model",
                                  description="Print the probability and the verdict for each URL, in input "
                                              "order; a --file is streamed in chunks, and the throughput is "
                                              "reported on stderr.")
    predict.add_argument("--model", required=True, help="a model file written by `minidl train`")
    predict.add_argument("urls", nargs="*", metavar="URL", help="URLs to score")
    predict.add_argument("--file", help="a file with one URL per line ('-' for stdin)")
    predict.add_argument("--threshold", type=float, default=0.5,
                         help="probability above which a URL is called malicious (default 0.5)")
    predict.add_argument("--batch-size", type=positive_int, default=1024, help="batch size (default 1024)")
    predict.add_argument("--chunk-size", type=positive_int, default=CHUNK_URLS, metavar="URLS",
                         help=f"URLs of --file read, scored and written at a time (default {CHUNK_URLS}): memory "
                              "grows with it, not with the file's length")
    predict.set_defaults(run=command_predict)

    summary = commands.add_parser("summary", help="print a model's layers, shapes and parameter counts",
                                  description="Print a Keras-like summary of an architecture or a saved model.")
    summary.add_argument("--arch", choices=list(ARCHITECTURES), help="an architecture, built with the sizes below")
    summary.add_argument("--model", help="a saved model file instead")
    summary.add_argument("--vocab-size", type=positive_int, default=101,
                         help="embedding rows (default 101, the tokeniser's; the source used 100)")
    add_size_options(summary)
    summary.add_argument("--dims", action="store_true",
                         help="also print each layer's input and output shape (the source's print_layers_dims)")
    summary.set_defaults(run=command_summary)

    embed = commands.add_parser("embed", help="pre-train character embeddings (word2vec CBOW)",
                                description="Train CBOW character embeddings on URLs (a labelled CSV or data "
                                            "set as for train, or a .txt file or '-' with one URL per line); "
                                            "write the matrix (.npy) and a 2D PCA plot of the characters.")
    add_data_options(embed)
    embed.add_argument("--window", type=positive_int, default=2, help="context characters on each side (default 2)")
    embed.add_argument("--dim", type=positive_int, default=32, help="embedding dimension (default 32)")
    embed.add_argument("--epochs", type=positive_int, default=5, help="passes over the data (default 5)")
    embed.add_argument("--batch-size", type=positive_int, default=512, help="batch size (default 512)")
    embed.add_argument("--lr", type=float, default=1e-2, help="Adam's learning rate (default 1e-2)")
    embed.add_argument("--max-pairs", type=positive_int, help="train on a random subset of the (context, character) pairs")
    embed.add_argument("--output", required=True, help="where to write the matrix (.npy)")
    embed.add_argument("--plot", help="where to write the PCA plot of the characters (.png)")
    embed.set_defaults(run=command_embed)

    add_import_keras_command(commands)
    return parser


def main(argv=None):
    """Run the command line; returns the exit status (0 ok, 1 bad input, 2 bad usage)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.threads is not None:
        try:
            set_num_threads(args.threads)
        except ValueError as error:
            parser.error(str(error))
    if launch_rank() > 0:  # under mpiexec rank 0 alone prints results; errors still reach stderr
        sys.stdout = open(os.devnull, "w", encoding="utf-8")
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print(f"{PROGRAM}: interrupted", file=sys.stderr)
        return 130
    except RootFailed:  # under MPI: rank 0 failed and reports it; this rank ends quietly, after it
        time.sleep(FOLLOW_ROOT_SECONDS)
        return 1
    except (UserError, OSError, ValueError, ImportError, ArithmeticError) as error:
        # what users can get wrong (files, columns, CSV rows, model files, settings; a diverged training)
        if os.environ.get("MINIDL_DEBUG"):
            raise
        print(f"{PROGRAM} {args.command}: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
