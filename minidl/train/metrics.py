"""Classification metrics on NumPy arrays, with scikit-learn's definitions (the tests
hold them equal) and no dependency on it.

Labels are integers 0..k-1 (binary: 0 = negative, 1 = positive); scores are any real
numbers where larger means "more positive" (probabilities or logits).

    accuracy(y_true, y_pred)                        fraction of equal labels
    confusion_matrix(y_true, y_pred, num_classes)   (k, k), rows true, columns predicted
    precision_recall_f1(y_true, y_pred, average)    binary, per class or macro
    roc_curve(y_true, scores)                       fpr, tpr, thresholds
    roc_auc(y_true, scores)                         area under the ROC curve
    tpr_at_fpr(y_true, scores, max_fpr)             best TPR with FPR <= max_fpr
    threshold_at_fpr(y_true, scores, max_fpr)       the score threshold that reaches it
"""
import numpy as np

AVERAGES = ("binary", "macro", None)


# ------------------------------------------------------------------ input checks
def _labels(y, name, op):
    """`y` as a 1-D int64 array of non-negative integer labels."""
    array = np.asarray(y)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise ValueError(f"{op}: {name} must be 1-D (or (n, 1)), got shape {array.shape}")
    if array.dtype.kind == "b":
        array = array.astype(np.int64)
    if array.dtype.kind == "f":
        if not np.all(np.isfinite(array)) or not np.all(array == np.round(array)):
            raise ValueError(f"{op}: {name} must hold integer labels, got non-integer values")
    elif array.dtype.kind not in "iu":
        raise TypeError(f"{op}: {name} must hold integer labels, got dtype {array.dtype}")
    array = array.astype(np.int64)
    if array.size and array.min() < 0:
        raise ValueError(f"{op}: {name} holds the negative label {array.min()}; labels are 0..k-1")
    return array


def _label_pair(y_true, y_pred, op):
    y_true, y_pred = _labels(y_true, "y_true", op), _labels(y_pred, "y_pred", op)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"{op}: y_true has {y_true.size} labels, y_pred has {y_pred.size}")
    if y_true.size == 0:
        raise ValueError(f"{op}: no samples given")
    return y_true, y_pred


def _binary_scores(y_true, scores, op):
    """0/1 labels and float64 scores of the same length, both classes present."""
    y_true = _labels(y_true, "y_true", op)
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim == 2 and scores.shape[1] == 1:
        scores = scores[:, 0]
    if scores.shape != y_true.shape:
        raise ValueError(f"{op}: y_true has shape {y_true.shape}, scores have shape {scores.shape}")
    if y_true.size and y_true.max() > 1:
        raise ValueError(f"{op}: y_true must be 0/1, got the label {y_true.max()}")
    if not np.all(np.isfinite(scores)):
        raise ValueError(f"{op}: scores hold NaN or infinite values")
    positives = int(y_true.sum())
    if positives == 0 or positives == y_true.size:
        raise ValueError(f"{op}: y_true holds only one class, so the ROC curve is undefined")
    return y_true, scores


# ---------------------------------------------------------------- label metrics
def accuracy(y_true, y_pred):
    """Fraction of samples whose predicted label equals the true one."""
    y_true, y_pred = _label_pair(y_true, y_pred, "accuracy")
    return float(np.mean(y_true == y_pred))


def confusion_matrix(y_true, y_pred, num_classes=None):
    """(k, k) int64 counts: row = true label, column = predicted label (scikit-learn's
    layout). k = num_classes, or 1 + the largest label seen."""
    y_true, y_pred = _label_pair(y_true, y_pred, "confusion_matrix")
    seen = int(max(y_true.max(), y_pred.max())) + 1
    k = seen if num_classes is None else int(num_classes)
    if k < seen:
        raise ValueError(f"confusion_matrix: label {seen - 1} does not fit num_classes={k}")
    return np.bincount(y_true * k + y_pred, minlength=k * k).reshape(k, k)


def _safe_divide(numerator, denominator):
    """numerator / denominator, 0 where the denominator is 0 (scikit-learn's
    zero_division=0: a class never predicted has precision 0)."""
    numerator, denominator = np.asarray(numerator, float), np.asarray(denominator, float)
    out = np.zeros_like(numerator)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


