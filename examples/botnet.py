"""Botnet or normal, from Stratosphere behavioural letter strings: an LSTM and a GRU
(Torres et al. 2016) on CTU-13 (harpomaxx/deepseq) and on Slips' RNN data set.

    OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python examples/botnet.py

For each data set:
- vocabulary: the letters of the training strings (`CharTokenizer.fit`), with an
  out-of-vocabulary id for letters first seen later;
- length cap: the --percentile (95th) of the training strings' lengths; longer strings
  keep their first letters (what a detector sees first), shorter ones are padded in front;
- imbalance: class_weight="balanced" (each class's loss weighted n / (2 n_class));
- held-out subclasses: about 20 % of each class's rows, whole subclasses (CTU-13's
  `subclass`; Slips' `label` without its run number), never seen in training, as Torres
  et al.'s test on an unseen botnet; the rest split 70/10/20 train/validation/test,
  stratified.
Prints accuracy, ROC AUC, precision/recall (botnet = positive class) on the seen-subclass
test and on the held-out subclasses, and the detection rate of each held-out subclass;
writes under --out (default runs/botnet/): lengths_<set>.png, roc_<set>_<cell>_<part>.png,
history_<set>_<cell>.png and metrics.json. Data: --data-dir, else $MINIDL_DATA_DIR, else
../shared/data next to the repository.

OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1: the recurrent loop multiplies small matrices,
where BLAS and Numba threads cost far more in synchronisation than they gain, above all
on a busy machine (about 20x slower with the defaults on a loaded 2-core box).
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
from minidl.models.botnet import behaviour_classifier, held_out_subclass_split, subclass_of
from minidl.train import evaluate, fit, predict
from minidl.train.plots import plot_history, plot_roc

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = REPO.parent / "shared" / "data"

#: data set -> (registry name, the column naming each row's subclass)
DATASETS = {"ctu13": ("botnet-ctu13-deepseq", "subclass"), "slips": ("botnet-slips-rnn", "label")}


def load_behaviour(name, data_dir):
    """(strings, 0/1 labels, subclass names) of data set `name` (a key of DATASETS)."""
    registered, subclass_column = DATASETS[name]
    path = fetch(registered, data_dir=data_dir)
    texts, labels, _ = load_text_csv(path, "state", "isBotnet")
    _, codes, report = load_text_csv(path, "state", subclass_column, classes=None)
    subclasses = np.array([subclass_of(report.classes[code]) for code in codes])
    return texts, labels, subclasses


def plot_lengths(lengths, cap, path, title):
    """Histogram of string lengths on a log axis, the cap marked."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5.0, 3.4), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    axes.hist(lengths, bins=np.logspace(0, np.log10(lengths.max() + 1), 40), color="#4477aa")
    axes.axvline(cap, color="#cc3311", label=f"cap {cap} ({np.mean(lengths > cap):.1%} of strings cut)")
    axes.set_xscale("log")
    axes.set_xlabel("letters per connection")
    axes.set_ylabel("connections")
    axes.set_title(title, fontsize=9)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, format="png")
    return path


def detection_by_subclass(labels, predicted, subclasses):
    """{subclass: (rows, fraction classified as its true class)}, largest first."""
    result = {}
    for subclass in np.unique(subclasses):
        rows = subclasses == subclass
        result[str(subclass)] = (int(rows.sum()), float(np.mean(predicted[rows] == labels[rows])))
    return dict(sorted(result.items(), key=lambda item: -item[1][0]))


def scores_of(scores):
    """The scalar metrics worth printing and keeping."""
    keys = ("accuracy", "roc_auc", "precision", "recall", "f1", "confusion_matrix")
    return {key: scores[key] for key in keys}


