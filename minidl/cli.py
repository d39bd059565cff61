"""The `minidl` command: train, evaluate and use the URL models, and pre-train
character embeddings.

    minidl train --output runs/url.mdl                   # the sample inside minidl, the best recipe
    minidl train --data url-iscx2016 --max-len 100 --early-stopping 3 --output runs/iscx.mdl
    minidl train --recipe source --data url-incertum-mega --output runs/source.mdl
    minidl evaluate --model runs/url.mdl --split test    # the model's own held-out test part
    minidl predict --model runs/url.mdl naureen.net/etisalat.ae/index2.php sixt.com/php/reservation?language=en_US
    minidl summary --model runs/url.mdl
    minidl train --arch ngram_linear --validation-split 0.1 --target-fpr 1e-3 --output runs/ngram.mdl
    minidl ensemble --model runs/url.mdl --model runs/ngram.mdl --output runs/both.mdl --data url-bahnsen-phishing-sample
    minidl embed --window 2 --dim 32 --output chars.npy --plot chars.png

`--data` takes a CSV path, a folder holding one CSV, or the name of a registered data set
(`minidl.data.DATASETS`; found in $MINIDL_DATA_DIR, ~/.cache/minidl, $MINIDL_SHARED_DATA_DIR
or ../shared/data beside a source checkout, and downloaded when published as is). Without
it, train and embed use the 4,000-URL sample inside the package, url-bahnsen-phishing-sample.
`--recipe` picks the training defaults (minidl.models.recipes): the best measured one or
the 2017 notebook's. A model file holds the tokeniser's settings, how the model was
trained and its decision threshold (chosen on the validation part for --target-fpr), so
`predict` and `evaluate` need only the model.

Under an MPI launcher (`mpiexec -n 4 minidl train ...`) train, evaluate and predict
spread their work over the ranks (minidl.distributed); rank 0 alone prints and writes.

Bad input (a missing file, a wrong column, a malformed CSV row, an unreadable model file)
ends with one line on stderr and exit status 1; a wrong command line (an unknown option or
value, options that do not go together) with one line and exit status 2; never a
traceback (MINIDL_DEBUG=1 shows it). Output paths are checked, and their folders made,
before any training. Heavy modules are imported inside the commands so that `--help`
answers at once.
"""
import argparse
import contextlib
import csv
import importlib.util
import inspect
import io
import itertools
import json
import os
import re
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from minidl import __version__, backend
from minidl.data import MalformedRowError, normalize_url, url_host
from minidl.distributed import FOLLOW_ROOT_SECONDS, RootFailed, launch_rank
from minidl.kernels.parallelism import set_num_threads
from minidl.models.recipes import ARCHITECTURE_LR, DEFAULT_RECIPE, RECIPES
from minidl.models.registry import ARCHITECTURES
from minidl.models.url import POOLINGS
from minidl.train.progress import ABBREVIATIONS, logged_name

PROGRAM = "minidl"
BAD_INPUT, BAD_USAGE = 1, 2
#: What train and embed read without --data: the sample that ships inside the package.
DEFAULT_DATA = "url-bahnsen-phishing-sample"
#: The metrics evaluate prints, in order; with "val_" in front, what --monitor may watch.
SCORES = ("loss", "accuracy", "roc_auc", "precision", "recall", "f1", "tpr_at_fpr_1e-2", "tpr_at_fpr_1e-3")
#: The training metrics fit logs every epoch.
TRAINING_METRICS = ("loss", "accuracy", "roc_auc")
PLOT_INSTALL = "pip install -e \".[plot]\""

#: Command-line size options -> the model constructors' argument names.
SIZE_OPTIONS = {
    "max_len": "max_len", "emb_dim": "emb_dim", "lstm_units": "lstm_output_size", "filters": "filters",
    "kernel_size": "kernel_size", "pool_size": "pool_size", "kernel_sizes": "kernel_sizes",
    "hidden_units": "hidden_units", "pooling": "pooling",
}
#: The settings of a training run that a resumed run and `evaluate --split test` repeat.
RUN_SETTINGS = ("recipe", "arch", "data", "url_column", "label_column", "bad_rows", "limit", "seed", "split",
                "test_size", "validation_split", "truncating", "lr", "batch_size", "early_stopping", "monitor",
                "class_weight", *SIZE_OPTIONS)


class UserError(Exception):
    """Bad input found while running a command: reported as one line, exit status 1."""


class UsageError(UserError):
    """Options that do not go together: reported as one line, exit status 2, as argparse does."""


# ------------------------------------------------------------------------ parsing
class Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors in the command's words:
    `minidl train: error: --arch: choose from simple_lstm, lstm_conv, ...`, exit status 2."""

    def error(self, message):
        self.exit(BAD_USAGE, f"{self.prog}: error: {plain_usage_error(message)}\n")


def plain_usage_error(message):
    """argparse's message without its jargon: 'argument --arch: invalid choice: 'x'
    (choose from 'a', 'b')' -> "--arch: choose from a, b (got 'x')"."""
    message = re.sub(r"^argument ", "", message)
    choice = re.match(r"(?P<option>.+?): invalid choice: (?P<got>.+?) \(choose from (?P<choices>.*)\)$", message)
    if choice:
        choices = ", ".join(part.strip().strip("'") for part in choice["choices"].split(","))
        return f"{choice['option']}: choose from {choices} (got {choice['got']})"
    kind = re.match(r"(?P<option>.+?): invalid (?P<kind>int|float) value: (?P<got>.*)$", message)
    if kind:
        expected = "an integer" if kind["kind"] == "int" else "a number"
        return f"{kind['option']}: expected {expected}, got {kind['got']}"
    return message


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
nonnegative_int = bounded_number(int, lambda value: value >= 0, "0 or a positive integer")
positive_number = bounded_number(float, lambda value: value > 0, "a positive number")
fraction = bounded_number(float, lambda value: 0 <= value < 1, "a number in [0, 1)")
open_fraction = bounded_number(float, lambda value: 0 < value < 1, "a number between 0 and 1 (both excluded)")
probability = bounded_number(float, lambda value: 0 <= value <= 1, "a probability in [0, 1]")


def int_list(text):
    """'2,3,4,5' -> (2, 3, 4, 5), for argparse."""
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers separated by commas, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def monitor_names():
    """The names --monitor accepts, as the progress bar shows them."""
    names = [*TRAINING_METRICS, *(f"val_{name}" for name in SCORES)]
    return [ABBREVIATIONS.get(name, name) for name in names]


