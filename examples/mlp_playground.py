"""MLP playground: train a small multi-layer perceptron on a 2D toy set and draw its
decision boundary, in the spirit of the TensorFlow Playground.

    python examples/mlp_playground.py --dataset spiral --depth 3 --width 32 --activation relu \\
        --lr 0.01 --epochs 300 --every 50

Writes `boundary_epoch<NNNN>.png` every `--every` epochs (0: only the final one) and
`history.png` under --out (default runs/mlp_playground/<dataset>/), and prints the train
and test accuracy. The points are generated here (minidl.data.toy), split 75/25
stratified; the figures show the training points as dots and the test points as crosses.
"""
import argparse
import functools
import json
from pathlib import Path

import numpy as np

import minidl
from minidl import optim
from minidl.data import train_test_split
from minidl.data.toy import TOY_SETS, make_toy
from minidl.models.mlp import HIDDEN_ACTIVATIONS, decision_surface, mlp
from minidl.train import Callback, evaluate, fit
from minidl.train.plots import plot_history

REPO = Path(__file__).resolve().parents[1]



class DefaultsHelp(argparse.ArgumentDefaultsHelpFormatter):
    """Each option's default in --help, but for a default of None, whose meaning the
    option's own text says."""

    def _get_help_string(self, action):
        return action.help if action.default is None else super()._get_help_string(action)

def plot_decision_boundary(model, x_train, y_train, x_test, y_test, path, title):
    """The model's probability of class 1 over the plane as a filled contour, the 0.5
    level as a black line, training points as dots and test points as crosses."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    xx, yy, probabilities = decision_surface(model, np.concatenate([x_train, x_test]), resolution=150)
    figure = Figure(figsize=(4.6, 4.2), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    filled = axes.contourf(xx, yy, probabilities, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.75)
    axes.contour(xx, yy, probabilities, levels=[0.5], colors="black", linewidths=1.0)
    figure.colorbar(filled, ax=axes, fraction=0.046, label="P(class 1)")
    colours = np.array(["#2166ac", "#b2182b"])
    axes.scatter(x_train[:, 0], x_train[:, 1], c=colours[y_train], s=9, edgecolors="white", linewidths=0.3)
    axes.scatter(x_test[:, 0], x_test[:, 1], c=colours[y_test], s=18, marker="x", linewidths=0.9)
    axes.set_aspect("equal")
    axes.set_title(title, fontsize=9)
    figure.tight_layout()
    figure.savefig(path, format="png")
    return path


class BoundaryEvery(Callback):
    """Writes the decision boundary after every `every`-th epoch (0: never; main draws
    the final one)."""

    def __init__(self, every, data, out, describe):
        self.every, self.data, self.out, self.describe = every, data, out, describe
        self.paths = []

    def on_epoch_end(self, epoch, logs=None):
        if self.every and (epoch + 1) % self.every == 0:
            self.paths.append(draw(self.model, self.data, self.out, epoch + 1, self.describe, logs))


def draw(model, data, out, epoch, describe, logs):
    path = out / f"boundary_epoch{epoch:04d}.png"
    title = f"{describe}\nepoch {epoch}, training accuracy {logs['accuracy']:.3f}"
    return plot_decision_boundary(model, *data, path, title)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=DefaultsHelp)
    parser.add_argument("--dataset", choices=sorted(TOY_SETS), default="spiral", help="the 2D toy data set")
    parser.add_argument("--points", type=int, default=400, help="points generated (train + test)")
    parser.add_argument("--noise", type=float, default=0.05, help="standard deviation of the jitter")
    parser.add_argument("--depth", type=int, default=3, help="hidden layers (0: logistic regression)")
    parser.add_argument("--width", type=int, default=32, help="units per hidden layer")
    parser.add_argument("--activation", choices=HIDDEN_ACTIVATIONS, default="relu",
                        help="activation of the hidden layers")
    parser.add_argument("--lr", type=float, default=0.01, help="Adam's learning rate")
    parser.add_argument("--epochs", type=int, default=300, help="epochs")
    parser.add_argument("--batch-size", type=int, default=32, help="batch size")
    parser.add_argument("--every", type=int, default=0,
                        help="write a boundary PNG every N epochs (0: only after the last epoch)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the points, the split and the initial weights")
    parser.add_argument("--out", type=Path, default=None, help="where the figures go (default runs/mlp_playground/<dataset>/)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.every < 0:
        raise SystemExit("--every must be >= 0")
    out = args.out or REPO / "runs" / "mlp_playground" / args.dataset
    out.mkdir(parents=True, exist_ok=True)
    minidl.manual_seed(args.seed)

    x, y = make_toy(args.dataset, n=args.points, noise=args.noise, seed=args.seed)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, stratify=y, seed=args.seed)
    model = mlp(depth=args.depth, width=args.width, activation=args.activation)
    layers = f"{args.depth} x {args.width} {args.activation}" if args.depth else "no hidden layer (logistic regression)"
    describe = f"{args.dataset}: {layers}, lr {args.lr}"
    data = (x_train, y_train, x_test, y_test)
    boundaries = BoundaryEvery(args.every, data, out, describe)
    history = fit(model, x_train, y_train, epochs=args.epochs, batch_size=args.batch_size,
                  optimizer=functools.partial(optim.Adam, lr=args.lr), validation_data=(x_test, y_test),
                  callbacks=[boundaries], verbose=0)
    if not boundaries.paths or boundaries.paths[-1].name != f"boundary_epoch{args.epochs:04d}.png":
        boundaries.paths.append(draw(model, data, out, args.epochs, describe, {"accuracy": history["accuracy"][-1]}))
    plot_history(history, out / "history.png", metrics_shown=["loss", "accuracy"], title=describe)

    results = {"dataset": args.dataset, "depth": args.depth, "width": args.width, "activation": args.activation,
               "lr": args.lr, "epochs": args.epochs,
               "train_accuracy": evaluate(model, x_train, y_train)["accuracy"],
               "test_accuracy": evaluate(model, x_test, y_test)["accuracy"],
               "figures": [str(path) for path in boundaries.paths] + [str(out / "history.png")]}
    (out / "metrics.json").write_text(json.dumps(results, indent=2))
    print(f"{describe}: train accuracy {results['train_accuracy']:.4f}, test accuracy {results['test_accuracy']:.4f}")
    print(f"figures: {out}/ (decision boundaries: {', '.join(path.name for path in boundaries.paths)}; history.png)")
    return results


if __name__ == "__main__":
    main()
