"""Callbacks: code that `fit` calls at fixed points of training, as in Keras.

`fit` calls, in order: on_train_begin(logs), then per epoch on_epoch_begin(epoch, logs),
on_batch_end(batch, logs) after each optimiser step (logs: "size" and the running
"loss" and "accuracy" of the epoch), on_epoch_end(epoch, logs) (logs: the epoch's
metrics, "val_"-prefixed for the validation data), and finally on_train_end(logs).
Epochs and batches count from 0. Before training, `fit` binds each callback to the
model, the optimiser and the run's `params` (epochs, batch_size, samples, steps, verbose).
A callback stops training by setting `self.model.stop_training = True`; `fit` checks it
after every batch and every epoch. In a distributed fit every rank runs the callbacks,
except those marked `rank_zero_only` (the ones that write files), which only rank 0 runs.
"""
import csv
import math
import os

from minidl import io
from minidl.train.progress import logged_name

#: Metrics where larger is better; any other name (loss) is minimised under mode="auto".
_MAXIMISED = ("accuracy", "acc", "auc", "precision", "recall", "f1", "tpr")


class Callback:
    """Base class: every hook does nothing; override the ones you need."""

    model = None
    optimizer = None
    params = None
    rank_zero_only = False

    def bind(self, model, optimizer, params):
        self.model, self.optimizer, self.params = model, optimizer, dict(params)

    def on_train_begin(self, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_batch_end(self, batch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass


class History(dict, Callback):
    """The metrics of every epoch: {"loss": [...], "accuracy": [...], "val_loss": [...]}.
    `fit` returns it. `epochs` lists the epoch numbers (from 0) the lists refer to."""

    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_train_begin(self, logs=None):
        self.clear()
        self.epochs = []

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append(epoch)
        for name, value in (logs or {}).items():
            self.setdefault(name, []).append(value)


class Monitor:
    """Tracks the best value of one logged metric.

    monitor: the metric's logged name ("val_roc_auc") or the progress bar's short one
    ("val_auc"). mode: "min", "max" or "auto" (max for accuracy, AUC, precision,
    recall, F1, TPR; min otherwise). A value improves on the best when it beats it by
    more than min_delta (Keras' rule); NaN never improves."""

    def __init__(self, monitor, mode="auto", min_delta=0.0):
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
        if mode == "auto":
            mode = "max" if any(word in monitor for word in _MAXIMISED) else "min"
        self.monitor, self.mode, self.min_delta = monitor, mode, abs(float(min_delta))
        self._names = dict.fromkeys((monitor, logged_name(monitor)))  # either may be logged
        self.reset()

    def reset(self):
        """Forget the best value, for a new run of training."""
        self.best = math.inf if self.mode == "min" else -math.inf

    def current(self, logs, owner):
        """The monitored value from `logs`; a clear error when it is not logged."""
        for name in self._names:
            if name in (logs or {}):
                return float(logs[name])
        available = ", ".join(sorted(logs or {})) or "none"
        raise ValueError(f"{owner}: the metric {self.monitor!r} is not logged (available: {available}); "
                         "validation metrics need validation_data or validation_split")

    def improves(self, value):
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def update(self, value):
        """True, and remember `value`, when it improves on the best."""
        if self.improves(value):
            self.best = value
            return True
        return False


class EarlyStopping(Callback):
    """Stop when `monitor` has not improved for `patience` epochs (Keras' EarlyStopping).

    restore_best_weights: when training ends (stopped early or not), give the model the
    weights and buffers of its best epoch (Keras 2 restores only when it stops early).
    `stopped_epoch` is the epoch training stopped at (None if it ran to the end);
    `best_epoch` the epoch of the best value. `state_dict()` / `load_state_dict()` carry
    the count over to a resumed run (BackupAndRestore)."""

    def __init__(self, monitor="val_loss", min_delta=0.0, patience=0, mode="auto", restore_best_weights=False):
        if patience < 0:
            raise ValueError(f"EarlyStopping: patience must be >= 0, got {patience}")
        self.monitor = Monitor(monitor, mode, min_delta)
        self.patience = int(patience)
        self.restore_best_weights = bool(restore_best_weights)

    def on_train_begin(self, logs=None):
        self.monitor.reset()
        self.wait, self.stopped_epoch, self.best_epoch, self.best_weights = 0, None, None, None

    def on_epoch_end(self, epoch, logs=None):
        value = self.monitor.current(logs, "EarlyStopping")
        if self.monitor.update(value):
            self.wait, self.best_epoch = 0, epoch
            if self.restore_best_weights:
                self.best_weights = self.model.state_dict()
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.restore_best_weights and self.best_weights is not None:
            self.model.load_state_dict(self.best_weights)

    def state_dict(self):
        """The count so far as JSON data (the best weights are not in it)."""
        return {"best": self.monitor.best, "wait": self.wait, "best_epoch": self.best_epoch}

    def load_state_dict(self, state, best_weights=None):
        """Continue from `state_dict()`'s values and the best epoch's weights."""
        self.monitor.best, self.wait, self.best_epoch = float(state["best"]), int(state["wait"]), state["best_epoch"]
        self.best_weights = best_weights


class ReduceLROnPlateau(Callback):
    """Multiply the optimiser's learning rate by `factor` when `monitor` has not improved
    for `patience` epochs (Keras' ReduceLROnPlateau): never below `min_lr`, and after a
    reduction wait `cooldown` epochs before counting again. Keras' defaults, except
    that `min_delta` (1e-4) counts as in EarlyStopping. The rate after each epoch is
    logged as "lr"."""

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, mode="auto", min_delta=1e-4, cooldown=0,
                 min_lr=0.0, verbose=0):
        if not 0 < factor < 1:
            raise ValueError(f"ReduceLROnPlateau: factor must be in (0, 1), got {factor}")
        if patience < 0 or cooldown < 0:
            raise ValueError(f"ReduceLROnPlateau: patience and cooldown must be >= 0, got {patience} and {cooldown}")
        self.monitor = Monitor(monitor, mode, min_delta)
        self.factor, self.patience, self.cooldown = float(factor), int(patience), int(cooldown)
        self.min_lr, self.verbose = float(min_lr), int(verbose)

    def on_train_begin(self, logs=None):
        self.monitor.reset()
        self.wait, self.cooldown_left = 0, 0

    def on_epoch_end(self, epoch, logs=None):
        value = self.monitor.current(logs, "ReduceLROnPlateau")
        if self.cooldown_left > 0:
            self.cooldown_left -= 1
            self.wait = 0
        if self.monitor.update(value):
            self.wait = 0
        elif self.cooldown_left == 0:
            self.wait += 1
            if self.wait >= self.patience and self.optimizer.lr > self.min_lr:
                self.optimizer.lr = max(self.optimizer.lr * self.factor, self.min_lr)
                self.cooldown_left, self.wait = self.cooldown, 0
                if self.verbose:
                    print(f"Epoch {epoch + 1}: ReduceLROnPlateau lowered the learning rate to {self.optimizer.lr:.3g}")
        if logs is not None:
            logs["lr"] = self.optimizer.lr


class ModelCheckpoint(Callback):
    """Save the model with `minidl.io.save` (atomic) at the end of an epoch.

    save_best_only: only when `monitor` improves (else every epoch). `path` may hold
    format fields, e.g. "model-{epoch:02d}-{val_loss:.3f}.mdl" (epoch counted from 1).
    The file's `extra` holds the caller's `extra` plus {"epoch", "monitor", "value"};
    include_optimizer stores the optimiser's state to resume training;
    input_shape is passed on to `io.save`."""

    rank_zero_only = True

    def __init__(self, path, monitor="val_loss", mode="auto", save_best_only=True, extra=None,
                 include_optimizer=False, input_shape=None):
        self.path = os.fspath(path)
        self.monitor = Monitor(monitor, mode)
        self.save_best_only = bool(save_best_only)
        self.extra = dict(extra or {})
        self.include_optimizer = bool(include_optimizer)
        self.input_shape = input_shape
        self.saved_paths = []

    def on_train_begin(self, logs=None):
        self.monitor.reset()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.save_best_only:
            value = self.monitor.current(logs, "ModelCheckpoint")
            if not self.monitor.update(value):
                return
        path = self.path.format(epoch=epoch + 1, **logs)
        extra = dict(self.extra, epoch=epoch + 1, monitor=self.monitor.monitor,
                     value=logs.get(self.monitor.monitor))
        io.save(path, self.model, extra=extra, input_shape=self.input_shape,
                optimizer=self.optimizer if self.include_optimizer else None)
        self.saved_paths.append(path)


class CSVLogger(Callback):
    """Append one row per epoch (epoch from 1, then the metrics) to a CSV file."""

    rank_zero_only = True

    def __init__(self, path, append=False):
        self.path, self.append = os.fspath(path), bool(append)

    def on_train_begin(self, logs=None):
        self.fields = None
        if not self.append:
            with open(self.path, "w", newline="", encoding="utf-8"):
                pass

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.fields is None:
            self.fields = ["epoch"] + list(logs)
        write_header = not os.path.exists(self.path) or os.path.getsize(self.path) == 0
        with open(self.path, "a", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.fields, extrasaction="ignore")
            if write_header:
                writer.writeheader()
            writer.writerow(dict(logs, epoch=epoch + 1))
