"""Leave one source out: train on a mix of the other URL sources, score the left-out one,
as a user scoring their own traffic would meet it; and the popular-hosts check.

    OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 OMP_NUM_THREADS=1 python -m benchmarks.loso \\
        --archs ngram_linear,conv_max --out runs/loso

For each source of the mix (`minidl.data.mix.MIXES["url-mix"]`: phishing40k, ISCX-2016,
PhishStorm, Hannousse-2020; --left-out chooses some): the scored part is the source's
host holdout (`split_by_host`, 75/25, seed 33: the 25 %); the training data is the mix
of the other three sources and the popular hosts (`minidl.data.mix.load_mix` with
`leave_out`: every host of the left-out source dropped, per (source, label) at most
--per-cell URLs, Alexa ranks 10,001-13,000 bare, with `/` and with a common path). A tenth of
the mix, split by host, is the validation part: early stopping on its ROC AUC and the
decision threshold at --target-fpr (as `minidl train` chooses it). With `--left-out
none` the mix holds all four sources and each source's own host holdout is scored
(those hosts left out of the mix), which is the "train on everything" case.

Models: the TF-IDF baseline of benchmarks/url_quality.py, each of --archs, and the mean
of the first two archs (the ensemble). Per model: ROC AUC and TPR at FPR 1e-2 and 1e-3
on the left-out source's holdout, and the popular-hosts check: the share of the 10,000
most popular hosts (Alexa ranks 1-10,000, never in training) called malicious at the
stored threshold, bare and with `/`. For a left-out set with a `type` column (ISCX-2016),
a second table scores each malicious type against all its benign URLs. Writes
<out>.json and <out>.md, prints the tables.
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks import url_quality
from minidl.data import (
    DATASETS,
    fetch,
    load_dataset,
    load_text_csv,
    split_by_host,
    url_host,
)
from minidl.data.mix import MIXES, describe_mix, load_mix, load_popular_hosts
from minidl.train import metrics

SEED = 33
CHECK_HOSTS = 10_000
#: Per-architecture settings that the measurements in docs/url_quality.md found best.
ARCH_SETTINGS = {
    "ngram_linear": {"lr": 1e-2, "epochs": 40, "patience": 3},
    "conv_max": {"lr": 1e-3, "epochs": 8, "patience": 2},
    "wide_conv_max": {"lr": 1e-3, "epochs": 8, "patience": 2},
}


def holdout(name, seed=SEED):
    """(test URLs, test labels, malicious type of each or None) of a source's 25 % host
    holdout; the type is the set's `type` column where it has one (ISCX-2016: benign,
    phishing, spam, malware)."""
    urls, labels, _ = load_dataset(name)
    if "type" in DATASETS[name].columns:
        types, _, _ = load_text_csv(fetch(name), "type", DATASETS[name].label_column)
        _, urls_test, _, y_test, _, types_test = split_by_host(urls, labels, types, test_size=0.25, seed=seed)
        return list(urls_test), np.asarray(y_test), np.asarray(types_test)
    _, urls_test, _, y_test = split_by_host(urls, labels, test_size=0.25, seed=seed)
    return list(urls_test), np.asarray(y_test), None


def type_rows(model, left_out, labels, types, probabilities):
    """ROC AUC and TPR at FPR 1e-2 of each malicious type against all the benign URLs."""
    rows = []
    for kind in sorted(set(types[labels == 1])):
        keep = (labels == 0) | (types == kind)
        rows.append({"left_out": left_out, "type": kind, "model": model, "urls": int(np.sum(types == kind)),
                     "roc_auc": metrics.roc_auc(labels[keep], probabilities[keep]),
                     "tpr_at_fpr_1e-2": metrics.tpr_at_fpr(labels[keep], probabilities[keep], 1e-2)})
    return rows


def check_urls():
    """The popular-hosts check's URLs: the top CHECK_HOSTS hosts bare, then with '/'."""
    hosts = load_popular_hosts((0, CHECK_HOSTS))
    return hosts + [f"{host}/" for host in hosts]


