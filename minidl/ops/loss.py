"""Losses. Each reduces per-sample losses with `reduction` ("mean", "sum" or "none")
and optional per-sample `weight` (class weighting for imbalanced data)."""
import numpy as np

from minidl.autograd import Function, Tensor, as_tensor
from minidl.backend import get_array_module
from minidl.ops import reduce

REDUCTIONS = ("mean", "sum", "none")


def _reduce(per_sample, weight, reduction, op_name):
    if reduction not in REDUCTIONS:
        raise ValueError(f"{op_name}: reduction must be one of {', '.join(REDUCTIONS)}, got {reduction!r}")
    if weight is not None:
        weight = as_tensor(weight, like=per_sample)
        if weight.shape != per_sample.shape:
            raise ValueError(f"{op_name}: weight has shape {weight.shape}, the losses have shape {per_sample.shape}")
        per_sample = per_sample * weight
    if reduction == "none":
        return per_sample
    return reduce.sum(per_sample) if reduction == "sum" else reduce.mean(per_sample)


def _check_targets(output, target, op_name):
    target = as_tensor(target, like=output)
    if target.shape != output.shape:
        raise ValueError(f"{op_name}: targets have shape {target.shape}, the predictions have shape {output.shape}")
    return Tensor(target.data.astype(output.dtype, copy=False))


class BinaryCrossEntropy(Function):
    """-(t log p + (1-t) log(1-p)) with p clipped to [eps, 1-eps] as Keras does, so
    log(0) never happens; d/dp = (p - t) / (p (1 - p)) inside the clip, 0 outside."""

    @staticmethod
    def forward(ctx, p, t, eps):
        clipped = np.clip(p, eps, 1 - eps)
        ctx.save(p, t, clipped)
        ctx.eps = eps
        return -(t * np.log(clipped) + (1 - t) * np.log(1 - clipped))

    @staticmethod
    def backward(ctx, grad):
        p, t, clipped = ctx.saved
        inside = (p >= ctx.eps) & (p <= 1 - ctx.eps)
        return grad * inside * (clipped - t) / (clipped * (1 - clipped)), None


class BinaryCrossEntropyWithLogits(Function):
    """max(x, 0) - x t + log(1 + e^-|x|): stable for any logit x; d/dx = sigmoid(x) - t."""

    @staticmethod
    def forward(ctx, x, t):
        ctx.save(x, t)
        return np.maximum(x, 0) - x * t + np.log1p(np.exp(-np.abs(x)))

    @staticmethod
    def backward(ctx, grad):
        x, t = ctx.saved
        xp = get_array_module(x)
        e = np.exp(-np.abs(x))
        sigmoid = xp.where(x >= 0, 1 / (1 + e), e / (1 + e))
        return grad * (sigmoid - t), None


class CrossEntropy(Function):
    """-log softmax(x)[label] per row of logits x (n, classes);
    d/dx = softmax(x) - onehot(label)."""

    @staticmethod
    def forward(ctx, x, labels):
        shifted = x - x.max(axis=-1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
        ctx.save(log_probs, labels)
        rows = get_array_module(x).arange(x.shape[0])
        return -log_probs[rows, labels]

    @staticmethod
    def backward(ctx, grad):
        log_probs, labels = ctx.saved
        xp = get_array_module(grad)
        dx = np.exp(log_probs)
        dx[xp.arange(dx.shape[0]), labels] -= 1
        return grad[:, None] * dx, None


def binary_cross_entropy(probabilities, targets, weight=None, reduction="mean", epsilon=1e-7):
    """Binary cross-entropy of probabilities (a sigmoid's output) against 0/1 targets."""
    p = as_tensor(probabilities)
    t = _check_targets(p, targets, "binary_cross_entropy")
    per_sample = BinaryCrossEntropy.apply(p, t, eps=float(epsilon))
    return _reduce(per_sample, weight, reduction, "binary_cross_entropy")


def binary_cross_entropy_with_logits(logits, targets, weight=None, reduction="mean"):
    """Binary cross-entropy of raw scores (before the sigmoid): the stable form."""
    x = as_tensor(logits)
    t = _check_targets(x, targets, "binary_cross_entropy_with_logits")
    per_sample = BinaryCrossEntropyWithLogits.apply(x, t)
    return _reduce(per_sample, weight, reduction, "binary_cross_entropy_with_logits")


def cross_entropy(logits, labels, weight=None, reduction="mean"):
    """Softmax cross-entropy of logits (n, classes) against integer labels (n,)."""
    x = as_tensor(logits)
    labels = labels.data if isinstance(labels, Tensor) else labels
    xp = get_array_module(x.data)
    labels = xp.asarray(labels)
    if x.ndim != 2:
        raise ValueError(f"cross_entropy: logits must be (batch, classes), got shape {x.shape}")
    if labels.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy: labels must be integers, got dtype {labels.dtype}")
    if labels.shape != (x.shape[0],):
        raise ValueError(f"cross_entropy: labels have shape {labels.shape}, expected ({x.shape[0]},)")
    if labels.size and (int(labels.min()) < 0 or int(labels.max()) >= x.shape[1]):
        raise ValueError(f"cross_entropy: labels must lie in [0, {x.shape[1]}), got {int(labels.min())}..{int(labels.max())}")
    per_sample = CrossEntropy.apply(x, Tensor(labels))
    return _reduce(per_sample, weight, reduction, "cross_entropy")


def mean_squared_error(predictions, targets, reduction="mean"):
    """(p - t)^2 per element, composed."""
    p = as_tensor(predictions)
    t = _check_targets(p, targets, "mean_squared_error")
    diff = p - t
    return _reduce(diff * diff, None, reduction, "mean_squared_error")


def l2_penalty(weight, factor):
    """factor * sum(w^2): Keras' l2 regulariser, added to the loss. d/dw = 2 factor w."""
    weight = as_tensor(weight)
    return reduce.sum(weight * weight) * float(factor)
