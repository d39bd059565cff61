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
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

import minidl
from minidl.cli import int_list
from minidl.data import CharTokenizer, load_url_csv, split_by_host, url_host
from minidl.models import ARCHITECTURES, build_model, train_cbow
from minidl.train import Callback, EarlyStopping, fit, predict
from minidl.train import metrics

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


def scores(y_true, probabilities):
    probabilities = np.asarray(probabilities).reshape(-1)
    return {
        "accuracy": metrics.accuracy(y_true, (probabilities > 0.5).astype(np.int64)),
        "roc_auc": metrics.roc_auc(y_true, probabilities),
        "tpr_at_fpr_1e-3": metrics.tpr_at_fpr(y_true, probabilities, 1e-3),
    }


def run_model(arch, data, args, seed=SEED, embedding_init=None, split_seed=SEED):
    urls_train, y_train, urls_test, y_test = data
    tokenizer = CharTokenizer(max_len=args.max_len, truncating=args.truncating)
    callbacks = [TimeBudget(args.time_budget)]
    validation = None
    if args.val_size:
        # Validation hosts come from the training part only, so early stopping never sees the test hosts.
        urls_train, urls_val, y_train, y_val = split_by_host(urls_train, y_train, test_size=args.val_size,
                                                             seed=split_seed)
        validation = (tokenizer.encode(urls_val), np.asarray(y_val))
        callbacks.append(EarlyStopping("val_roc_auc", patience=args.patience, restore_best_weights=True))
    if args.crop_copies:
        urls_train, y_train = with_cropped_copies(urls_train, np.asarray(y_train), args.crop_copies,
                                                 args.max_len, seed)
    x_train, x_test = tokenizer.encode(urls_train), tokenizer.encode(urls_test)
    sample_weight = host_weights(urls_train, args.host_weight) if args.host_weight else None
    minidl.manual_seed(seed)
    model = build_model(arch, max_len=args.max_len, max_vocab_len=tokenizer.vocab_size, embedding_init=embedding_init)
    start = time.perf_counter()
    history = fit(model, x_train, np.asarray(y_train), epochs=args.epochs, batch_size=args.batch_size,
                  optimizer=model.make_optimizer(args.lr), validation_data=validation, callbacks=callbacks,
                  class_weight=args.class_weight, sample_weight=sample_weight, verbose=2)
    probabilities = predict(model, x_test)
    seconds = time.perf_counter() - start
    return dict(scores(y_test, probabilities), epochs=len(history["loss"]), seconds=seconds, max_len=args.max_len,
                lr=args.lr, parameters=model.count_params(), val_roc_auc=history.get("val_roc_auc"),
                probabilities=np.asarray(probabilities).reshape(-1))


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


def run_baseline(data):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    urls_train, y_train, urls_test, y_test = data
    start = time.perf_counter()
    vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(1, 5), min_df=2, sublinear_tf=True)
    features = vectorizer.fit_transform(urls_train)
    classifier = LogisticRegression(C=10.0, solver="liblinear", max_iter=1000).fit(features, y_train)
    probabilities = classifier.predict_proba(vectorizer.transform(urls_test))[:, 1]
    seconds = time.perf_counter() - start
    return dict(scores(y_test, probabilities), epochs=None, seconds=seconds, parameters=features.shape[1] + 1)