def run_dataset(name, args, out):
    texts, labels, subclasses = load_behaviour(name, args.data_dir)
    seen, held_out = held_out_subclass_split(labels, subclasses, test_size=args.held_out, seed=args.seed)
    train, val, test = train_val_test_split(seen, val_size=0.1, test_size=0.2, stratify=labels[seen],
                                            seed=args.seed)
    train_texts = [texts[i] for i in train]
    lengths = np.array([len(texts[i]) for i in train])
    cap = int(np.ceil(np.percentile(lengths, args.percentile)))
    tokenizer = CharTokenizer.fit(train_texts, max_len=cap, oov=True, truncating="post")
    ids = tokenizer.encode(texts)
    balance = np.bincount(labels[train], minlength=2)
    print(f"\n== {name}: {len(texts)} connections, {len(np.unique(subclasses))} subclasses; "
          f"train {len(train)} ({balance[1]} botnet / {balance[0]} normal), val {len(val)}, "
          f"test {len(test)}, held-out subclasses {len(held_out)} rows")
    print(f"vocabulary: {len(tokenizer.vocabulary)} letters {tokenizer.vocabulary!r} (+ padding, OOV); "
          f"length cap = {args.percentile:g}th percentile of training lengths = {cap} "
          f"(median {np.median(lengths):g}, max {lengths.max()}; {np.mean(lengths > cap):.1%} cut)")
    figures = [str(plot_lengths(lengths, cap, out / f"lengths_{name}.png", f"{name}: training string lengths"))]

    held_names = sorted(set(subclasses[held_out]))
    result = {"rows": len(texts), "train": len(train), "val": len(val), "test": len(test),
              "held_out_rows": len(held_out), "held_out_subclasses": held_names,
              "train_balance": {"botnet": int(balance[1]), "normal": int(balance[0])},
              "vocabulary": tokenizer.vocabulary, "length_cap": cap, "length_percentile": args.percentile,
              "class_weight": args.class_weight, "figures": figures, "models": {}}
    class_weight = None if args.class_weight == "none" else args.class_weight
    for cell in args.cells:
        minidl.manual_seed(args.seed)
        model = behaviour_classifier(tokenizer.vocab_size, cell=cell, embedding_dim=args.embedding_dim,
                                     units=args.units)
        history = fit(model, ids[train], labels[train], epochs=args.epochs, batch_size=args.batch_size,
                      optimizer=functools.partial(optim.Adam, lr=args.lr), validation_data=(ids[val], labels[val]),
                      class_weight=class_weight, verbose=args.verbose)
        parts = {"test": test, "held_out": held_out}
        model_result = {}
        for part, rows in parts.items():
            scores = evaluate(model, ids[rows], labels[rows])
            model_result[part] = scores_of(scores)
            probabilities = predict(model, ids[rows])[:, 0]
            figures.append(str(plot_roc(labels[rows], probabilities, out / f"roc_{name}_{cell}_{part}.png",
                                        label=cell.upper(), title=f"{name} {cell.upper()}: {part.replace('_', '-')}")))
            if part == "held_out":
                predicted = (probabilities > 0.5).astype(np.int64)
                model_result["held_out_by_subclass"] = detection_by_subclass(labels[rows], predicted, subclasses[rows])
            print(f"{name} {cell.upper():4} {part:9} accuracy {scores['accuracy']:.4f}  "
                  f"ROC AUC {scores['roc_auc']:.4f}  precision {scores['precision']:.4f}  recall {scores['recall']:.4f}  "
                  f"confusion [[tn, fp], [fn, tp]] {scores['confusion_matrix']}")
        figures.append(str(plot_history(history, out / f"history_{name}_{cell}.png",
                                        metrics_shown=["loss", "accuracy", "roc_auc"], title=f"{name} {cell.upper()}")))
        result["models"][cell] = model_result
    print(f"{name} held-out subclasses, fraction classified correctly ({', '.join(c.upper() for c in args.cells)}):")
    for subclass in result["models"][args.cells[0]]["held_out_by_subclass"]:
        rows = result["models"][args.cells[0]]["held_out_by_subclass"][subclass][0]
        rates = "  ".join(f"{result['models'][cell]['held_out_by_subclass'][subclass][1]:.3f}" for cell in args.cells)
        print(f"  {subclass:<55} {rows:5d} rows  {rates}")
    return result


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--datasets", nargs="+", choices=sorted(DATASETS), default=["ctu13", "slips"],
                        help="the letter-string data sets to train on")
    parser.add_argument("--cells", nargs="+", choices=("lstm", "gru"), default=["lstm", "gru"],
                        help="the recurrent cells to compare")
    parser.add_argument("--percentile", type=float, default=95.0, help="length cap: this percentile of lengths")
    parser.add_argument("--held-out", type=float, default=0.2, help="fraction of each class held out by subclass")
    parser.add_argument("--class-weight", choices=("balanced", "none"), default="balanced",
                        help="weight each class's loss by n / (2 n_class), or not")
    parser.add_argument("--embedding-dim", type=int, default=32, help="letter embedding dimension")
    parser.add_argument("--units", type=int, default=64, help="units of the LSTM or GRU")
    parser.add_argument("--epochs", type=int, default=5, help="epochs per model")
    parser.add_argument("--batch-size", type=int, default=64, help="batch size")
    parser.add_argument("--lr", type=float, default=3e-3, help="Adam's learning rate")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split, the initial weights and the shuffling")
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("MINIDL_DATA_DIR") or DEFAULT_DATA_DIR),
                        help="the folder holding the data sets ($MINIDL_DATA_DIR when set)")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "botnet", help="where the figures and results go")
    parser.add_argument("--verbose", type=int, choices=(0, 1, 2), default=2,
                        help="0 silent, 1 progress bar, 2 one line per epoch")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    results = {name: run_dataset(name, args, args.out) for name in args.datasets}
    (args.out / "metrics.json").write_text(json.dumps(results, indent=2))
    print(f"\nfigures and metrics.json: {args.out}/")
    return results


if __name__ == "__main__":
    main()
