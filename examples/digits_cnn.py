"""A 2D CNN on scikit-learn's handwritten digits (1,797 images of 8x8 pixels, 10 classes):
[Conv2D -> ReLU -> MaxPooling2D] x 2 -> Dense, then the learned first-layer filters.

    python examples/digits_cnn.py

Split 75/25 stratified (10 % of the training part held out for validation), pixels
scaled from 0..16 to 0..1. Prints the test accuracy and per-class precision/recall and
writes, under --out (default runs/digits_cnn/): history.png, confusion_matrix.png,
filters.png (the first Conv2D's kernels) and metrics.json.
"""
import argparse
import functools
import json
from pathlib import Path

import numpy as np

import minidl
from minidl import optim
from minidl.data import train_val_test_split
from minidl.models.image import as_images, conv2d_classifier, first_layer_filters
from minidl.train import evaluate, fit
from minidl.train.plots import plot_confusion_matrix, plot_history

REPO = Path(__file__).resolve().parents[1]



class DefaultsHelp(argparse.ArgumentDefaultsHelpFormatter):
    """Each option's default in --help, but for a default of None, whose meaning the
    option's own text says."""

    def _get_help_string(self, action):
        return action.help if action.default is None else super()._get_help_string(action)

def load_digits_images():
    """(images (1797, 8, 8, 1) float32 in [0, 1], labels (1797,) int64) from scikit-learn."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as error:
        raise SystemExit("this example reads scikit-learn's digits: pip install scikit-learn") from error
    digits = load_digits()
    return as_images(digits.data / 16.0, 8, 8).astype(np.float32), digits.target.astype(np.int64)


def plot_filters(filters, path, title="First-layer filters"):
    """Each kernel (filters, kh, kw, 1) as a small grey image, the colour scale shared
    and centred on 0 so that the sign of a weight reads the same in every panel."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    count = len(filters)
    columns = min(count, 8)
    rows = -(-count // columns)
    limit = float(np.abs(filters).max())
    figure = Figure(figsize=(1.1 * columns, 1.2 * rows + 0.5), dpi=100)
    FigureCanvasAgg(figure)
    for index in range(count):
        axes = figure.add_subplot(rows, columns, index + 1)
        axes.imshow(filters[index, :, :, 0], cmap="RdBu_r", vmin=-limit, vmax=limit)
        axes.set_xticks([])
        axes.set_yticks([])
        axes.set_title(str(index), fontsize=8)
    figure.suptitle(f"{title} (red > 0 > blue, |w| <= {limit:.2f})", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, format="png")
    return path


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=DefaultsHelp)
    parser.add_argument("--filters", type=int, nargs="+", default=[16, 32], help="filters of each conv block")
    parser.add_argument("--dense-units", type=int, default=64, help="hidden Dense units (0: none)")
    parser.add_argument("--epochs", type=int, default=15, help="epochs at most (early stopping may end sooner)")
    parser.add_argument("--batch-size", type=int, default=32, help="batch size")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam's learning rate")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N images (quick runs; default: all)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split, the initial weights and the shuffling")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "digits_cnn", help="where the figures and results go")
    parser.add_argument("--verbose", type=int, choices=(0, 1, 2), default=2,
                        help="0 silent, 1 progress bar, 2 one line per epoch")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    minidl.manual_seed(args.seed)

    images, labels = load_digits_images()
    if args.limit:
        images, labels = images[: args.limit], labels[: args.limit]
    x_train, x_val, x_test, y_train, y_val, y_test = train_val_test_split(
        images, labels, val_size=0.075, test_size=0.25, stratify=labels, seed=args.seed)
    model = conv2d_classifier(input_shape=images.shape[1:], classes=10, filters=args.filters,
                              dense_units=args.dense_units)
    print(f"{len(y_train)} training, {len(y_val)} validation, {len(y_test)} test images; "
          f"{model.count_params()} parameters")
    history = fit(model, x_train, y_train, epochs=args.epochs, batch_size=args.batch_size,
                  optimizer=functools.partial(optim.Adam, lr=args.lr), validation_data=(x_val, y_val),
                  verbose=args.verbose)
    scores = evaluate(model, x_test, y_test)

    names = [str(digit) for digit in range(10)]
    figures = [plot_history(history, args.out / "history.png", metrics_shown=["loss", "accuracy"],
                            title="digits CNN"),
               plot_confusion_matrix(scores["confusion_matrix"], args.out / "confusion_matrix.png",
                                     class_names=names, title=f"digits CNN, test accuracy {scores['accuracy']:.3f}"),
               plot_filters(first_layer_filters(model), args.out / "filters.png")]
    results = {"test_accuracy": scores["accuracy"], "test_loss": scores["loss"],
               "macro_precision": scores["precision"], "macro_recall": scores["recall"],
               "precision_per_class": dict(zip(names, scores["precision_per_class"])),
               "recall_per_class": dict(zip(names, scores["recall_per_class"])),
               "epochs": args.epochs, "parameters": model.count_params(), "figures": [str(f) for f in figures]}
    (args.out / "metrics.json").write_text(json.dumps(results, indent=2))
    print(f"test accuracy {scores['accuracy']:.4f}, macro precision {scores['precision']:.4f}, "
          f"macro recall {scores['recall']:.4f}")
    print("digit      " + " ".join(f"{name:>5}" for name in names))
    for what in ("precision", "recall"):
        print(f"{what:<10} " + " ".join(f"{value:5.3f}" for value in scores[f"{what}_per_class"]))
    print(f"figures: {args.out}/")
    return results


if __name__ == "__main__":
    main()