def precision_recall_f1(y_true, y_pred, average="binary", num_classes=None):
    """Precision tp/(tp+fp), recall tp/(tp+fn) and F1 2tp/(2tp+fp+fn) (0 where undefined).

    average="binary": three floats for the positive class 1 (labels must be 0/1);
    average=None: three (k,) arrays, one value per class;
    average="macro": three floats, the unweighted means over the classes that occur in
        y_true or y_pred (scikit-learn's default set of labels).
    """
    if average not in AVERAGES:
        raise ValueError(f"precision_recall_f1: average must be 'binary', 'macro' or None, got {average!r}")
    if average == "binary":
        labels = _labels(y_true, "y_true", "precision_recall_f1"), _labels(y_pred, "y_pred", "precision_recall_f1")
        if any(part.size and part.max() > 1 for part in labels):
            raise ValueError("precision_recall_f1: average='binary' needs 0/1 labels; use average=None or 'macro'")
        num_classes = 2
    matrix = confusion_matrix(y_true, y_pred, num_classes)
    tp = np.diag(matrix)
    fp, fn = matrix.sum(axis=0) - tp, matrix.sum(axis=1) - tp
    precision, recall = _safe_divide(tp, tp + fp), _safe_divide(tp, tp + fn)
    f1 = _safe_divide(2 * tp, 2 * tp + fp + fn)
    if average == "binary":
        return float(precision[1]), float(recall[1]), float(f1[1])
    if average == "macro":
        present = (matrix.sum(axis=0) + matrix.sum(axis=1)) > 0
        return float(precision[present].mean()), float(recall[present].mean()), float(f1[present].mean())
    return precision, recall, f1


# ---------------------------------------------------------------- score metrics
def roc_curve(y_true, scores):
    """The ROC curve at every distinct score: (fpr, tpr, thresholds), each (m + 1,).

    Point i counts the samples with score >= thresholds[i]; tied scores enter together,
    so a tie gives one diagonal step, never an optimistic staircase. The first point is
    (0, 0) at threshold +inf, as scikit-learn's roc_curve(drop_intermediate=False).
    """
    y_true, scores = _binary_scores(y_true, scores, "roc_curve")
    order = np.argsort(-scores, kind="stable")
    sorted_scores, sorted_true = scores[order], y_true[order]
    # Index of the last sample of each group of equal scores.
    group_ends = np.r_[np.flatnonzero(np.diff(sorted_scores)), sorted_scores.size - 1]
    true_positives = np.cumsum(sorted_true)[group_ends]
    false_positives = group_ends + 1 - true_positives
    tpr = np.r_[0, true_positives] / true_positives[-1]
    fpr = np.r_[0, false_positives] / false_positives[-1]
    return fpr, tpr, np.r_[np.inf, sorted_scores[group_ends]]


def roc_auc(y_true, scores):
    """Area under the ROC curve, as the Mann-Whitney statistic: the probability that a
    random positive scores above a random negative, ties counted half.
    AUC = (sum of the positives' ranks - P (P + 1) / 2) / (P N), with tied scores given
    their average rank; equal to the trapezoidal area under `roc_curve`.

    Three of the four (positive, negative) pairs are ranked right:

    >>> roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    """
    y_true, scores = _binary_scores(y_true, scores, "roc_auc")
    _, group, counts = np.unique(scores, return_inverse=True, return_counts=True)
    # 1-based average rank of each group of equal scores: its last rank minus half its spread.
    group_rank = np.cumsum(counts) - (counts - 1) / 2.0
    ranks = group_rank[group.ravel()]
    positives = float(y_true.sum())
    negatives = float(y_true.size) - positives
    rank_sum = float(ranks[y_true == 1].sum())
    return (rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives)


def tpr_at_fpr(y_true, scores, max_fpr):
    """The largest true-positive rate among the ROC curve's operating points whose
    false-positive rate is at most `max_fpr` (no interpolation between points, so the
    rate is one a threshold actually achieves)."""
    if not 0 <= max_fpr <= 1:
        raise ValueError(f"tpr_at_fpr: max_fpr must be in [0, 1], got {max_fpr}")
    fpr, tpr, _ = roc_curve(y_true, scores)
    return float(tpr[fpr <= max_fpr].max())


def threshold_at_fpr(y_true, scores, max_fpr):
    """A decision threshold t for the rule "positive when score > t" that reaches
    `tpr_at_fpr(y_true, scores, max_fpr)` on these samples with the fewest false
    positives: the ROC curve's first operating point with that TPR, placed halfway to the
    next lower score (so new scores between the two fall on the nearer side). When no
    sample can be called positive within max_fpr, t is the highest score (nothing here
    is above it).

    The negatives score 0.1, 0.2, 0.3 and 0.9: at FPR 0 only 0.95 can be called
    positive; at FPR 0.5 both positives (0.35 and 0.95) can, at the cost of 0.9:

    >>> threshold_at_fpr([0, 0, 1, 1, 0, 0], [0.1, 0.3, 0.35, 0.95, 0.9, 0.2], 0.0)
    0.925
    >>> round(threshold_at_fpr([0, 0, 1, 1, 0, 0], [0.1, 0.3, 0.35, 0.95, 0.9, 0.2], 0.5), 6)
    0.325
    """
    if not 0 <= max_fpr <= 1:
        raise ValueError(f"threshold_at_fpr: max_fpr must be in [0, 1], got {max_fpr}")
    fpr, tpr, thresholds = roc_curve(y_true, scores)
    within = fpr <= max_fpr
    point = int(np.flatnonzero(within & (tpr == tpr[within].max()))[0])
    if point == 0:
        return float(thresholds[1])
    if point == len(thresholds) - 1:
        return float(np.nextafter(thresholds[point], -np.inf))
    return float((thresholds[point] + thresholds[point + 1]) / 2)
