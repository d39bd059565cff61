"""Classification metrics against scikit-learn's, ties included; the plots as PNG files."""
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minidl.train import metrics

sklearn_metrics = pytest.importorskip("sklearn.metrics")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def binary_problem(seed, n=60, levels=None):
    """0/1 labels with both classes, and scores; `levels` rounds the scores so ties occur."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    y[:2] = [0, 1]
    scores = y * 0.8 + rng.normal(0, 1, n)
    if levels is not None:
        scores = np.round(scores * levels) / levels
    return y, scores


# -------------------------------------------------------------- score metrics
@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), levels=st.sampled_from([None, 1, 2, 5]))
def test_roc_auc_matches_sklearn_with_and_without_ties(seed, levels):
    y, scores = binary_problem(seed, levels=levels)
    assert metrics.roc_auc(y, scores) == pytest.approx(sklearn_metrics.roc_auc_score(y, scores), abs=1e-12)


def test_roc_auc_counts_ties_half():
    # One positive and one negative with equal scores: a coin flip.
    assert metrics.roc_auc([0, 1], [0.5, 0.5]) == 0.5
    assert metrics.roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.4, 0.9]) == pytest.approx(0.875)


@pytest.mark.parametrize("levels", [None, 2])
def test_roc_curve_matches_sklearn(levels):
    y, scores = binary_problem(3, n=80, levels=levels)
    fpr, tpr, thresholds = metrics.roc_curve(y, scores)
    want_fpr, want_tpr, want_thresholds = sklearn_metrics.roc_curve(y, scores, drop_intermediate=False)
    np.testing.assert_allclose(fpr, want_fpr)
    np.testing.assert_allclose(tpr, want_tpr)
    np.testing.assert_allclose(thresholds[1:], want_thresholds[1:])
    assert thresholds[0] == np.inf
    # The trapezoidal area under the curve is the Mann-Whitney AUC.
    assert np.trapezoid(tpr, fpr) == pytest.approx(metrics.roc_auc(y, scores))


@pytest.mark.parametrize("max_fpr", [0.0, 0.01, 0.05, 0.2, 1.0])
@pytest.mark.parametrize("levels", [None, 3])
def test_tpr_at_fpr_is_the_best_operating_point(max_fpr, levels):
    y, scores = binary_problem(7, n=300, levels=levels)
    fpr, tpr, _ = sklearn_metrics.roc_curve(y, scores, drop_intermediate=False)
    assert metrics.tpr_at_fpr(y, scores, max_fpr) == pytest.approx(tpr[fpr <= max_fpr].max())


def test_tpr_at_fpr_does_not_split_ties():
    # The top two scores tie across classes: no threshold gets the positive without the negative.
    assert metrics.tpr_at_fpr([1, 0, 1, 0], [0.9, 0.9, 0.5, 0.1], 0.0) == 0.0
    assert metrics.tpr_at_fpr([1, 0, 1, 0], [0.9, 0.9, 0.5, 0.1], 0.5) == 1.0


# Degenerate but valid inputs: one positive, every score equal, a perfect and an inverted ranking.
DEGENERATE_ROC = {
    "one_positive": ([0, 0, 1, 0, 0], [0.3, 0.1, 0.2, 0.4, 0.2]),
    "all_scores_equal": ([0, 1, 1, 0, 1], [0.5] * 5),
    "perfect": ([0, 0, 1, 1, 1], [0.1, 0.2, 0.6, 0.7, 0.9]),
    "inverted": ([1, 1, 0, 0, 0], [0.1, 0.2, 0.6, 0.7, 0.9]),
}


@pytest.mark.parametrize("y, scores", DEGENERATE_ROC.values(), ids=DEGENERATE_ROC.keys())
def test_degenerate_rankings_match_sklearn(y, scores):
    assert metrics.roc_auc(y, scores) == pytest.approx(sklearn_metrics.roc_auc_score(y, scores), abs=1e-12)
    fpr, tpr, thresholds = metrics.roc_curve(y, scores)
    want_fpr, want_tpr, want_thresholds = sklearn_metrics.roc_curve(y, scores, drop_intermediate=False)
    np.testing.assert_allclose(fpr, want_fpr)
    np.testing.assert_allclose(tpr, want_tpr)
    np.testing.assert_allclose(thresholds[1:], want_thresholds[1:])
    for max_fpr in (0.0, 0.5, 1.0):
        assert metrics.tpr_at_fpr(y, scores, max_fpr) == pytest.approx(want_tpr[want_fpr <= max_fpr].max())


def test_score_metrics_reject_bad_input():
    with pytest.raises(ValueError, match="only one class"):
        metrics.roc_auc([1, 1, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="0/1"):
        metrics.roc_curve([0, 2, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="NaN"):
        metrics.roc_auc([0, 1], [0.1, np.nan])
    with pytest.raises(ValueError, match="shape"):
        metrics.roc_auc([0, 1, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match="max_fpr"):
        metrics.tpr_at_fpr([0, 1], [0.1, 0.2], 1.5)


# -------------------------------------------------------------- label metrics
def test_accuracy_and_confusion_matrix_match_sklearn():
    rng = np.random.default_rng(0)
    y_true, y_pred = rng.integers(0, 4, 50), rng.integers(0, 4, 50)
    assert metrics.accuracy(y_true, y_pred) == pytest.approx(sklearn_metrics.accuracy_score(y_true, y_pred))
    np.testing.assert_array_equal(metrics.confusion_matrix(y_true, y_pred, num_classes=5),
                                  sklearn_metrics.confusion_matrix(y_true, y_pred, labels=range(5)))
    # (n, 1) columns and float labels are accepted as labels.
    assert metrics.accuracy(y_true[:, None], y_pred.astype(float)) == metrics.accuracy(y_true, y_pred)


def test_binary_precision_recall_f1_match_sklearn():
    rng = np.random.default_rng(1)
    y_true, y_pred = rng.integers(0, 2, 40), rng.integers(0, 2, 40)
    got = metrics.precision_recall_f1(y_true, y_pred)
    want = sklearn_metrics.precision_recall_fscore_support(y_true, y_pred, average="binary")[:3]
    np.testing.assert_allclose(got, want)


# Where precision (nothing predicted positive), recall (no positive) or both are 0/0.
ZERO_DIVISION = {
    "nothing_predicted_positive": ([0, 1, 1, 0], [0, 0, 0, 0]),
    "no_positive_in_y_true": ([0, 0, 0, 0], [0, 1, 0, 1]),
    "no_positive_anywhere": ([0, 0, 0], [0, 0, 0]),
}


@pytest.mark.parametrize("y_true, y_pred", ZERO_DIVISION.values(), ids=ZERO_DIVISION.keys())
def test_binary_zero_division_matches_sklearn(y_true, y_pred):
    got = metrics.precision_recall_f1(y_true, y_pred)
    want = sklearn_metrics.precision_recall_fscore_support(y_true, y_pred, average="binary", zero_division=0)[:3]
    np.testing.assert_allclose(got, want)


def test_macro_averages_over_the_labels_present_in_y_true_or_y_pred():
    """Label 1 occurs nowhere, label 3 only in y_pred and label 4 only in y_true: the
    macro mean is over {0, 2, 3, 4}, scikit-learn's default labels, not over 0..4."""
    y_true = np.array([0, 0, 2, 2, 4, 4, 0, 2])
    y_pred = np.array([0, 3, 2, 0, 0, 2, 0, 3])
    got = metrics.precision_recall_f1(y_true, y_pred, average="macro")
    want = sklearn_metrics.precision_recall_fscore_support(y_true, y_pred, average="macro", zero_division=0)[:3]
    np.testing.assert_allclose(got, want)
    over_every_label = [values.mean() for values in metrics.precision_recall_f1(y_true, y_pred, average=None)]
    assert not np.allclose(got, over_every_label)  # the case tells the two rules apart