def markdown(results, settings):
    splits = ", ".join(str(seed) for seed in settings["split_seeds"])
    lines = [f"URL quality bar: host split 75/25 (seed {splits}), limit {settings['limit'] or 'all'} rows per set, "
             f"up to {settings['epochs']} epochs, batch {settings['batch_size']}, Adam lr {settings['lr']}, "
             f"time budget {settings['time_budget'] or 'none'} s per model, max_len {settings['max_len']} "
             f"(truncating {settings['truncating']}), host-split validation {settings['val_size'] or 'none'} "
             f"(patience {settings['patience']}), class weight {settings['class_weight'] or 'none'}."
             + "".join(f" {arch}: {name} {value}." for arch, name, value in settings["override"]), "",
             "| data set | split | model | train / test URLs | test accuracy | ROC AUC | TPR @ FPR 1e-3 | epochs "
             "| wall time (s) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for row in results:
        lines.append(f"| {row['dataset']} | {row['split']} | {row['model']} | {row['train']} / {row['test']} "
                     f"| {row['accuracy']:.4f} "
                     f"| {row['roc_auc']:.4f} | {row['tpr_at_fpr_1e-3']:.4f} | {row['epochs'] or '-'} "
                     f"| {row['seconds']:.0f} |")
    if len(settings["split_seeds"]) > 1:
        lines += ["", split_summary(results)]
    return "\n".join(lines)


def split_summary(results):
    """Per data set and model, the ROC AUC over the host splits: mean, standard
    deviation, range, and on how many splits it is at or above the baseline's."""
    baseline = {(row["dataset"], row["split"]): row["roc_auc"] for row in results if row["model"] == BASELINE}
    lines = ["| data set | model | splits | mean ROC AUC | sd | min | max | splits at or above the baseline |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    groups = {}
    for row in results:
        groups.setdefault((row["dataset"], row["model"]), []).append(row)
    for (dataset, model), rows in groups.items():
        auc = np.array([row["roc_auc"] for row in rows])
        compared = [row["roc_auc"] >= baseline[dataset, row["split"]] for row in rows
                    if (dataset, row["split"]) in baseline]
        versus = "-" if model == BASELINE or not compared else f"{sum(compared)} of {len(compared)}"
        spread = auc.std(ddof=1) if len(rows) > 1 else 0.0
        lines.append(f"| {dataset} | {model} | {len(rows)} | {auc.mean():.5f} | {spread:.5f} "
                     f"| {auc.min():.5f} | {auc.max():.5f} | {versus} |")
    return "\n".join(lines)


def run_split(name, split_seed, args):
    """The baseline and every model (once per weight seed, then the seeds' mean) on one
    host split of data set `name`: yields (row, test probabilities or None)."""
    data = load(args.data_dir, name, args.limit, split_seed)
    sizes = {"dataset": name, "split": split_seed, "train": len(data[1]), "test": len(data[3])}
    print(f"{name}: train {sizes['train']} URLs, test {sizes['test']} (host split, seed {split_seed})", flush=True)
    if args.baseline:
        yield dict(sizes, model=BASELINE, **run_baseline(data)), None
    embedding_init = initial_embedding(data[0], args)
    for arch in args.archs.split(","):
        members, seconds = [], 0.0
        for seed in args.seeds:
            row = dict(sizes, model=arch if len(args.seeds) == 1 else f"{arch}, seed {seed}",
                       **run_model(arch, data, settings_for(arch, args), seed, embedding_init, split_seed))
            members.append(row.pop("probabilities"))
            seconds += row["seconds"]
            yield row, members[-1]
        if len(members) > 1:
            # The seeds' mean probability: one prediction from models that differ only in their initial weights.
            yield dict(sizes, model=f"{arch}, mean of {len(members)} seeds",
                       **scores(data[3], np.mean(members, axis=0)), epochs=None, seconds=seconds), None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--archs", default=",".join(ARCHITECTURES))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
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
    parser.add_argument("--out", default="runs/url_quality")
    args = parser.parse_args(argv)

    settings = {key: value for key, value in vars(args).items()}
    settings.update(python=platform.python_version(), numpy=np.__version__,
                    machine=platform.processor() or platform.machine())
    results, probabilities = [], {}
    for name in args.datasets.split(","):
        for split_seed in args.split_seeds:
            prefix = name if len(args.split_seeds) == 1 else f"{name}, split {split_seed}"
            for row, member in run_split(name, split_seed, args):
                print(row, flush=True)
                results.append(row)
                if member is not None:
                    probabilities[f"{prefix}: {row['model']}"] = member
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
