"""DGA detection and DGA family classification with Woodbridge et al.'s (2016) LSTM:
Embedding(128) -> LSTM(128) -> Dropout(0.5) -> Dense(1, sigmoid), and the same with a
softmax over the families (legitimate domains as one more class).

    OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python examples/dga.py

Data (--data-dir, else $MINIDL_DATA_DIR, else ../shared/data next to the repository):
- DGA side: --sample / 2 domains of --dga-set (default dga-andrewaeva, 97 % DGA, so it is
  sampled), spread evenly over its families (a family smaller than its share gives all it has);
- legitimate side: the other half, drawn from domains-alexa100k;
- names: lower-cased, the top-level domain removed (--keep-tld keeps it: in these lists
  the TLD tells the sources apart more than the algorithms do);
- split 70/10/20 train/validation/test, stratified by family; the vocabulary is the
  training names' characters (+ padding and an out-of-vocabulary id) and the length cap
  the --percentile (99th) of their lengths, names padded and cut in front.
Prints and writes under --out (default runs/dga/): the binary model's ROC AUC and
detection rate per family (roc.png, history_binary.png), the family model's accuracy and
per-family precision/recall (confusion_matrix.png, history_family.png), the binary
model's ROC AUC on the other DGA set (cross-set, names seen in training removed;
roc_cross.png) and metrics.json.

OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1: see examples/botnet.py (small matrices in
the recurrent loop; threads cost more than they gain on a shared 2-core machine).
"""
import argparse
import functools
import json
import os
from pathlib import Path

import numpy as np

import minidl
from minidl import optim
from minidl.data import CharTokenizer, fetch, load_text_csv, train_val_test_split
from minidl.models.dga import dga_lstm, domain_name
from minidl.train import evaluate, fit, metrics, predict
from minidl.train.plots import plot_confusion_matrix, plot_history, plot_roc

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = REPO.parent / "shared" / "data"
DGA_SETS = {"andrewaeva": "dga-andrewaeva", "chrmor": "dga-chrmor-sample"}
LEGIT = "legit"
#: how each set names its legitimate rows
LEGIT_FAMILIES = ("legit", "alexa")


def load_families(registered, data_dir):
    """(domains, family names (n,) as a NumPy string array) of a registered domain set."""
    domains, codes, report = load_text_csv(fetch(registered, data_dir=data_dir), "domain", "family", classes=None)
    return domains, np.array(report.classes)[codes]