def metric_name(text):
    """A metric as fit logs it, from the bar's short name or the full one, for argparse."""
    accepted = {logged_name(name) for name in monitor_names()}
    if logged_name(text) not in accepted:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(monitor_names())} (got {text!r})")
    return logged_name(text)


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
    """(urls, labels, where) from --data (default: the sample inside minidl), --url-column,
    --label-column, --bad-rows, --limit; `where` names the data for the user."""
    from minidl.data import load_url_csv

    spec = args.data or DEFAULT_DATA
    path, dataset = resolve_data(spec)
    url_column = args.url_column or (dataset.text_column if dataset else "url")
    label_column = args.label_column or (dataset.label_column if dataset else "isMalicious")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the skipped rows are reported below, in one line
            urls, labels, report = load_url_csv(path, url_column, label_column, on_error=args.bad_rows)
    except MalformedRowError as error:
        raise UserError(f"{error.path}, line {error.line}: {error.reason} "
                        "(give --bad-rows skip to leave such rows out)") from None
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
    where = f"{spec} ({path})" if dataset else str(path)
    return urls, labels, where


def read_url_lines(source, option="--file"):
    """Non-empty lines of a file, or of stdin for '-', stripped (see url_chunks)."""
    return [url for chunk in url_chunks(source, option=option) for url in chunk]


def load_model_file(path):
    """(model, tokenizer, extra) from a file written by `minidl train`."""
    from minidl.io import load

    if Path(path).is_dir():
        raise UserError(f"--model {path}: is a directory; give the model file (.mdl) inside it")
    if not Path(path).is_file():
        raise UserError(f"--model {path}: no such file")
    import minidl.models  # noqa: F401 - registers the URL model classes before loading

    model, extra, _ = load(path)
    if "tokenizer" not in extra:
        raise UserError(f"--model {path}: the file holds no tokeniser settings (was it written by `minidl train`?)")
    return model, file_tokenizer(model, extra["tokenizer"], path), extra


def file_tokenizer(model, config, path):
    """The tokeniser of a model file's `extra` (a CharTokenizer, or the URLEncoder of a
    model that reads a URL several ways), checked like the model's own config
    (minidl.schema) and against the model: ids of the width it reads. (An id beyond the
    model's embedding is refused when it occurs, by the embedding itself.)"""
    from minidl.data import CharTokenizer, tokenizer_from_config
    from minidl.schema import construct

    where = f"--model {path}: extra.tokenizer"
    if not isinstance(config, dict) or config.get("class_name", "CharTokenizer") == "CharTokenizer":
        settings = {k: v for k, v in config.items() if k != "class_name"} if isinstance(config, dict) else config
        tokenizer = construct(CharTokenizer, settings, where)
        width = tokenizer.max_len
    else:
        try:
            tokenizer = tokenizer_from_config(config)
            width = sum(part_width for _, _, part_width in tokenizer.layout())
        except (AttributeError, KeyError, TypeError, ValueError) as error:
            raise UserError(f"{where}: not a tokeniser's settings ({error})") from None
    expected = model.input_shape[1] if hasattr(model, "input_parts") else getattr(model, "max_len", None)
    if expected is not None and width != expected:
        raise UserError(f"--model {path}: the tokeniser makes {width} ids per URL, the model reads {expected}")
    return tokenizer


def decision_threshold(args, extra):
    """(threshold, where it comes from): --threshold, else the one `minidl train` stored
    in the model file, else 0.5."""
    if args.threshold is not None:
        return args.threshold, "--threshold"
    if extra.get("threshold") is None:
        return 0.5, "default"
    target = extra.get("target_fpr")
    return float(extra["threshold"]), "stored" + (f": FPR {target:g} on the validation part" if target else "")


def model_sizes(args, arch):
    """The size options the user gave, as constructor arguments of `arch`; an option
    that `arch` does not have is an error rather than silently ignored (one the recipe
    set, such as max_len for ngram_linear, which reads no characters, is left out)."""
    accepted = inspect.signature(ARCHITECTURES[arch]).parameters
    sizes = {}
    for option, parameter in SIZE_OPTIONS.items():
        value = getattr(args, option, None)
        if value is None:
            continue
        if parameter not in accepted:
            if option in getattr(args, "from_recipe", ()):
                continue
            raise UsageError(f"--{option.replace('_', '-')} does not apply to {arch}")
        sizes[parameter] = value
    return sizes


def accepted_settings(arch, **settings):
    """The `settings` that `arch`'s constructor takes and that are given (not None):
    the character vocabulary and initial embedding mean nothing to ngram_linear."""
    accepted = inspect.signature(ARCHITECTURES[arch]).parameters
    return {name: value for name, value in settings.items() if name in accepted and value is not None}


def calibrated_threshold(target_fpr, model, validation, rows):
    """The decision threshold for `target_fpr` on the validation part: the smallest
    score above which at most that fraction of its benign URLs lies. 0.5 without one,
    or when its benign URLs are too few to resolve the rate (fewer than 1 / target_fpr:
    the threshold would only be the highest benign score). `rows` is the validation
    part's size; under MPI the part is on rank 0 (`validation` None elsewhere), every
    rank scores its share and gets rank 0's threshold."""
    from minidl.distributed import resolve_group
    from minidl.train import metrics, predict

    if not rows:
        print("no validation part: the decision threshold stays 0.5 (--validation-split calibrates it)")
        return 0.5
    group = resolve_group("auto")
    scores = predict(model, None if validation is None else validation[0], distributed="auto").reshape(-1)
    threshold, message = 0.5, ""
    if validation is not None:
        benign = int(np.count_nonzero(validation[1] == 0))
        if benign == len(validation[1]) or benign == 0:
            message = "the validation part holds one class: the decision threshold stays 0.5"
        elif benign * target_fpr < 1:
            message = (f"the validation part's {benign} benign URLs cannot resolve a false-positive rate of "
                       f"{target_fpr:g} (it takes {int(np.ceil(1 / target_fpr))}): the decision threshold "
                       "stays 0.5")
        else:
            threshold = metrics.threshold_at_fpr(validation[1], scores, target_fpr)
            message = (f"decision threshold {threshold:.6g}: at most {target_fpr:g} of the validation part's "
                       f"{benign} benign URLs above it, {metrics.tpr_at_fpr(validation[1], scores, target_fpr):.4f}"
                       " of its malicious ones")
    if group is not None:
        threshold = float(group.broadcast(np.array([threshold]))[0])
    if message:
        print(message)
    return threshold


