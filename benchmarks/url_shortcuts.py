"""How much of each URL set its shape gives away: the malicious rate by URL shape, and the
ROC AUC of a shape-only baseline.

    python -m benchmarks.url_shortcuts [--datasets url-bahnsen-phishing40k,...] [--out runs/shortcuts.md]

For each data set (found as the registry finds it: $MINIDL_DATA_DIR or ../shared/data):
a table of the malicious rate by bare host or path, length bin, query present, IP host and
TLD group (`minidl.data.shape.shape_table`), then a logistic regression (scikit-learn,
C=1, features standardised) on `minidl.data.shape.shape_features` alone -- lengths,
separator counts, the TLD's group, nothing about what the characters mean -- trained
on a 75/25 split by host (`split_by_host`, seed 33) and scored on the test hosts: ROC AUC
and TPR at FPR 1e-2. A model's number on the set means little unless it is well above
that baseline's. Prints one Markdown table, a column per set (written to --out too).
"""
import argparse
import sys
from pathlib import Path

import numpy as np

from minidl.data import load_dataset, split_by_host
from minidl.data.shape import SHAPES, shape_features, shape_table
from minidl.train import metrics

DATASETS = ("url-bahnsen-phishing40k", "url-iscx2016", "url-phishstorm", "url-hannousse2020")
SEED = 33


def fit_shape_baseline(urls, labels):
    """A fitted scikit-learn pipeline: standardised shape features -> logistic regression."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    model = make_pipeline(FunctionTransformer(shape_features), StandardScaler(),
                          LogisticRegression(C=1.0, max_iter=1000))
    return model.fit(list(urls), labels)


def shape_baseline_scores(urls, labels, seed=SEED):
    """{roc_auc, tpr_at_fpr_1e-2, test URLs} of the shape-only baseline on a host split."""
    urls_train, urls_test, y_train, y_test = split_by_host(urls, labels, test_size=0.25, seed=seed)
    probabilities = fit_shape_baseline(urls_train, y_train).predict_proba(list(urls_test))[:, 1]
    return {"roc_auc": metrics.roc_auc(y_test, probabilities),
            "tpr_at_fpr_1e-2": metrics.tpr_at_fpr(y_test, probabilities, 1e-2), "test": len(y_test)}


def report(sets, seed=SEED):
    """Markdown lines: one table, a row per shape value and a column per data set (its
    malicious rate and URLs), then the shape-only baseline's ROC AUC and TPR at FPR 1e-2
    per set. `sets`: {name: (urls, labels)}."""
    tables = {name: {(shape, value): (count, rate) for shape, value, count, rate in shape_table(urls, labels)}
              for name, (urls, labels) in sets.items()}
    keys = []
    for table in tables.values():
        keys += [key for key in table if key not in keys]
    keys.sort(key=lambda key: SHAPES.index(key[0]))
    lines = ["| shape | value | " + " | ".join(f"{name}: malicious (URLs)" for name in sets) + " |",
             "| --- | --- | " + " | ".join("---" for _ in sets) + " |",
             "| all | all | " + " | ".join(f"{np.mean(labels):.1%} ({len(urls):,})" for urls, labels in sets.values())
             + " |"]
    for shape, value in keys:
        cells = [tables[name].get((shape, value)) for name in sets]
        lines.append(f"| {shape} | {value} | " + " | ".join("-" if cell is None else f"{cell[1]:.1%} ({cell[0]:,})"
                                                            for cell in cells) + " |")
    scores = {name: shape_baseline_scores(urls, labels, seed) for name, (urls, labels) in sets.items()}
    lines.append(f"| shape-only baseline, host split {seed} | ROC AUC | "
                 + " | ".join(f"{scores[name]['roc_auc']:.4f}" for name in sets) + " |")
    lines.append(f"| shape-only baseline, host split {seed} | TPR @ FPR 1e-2 | "
                 + " | ".join(f"{scores[name]['tpr_at_fpr_1e-2']:.4f}" for name in sets) + " |")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.url_shortcuts", description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated registered URL sets")
    parser.add_argument("--seed", type=int, default=SEED, help="host split seed (default 33)")
    parser.add_argument("--out", type=Path, default=None, help="also write the Markdown here")
    args = parser.parse_args(argv)
    sets = {name: load_dataset(name)[:2] for name in args.datasets.split(",")}
    text = "\n".join(report(sets, args.seed))
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
