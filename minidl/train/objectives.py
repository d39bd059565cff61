"""What a model's output means, and the loss that trains it.

An `Objective` ties three decisions together so fit, evaluate and predict agree:
- the task: "binary" (one output per sample: (n,) or (n, 1), 0/1 targets) or
  "multiclass" (k >= 2 outputs per sample: (n, k), integer targets 0..k-1);
- whether the output is probabilities (a final sigmoid or softmax, Keras' default
  `from_logits=False`) or raw scores (logits);
- the loss: binary cross-entropy (`binary_cross_entropy` on probabilities, the stable
  `binary_cross_entropy_with_logits` on logits) or sparse categorical cross-entropy
  (`cross_entropy` on logits; on softmax probabilities p it is `cross_entropy(log p)`,
  since softmax(log p) = p, with p floored at 1e-7 as Keras clips it), or a callable
  `loss(output, targets) -> scalar Tensor` of the user's.

Whether a model outputs logits is read from the model: a class or instance attribute
`outputs_logits = True/False` wins; a Sequential is judged by its last layer (a final
sigmoid/softmax activation or Softmax layer means probabilities, a Dense without
activation means logits); any other model is taken to output probabilities, as in Keras.
"""
import numpy as np

from minidl import backend
from minidl.ops.loss import binary_cross_entropy, binary_cross_entropy_with_logits, cross_entropy
from minidl.ops.math import log, maximum

#: Loss names (Keras' spellings) and the task each one implies.
LOSSES = {"binary_crossentropy": "binary", "sparse_categorical_crossentropy": "multiclass"}

PROBABILITY_ACTIVATIONS = ("sigmoid", "softmax")
EPSILON = 1e-7  # Keras' clip for probabilities inside the log


def outputs_logits(model):
    """True when `model` outputs raw scores, False when it outputs probabilities
    (see the module docstring for the rule)."""
    declared = getattr(model, "outputs_logits", None)
    if declared is not None:
        return bool(declared)
    last = model
    while getattr(last, "layers", None):  # the innermost last layer of nested Sequentials
        last = last.layers[-1]
    if last is model:
        return False
    if type(last).__name__ == "Softmax":
        return False
    if hasattr(last, "activation_name"):  # Dense, Activation
        return last.activation_name not in PROBABILITY_ACTIVATIONS
    return False


def task_of_output(output_shape):
    """'binary' for outputs (n,) or (n, 1), 'multiclass' for (n, k >= 2)."""
    shape = tuple(output_shape)
    if len(shape) == 1 or (len(shape) == 2 and shape[1] == 1):
        return "binary"
    if len(shape) == 2:
        return "multiclass"
    raise ValueError(f"the model's output has shape {shape}: expected (batch,), (batch, 1) or (batch, classes)")


def sigmoid(x):
    """1 / (1 + e^-x) on a raw array, in the tanh form that cannot overflow."""
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def softmax(x):
    """Softmax over the last axis of a raw array."""
    exp = np.exp(x - x.max(axis=-1, keepdims=True))
    return exp / exp.sum(axis=-1, keepdims=True)


