"""Issue 4's quality bar: the URL models (the source's three and conv_max) against a
character n-gram TF-IDF + logistic regression baseline, on the two URL sets of the shared data.

    OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python -m benchmarks.url_quality \\
        --epochs 4 --batch-size 64 --lr 1e-3 --time-budget 180 --out runs/url_quality

(the run reported for issue 4: about 25 minutes on 2 shared CPU cores, where one thread
per library was much faster than two).

For each data set (`url-bahnsen-phishing40k`, `url-iscx2016` binary, under --data-dir,
default ../shared/data): a seeded random subset of --limit rows (all rows without it),
split by host 75/25 (no host in both parts; `minidl.data.split_by_host`, seed 33, or
each of --split-seeds in turn, with a second table of every model's ROC AUC over the splits);
then each model trains on the training part and is scored on the test part: accuracy,
ROC AUC, TPR at FPR 1e-3 (minidl.train.metrics for every row, the baseline included),
epochs run and wall time (training and scoring). The models are at their default
sizes (the source's: emb_dim 32; max_len is --max-len), with Adam at --lr (the source's 1e-4 needs many more
epochs than a short budget allows, so the default here is 1e-3) and batch size
--batch-size. --time-budget stops a model's training after the epoch that crosses it.
--max-len and --truncating set the tokeniser (the source: 75, "pre", which keeps a long
URL's end and so drops its host; "post" keeps the host). --val-size holds out that
fraction of the training part, again split by host, and stops on its ROC AUC
(EarlyStopping, --patience, best weights restored); the test part is never seen.
Experiments on top: --seeds trains each model once per initial-weight seed and scores
their mean probability too; --embedding-init or --cbow-window starts the embedding from
given or CBOW-trained vectors; --host-weight and --crop-copies reweight or augment the
training URLs (see their --help); --override gives one architecture its own max_len, lr,
epochs, batch size, patience, truncation or budget (conv_max reads longer URLs).
Writes <out>.json (every number and the exact settings), <out>.md (the table) and
<out>.probabilities.npz (each model's test probabilities, in the split's order).
The best recipe found for issue 4 and its numbers: docs/url_quality.md.

The baseline (scikit-learn, a benchmark-only dependency): TfidfVectorizer(analyzer="char",
ngram_range=(1, 5), min_df=2, sublinear_tf=True) + LogisticRegression(C=10, liblinear).
"""
import argparse
import inspect
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

import minidl
from minidl.cli.options import int_list
from minidl.data import CharTokenizer, load_url_csv, split_by_host, url_host
from minidl.models import ARCHITECTURES, build_model, train_cbow
from minidl.train import Callback, EarlyStopping, fit, metrics, predict

DATASETS = ("url-bahnsen-phishing40k", "url-iscx2016")
SEED = 33
BASELINE = "tfidf+logreg"


class TimeBudget(Callback):
    """Stop training after the epoch in which `seconds` have passed."""

    def __init__(self, seconds):
        self.seconds = seconds

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if self.seconds and time.perf_counter() - self.start > self.seconds:
            self.model.stop_training = True


def load(data_dir, name, limit, split_seed=SEED):
    urls, labels, _ = load_url_csv(Path(data_dir) / name / "urls.csv")
    if limit and limit < len(urls):
        keep = np.sort(np.random.default_rng(SEED).choice(len(urls), limit, replace=False))
        urls, labels = [urls[i] for i in keep], labels[keep]
    urls_train, urls_test, y_train, y_test = split_by_host(urls, labels, test_size=0.25, seed=split_seed)
    return urls_train, np.asarray(y_train), urls_test, np.asarray(y_test)


