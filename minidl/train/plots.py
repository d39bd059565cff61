"""Figures as PNG files: training curves, the ROC curve, a confusion matrix.

Needs matplotlib (`pip install -e ".[plot]"`). Figures are drawn on matplotlib's Agg
canvas directly, without pyplot, so nothing here changes the user's global backend or
opens a window.
"""
import numpy as np

from minidl.train import metrics


def _figure(width=6.4, height=4.8):
    """A matplotlib Figure on an Agg canvas; a clear ImportError without matplotlib."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError('plots need matplotlib: install it with `pip install -e ".[plot]"`') from error
    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def _save(figure, path):
    figure.tight_layout()
    figure.savefig(path, format="png")
    return path


def plot_history(history, path, metrics_shown=None, title=None):
    """Training curves from `fit`'s History (or any {name: [per-epoch values]}): one
    panel per metric, training and validation ("val_" twin) together, epochs on whole
    numbers. metrics_shown: the metric names to draw (default: every training metric
    logged)."""
    return _save(history_figure(history, metrics_shown, title), path)


def history_figure(history, metrics_shown=None, title=None):
    """The figure `plot_history` saves."""
    names = metrics_shown or [name for name in history if not name.startswith("val_")]
    names = [name for name in names if name in history or f"val_{name}" in history]
    if not names:
        raise ValueError("plot_history: no metric to plot (the history is empty)")
    figure = _figure(4.0 * len(names), 3.6)
    from matplotlib.ticker import MaxNLocator  # after _figure, which says how to install matplotlib
    for position, name in enumerate(names, start=1):
        axes = figure.add_subplot(1, len(names), position)
        for key, label in ((name, "training"), (f"val_{name}", "validation")):
            if key in history:
                values = history[key]
                axes.plot(np.arange(1, len(values) + 1), values, marker="o", label=label)
        axes.set_xlabel("epoch")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))  # whole epochs, even just one
        axes.set_title(name)
        axes.grid(alpha=0.3)
        axes.legend()
    if title:
        figure.suptitle(title)
    return figure


def plot_roc(y_true, scores, path, label=None, log_fpr=False, title="ROC curve"):
    """The ROC curve of binary `scores` (larger = positive) with its AUC in the legend.
    log_fpr: a logarithmic false-positive axis, to read the TPR at FPR 1e-3."""
    fpr, tpr, _ = metrics.roc_curve(y_true, scores)
    auc = metrics.roc_auc(y_true, scores)
    figure = _figure(5.0, 4.6)
    axes = figure.add_subplot(1, 1, 1)
    name = f"{label} " if label else ""
    axes.plot(fpr, tpr, label=f"{name}AUC {auc:.4f}")
    if log_fpr:
        axes.set_xscale("log")
        # Start at the smallest false-positive rate reached: 1 / (number of negatives) at best.
        axes.set_xlim(fpr[fpr > 0].min(), 1.0)
    else:
        axes.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=0.8)
    axes.set_xlabel("false-positive rate")
    axes.set_ylabel("true-positive rate")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right")
    return _save(figure, path)


def plot_confusion_matrix(matrix, path, class_names=None, normalize=False, title="Confusion matrix"):
    """A confusion matrix (rows true, columns predicted) as a heat map with counts.
    normalize: show each row as fractions of its true class."""
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"plot_confusion_matrix: expected a square matrix, got shape {matrix.shape}")
    k = matrix.shape[0]
    names = list(class_names) if class_names is not None else [str(i) for i in range(k)]
    if len(names) != k:
        raise ValueError(f"plot_confusion_matrix: {len(names)} class names for {k} classes")
    if normalize:
        totals = matrix.sum(axis=1, keepdims=True)
        matrix = np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)
    size = min(3.0 + 0.5 * k, 16.0)
    figure = _figure(size, size)
    axes = figure.add_subplot(1, 1, 1)
    image = axes.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axes, fraction=0.046)
    axes.set_xticks(range(k), names, rotation=45, ha="right")
    axes.set_yticks(range(k), names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title)
    if k <= 30:  # numbers stay readable up to about thirty classes
        threshold = matrix.max() / 2 if matrix.size else 0
        for i in range(k):
            for j in range(k):
                text = f"{matrix[i, j]:.2f}" if normalize else f"{int(matrix[i, j])}"
                axes.text(j, i, text, ha="center", va="center", fontsize=8,
                          color="white" if matrix[i, j] > threshold else "black")
    return _save(figure, path)