def test_per_class_and_macro_match_sklearn_with_a_class_never_predicted():
    rng = np.random.default_rng(2)
    y_true = rng.integers(0, 4, 60)
    y_pred = np.where(y_true == 3, 0, rng.integers(0, 3, 60))  # class 3 is never predicted
    per_class = metrics.precision_recall_f1(y_true, y_pred, average=None, num_classes=4)
    want = sklearn_metrics.precision_recall_fscore_support(y_true, y_pred, labels=range(4), zero_division=0)[:3]
    for got_values, want_values in zip(per_class, want):
        np.testing.assert_allclose(got_values, want_values)
    macro = metrics.precision_recall_f1(y_true, y_pred, average="macro")
    want_macro = sklearn_metrics.precision_recall_fscore_support(y_true, y_pred, average="macro", zero_division=0)[:3]
    np.testing.assert_allclose(macro, want_macro)


def test_label_metrics_reject_bad_input():
    with pytest.raises(ValueError, match="labels"):
        metrics.accuracy([0, 1], [0.5, 1])
    with pytest.raises(ValueError, match="2 labels"):
        metrics.confusion_matrix([0, 1], [0, 1, 1])
    with pytest.raises(ValueError, match="num_classes"):
        metrics.confusion_matrix([0, 3], [0, 1], num_classes=2)
    with pytest.raises(ValueError, match="binary"):
        metrics.precision_recall_f1([0, 2], [0, 1])
    with pytest.raises(ValueError, match="average"):
        metrics.precision_recall_f1([0, 1], [0, 1], average="micro")


# ---------------------------------------------------------------------- plots
def test_plots_write_png_files(tmp_path):
    pytest.importorskip("matplotlib")
    from minidl.train import plots

    y, scores = binary_problem(0, n=100)
    paths = [
        plots.plot_roc(y, scores, tmp_path / "roc.png", label="model", log_fpr=True),
        plots.plot_confusion_matrix([[5, 1], [2, 7]], tmp_path / "cm.png", ["benign", "malicious"], normalize=True),
        plots.plot_history({"loss": [0.9, 0.5], "val_loss": [1.0, 0.7], "accuracy": [0.6, 0.8]}, tmp_path / "h.png"),
    ]
    for path in paths:
        assert path.read_bytes()[:8] == PNG_MAGIC


def test_plots_without_matplotlib_say_how_to_install(monkeypatch, tmp_path):
    from minidl.train import plots

    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match=r'pip install -e "\.\[plot\]"'):
        plots.plot_confusion_matrix([[1, 0], [0, 1]], tmp_path / "cm.png")


def test_a_one_epoch_history_plot_has_whole_epoch_ticks():
    pytest.importorskip("matplotlib")
    from minidl.train.plots import history_figure

    figure = history_figure({"loss": [0.5], "val_loss": [0.4]})
    figure.canvas.draw()
    axes = figure.axes[0]
    low, high = axes.get_xlim()
    shown = [tick for tick in axes.get_xticks() if low <= tick <= high]
    assert shown == [1.0]