def scores(y_true, probabilities, threshold=0.5):
    """The test metrics of one model: accuracy at 0.5, ROC AUC, TPR at FPR 1e-3 and 1e-2,
    and at `threshold` (the one chosen on the validation part) accuracy, FPR and TPR."""
    probabilities = np.asarray(probabilities).reshape(-1)
    y_true = np.asarray(y_true)
    called = probabilities > threshold
    return {
        "accuracy": metrics.accuracy(y_true, (probabilities > 0.5).astype(np.int64)),
        "roc_auc": metrics.roc_auc(y_true, probabilities),
        "tpr_at_fpr_1e-3": metrics.tpr_at_fpr(y_true, probabilities, 1e-3),
        "tpr_at_fpr_1e-2": metrics.tpr_at_fpr(y_true, probabilities, 1e-2),
        "threshold": float(threshold),
        "accuracy_at_threshold": metrics.accuracy(y_true, called.astype(np.int64)),
        "fpr_at_threshold": float(called[y_true == 0].mean()),
        "tpr_at_threshold": float(called[y_true == 1].mean()),
    }


def threshold_for(validation, probabilities, target_fpr):
    """The decision threshold chosen on the validation part (0.5 without one), as
    `minidl train --target-fpr` chooses it."""
    if validation is None:
        return 0.5
    return metrics.threshold_at_fpr(validation[1], np.asarray(probabilities).reshape(-1), target_fpr)


def model_settings(arch, args, embedding_init):
    """The constructor settings the runner gives `arch`: max_len, the character
    vocabulary and the initial embedding, where the architecture has them, and its
    --model-setting values."""
    accepted = inspect.signature(ARCHITECTURES[arch]).parameters
    settings = {"max_len": args.max_len, "max_vocab_len": CharTokenizer().vocab_size, "embedding_init": embedding_init}
    settings = {name: value for name, value in settings.items() if name in accepted and value is not None}
    return dict(settings, **{name: value for target, name, value in args.model_setting if target == arch})