def popular_shares(probabilities, threshold):
    """(bare, with '/') shares of the check's hosts above the threshold."""
    called = np.asarray(probabilities) > threshold
    return float(called[:CHECK_HOSTS].mean()), float(called[CHECK_HOSTS:].mean())


def row_of(model, left_out, result, threshold, cross):
    bare, slash = popular_shares(cross, threshold)
    return {"left_out": left_out, "model": model, "roc_auc": result["roc_auc"],
            "tpr_at_fpr_1e-2": result["tpr_at_fpr_1e-2"], "tpr_at_fpr_1e-3": result["tpr_at_fpr_1e-3"],
            "threshold": threshold, "fpr_at_threshold": result["fpr_at_threshold"],
            "tpr_at_threshold": result["tpr_at_threshold"], "popular_bare": bare, "popular_slash": slash,
            "epochs": result.get("epochs"), "seconds": result.get("seconds")}


def run_fold(left_out, args, check):
    """Rows of one left-out source ('none': all four in the mix, each holdout scored)."""
    scored = MIXES["url-mix"]["sources"] if left_out == "none" else [left_out]
    tests = [holdout(name) for name in scored]
    test_urls = [url for urls, _, _ in tests for url in urls]
    test_labels = np.concatenate([labels for _, labels, _ in tests])
    if left_out == "none":
        excluded = {url_host(url) for url in test_urls}
        urls, labels, sources = load_mix(exclude_hosts=excluded, seed=args.seed)
    else:
        urls, labels, sources = load_mix(leave_out=left_out, seed=args.seed)
    print(f"== left out: {left_out}; training mix of {len(urls):,} URLs: " + "; ".join(describe_mix(labels, sources)),
          flush=True)
    data = (urls, labels, test_urls, test_labels)
    types = tests[0][2] if len(tests) == 1 else None
    rows, members, by_type = [], [], []
    start = time.perf_counter()
    result, threshold, check_probabilities = run_baseline(data, args, check)
    rows.append(row_of(url_quality.BASELINE, left_out, result, threshold, check_probabilities))
    if types is not None:
        by_type += type_rows(url_quality.BASELINE, left_out, test_labels, types, result["probabilities"])
    print(f"   baseline done in {time.perf_counter() - start:.0f} s", flush=True)
    for arch in args.archs:
        settings = url_quality.settings_for(arch, args)
        result = url_quality.run_model(arch, data, settings, split_seed=args.seed, cross=(check,))
        rows.append(row_of(arch, left_out, result, result["threshold"], result["cross_probabilities"]))
        members.append(result)
        if types is not None:
            by_type += type_rows(arch, left_out, test_labels, types, result["probabilities"])
        print(f"   {arch}: ROC AUC {result['roc_auc']:.4f}, {result['epochs']} epochs, {result['seconds']:.0f} s",
              flush=True)
    if len(members) >= 2:
        mean = {key: (members[0][key] + members[1][key]) / 2
                for key in ("probabilities", "val_probabilities", "cross_probabilities")}
        threshold = url_quality.threshold_for((None, validation_labels(data, args)), mean["val_probabilities"],
                                              args.target_fpr)
        result = url_quality.scores(test_labels, mean["probabilities"], threshold)
        rows.append(row_of(f"mean of {args.archs[0]} + {args.archs[1]}", left_out, result, threshold,
                           mean["cross_probabilities"]))
        if types is not None:
            by_type += type_rows(rows[-1]["model"], left_out, test_labels, types, mean["probabilities"])
    return rows, by_type


def validation_labels(data, args):
    """The validation part's labels, split as run_model splits it."""
    _, _, _, y_val = split_by_host(data[0], data[1], test_size=args.val_size, seed=args.seed)
    return np.asarray(y_val)


