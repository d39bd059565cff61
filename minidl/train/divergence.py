"""Stopping a training run whose arithmetic has stopped meaning anything.

A learning rate far too large makes the weights grow until a step overflows: NumPy
warns "overflow encountered in square" and the loss becomes inf or NaN, or stays finite
while the model has become a constant (batch normalisation dividing by an infinite
variance gives zeros). `fit` runs every step's forward, backward and update inside a
`DivergenceGuard`, which routes NumPy's floating-point errors (overflow, invalid
operation, division by zero) to itself instead of printing them, and ends training with
`TrainingDiverged` at the first step whose loss is not finite or whose arithmetic went
wrong. Keras' TerminateOnNaN looks at the loss alone and so misses the second case.
Normal training raises none of these errors (the tests train every URL model with
NumPy set to raise on them), so the guard costs no false alarms, and a step takes one
`np.errstate` more.

The error names the epoch and the step (from 1), what went wrong, and what to do: lower
the learning rate, or, when it happens before the first update, look at the inputs.
The model keeps the weights of the step that diverged (fit writes nothing itself); the
message names the last file a ModelCheckpoint wrote, the best model so far.
"""
import contextlib
import math

import numpy as np


class TrainingDiverged(FloatingPointError):
    """Training stopped at a step whose loss or arithmetic was not finite. `epoch` and
    `step` count from 1; `checkpoint` is the last file a ModelCheckpoint wrote, or None."""

    def __init__(self, message, epoch, step, checkpoint=None):
        super().__init__(message)
        self.epoch, self.step, self.checkpoint = epoch, step, checkpoint


class DivergenceGuard:
    """The divergence check of one epoch of `fit`: `watch()` around a step's arithmetic,
    then `problem(loss)` says what went wrong (None when nothing did), and
    `stop(problem, step)` raises TrainingDiverged."""

    def __init__(self, epoch, steps, optimizer, callbacks):
        self.epoch, self.steps = epoch, steps  # epoch from 0, as fit counts
        self.optimizer, self.callbacks = optimizer, callbacks
        self.error = None

    def _record(self, kind, flag):
        if self.error is None:
            self.error = kind  # NumPy's word: "overflow", "invalid value", "divide by zero"

    @contextlib.contextmanager
    def watch(self):
        """Run the block with NumPy's floating-point errors recorded, not printed."""
        self.error = None
        with np.errstate(over="call", invalid="call", divide="call", call=self._record):
            yield

    def problem(self, loss_value=None):
        """Why the step watched last diverged, or None: a loss that is not finite, or a
        floating-point error inside the step."""
        if loss_value is not None and not math.isfinite(loss_value):
            return f"the loss is {loss_value}"
        if self.error is not None:
            return f"its arithmetic went out of range ({self.error} encountered in NumPy)"
        return None

    def stop(self, problem, step, in_update=False):
        """Raise TrainingDiverged for `problem` at `step` (from 0); `in_update`: it
        happened in the optimiser's update rather than in the forward or backward pass."""
        checkpoint = next((callback.saved_paths[-1] for callback in reversed(self.callbacks)
                           if getattr(callback, "saved_paths", None)), None)
        message = f"training diverged at epoch {self.epoch + 1}, step {step + 1} of {self.steps}: {problem}; "
        if in_update or self.epoch or step:
            lr = self.optimizer.lr
            message += f"lower the learning rate (it is {lr:g}; try {lr / 10:g})"
        else:
            message += ("this is before the first update, so look at the inputs (NaN or huge values) or the initial "
                        "weights rather than the learning rate")
        message += ("; no checkpoint of the model before it diverged was written" if checkpoint is None
                    else f"; the last checkpoint written, {checkpoint}, holds the model before it diverged")
        raise TrainingDiverged(message, self.epoch + 1, step + 1, checkpoint)