def parse_model_setting(text):
    """'ngram_linear:weighting="sublinear"' -> ('ngram_linear', 'weighting', 'sublinear'):
    a constructor argument of one architecture, its value JSON, for argparse."""
    arch, _, setting = text.partition(":")
    name, _, value = setting.partition("=")
    if arch not in ARCHITECTURES or name not in inspect.signature(ARCHITECTURES[arch]).parameters:
        raise argparse.ArgumentTypeError(f"expected ARCH:ARGUMENT=JSON with ARGUMENT one of ARCH's constructor "
                                         f"arguments, got {text!r}")
    try:
        return arch, name, json.loads(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: {value!r} is not a JSON value") from None


def run_model(arch, data, args, seed=SEED, embedding_init=None, split_seed=SEED, cross=None):
    """Train `arch` on the training part (a tenth of its hosts held out for early
    stopping and the threshold, with --val-size) and score the test part, and with
    `cross` (URLs, labels of another data set) those too."""
    urls_train, y_train, urls_test, y_test = data
    callbacks = [TimeBudget(args.time_budget)]
    urls_val = None
    if args.val_size:
        # Validation hosts come from the training part only, so early stopping never sees the test hosts.
        urls_train, urls_val, y_train, y_val = split_by_host(urls_train, y_train, test_size=args.val_size,
                                                             seed=split_seed)
        callbacks.append(EarlyStopping("val_roc_auc", patience=args.patience, restore_best_weights=True))
    if args.crop_copies:
        urls_train, y_train = with_cropped_copies(urls_train, np.asarray(y_train), args.crop_copies,
                                                 args.max_len, seed)
    sample_weight = host_weights(urls_train, args.host_weight) if args.host_weight else None
    minidl.manual_seed(seed)
    model = build_model(arch, **model_settings(arch, args, embedding_init))
    # The tokeniser sees the training URLs only (URLNet's words are counted there).
    tokenizer = model.make_tokenizer(urls_train, truncating=args.truncating)
    x_train, x_test = tokenizer.encode(urls_train), tokenizer.encode(urls_test)
    validation = None if urls_val is None else (tokenizer.encode(urls_val), np.asarray(y_val))
    start = time.perf_counter()
    history = fit(model, x_train, np.asarray(y_train), epochs=args.epochs, batch_size=args.batch_size,
                  optimizer=model.make_optimizer(*([] if args.lr is None else [args.lr])), validation_data=validation,
                  callbacks=callbacks, class_weight=args.class_weight, sample_weight=sample_weight, verbose=2)
    train_seconds = time.perf_counter() - start
    probabilities = predict(model, x_test).reshape(-1)
    seconds = time.perf_counter() - start
    val_probabilities = None if validation is None else predict(model, validation[0]).reshape(-1)
    threshold = threshold_for(validation, val_probabilities, args.target_fpr)
    return dict(scores(y_test, probabilities, threshold), epochs=len(history["loss"]), seconds=seconds,
                train_seconds=train_seconds, max_len=args.max_len, lr=args.lr, parameters=model.count_params(),
                val_roc_auc=history.get("val_roc_auc"), probabilities=probabilities,
                val_probabilities=val_probabilities,
                cross_probabilities=None if cross is None else predict(model, tokenizer.encode(cross[0])).reshape(-1))


#: The settings --override may change for one architecture, and their types.
OVERRIDABLE = {"max_len": int, "lr": float, "epochs": int, "batch_size": int, "patience": int,
               "truncating": str, "time_budget": float}


def parse_override(text):
    """'conv_max:max_len=100' -> ('conv_max', 'max_len', 100), for argparse."""
    arch, _, setting = text.partition(":")
    name, _, value = setting.partition("=")
    name = name.replace("-", "_")
    if arch not in ARCHITECTURES or name not in OVERRIDABLE or not value:
        raise argparse.ArgumentTypeError(f"expected ARCH:SETTING=VALUE with ARCH one of {', '.join(ARCHITECTURES)} "
                                         f"and SETTING one of {', '.join(OVERRIDABLE)}, got {text!r}")
    try:
        return arch, name, OVERRIDABLE[name](value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: {value!r} is not a valid {name}") from None


def settings_for(arch, args):
    """The run's settings with the --override values for `arch` applied."""
    changed = {name: value for target, name, value in args.override if target == arch}
    return argparse.Namespace(**dict(vars(args), **changed))


def host_weights(urls, power):
    """Each URL weighted by (URLs of its host) ** -power, scaled to mean 1: power 1 gives
    every host the same total weight, so a few large hosts do not decide the training."""
    hosts = [url_host(url) for url in urls]
    _, codes, counts = np.unique(hosts, return_inverse=True, return_counts=True)
    weights = counts[codes].astype(np.float64) ** -power
    return weights / weights.mean()


def with_cropped_copies(urls, labels, copies, max_len, seed):
    """The training URLs plus `copies` copies of each cut at a random length, up to
    max_len, that keeps its host and one more character (labels kept): the amount of
    padding then says less about the class, so the model has to read the characters."""
    rng = np.random.default_rng(seed)
    cropped = []
    for _ in range(copies):
        for url in urls:
            shortest = min(len(url_host(url)) + 1, len(url))
            cropped.append(url[:rng.integers(shortest, max(shortest, min(len(url), max_len)) + 1)])
    return list(urls) + cropped, np.concatenate([labels] * (copies + 1))


def initial_embedding(urls_train, args):
    """The --embedding-init matrix, or CBOW vectors trained on the training part's URLs
    (--cbow-window; never the test part), or None."""
    if args.embedding_init:
        return np.load(args.embedding_init, allow_pickle=False)
    if not args.cbow_window:
        return None
    tokenizer = CharTokenizer()
    sequences, _ = tokenizer.tokenize(urls_train)
    return train_cbow(sequences, tokenizer.vocab_size, window=args.cbow_window, epochs=args.cbow_epochs,
                      max_pairs=args.cbow_pairs, seed=SEED, verbose=True)


def fit_baseline(urls, labels):
    """The TF-IDF + logistic regression baseline fitted on (urls, labels): a function
    from URLs to probabilities, and its number of parameters."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(1, 5), min_df=2, sublinear_tf=True)
    features = vectorizer.fit_transform(urls)
    classifier = LogisticRegression(C=10.0, solver="liblinear", max_iter=1000).fit(features, labels)
    return (lambda texts: classifier.predict_proba(vectorizer.transform(texts))[:, 1]), features.shape[1] + 1


def run_baseline(data, args, split_seed=SEED, cross=None):
    """The baseline fitted on the whole training part, scored on the test part (and on
    `cross`). Its decision threshold needs a validation part it has not seen: with
    --val-size a second fit, on the hosts the minidl models train on, picks it on their
    validation hosts, and the threshold columns are that fit's."""
    urls_train, y_train, urls_test, y_test = data
    start = time.perf_counter()
    score, parameters = fit_baseline(urls_train, y_train)
    probabilities = score(urls_test)
    seconds = time.perf_counter() - start
    row = dict(scores(y_test, probabilities), epochs=None, seconds=seconds, train_seconds=seconds,
               parameters=parameters, probabilities=probabilities, val_probabilities=None,
               cross_probabilities=None if cross is None else score(cross[0]))
    if args.val_size:
        part_train, part_val, y_part, y_val = split_by_host(urls_train, y_train, test_size=args.val_size,
                                                            seed=split_seed)
        part_score, _ = fit_baseline(part_train, y_part)
        threshold = threshold_for((None, np.asarray(y_val)), part_score(part_val), args.target_fpr)
        at_threshold = scores(y_test, part_score(urls_test), threshold)
        row.update((key, at_threshold[key]) for key in THRESHOLD_COLUMNS)
    return row


#: The columns that depend on the decision threshold.
THRESHOLD_COLUMNS = ("threshold", "accuracy_at_threshold", "fpr_at_threshold", "tpr_at_threshold")


def markdown(results, settings):
    splits = ", ".join(str(seed) for seed in settings["split_seeds"])
    lines = [f"URL quality bar: host split 75/25 (seed {splits}), limit {settings['limit'] or 'all'} rows per set, "
             f"up to {settings['epochs']} epochs, batch {settings['batch_size']}, Adam lr "
             f"{settings['lr'] or 'the model default'}, time budget {settings['time_budget'] or 'none'} s per model, "
             f"max_len {settings['max_len']} (truncating {settings['truncating']}), host-split validation "
             f"{settings['val_size'] or 'none'} (patience {settings['patience']}), decision threshold at FPR "
             f"{settings['target_fpr']:g} on it, class weight {settings['class_weight'] or 'none'}."
             + "".join(f" {arch}: {name} {value}."
                       for arch, name, value in settings["override"] + settings["model_setting"]),
             "",
             "| data set | split | model | train / test URLs | accuracy @ 0.5 | ROC AUC | TPR @ FPR 1e-3 "
             "| TPR @ FPR 1e-2 | threshold | accuracy @ threshold | FPR @ threshold | epochs | training time (s) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for row in results:
        lines.append(f"| {row['dataset']} | {row['split']} | {row['model']} | {row['train']} / {row['test']} "
                     f"| {row['accuracy']:.4f} | {row['roc_auc']:.5f} | {row['tpr_at_fpr_1e-3']:.4f} "
                     f"| {row['tpr_at_fpr_1e-2']:.4f} | {row['threshold']:.4g} | {row['accuracy_at_threshold']:.4f} "
                     f"| {row['fpr_at_threshold']:.4f} | {row['epochs'] or '-'} | {row['train_seconds']:.0f} |")
    if len(settings["split_seeds"]) > 1:
        lines += ["", split_summary(results)]
    return "\n".join(lines)


#: The summary's columns after the ROC AUC: (heading, row key, digits).
SUMMARY_COLUMNS = (("TPR @ FPR 1e-3", "tpr_at_fpr_1e-3", 4), ("TPR @ FPR 1e-2", "tpr_at_fpr_1e-2", 4),
                   ("accuracy @ threshold", "accuracy_at_threshold", 4), ("FPR @ threshold", "fpr_at_threshold", 4),
                   ("training time (s)", "train_seconds", 0))


def split_summary(results):
    """Per data set and model, over the host splits: the ROC AUC's mean, standard
    deviation and range, the means (and standard deviations) of the other metrics, and
    on how many splits its ROC AUC and its TPR at FPR 1e-3 are at or above the
    baseline's on the same split."""
    baseline = {(row["dataset"], row["split"]): row for row in results if row["model"] == BASELINE}
    lines = ["| data set | model | splits | mean ROC AUC | sd | min | max | "
             + " | ".join(f"{heading} mean (sd)" for heading, _, _ in SUMMARY_COLUMNS)
             + " | ROC AUC at or above the baseline | TPR @ 1e-3 at or above the baseline |",
             "| --- " * (9 + len(SUMMARY_COLUMNS)) + "|"]
    groups = {}
    for row in results:
        groups.setdefault((row["dataset"], row["model"]), []).append(row)
    for (dataset, model), rows in groups.items():
        auc = np.array([row["roc_auc"] for row in rows])
        cells = [f"{len(rows)}", f"{auc.mean():.5f}", f"{_sd(auc):.5f}", f"{auc.min():.5f}", f"{auc.max():.5f}"]
        for _, key, digits in SUMMARY_COLUMNS:
            values = np.array([row[key] for row in rows], dtype=float)
            cells.append(f"{values.mean():.{digits}f} ({_sd(values):.{digits}f})")
        for key in ("roc_auc", "tpr_at_fpr_1e-3"):
            compared = [row[key] >= baseline[dataset, row["split"]][key] for row in rows
                        if (dataset, row["split"]) in baseline]
            cells.append("-" if model == BASELINE or not compared else f"{sum(compared)} of {len(compared)}")
        lines.append(f"| {dataset} | {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _sd(values):
    return values.std(ddof=1) if len(values) > 1 else 0.0


def cross_source_urls(name, args, urls_train):
    """(URLs, labels, name) of the other data set, without the URLs whose host is in
    `urls_train`: URLs from a source the model never saw."""
    (other,) = [dataset for dataset in DATASETS if dataset != name]
    urls, labels, _ = load_url_csv(Path(args.data_dir) / other / "urls.csv")
    seen = {url_host(url) for url in urls_train}
    keep = np.array([url_host(url) not in seen for url in urls])
    return [url for url, kept in zip(urls, keep) if kept], np.asarray(labels)[keep], other


def averaged(rows, model, data, cross):
    """The row of the mean probability of `rows` (models trained on the same split):
    test and cross-source probabilities averaged, the threshold chosen on their
    averaged validation probabilities."""
    probabilities = np.mean([row["probabilities"] for row in rows], axis=0)
    validation = rows[0]["validation_labels"]
    val_probabilities = None if validation is None else np.mean([row["val_probabilities"] for row in rows], axis=0)
    threshold = threshold_for(None if validation is None else (None, validation), val_probabilities,
                              rows[0]["target_fpr"])
    return dict(scores(data[3], probabilities, threshold), model=model, epochs=None,
                seconds=sum(row["seconds"] for row in rows), train_seconds=sum(row["train_seconds"] for row in rows),
                probabilities=probabilities, val_probabilities=val_probabilities, validation_labels=validation,
                target_fpr=rows[0]["target_fpr"],
                cross_probabilities=None if cross is None else np.mean([row["cross_probabilities"] for row in rows],
                                                                      axis=0))


def run_split(name, split_seed, args):
    """The baseline, every model (once per weight seed, then the seeds' mean) and every
    --ensemble on one host split of data set `name`: yields rows holding their test
    probabilities (and, with --cross-source, the other data set's)."""
    data = load(args.data_dir, name, args.limit, split_seed)
    sizes = {"dataset": name, "split": split_seed, "train": len(data[1]), "test": len(data[3])}
    print(f"{name}: train {sizes['train']} URLs, test {sizes['test']} (host split, seed {split_seed})", flush=True)
    cross = cross_source_urls(name, args, data[0]) if args.cross_source else None
    validation_labels = None
    if args.val_size:
        validation_labels = np.asarray(split_by_host(data[0], data[1], test_size=args.val_size, seed=split_seed)[3])
    if args.baseline:
        yield dict(sizes, model=BASELINE, **run_baseline(data, args, split_seed, cross), cross=cross)
    embedding_init = initial_embedding(data[0], args)
    by_arch = {}
    for arch in args.archs.split(","):
        members = []
        for seed in args.seeds:
            row = dict(sizes, model=arch if len(args.seeds) == 1 else f"{arch}, seed {seed}",
                       **run_model(arch, data, settings_for(arch, args), seed, embedding_init, split_seed, cross),
                       validation_labels=validation_labels, target_fpr=args.target_fpr, cross=cross)
            members.append(row)
            yield row
        by_arch[arch] = members[0]
        if len(members) > 1:
            # The seeds' mean probability: one prediction from models that differ only in their initial weights.
            by_arch[arch] = dict(sizes, **averaged(members, f"{arch}, mean of {len(members)} seeds", data, cross),
                                 cross=cross)
            yield by_arch[arch]
    for ensemble in args.ensemble:
        yield dict(sizes, **averaged([by_arch[arch] for arch in ensemble], "mean of " + " + ".join(ensemble), data,
                                     cross), cross=cross)


def cross_source_row(row):
    """The row of `row`'s model on the other data set's URLs, at its own threshold."""
    urls, labels, other = row["cross"]
    return dict(scores(labels, row["cross_probabilities"], row["threshold"]), dataset=f"{row['dataset']} -> {other}",
                split=row["split"], model=row["model"], train=row["train"], test=len(labels), epochs=row["epochs"],
                seconds=row["seconds"], train_seconds=row["train_seconds"])


def parse_ensemble(text):
    """'ngram_linear+wide_conv_max' -> ('ngram_linear', 'wide_conv_max'), for argparse."""
    members = tuple(text.split("+"))
    unknown = [arch for arch in members if arch not in ARCHITECTURES]
    if len(members) < 2 or unknown:
        raise argparse.ArgumentTypeError(f"expected two or more of {', '.join(ARCHITECTURES)} joined by +, "
                                         f"got {text!r}")
    return members


#: What a row holds beyond what the JSON report and the tables show.
ARRAYS = ("probabilities", "val_probabilities", "cross_probabilities", "validation_labels", "cross", "target_fpr")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--archs", default=",".join(ARCHITECTURES))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3,
                        help="Adam's learning rate (default 1e-3; 0: each architecture's own default, "
                             "e.g. ngram_linear's 1e-2)")
    parser.add_argument("--limit", type=int, default=None, help="rows per data set (a seeded random subset)")
    parser.add_argument("--time-budget", type=float, default=None, help="seconds of training per model")
    parser.add_argument("--max-len", type=int, default=75, help="characters per URL (the source's 75)")
    parser.add_argument("--truncating", choices=("pre", "post"), default="pre",
                        help="which end of a longer URL is cut: pre keeps its end (the source), post its host")
    parser.add_argument("--val-size", type=float, default=0.0,
                        help="fraction of the training part, split by host, held out for early stopping "
                             "on val_roc_auc (best weights restored); 0: none")
    parser.add_argument("--patience", type=int, default=1, help="early stopping's patience in epochs")
    parser.add_argument("--baseline", action=argparse.BooleanOptionalAction, default=True,
                        help="score the TF-IDF + logistic regression baseline too")
    parser.add_argument("--class-weight", choices=("balanced",), default=None)
    parser.add_argument("--seeds", type=int_list, default=[SEED],
                        help="initial-weight seeds, positive, comma-separated (the split's are --split-seeds); "
                             "with several, each model trains once per seed and a row scores their mean probability")
    parser.add_argument("--split-seeds", type=int_list, default=[SEED],
                        help="host-split seeds, positive, comma-separated (default 33, the source's "
                             "random_state); with several, every model and the baseline run on each split "
                             "and a second table gives each model's ROC AUC over the splits")
    parser.add_argument("--embedding-init", help="a .npy matrix from `minidl embed` to start every embedding from")
    parser.add_argument("--host-weight", type=float, default=0.0,
                        help="weight each training URL by (URLs of its host) ** -this (0: equal weights, "
                             "1: equal weight per host)")
    parser.add_argument("--crop-copies", type=int, default=0,
                        help="add this many copies of each training URL, each cut at a random length "
                             "after its host (augmentation against reading length as the class)")
    parser.add_argument("--cbow-window", type=int, default=0,
                        help="pre-train CBOW character embeddings (this context window) on the training part "
                             "and start every model's embedding from them; 0: no pre-training")
    parser.add_argument("--cbow-epochs", type=int, default=2)
    parser.add_argument("--cbow-pairs", type=int, default=1_000_000, help="(context, character) pairs sampled for CBOW")
    parser.add_argument("--override", type=parse_override, action="append", default=[], metavar="ARCH:SETTING=VALUE",
                        help="a setting for one architecture only, e.g. conv_max:max_len=100 (repeatable; "
                             f"settings: {', '.join(OVERRIDABLE)})")
    parser.add_argument("--target-fpr", type=float, default=1e-3,
                        help="each model's decision threshold is chosen on the validation part for this "
                             "false-positive rate, as `minidl train --target-fpr` does (default 1e-3)")
    parser.add_argument("--ensemble", type=parse_ensemble, action="append", default=[], metavar="ARCH+ARCH",
                        help="also score the mean probability of these architectures (repeatable)")
    parser.add_argument("--cross-source", action="store_true",
                        help="also score each model on the other data set's URLs whose hosts it never saw "
                             "(rows 'A -> B')")
    parser.add_argument("--model-setting", type=parse_model_setting, action="append", default=[],
                        metavar="ARCH:ARGUMENT=JSON",
                        help="a constructor argument for one architecture, e.g. ngram_linear:wide_l2=1e-5 or "
                             'ngram_linear:weighting=\'"sublinear"\' (repeatable)')
    parser.add_argument("--out", default="runs/url_quality")
    args = parser.parse_args(argv)
    args.lr = args.lr or None

    settings = {key: value for key, value in vars(args).items()}
    settings.update(python=platform.python_version(), numpy=np.__version__,
                    machine=platform.processor() or platform.machine())
    results, cross_results, probabilities = [], [], {}
    for name in args.datasets.split(","):
        for split_seed in args.split_seeds:
            prefix = name if len(args.split_seeds) == 1 else f"{name}, split {split_seed}"
            for row in run_split(name, split_seed, args):
                if row["model"] != BASELINE and row["epochs"] is not None:  # a trained model, not a mean
                    probabilities[f"{prefix}: {row['model']}"] = row["probabilities"]
                if row["cross"] is not None:
                    cross_results.append(cross_source_row(row))
                row = {key: value for key, value in row.items() if key not in ARRAYS}
                print(row, flush=True)
                results.append(row)
    results += cross_results
    table = markdown(results, settings)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"settings": settings, "results": results}, indent=2))
    out.with_suffix(".md").write_text(table + "\n")
    np.savez_compressed(out.with_suffix(".probabilities.npz"), **probabilities)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