def run_baseline(data, args, check):
    """(scores, threshold, check probabilities) of the TF-IDF baseline fitted on the same
    90 % of the mix the minidl models train on, its threshold chosen on the same
    validation hosts."""
    part_train, part_val, y_part, y_val = split_by_host(data[0], data[1], test_size=args.val_size, seed=args.seed)
    score, _ = url_quality.fit_baseline(part_train, y_part)
    threshold = url_quality.threshold_for((None, np.asarray(y_val)), score(part_val), args.target_fpr)
    probabilities = score(data[2])
    return dict(url_quality.scores(data[3], probabilities, threshold), probabilities=probabilities), threshold, \
        score(check)


def markdown(rows, by_type=()):
    lines = ["| left out (scored) | model | ROC AUC | TPR @ FPR 1e-2 | TPR @ FPR 1e-3 | threshold | FPR @ threshold "
             "| top 10,000 hosts called malicious, bare | with / |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for row in rows:
        lines.append(f"| {row['left_out']} | {row['model']} | {row['roc_auc']:.4f} | {row['tpr_at_fpr_1e-2']:.4f} | "
                     f"{row['tpr_at_fpr_1e-3']:.4f} | {row['threshold']:.4g} | {row['fpr_at_threshold']:.4f} | "
                     f"{row['popular_bare']:.2%} | {row['popular_slash']:.2%} |")
    means = {}
    for row in rows:
        if row["left_out"] != "none":
            means.setdefault(row["model"], []).append(row["tpr_at_fpr_1e-2"])
    if means:
        lines += ["", "| model | mean TPR @ FPR 1e-2 over the left-out sources |", "| --- | --- |"]
        lines += [f"| {model} | {np.mean(values):.4f} ({len(values)} sources) |" for model, values in means.items()]
    if by_type:
        lines += ["", "| left out (scored) | malicious type (against every benign URL) | model | URLs | ROC AUC | "
                  "TPR @ FPR 1e-2 |", "| --- | --- | --- | --- | --- | --- |"]
        lines += [f"| {row['left_out']} | {row['type']} | {row['model']} | {row['urls']:,} | {row['roc_auc']:.4f} | "
                  f"{row['tpr_at_fpr_1e-2']:.4f} |" for row in by_type]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.loso", description=__doc__.split("\n\n")[0])
    parser.add_argument("--left-out", default=",".join(MIXES["url-mix"]["sources"]),
                        help="comma-separated sources to leave out in turn, or 'none' (train on all four)")
    parser.add_argument("--archs", default="ngram_linear,conv_max", help="minidl architectures (the first two: "
                        "the ensemble)")
    parser.add_argument("--max-len", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--val-size", type=float, default=0.1)
    parser.add_argument("--target-fpr", type=float, default=1e-3)
    parser.add_argument("--time-budget", type=float, default=None, help="seconds of training per model")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--out", default="runs/loso")
    args = parser.parse_args(argv)
    args.archs = [arch for arch in args.archs.split(",") if arch]
    # run_model's settings: the ones it reads, with each architecture's own values (ARCH_SETTINGS)
    defaults = dict(epochs=8, lr=1e-3, patience=2, truncating="post", crop_copies=0, host_weight=0.0,
                    class_weight=None, model_setting=[], override=[])
    for name, value in defaults.items():
        setattr(args, name, value)
    args.override = [(arch, name, value) for arch in args.archs for name, value in ARCH_SETTINGS.get(arch, {}).items()]
    check = check_urls()
    rows, by_type = [], []
    for left_out in args.left_out.split(","):
        fold, fold_by_type = run_fold(left_out, args, check)
        rows += fold
        by_type += fold_by_type
        table = markdown(rows, by_type)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(f"{args.out}.md").write_text(table + "\n", encoding="utf-8")
        Path(f"{args.out}.json").write_text(json.dumps({"settings": {k: v for k, v in vars(args).items()
                                                                      if k != "override"}, "rows": rows,
                                                      "by_type": by_type}, indent=1))
    print(markdown(rows, by_type))
    return 0


if __name__ == "__main__":
    sys.exit(main())