class Objective:
    """The task, the output's meaning and the loss of one training run.

    task: "binary" or "multiclass"; from_logits: the output is raw scores;
    loss_fn: a callable loss(output, targets) -> scalar Tensor replacing the built-in one.
    """

    def __init__(self, task, from_logits, loss_fn=None):
        if task not in ("binary", "multiclass"):
            raise ValueError(f"unknown task {task!r}: expected 'binary' or 'multiclass'")
        self.task, self.from_logits, self.loss_fn = task, bool(from_logits), loss_fn

    def __repr__(self):
        loss = getattr(self.loss_fn, "__name__", "custom") if self.loss_fn else self.loss_name
        return f"Objective(task={self.task!r}, from_logits={self.from_logits}, loss={loss!r})"

    @property
    def loss_name(self):
        return "binary_crossentropy" if self.task == "binary" else "sparse_categorical_crossentropy"

    def check_targets(self, y, num_outputs):
        """Raise a clear error when targets `y` (n,) do not suit the task."""
        y = np.asarray(y)
        if self.task == "binary":
            if y.ndim > 2 or (y.ndim == 2 and y.shape[1] != 1):
                raise ValueError(f"binary targets must have shape (n,) or (n, 1), got {y.shape}")
            if y.dtype.kind not in "biuf":
                raise TypeError(f"binary targets must be numbers, got dtype {y.dtype}")
            if self.loss_fn is None and y.size and (y.min() < 0 or y.max() > 1):
                raise ValueError(f"binary targets must lie in [0, 1], got {y.min()}..{y.max()}")
            return
        if y.ndim != 1:
            raise ValueError(f"multi-class targets must be integer labels of shape (n,), got shape {y.shape}")
        if y.dtype.kind not in "iu":
            raise TypeError(f"multi-class targets must be integer labels, got dtype {y.dtype}")
        if y.size and (y.min() < 0 or y.max() >= num_outputs):
            raise ValueError(f"multi-class labels must lie in 0..{num_outputs - 1} "
                             f"(the model has {num_outputs} outputs), got {y.min()}..{y.max()}")

    def loss(self, output, targets, weight=None):
        """The mean loss of a batch: output is the model's Tensor, targets a host array
        (n,) or (n, 1), weight an optional per-sample array (n,)."""
        xp = backend.get_array_module(output.data)
        if self.loss_fn is not None:
            return self.loss_fn(output, xp.asarray(targets))
        if weight is not None:
            weight = xp.asarray(weight, dtype=output.dtype)
        if self.task == "binary":
            targets = xp.asarray(targets, dtype=output.dtype).reshape(output.shape)
            weight = None if weight is None else weight.reshape(output.shape)
            bce = binary_cross_entropy_with_logits if self.from_logits else binary_cross_entropy
            return bce(output, targets, weight=weight)
        logits = output if self.from_logits else log(maximum(output, EPSILON))
        return cross_entropy(logits, xp.asarray(targets, dtype=np.int64), weight=weight)

    def probabilities(self, output):
        """The output as probabilities (a host array of the same shape)."""
        output = backend.to_numpy(output)
        if not self.from_logits:
            return output
        return sigmoid(output) if self.task == "binary" else softmax(output)

    def target_labels(self, y):
        """The targets as hard labels (n,) int64 (binary: y > 0.5, so soft targets work)."""
        y = np.asarray(y)
        if self.task == "binary":
            return (y.reshape(-1) > 0.5).astype(np.int64)
        return y.astype(np.int64)

    def predicted_labels(self, output):
        """Hard labels (n,) int64: binary thresholds probabilities at 0.5 (logits at 0);
        multi-class takes the arg max."""
        output = backend.to_numpy(output)
        if self.task == "binary":
            return (output.reshape(-1) > (0.0 if self.from_logits else 0.5)).astype(np.int64)
        return output.argmax(axis=-1).astype(np.int64)


def resolve_objective(loss, model, output_shape, from_logits=None):
    """The Objective for `loss` (a name in LOSSES, a callable, or None: picked from the
    output's width) on `model`, whose output has `output_shape`. `from_logits` None
    reads it from the model (`outputs_logits`)."""
    task = task_of_output(output_shape)
    loss_fn = None
    if callable(loss):
        loss_fn = loss
    elif loss is not None:
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}: choose one of {', '.join(LOSSES)}, or pass a callable")
        if LOSSES[loss] != task:
            raise ValueError(f"loss {loss!r} is for {LOSSES[loss]} outputs, but the model's output has shape "
                             f"{tuple(output_shape)} ({task}: binary models output (batch, 1), "
                             "multi-class models (batch, classes))")
    if from_logits is None:
        from_logits = outputs_logits(model)
    return Objective(task, from_logits, loss_fn)