# ------------------------------------------------------------------------ outputs
def output_file(path, option):
    """The file `path` that the command will write, checked now, before any training:
    a directory is refused, missing folders above it are made."""
    if path is None:
        return None
    target = Path(path).expanduser()
    if str(path).endswith(("/", os.sep)) or target.is_dir():
        raise UsageError(f"{option} {path}: is a directory; give the name of a file to write in it")
    return _with_folder(target, target.parent, option, path)


def output_folder(path, option):
    """The folder `path` that the command will write into, made now."""
    if path is None:
        return None
    target = Path(path).expanduser()
    if target.exists() and not target.is_dir():
        raise UsageError(f"{option} {path}: is a file; give a folder")
    return _with_folder(target, target, option, path)


def _with_folder(target, folder, option, given):
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"{option} {given}: cannot make the folder {folder} ({error.strerror})") from None
    if not os.access(folder, os.W_OK):
        raise UserError(f"{option} {given}: the folder {folder} is not writable")
    return target


def require_matplotlib(option):
    if importlib.util.find_spec("matplotlib") is None:
        raise UserError(f"{option} needs matplotlib: install it with `{PLOT_INSTALL}` (or `pip install matplotlib`)")


# ------------------------------------------------------------------------- output
def format_scores(scores):
    """evaluate's metrics as a two-column table."""
    lines = [f"{'metric':<18}value"]
    lines += [f"{name:<18}{scores[name]:.4f}" for name in SCORES if name in scores]
    if "confusion_matrix" in scores:
        (tn, fp), (fn, tp) = scores["confusion_matrix"]
        lines.append(f"{'confusion':<18}tn {tn}  fp {fp}  fn {fn}  tp {tp}")
    return "\n".join(lines)


def describe_labels(labels):
    return f"{len(labels)} URLs, {int(np.sum(labels))} malicious ({100 * float(np.mean(labels)):.1f} %)"


def kernel_messages():
    """A block that says when the first run compiles the Numba kernels, and how long
    that took (rank 0 only)."""
    from minidl.kernels.numba_cache import compile_messages

    return compile_messages() if launch_rank() == 0 else contextlib.nullcontext()


# -------------------------------------------------------------------------- train
def apply_recipe(args):
    """Fill every training option the command line left out from --recipe; remember
    which came from it, for the messages."""
    args.from_recipe = set()
    for name, value in RECIPES[args.recipe].items():
        if getattr(args, name) is None:
            setattr(args, name, value)
            args.from_recipe.add(name)
    if "lr" in args.from_recipe and args.arch in ARCHITECTURE_LR:
        args.lr = ARCHITECTURE_LR[args.arch]
    args.monitor = logged_name(args.monitor)


def check_train_options(args):
    """Option combinations that cannot work, refused before anything is loaded."""
    if args.early_stopping and not args.validation_split:
        if {"early_stopping", "validation_split"} & args.from_recipe:
            raise UsageError(f"the {args.recipe} recipe stops early on a validation part: give --validation-split "
                             "(such as 0.1) with --early-stopping, or --early-stopping 0 to train without one")
        raise UsageError("--early-stopping needs a validation set: give --validation-split too")
    if args.resume and not args.checkpoint:
        raise UsageError("--resume needs --checkpoint DIR: the folder of the run to continue")


def train_outputs(args):
    """(model file, plots folder) after checking every path train writes, so that a
    run never trains for minutes and then fails to save."""
    output = output_file(args.output, "--output")
    plots = output_folder(args.plots, "--plots")
    if plots:
        require_matplotlib("--plots")
    output_file(args.csv_log, "--csv-log")
    output_folder(args.checkpoint, "--checkpoint")
    return output, plots