def even_sample(groups, total, rng):
    """Indices of `total` rows spread as evenly as possible over the distinct `groups`:
    each group gets an equal share, a group smaller than its share gives all its rows
    and the rest is shared among the others."""
    names = np.unique(groups)
    members = {name: rng.permutation(np.flatnonzero(groups == name)) for name in names}
    quota, left = {}, int(total)
    for position, name in enumerate(sorted(names, key=lambda n: len(members[n]))):
        quota[name] = min(len(members[name]), left // (len(names) - position))
        left -= quota[name]
    return np.sort(np.concatenate([members[name][: quota[name]] for name in names]))


def assemble(args, rng):
    """(names, family names, binary labels) of the sampled data set."""
    domains, families = load_families(DGA_SETS[args.dga_set], args.data_dir)
    is_dga = ~np.isin(families, LEGIT_FAMILIES)
    dga_rows = np.flatnonzero(is_dga)[even_sample(families[is_dga], args.sample // 2, rng)]
    alexa, _ = load_families("domains-alexa100k", args.data_dir)
    names = [domain_name(domains[i], args.keep_tld) for i in dga_rows]
    taken = set(names)
    legit = [name for name in (domain_name(d, args.keep_tld) for d in alexa) if name not in taken]
    legit_rows = rng.choice(len(legit), size=args.sample - len(dga_rows), replace=False)
    names += [legit[i] for i in legit_rows]
    family = np.concatenate([families[dga_rows], np.full(len(legit_rows), LEGIT)])
    return names, family, (family != LEGIT).astype(np.int64)


def cross_set(args, seen_names):
    """The other DGA set (all its rows) as an independent test: (names, families, labels),
    names the training data holds left out."""
    other = next(name for name in DGA_SETS if name != args.dga_set)
    domains, families = load_families(DGA_SETS[other], args.data_dir)
    names = [domain_name(d, args.keep_tld) for d in domains]
    keep = np.array([name not in seen_names for name in names])
    families = np.where(np.isin(families, LEGIT_FAMILIES), LEGIT, families)[keep]
    return other, [n for n, k in zip(names, keep) if k], families, (families != LEGIT).astype(np.int64)


def detection_by_family(families, predicted):
    """{family: fraction predicted DGA} (for `legit` the false-positive rate)."""
    return {str(name): float(np.mean(predicted[families == name])) for name in np.unique(families)}


def train(model, x, y, val, args):
    return fit(model, x, y, epochs=args.epochs, batch_size=args.batch_size,
               optimizer=functools.partial(optim.Adam, lr=args.lr), validation_data=val, verbose=args.verbose)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--dga-set", choices=sorted(DGA_SETS), default="andrewaeva",
                        help="the DGA data set to train on (the other one tests the model too)")
    parser.add_argument("--sample", type=int, default=20000, help="domains in all: half DGA, half Alexa")
    parser.add_argument("--keep-tld", action="store_true", help="keep the top-level domain in the names")
    parser.add_argument("--percentile", type=float, default=99.0, help="length cap: this percentile of lengths")
    parser.add_argument("--embedding-dim", type=int, default=128, help="character embedding dimension")
    parser.add_argument("--units", type=int, default=128, help="LSTM units")
    parser.add_argument("--epochs", type=int, default=3, help="epochs")
    parser.add_argument("--batch-size", type=int, default=128, help="batch size")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam's learning rate")
    parser.add_argument("--no-cross", action="store_true", help="skip the test on the other DGA set")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sample, the split and the initial weights")
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("MINIDL_DATA_DIR") or DEFAULT_DATA_DIR),
                        help="the folder holding the data sets ($MINIDL_DATA_DIR when set)")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "dga", help="where the figures and results go")
    parser.add_argument("--verbose", type=int, choices=(0, 1, 2), default=2,
                        help="0 silent, 1 progress bar, 2 one line per epoch")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    names, family, labels = assemble(args, rng)
    family_names = sorted(set(family.tolist()) - {LEGIT}) + [LEGIT]
    family_ids = np.array([family_names.index(name) for name in family], dtype=np.int64)
    train_rows, val_rows, test_rows = train_val_test_split(len(names), val_size=0.1, test_size=0.2,
                                                           stratify=family_ids, seed=args.seed)
    train_names = [names[i] for i in train_rows]
    lengths = np.array([len(name) for name in train_names])
    cap = int(np.ceil(np.percentile(lengths, args.percentile)))
    tokenizer = CharTokenizer.fit(train_names, max_len=cap, oov=True)
    ids = tokenizer.encode(names)
    print(f"{len(names)} domains ({labels.sum()} DGA from {DGA_SETS[args.dga_set]}, {len(labels) - labels.sum()} "
          f"Alexa); {len(family_names) - 1} families; train {len(train_rows)}, val {len(val_rows)}, "
          f"test {len(test_rows)}")
    print(f"vocabulary {len(tokenizer.vocabulary)} characters {tokenizer.vocabulary!r}; length cap = "
          f"{args.percentile:g}th percentile = {cap} (max {lengths.max()})")
    results = {"dga_set": DGA_SETS[args.dga_set], "sample": len(names), "families": family_names,
               "length_cap": cap, "keep_tld": args.keep_tld, "epochs": args.epochs,
               "train": len(train_rows), "val": len(val_rows), "test": len(test_rows)}
    figures = []

    # Binary: DGA or not.
    minidl.manual_seed(args.seed)
    binary = dga_lstm(tokenizer.vocab_size, embedding_dim=args.embedding_dim, units=args.units)
    history = train(binary, ids[train_rows], labels[train_rows], (ids[val_rows], labels[val_rows]), args)
    scores = evaluate(binary, ids[test_rows], labels[test_rows])
    probabilities = predict(binary, ids[test_rows])[:, 0]
    detection = detection_by_family(family[test_rows], probabilities > 0.5)
    figures += [plot_roc(labels[test_rows], probabilities, args.out / "roc.png", label="LSTM", log_fpr=True,
                         title=f"DGA or not: {DGA_SETS[args.dga_set]} + Alexa, test"),
                plot_history(history, args.out / "history_binary.png", metrics_shown=["loss", "accuracy", "roc_auc"])]
    results["binary"] = {key: scores[key] for key in ("accuracy", "roc_auc", "precision", "recall", "f1",
                                                       "tpr_at_fpr_1e-2", "tpr_at_fpr_1e-3", "confusion_matrix")}
    results["binary"]["detection_by_family"] = detection
    print(f"binary test: ROC AUC {scores['roc_auc']:.4f}, accuracy {scores['accuracy']:.4f}, precision "
          f"{scores['precision']:.4f}, recall {scores['recall']:.4f}, TPR at FPR 1e-2 {scores['tpr_at_fpr_1e-2']:.4f}")
    print("  fraction flagged as DGA per family: " + ", ".join(f"{k} {v:.3f}" for k, v in detection.items()))

    # Multi-class: which family (legitimate as one more class).
    minidl.manual_seed(args.seed)
    multi = dga_lstm(tokenizer.vocab_size, classes=len(family_names), embedding_dim=args.embedding_dim,
                     units=args.units)
    history = train(multi, ids[train_rows], family_ids[train_rows], (ids[val_rows], family_ids[val_rows]), args)
    scores = evaluate(multi, ids[test_rows], family_ids[test_rows])
    figures += [plot_confusion_matrix(scores["confusion_matrix"], args.out / "confusion_matrix.png",
                                      class_names=family_names, normalize=True,
                                      title=f"DGA family, test accuracy {scores['accuracy']:.3f}"),
                plot_history(history, args.out / "history_family.png", metrics_shown=["loss", "accuracy"])]
    per_family = {name: {"precision": p, "recall": r, "support": s} for name, p, r, s in
                  zip(family_names, scores["precision_per_class"], scores["recall_per_class"], scores["support"])}
    results["family"] = {"accuracy": scores["accuracy"], "macro_precision": scores["precision"],
                         "macro_recall": scores["recall"], "per_family": per_family}
    print(f"family test: accuracy {scores['accuracy']:.4f}, macro precision {scores['precision']:.4f}, "
          f"macro recall {scores['recall']:.4f}")
    print(f"  {'family':<14} precision recall support")
    for name, row in per_family.items():
        print(f"  {name:<14} {row['precision']:9.3f} {row['recall']:6.3f} {row['support']:7d}")

    # Cross-set: the binary model on the other DGA set.
    if not args.no_cross:
        seen = set(train_names) | {names[i] for i in val_rows}
        other, cross_names, cross_family, cross_labels = cross_set(args, seen)
        cross_ids = tokenizer.encode(cross_names)
        cross_probabilities = predict(binary, cross_ids)[:, 0]
        auc = metrics.roc_auc(cross_labels, cross_probabilities)
        detection = detection_by_family(cross_family, cross_probabilities > 0.5)
        figures.append(plot_roc(cross_labels, cross_probabilities, args.out / "roc_cross.png", label="LSTM",
                                title=f"trained on {args.dga_set}, tested on {other}"))
        results["cross"] = {"set": DGA_SETS[other], "rows": len(cross_names), "roc_auc": auc,
                            "accuracy": metrics.accuracy(cross_labels, (cross_probabilities > 0.5).astype(np.int64)),
                            "detection_by_family": detection}
        print(f"cross-set ({DGA_SETS[other]}, {len(cross_names)} domains): ROC AUC {auc:.4f}, accuracy "
              f"{results['cross']['accuracy']:.4f}")
        print("  fraction flagged as DGA per family: " + ", ".join(f"{k} {v:.3f}" for k, v in detection.items()))

    results["figures"] = [str(path) for path in figures]
    (args.out / "metrics.json").write_text(json.dumps(results, indent=2))
    print(f"figures and metrics.json: {args.out}/")
    return results


if __name__ == "__main__":
    main()