def split_data(args, urls, x, y):
    """(train, validation or None, test) pairs of (x, y), by --split."""
    from minidl.data import split_by_host, train_test_split, train_val_test_split

    val_size = args.validation_split * (1 - args.test_size) if args.validation_split else None
    if args.split == "host":
        parts = split_by_host(urls, x, y, test_size=args.test_size, val_size=val_size, seed=args.seed)
        parts = parts[len(parts) // 3:]  # drop the URLs, keep x and y parts
    else:
        stratify = y if args.split == "stratified" else None
        if val_size:
            parts = train_val_test_split(x, y, val_size=val_size, test_size=args.test_size, stratify=stratify,
                                         seed=args.seed)
        else:
            parts = train_test_split(x, y, test_size=args.test_size, stratify=stratify, seed=args.seed)
    if val_size:
        x_train, x_val, x_test, y_train, y_val, y_test = parts
        return (x_train, y_train), (x_val, y_val), (x_test, y_test)
    x_train, x_test, y_train, y_test = parts
    return (x_train, y_train), None, (x_test, y_test)


def run_settings(args):
    """The run's settings as JSON data, with --data as a registered name or an absolute
    path, so `evaluate --split test` finds the same rows from any folder."""
    from minidl.data import DATASETS

    settings = {name: getattr(args, name) for name in RUN_SETTINGS}
    settings["data"] = args.data or DEFAULT_DATA
    if settings["data"] not in DATASETS:
        settings["data"] = str(Path(settings["data"]).expanduser().resolve())
    for name in ("kernel_sizes", "hidden_units"):
        if settings[name] is not None:
            settings[name] = list(settings[name])
    return settings


def training_callbacks(args, settings):
    """(callbacks for fit, the EarlyStopping or None, the BackupAndRestore or None)."""
    from minidl.train import BackupAndRestore, CSVLogger, EarlyStopping

    early = backup = None
    callbacks = []
    if args.early_stopping:
        early = EarlyStopping(monitor=args.monitor, patience=args.early_stopping, restore_best_weights=True)
        callbacks.append(early)
    if args.csv_log:
        callbacks.append(CSVLogger(args.csv_log, append=args.resume))
    if args.checkpoint:
        backup = BackupAndRestore(args.checkpoint, watch=[early] if early else [], extra={"run": settings})
        callbacks.append(backup)
    return callbacks, early, backup


def resume_from(backup, settings, model, optimizer):
    """The epochs the checkpointed run had done, after loading it; its settings must be
    this command's."""
    saved = backup.saved_extra()
    if saved is None:
        raise UserError(f"--resume: {backup.folder} holds no checkpoint ({backup.last_path.name}) to continue")
    differing = [name for name in RUN_SETTINGS if saved["run"].get(name) != settings[name]]
    if differing:
        name = differing[0]
        raise UsageError(f"--resume: the run in {backup.folder} was trained with {name} {saved['run'].get(name)!r}, "
                         f"this command gives {settings[name]!r}; give the same settings (only --epochs may grow)")
    done = backup.restore(model, optimizer)
    print(f"resuming the run in {backup.folder} after epoch {done}")
    return done


def model_line(arch, model):
    from minidl.models.summary import parameter_counts

    total, trainable = parameter_counts(model)
    return (f"model: {arch} (Total params: {total:,}, Trainable params: {trainable:,}, "
            f"Non-trainable params: {total - trainable:,})")


def command_train(args):
    import minidl
    from minidl.data import CharTokenizer
    from minidl.models import build_model
    from minidl.train import evaluate, fit

    apply_recipe(args)
    check_train_options(args)
    sizes = model_sizes(args, args.arch)
    output, plots = train_outputs(args)
    embedding_init = None
    if args.embedding_init is not None:
        try:
            embedding_init = np.load(args.embedding_init, allow_pickle=False)
        except (OSError, ValueError) as error:
            raise UserError(f"--embedding-init {args.embedding_init}: cannot read a .npy matrix ({error})") from None

    minidl.manual_seed(args.seed)
    model = build_model(args.arch, **accepted_settings(args.arch, max_vocab_len=CharTokenizer().vocab_size,
                                                       embedding_init=embedding_init), **sizes)
    (train, validation, test), found = on_rank_zero(lambda: read_training_data(args, model),
                                                    ((None, None), None, (None, None)))
    print(model_line(args.arch, model))
    optimizer = model.make_optimizer(args.lr)
    settings = run_settings(args)
    callbacks, early, backup = training_callbacks(args, settings)
    initial_epoch = resume_from(backup, settings, model, optimizer) if args.resume else 0
    history = {}
    if initial_epoch < args.epochs and not (backup and backup.stopped):
        history = fit(model, train[0], train[1], epochs=args.epochs, batch_size=args.batch_size,
                      optimizer=optimizer, validation_data=validation, callbacks=callbacks, verbose=args.verbose,
                      class_weight=args.class_weight, distributed="auto", initial_epoch=initial_epoch)
    else:
        backup.load_final_weights(model)
        print(f"nothing left to train: the run in {args.checkpoint} ended after epoch {initial_epoch}")
    if backup:
        history = backup.history  # the epochs of the earlier run too
    threshold = calibrated_threshold(args.target_fpr, model, validation, found["rows"]["validation"])
    scores = evaluate(model, test[0], test[1], distributed="auto", threshold=threshold)
    print(f"test set ({found['test']}), malicious above {threshold:.6g}:")
    print(format_scores(scores))

    if launch_rank() > 0:  # every rank holds the trained model; rank 0 writes it
        return 0
    record = {"arch": args.arch, "run": settings, "data_path": found["where"],
              "epochs_run": len(history.get("loss", [])), "best_epoch": None if early is None else early.best_epoch,
              "rows": found["rows"], "threshold": threshold,
              "target_fpr": args.target_fpr if found["rows"]["validation"] else None,
              "test_scores": {k: v for k, v in scores.items() if isinstance(v, float) and np.isfinite(v)}}
    save_trained(output, model, found["tokenizer"], record)
    if plots:
        write_training_plots(plots, history, model, test, args.arch)
    return 0


def read_training_data(args, model):
    """((train, validation or None, test) pairs of (x, y), what was found) from --data:
    read, split by --split, tokenised by the model's tokeniser (fitted on the training
    part, for one that learns a vocabulary: URLNet's words), with what was found printed."""
    urls, labels, where = load_labelled_urls(args)
    if len(np.unique(labels)) < 2:
        raise UserError(f"{where}: the labels hold one class only; training needs benign and malicious URLs")
    print(f"data: {where}: {describe_labels(labels)}")
    parts = split_data(args, urls, np.arange(len(urls)), labels)
    tokenizer = model.make_tokenizer([urls[i] for i in parts[0][0]], truncating=args.truncating)
    x = tokenizer.encode(urls)
    report_dropped_characters(tokenizer, urls)
    train, validation, test = (None if part is None else (x[part[0]], part[1]) for part in parts)
    print(f"split ({args.split}): train {len(train[1])}, "
          f"{'validation ' + str(len(validation[1])) + ', ' if validation else ''}test {len(test[1])}")
    rows = {"train": len(train[1]), "validation": len(validation[1]) if validation else 0, "test": len(test[1])}
    return (train, validation, test), {"where": where, "test": describe_labels(test[1]), "rows": rows,
                                       "tokenizer": tokenizer.get_config()}


def report_dropped_characters(tokenizer, urls):
    """Say how many characters outside string.printable the character tokeniser drops."""
    from minidl.data import CharTokenizer

    chars = tokenizer if isinstance(tokenizer, CharTokenizer) else getattr(tokenizer, "parts", {}).get("chars")
    if chars is None:
        return
    _, unknown = chars.tokenize(urls)
    if unknown.sum():
        print(f"dropped {int(unknown.sum())} characters outside string.printable in {int((unknown > 0).sum())} URLs")


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


def save_trained(output, model, tokenizer_config, record):
    """Write the model with its tokeniser's settings and how it was trained, or say it was
    not kept."""
    from minidl.io import save

    if output is None:
        print("the model was not saved (give --output FILE to keep it)")
        return
    save(output, model, extra={"tokenizer": tokenizer_config, **record})
    print(f"saved the model to {output}")


def write_training_plots(folder, history, model, test, arch):
    from minidl.train import predict
    from minidl.train.plots import plot_history, plot_roc

    plot_history(dict(history), folder / "history.png", title=arch)
    plot_roc(test[1], predict(model, test[0]).reshape(-1), folder / "roc.png", label=arch, log_fpr=True)
    print(f"wrote {folder / 'history.png'} and {folder / 'roc.png'}")


# ----------------------------------------------------------------------- evaluate
def recorded_test_part(extra, model_path):
    """(urls, labels, where) of the held-out test part the model file records: the
    training run's data, limit and split, repeated."""
    run = extra.get("run")
    if run is None:
        raise UserError(f"--model {model_path}: the file records no training split "
                        "(it was written by an older minidl train); give --data instead of --split test")
    recorded = argparse.Namespace(**run)
    urls, labels, where = load_labelled_urls(recorded)
    indices = np.arange(len(urls))
    _, _, (test_rows, _) = split_data(recorded, urls, indices, labels)
    expected = extra.get("rows", {}).get("test")
    if expected is not None and len(test_rows) != expected:
        raise UserError(f"--split test: {where} gives {len(test_rows)} test rows, the model was tested on {expected}; "
                        "the data has changed since training")
    return [urls[i] for i in test_rows], labels[test_rows], f"{where}, the model's test part ({run['split']} split)"


def command_evaluate(args):
    from minidl.train import evaluate

    model, tokenizer, extra = load_model_file(args.model)
    if args.split == "test":
        if args.data:
            raise UsageError("--split test scores the data the model was trained on; leave out --data")
    elif not args.data:
        raise UsageError("give --data (a CSV or a registered data set), or --split test for the model's own "
                         "held-out test part")

    def read():
        if args.split == "test":
            urls, labels, where = recorded_test_part(extra, args.model)
        else:
            urls, labels, where = load_labelled_urls(args)
            if extra.get("data_path") == where:
                print(f"note: {where} is the data the model was trained on, so these rows include its training "
                      "rows; --split test scores its held-out test part alone", file=sys.stderr)
        return (tokenizer.encode(urls), labels), f"{where}: {describe_labels(labels)}"

    threshold, source = decision_threshold(args, extra)
    (x, labels), found = on_rank_zero(read, (None, None))
    scores = evaluate(model, x, labels, batch_size=args.batch_size, threshold=threshold, distributed="auto")
    print(found)
    print(f"malicious above {threshold:.6g} ({source})")
    print(format_scores(scores))
    return 0


# ------------------------------------------------------------------------ predict
#: Columns of the tabular prediction formats.
PREDICTION_FIELDS = ("probability", "verdict", "url", "note")


def looks_like_url(url):
    """A URL as the data hold them: no spaces, and a host with a dot in it."""
    normalized = normalize_url(url)
    return not re.search(r"\s", normalized) and "." in url_host(normalized)


def prediction_rows(urls, probabilities, threshold):
    """One dict per URL: probability (None when unscorable), verdict, url, note."""
    rows = []
    for url, probability in zip(urls, probabilities):
        if np.isnan(probability):
            rows.append({"probability": None, "verdict": "unscorable", "url": url,
                         "note": "no character the model reads"})
            continue
        note = "" if looks_like_url(url) else "does not look like a URL"
        verdict = "malicious" if probability > threshold else "benign"
        rows.append({"probability": float(probability), "verdict": verdict, "url": url, "note": note})
    return rows


def write_predictions(rows, form, stream, header=True):
    """Print the rows: text (probability, verdict, URL, a note in brackets), tsv or csv
    (with a header row unless `header` is False: a later chunk) or json (one object per
    line)."""
    if form == "json":
        for row in rows:
            stream.write(json.dumps(row) + "\n")
        return
    shown = [dict(row, probability="" if row["probability"] is None else f"{row['probability']:.4f}")
             for row in rows]
    if form == "text":
        for row in shown:
            note = f"\t({row['note']})" if row["note"] else ""
            stream.write(f"{row['probability'] or '-'}\t{row['verdict']}\t{row['url']}{note}\n")
        return
    writer = csv.DictWriter(stream, fieldnames=PREDICTION_FIELDS, delimiter="\t" if form == "tsv" else ",",
                            lineterminator="\n")
    if header:
        writer.writeheader()
    writer.writerows(shown)


def command_predict(args):
    from minidl.distributed import resolve_group

    if not args.urls and not args.file:
        raise UsageError("no URLs given: pass them as arguments, or with --file (one per line, '-' for stdin)")
    model, tokenizer, extra = load_model_file(args.model)
    threshold, _ = decision_threshold(args, extra)
    group = resolve_group("auto")
    chunks = itertools.chain([list(args.urls)] if args.urls else [],
                             url_chunks(args.file, args.chunk_size) if args.file else [])
    start, count, scorable = time.perf_counter(), 0, 0
    for urls, probabilities in scored_chunks(model, tokenizer, chunks, args.batch_size, group,
                                             patient=args.file == "-"):
        write_predictions(prediction_rows(urls, probabilities, threshold), args.format, sys.stdout,
                          header=count == 0)
        count += len(urls)
        scorable += int(np.count_nonzero(~np.isnan(probabilities)))
    if group is not None and not group.is_root:  # it scored its blocks; rank 0 writes and reports
        return 0
    if count == 0:
        raise UserError(f"no URLs given: --file {args.file} holds no non-empty line")
    if args.file:
        seconds = time.perf_counter() - start
        ranks = f" on {group.size} ranks" if group is not None else ""
        print(f"scored {count:,} URLs in {seconds:.1f} s ({count / seconds:,.0f} URLs/s{ranks})", file=sys.stderr)
    if scorable == 0:
        raise UserError(f"nothing to score: {'the input has' if count == 1 else f'none of the {count} inputs has'}"
                        " a character the model reads")
    return 0


# ----------------------------------------------------------------------- ensemble
def command_ensemble(args):
    from minidl.models.ensemble import MeanEnsemble
    from minidl.train import evaluate

    if len(args.model) < 2:
        raise UsageError("give two or more --model files to join")
    output = output_file(args.output, "--output")
    members = [load_model_file(path) for path in args.model]
    model = MeanEnsemble([member for member, _, _ in members])
    tokenizer = model.make_tokenizer_from([member_tokenizer for _, member_tokenizer, _ in members])
    print(f"ensemble of {', '.join(extra.get('arch', '?') for _, _, extra in members)}: "
          f"{model.count_params():,} parameters")
    threshold, validation = 0.5, None
    if args.data:
        urls, labels, where = load_labelled_urls(args)
        _, validation, test = split_data(args, urls, np.arange(len(urls)), labels)
        x = tokenizer.encode(urls)
        validation = None if validation is None else (x[validation[0]], validation[1])
        rows = 0 if validation is None else len(validation[1])
        threshold = calibrated_threshold(args.target_fpr, model, validation, rows)
        scores = evaluate(model, x[test[0]], test[1], distributed="auto", threshold=threshold)
        print(f"test set of {where} ({describe_labels(test[1])}), malicious above {threshold:.6g}:")
        print(format_scores(scores))
    else:
        print("no --data: the decision threshold stays 0.5 (give the members' data to calibrate it)")
    if launch_rank() > 0:
        return 0
    save_trained(output, model, tokenizer.get_config(),
                 {"arch": "mean_ensemble", "members": [str(path) for path in args.model], "threshold": threshold,
                  "target_fpr": args.target_fpr if validation else None})
    return 0


# ------------------------------------------------------------------------ summary
def describe_training(extra):
    """What a model file records about its training, as lines of text."""
    run = extra.get("run")
    if run is None:
        return []
    rows = extra.get("rows", {})
    lines = [f"trained on: {extra.get('data_path', run['data'])}, {run['split']} split (seed {run['seed']}): "
             + ", ".join(f"{part} {count}" for part, count in rows.items() if count),
             f"training: recipe {run['recipe']}, {extra.get('epochs_run')} epochs"
             + (f" (best {extra['best_epoch'] + 1}, restored)" if extra.get("best_epoch") is not None else "")
             + f", batch {run['batch_size']}, Adam lr {run['lr']}, max_len {run['max_len']}, truncating "
             + run["truncating"]]
    scores = extra.get("test_scores", {})
    if scores:
        lines.append("test scores: " + ", ".join(f"{name} {scores[name]:.4f}" for name in SCORES if name in scores))
    return lines


def command_summary(args):
    from minidl.models import build_model, print_layers_dims, summary

    if args.model and args.arch:
        raise UsageError("give --arch (an architecture) or --model (a saved model), not both")
    if args.model:
        given = [f"--{name.replace('_', '-')}" for name in SIZE_OPTIONS if getattr(args, name, None) is not None]
        if given:
            raise UsageError(f"{given[0]} does not apply to --model: a saved model has its sizes")
        model, _, extra = load_model_file(args.model)
    elif args.arch:
        model = build_model(args.arch, **accepted_settings(args.arch, max_vocab_len=args.vocab_size),
                            **model_sizes(args, args.arch))
        extra = {}
    else:
        raise UsageError("give --arch (and sizes) or --model")
    summary(model)
    if args.dims:
        print_layers_dims(model)
    for line in describe_training(extra):
        print(line)
    return 0


# -------------------------------------------------------------------------- embed
def command_embed(args):
    from minidl.data import CharTokenizer
    from minidl.models import character_labels, plot_embedding, train_cbow

    output = output_file(args.output, "--output")
    plot = output_file(args.plot, "--plot")
    if plot:
        require_matplotlib("--plot")
    if args.data is not None and (args.data == "-" or Path(args.data).suffix.lower() == ".txt"):
        urls = [normalize_url(url) for url in read_url_lines(args.data, "--data")][:args.limit]
        print(f"data: {args.data}: {len(urls)} URLs")
    else:
        urls, labels, where = load_labelled_urls(args)
        print(f"data: {where}: {describe_labels(labels)}")
    tokenizer = CharTokenizer()
    sequences, _ = tokenizer.tokenize(urls)
    matrix = train_cbow(sequences, tokenizer.vocab_size, dim=args.dim, window=args.window, epochs=args.epochs,
                        batch_size=args.batch_size, lr=args.lr, seed=args.seed, max_pairs=args.max_pairs,
                        verbose=True)
    np.save(output, matrix)
    print(f"saved the {matrix.shape[0]} x {matrix.shape[1]} embedding matrix to {output} "
          f"(use it with `minidl train --embedding-init {output} --emb-dim {args.dim}`)")
    if plot:
        plot_embedding(matrix, character_labels(tokenizer), plot)
        print(f"wrote {plot}")
    return 0


# ------------------------------------------------------------------- import-keras
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
                    "weights (model.save_weights; needs h5py: pip install -e \".[keras]\") and write a "
                    "minidl model file with the 2017 notebook's tokeniser, for predict, evaluate and "
                    "summary. Lambda layers are never executed: map each to a reduction over time "
                    "with --lambda.")
    parser.add_argument("--config", required=True, help="the model's JSON file")
    parser.add_argument("--weights", help="its HDF5 weights (default: none, minidl's initial weights)")
    parser.add_argument("--output", required=True, help="where to write the minidl model file")
    parser.add_argument("--lambda", dest="lambdas", type=lambda_mapping, action="append", metavar="NAME=REDUCTION",
                        help="treat the Lambda layer(s) NAME (comma-separated) as a reduction over the time "
                             "axis: sum, mean or max (the 2017 notebook's conv_fully: lambda_1,lambda_2,lambda_3,"
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
    if source != "-" and Path(source).is_dir():
        raise UserError(f"{option} {source}: is a directory, not a file of URLs")
    if source != "-" and not Path(source).is_file():
        raise UserError(f"{option} {source}: no such file")
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
    """(urls, probabilities) for each chunk of URLs, in input order, NaN for a URL with
    no character the model reads. With a process
    group rank 0 reads the chunks and gives each rank one contiguous block of every
    chunk to score; the results come back to rank 0, the only rank that yields.
    patient: the other ranks wait for rank 0's next chunk without the watchdog (stdin)."""
    from minidl.distributed import block
    from minidl.train import predict

    def score(urls):
        """The URLs' probabilities; NaN for those with no character the model reads."""
        x = tokenizer.encode([normalize_url(url) for url in urls])
        probabilities = np.full(len(urls), np.nan)
        scorable = (x != 0).any(axis=1)  # id 0 is padding: a row of zeros holds nothing to read
        if scorable.any():
            probabilities[scorable] = predict(model, x[scorable], batch_size=batch_size).reshape(-1)
        return probabilities

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
def add_data_options(parser, default_help=f"default: {DEFAULT_DATA}, the 4,000-URL sample inside minidl"):
    parser.add_argument("--data",
                        help="a CSV file (or a folder holding one) or a registered data set name, such as "
                             f"url-iscx2016 ({default_help}); URLs lose a scheme and a leading www. as in "
                             "the data sets")
    parser.add_argument("--url-column", help="the URL column (default: url, or the data set's)")
    parser.add_argument("--label-column", help="the 0/1 label column (default: isMalicious, or the data set's)")
    parser.add_argument("--bad-rows", choices=("raise", "skip"), default="raise",
                        help="stop at a malformed row (raise, the default) or skip it and count it")
    parser.add_argument("--limit", type=positive_int, metavar="N",
                        help="use a seeded random subset of N rows (quick runs)")
    parser.add_argument("--seed", type=int, default=33,
                        help="random seed of the subset, the split and the initial weights (default 33, the "
                             "2017 notebook's random_state)")


def add_size_options(parser, recipe_sets_max_len=False):
    sizes = parser.add_argument_group("model sizes (default: each architecture's own)")
    sizes.add_argument("--max-len", type=positive_int,
                       help="characters per URL (default: the recipe's, 200 for best, 75 for source)"
                       if recipe_sets_max_len else "characters per URL (default 75)")
    sizes.add_argument("--emb-dim", type=positive_int, help="embedding dimension (default 32)")
    sizes.add_argument("--lstm-units", type=positive_int, help="LSTM units (simple_lstm, lstm_conv; default 32)")
    sizes.add_argument("--filters", type=positive_int,
                       help="convolution filters (lstm_conv, conv_fully: default 256; conv_max: 128)")
    sizes.add_argument("--kernel-size", type=positive_int, help="convolution width (lstm_conv; default 5)")
    sizes.add_argument("--pool-size", type=positive_int, help="max-pooling size (lstm_conv; default 4)")
    sizes.add_argument("--kernel-sizes", type=int_list,
                       help="branch widths (conv_fully, conv_max; default 2,3,4,5)")
    sizes.add_argument("--hidden-units", type=int_list,
                       help="hidden layer sizes (conv_fully; default 1024,1024; conv_max has none)")
    sizes.add_argument("--pooling", choices=list(POOLINGS),
                       help="each branch's reduction over time (default: conv_fully sum, conv_max max)")


def add_runtime_options(parser, default):
    """--threads and --device: on the main parser with their defaults, and on each
    command with `default` argparse.SUPPRESS, so that they may come after its name."""
    parser.add_argument("--threads", type=positive_int, metavar="N", default=default,
                        help="CPU threads minidl uses (default: the idle cores, every core on an idle machine)")
    parser.add_argument("--device", choices=backend.DEVICES, default=default,
                        help="where to compute (default: cpu, or $MINIDL_DEVICE); cuda needs CuPy and a GPU "
                             "(pip install -e \".[gpu]\")")
    return parser


def add_target_fpr_option(parser):
    parser.add_argument("--target-fpr", type=probability, default=1e-3,
                        help="choose the decision threshold on the validation part so that at most this fraction "
                             "of its benign URLs is called malicious, and store it in the model file for predict "
                             "and evaluate (default 1e-3; without a validation part the threshold is 0.5)")


def add_threshold_option(parser):
    parser.add_argument("--threshold", type=probability,
                        help="probability above which a URL is called malicious (default: the threshold `minidl "
                             "train --target-fpr` stored in the model file, else 0.5)")


def recipe_help(name, describe=str):
    """'(default: conv_max in the best recipe, simple_lstm in source)' for option `name`."""
    values = ", ".join(f"{describe(recipe[name])} in {recipe_name}" for recipe_name, recipe in RECIPES.items())
    return f"(default: the recipe's: {values})"


def add_train_parser(commands, runtime):
    train = commands.add_parser(
        "train", parents=[runtime], help="train a URL model on labelled URLs",
        description="Train a URL model, report its test metrics, save it. The defaults are the best recipe "
                    "measured in docs/url_quality.md; --recipe source gives the 2017 notebook's settings.")
    train.add_argument("--recipe", choices=list(RECIPES), default=DEFAULT_RECIPE,
                       help="the training defaults: best (conv_max, max_len 200, truncating post, lr 1e-3, "
                            "batch 64, host split, 10 %% validation, early stopping after 2 epochs on val_auc, "
                            "16 epochs; the default) or source (the 2017 notebook's: simple_lstm, max_len 75, "
                            "truncating pre, lr 1e-4, batch 32, random split, 5 epochs); options given "
                            "override it")
    train.add_argument("--arch", choices=list(ARCHITECTURES), help=f"architecture {recipe_help('arch')}")
    add_data_options(train)
    add_size_options(train, recipe_sets_max_len=True)
    train.add_argument("--truncating", choices=("pre", "post"),
                       help="cut long URLs at the start (pre: keep the last --max-len characters) or at the end "
                            f"(post: keep the host) {recipe_help('truncating')}")
    train.add_argument("--epochs", type=positive_int, help=f"epochs at most {recipe_help('epochs')}")
    train.add_argument("--batch-size", type=positive_int, help=f"batch size {recipe_help('batch_size')}")
    train.add_argument("--lr", type=positive_number, help=f"Adam's learning rate {recipe_help('lr')}")
    train.add_argument("--split", choices=("host", "random", "stratified"),
                       help="how the test (and validation) part is drawn: host (no host in two parts), random, "
                            f"or stratified (random, keeping the class proportions) {recipe_help('split')}")
    train.add_argument("--test-size", type=open_fraction,
                       help=f"test fraction of the data {recipe_help('test_size')}")
    train.add_argument("--validation-split", type=fraction,
                       help="fraction of the training part held out for validation, 0 for none "
                            f"{recipe_help('validation_split')}")
    train.add_argument("--early-stopping", type=nonnegative_int, metavar="PATIENCE",
                       help="stop after PATIENCE epochs without a better --monitor value and keep the best "
                            f"epoch's weights; 0 trains every epoch {recipe_help('early_stopping')}")
    train.add_argument("--monitor", type=metric_name,
                       help=f"the metric early stopping watches, as the progress bar names it: "
                            f"{', '.join(monitor_names())} {recipe_help('monitor')}")
    train.add_argument("--class-weight", choices=("balanced",),
                       help="weight each class by n / (2 * its count), for unbalanced data (default: none)")
    train.add_argument("--embedding-init", help="a .npy matrix from `minidl embed` to start the embedding from")
    add_target_fpr_option(train)
    train.add_argument("--output", help="write the trained model to this file (default: not saved); "
                                        "missing folders are made")
    train.add_argument("--plots",
                       help="write training curves and the ROC curve (PNG) into this folder; needs matplotlib "
                            f"({PLOT_INSTALL})")
    train.add_argument("--csv-log", metavar="FILE", help="append one CSV row of metrics per epoch to FILE")
    train.add_argument("--checkpoint", metavar="DIR",
                       help="save the run's state into DIR after every epoch (last.mdl, and best.mdl for early "
                            "stopping), so --resume can continue it")
    train.add_argument("--resume", action="store_true",
                       help="continue the run saved in --checkpoint DIR where it stopped (same options; "
                            "--epochs may grow)")
    train.add_argument("--verbose", type=int, choices=(0, 1, 2), default=1,
                       help="0 silent, 1 progress bar (default), 2 one line per epoch")
    train.set_defaults(run=command_train)


def add_evaluate_parser(commands, runtime):
    evaluate = commands.add_parser(
        "evaluate", parents=[runtime], help="metrics of a saved model on labelled URLs",
        description="Print a saved model's metrics on labelled URLs: --data, or the model's own held-out test "
                    "part (--split test).")
    evaluate.add_argument("--model", required=True, help="a model file written by `minidl train`")
    add_data_options(evaluate, default_help="needed unless --split test")
    evaluate.add_argument("--split", choices=("all", "test"), default="all",
                          help="all: every row of --data (the default); test: the test part recorded in the "
                               "model file, drawn again from its training data")
    add_threshold_option(evaluate)
    evaluate.add_argument("--batch-size", type=positive_int, default=256, help="batch size (default 256)")
    evaluate.set_defaults(run=command_evaluate)


def add_predict_parser(commands, runtime):
    predict = commands.add_parser(
        "predict", parents=[runtime], help="score URLs with a saved model",
        description="Print the probability and the verdict for each URL, in input order; a --file is "
                    "streamed in chunks, and the throughput is reported on stderr. An input with no character the "
                    "model reads is marked unscorable (exit status 1 when no input is scorable); text that "
                    "does not look like a URL is scored and flagged.")
    predict.add_argument("--model", required=True, help="a model file written by `minidl train`")
    predict.add_argument("urls", nargs="*", metavar="URL", help="URLs to score")
    predict.add_argument("--file", help="a file with one URL per line ('-' for stdin)")
    add_threshold_option(predict)
    predict.add_argument("--format", choices=("text", "tsv", "csv", "json"), default="text",
                         help="text: probability, verdict, URL per line (the default); tsv and csv: the same "
                              "with a note column and a header row; json: one object per line")
    predict.add_argument("--batch-size", type=positive_int, default=1024, help="batch size (default 1024)")
    predict.add_argument("--chunk-size", type=positive_int, default=CHUNK_URLS, metavar="URLS",
                         help=f"URLs of --file read, scored and written at a time (default {CHUNK_URLS}): memory "
                              "grows with it, not with the file's length")
    predict.set_defaults(run=command_predict)


def add_ensemble_parser(commands, runtime):
    ensemble = commands.add_parser(
        "ensemble", parents=[runtime], help="join trained models into one that averages their probabilities",
        description="Write one model file that scores a URL with the mean probability of the given models (each "
                    "keeps its tokeniser). With --data and the split the models were trained with, it chooses its "
                    "decision threshold on their validation part and reports its test metrics.")
    ensemble.add_argument("--model", action="append", required=True, help="a model file (give two or more)")
    ensemble.add_argument("--output", required=True, help="where to write the ensemble; missing folders are made")
    add_data_options(ensemble, default_help="optional: without it the threshold stays 0.5")
    ensemble.add_argument("--split", choices=("host", "random", "stratified"), default=RECIPES[DEFAULT_RECIPE]["split"],
                          help="the members' split (default: the best recipe's, host)")
    ensemble.add_argument("--test-size", type=open_fraction, default=RECIPES[DEFAULT_RECIPE]["test_size"],
                          help="the members' test fraction (default: the best recipe's)")
    ensemble.add_argument("--validation-split", type=fraction, default=RECIPES[DEFAULT_RECIPE]["validation_split"],
                          help="the members' validation fraction (default: the best recipe's)")
    add_target_fpr_option(ensemble)
    ensemble.set_defaults(run=command_ensemble)


def add_summary_parser(commands, runtime):
    summary = commands.add_parser(
        "summary", parents=[runtime], help="print a model's layers, shapes and parameter counts",
        description="Print a Keras-like summary of an architecture, or of a saved model with how it was trained.")
    summary.add_argument("--arch", choices=list(ARCHITECTURES), help="an architecture, built with the sizes below")
    summary.add_argument("--model", help="a saved model file instead")
    summary.add_argument("--vocab-size", type=positive_int, default=101,
                         help="embedding rows (default 101, the tokeniser's ids 0-100; the 2017 notebook's Keras models have 100)")
    add_size_options(summary)
    summary.add_argument("--dims", action="store_true",
                         help="also print each layer's input and output shape (as the 2017 notebook's print_layers_dims)")
    summary.set_defaults(run=command_summary)


def add_embed_parser(commands, runtime):
    embed = commands.add_parser(
        "embed", parents=[runtime], help="pre-train character embeddings (word2vec CBOW)",
        description="Train CBOW character embeddings on URLs (labelled URLs as for train, or a .txt file or '-' "
                    "with one URL per line); write the matrix (.npy) and a 2D PCA plot of the characters.")
    add_data_options(embed)
    embed.add_argument("--window", type=positive_int, default=2, help="context characters on each side (default 2)")
    embed.add_argument("--dim", type=positive_int, default=32, help="embedding dimension (default 32)")
    embed.add_argument("--epochs", type=positive_int, default=5, help="passes over the data (default 5)")
    embed.add_argument("--batch-size", type=positive_int, default=512, help="batch size (default 512)")
    embed.add_argument("--lr", type=positive_number, default=1e-2, help="Adam's learning rate (default 1e-2)")
    embed.add_argument("--max-pairs", type=positive_int,
                       help="train on a random subset of N (context, character) pairs (default: all)")
    embed.add_argument("--output", required=True, help="where to write the matrix (.npy); missing folders are made")
    embed.add_argument("--plot", help=f"where to write the PCA plot of the characters (.png; needs {PLOT_INSTALL})")
    embed.set_defaults(run=command_embed)


def build_parser():
    parser = Parser(prog=PROGRAM, description="Featureless malicious-URL detection with minidl.")
    parser.add_argument("--version", action="version", version=f"{PROGRAM} {__version__}")
    add_runtime_options(parser, default=None)
    runtime = add_runtime_options(Parser(add_help=False), default=argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in (add_train_parser, add_evaluate_parser, add_predict_parser, add_ensemble_parser, add_summary_parser,
                add_embed_parser):
        add(commands, runtime)
    add_import_keras_command(commands)
    return parser


# --------------------------------------------------------------------------- main
def selected_device(args):
    """The device to compute on, from --device or $MINIDL_DEVICE; a CUDA request on a
    machine without CuPy or a GPU names the setting that asked for it."""
    requested, source = args.device, "--device"
    if requested is None:
        requested, source = os.environ.get("MINIDL_DEVICE", "cpu"), "MINIDL_DEVICE"
    try:
        name = backend.check_device(requested)
        if name == "cuda":
            backend.cupy_module()
    except (ValueError, RuntimeError) as error:
        raise UserError(f"{source}={requested}: {error}") from None
    return name


@contextlib.contextmanager
def warnings_as_lines(command):
    """Python warnings as one line each, `minidl train: warning: ...`."""
    def show(message, category, filename, lineno, file=None, line=None):
        print(f"{PROGRAM} {command}: warning: {message}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = show  # catch_warnings puts the original back
        yield


def main(argv=None):
    """Run the command line; returns the exit status (0 ok, 1 bad input, 2 bad usage)."""
    args = build_parser().parse_args(argv)
    try:
        device = selected_device(args)
        if args.threads is not None:
            set_num_threads(args.threads)
        if launch_rank() > 0:  # under mpiexec rank 0 alone prints results; errors still reach stderr
            sys.stdout = open(os.devnull, "w", encoding="utf-8")
        with warnings_as_lines(args.command), backend.device(device), kernel_messages():
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
        return BAD_USAGE if isinstance(error, UsageError) else BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
