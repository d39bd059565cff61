"""Resumable training: BackupAndRestore (Keras' name) writes a run's whole state after
every epoch, so a run that was interrupted continues where it stopped and ends as the
uninterrupted run would have.

    early = EarlyStopping("val_roc_auc", patience=2, restore_best_weights=True)
    backup = BackupAndRestore("runs/checkpoint", watch=[early])
    start = backup.restore(model, optimizer) if resuming else 0   # epochs already done
    fit(model, x, y, epochs=16, optimizer=optimizer, validation_data=(x_val, y_val),
        callbacks=[early, backup], initial_epoch=start)
    backup.history                                                # every epoch, both runs

The folder holds `last.mdl`: the weights, the optimiser's state and, in its `extra`, the
epochs done, the history, the CPU random stream (the next shuffle and dropout masks) and
the state of the watched callbacks; and `best.mdl`, the weights of the best epoch of
each watched EarlyStopping that restores them. Both are ordinary model files
(`minidl.io`), written atomically, so an interruption while saving leaves the previous
epoch's files. A run on the GPU resumes with fresh GPU random streams.
"""
from pathlib import Path

from minidl import backend, io
from minidl.train.callbacks import Callback

LAST = "last.mdl"
BEST = "best.mdl"


class BackupAndRestore(Callback):
    """Save the run's state into `folder` after every epoch; `restore` loads it.

    watch: callbacks with `state_dict()` / `load_state_dict()` (EarlyStopping) whose
    state travels with the run. extra: JSON data stored beside it (the run's settings,
    so a resumed run can check it is the same run)."""

    rank_zero_only = True

    def __init__(self, folder, watch=(), extra=None):
        self.folder = Path(folder)
        self.watch = list(watch)
        self.extra = dict(extra or {})
        self.history = {}
        self.stopped = False  # whether the saved run was stopped by a callback (early stopping)
        self._pending = None

    @property
    def last_path(self):
        return self.folder / LAST

    def saved_extra(self):
        """The `extra` of the saved run (None when the folder holds none)."""
        if not self.last_path.is_file():
            return None
        return io.read_header(self.last_path)["extra"]

    def restore(self, model, optimizer):
        """Load the saved run into `model` and `optimizer` (an Optimizer over the
        model's parameters) and the CPU random stream; returns the number of epochs it
        had done, the `initial_epoch` to give `fit`. The watched callbacks get their
        state back when training begins. `stopped` tells whether a callback had
        stopped the run (there is nothing left to train: `load_final_weights`)."""
        saved = io.load(self.last_path)
        model.load_state_dict(saved.model.state_dict())
        if saved.optimizer_state is None:
            raise ValueError(f"{self.last_path}: the file holds no optimiser state to resume from")
        optimizer.load_state_dict(saved.optimizer_state)
        run = saved.extra["run_state"]
        self.history = {name: list(values) for name, values in run["history"].items()}
        self._pending = [(callback, state, self._best_weights(callback))
                         for callback, state in zip(self.watch, run["callbacks"])]
        self.stopped = bool(run["stopped"])
        # Last: rebuilding a model from a file draws initial weights from this stream.
        backend.numpy_generator().bit_generator.state = run["random_state"]
        return int(run["epochs_done"])

    def _best_weights(self, callback):
        """The best epoch's weights for a watched callback that restores them, else None."""
        if getattr(callback, "restore_best_weights", False) and (self.folder / BEST).is_file():
            return io.load(self.folder / BEST).model.state_dict()
        return None

    def load_final_weights(self, model):
        """Give `model` the weights the saved run ended with, for a run with nothing left
        to train: the best epoch's when a watched callback restores them (they are in
        best.mdl), else the last epoch's (already loaded by `restore`)."""
        for callback in self.watch:
            weights = self._best_weights(callback)
            if weights is not None:
                model.load_state_dict(weights)

    def on_epoch_begin(self, epoch, logs=None):
        # Here rather than in on_train_begin, which resets the watched callbacks' state.
        if self._pending is not None:
            for callback, state, weights in self._pending:
                callback.load_state_dict(state, best_weights=weights)
            self._pending = None

    def on_epoch_end(self, epoch, logs=None):
        for name, value in (logs or {}).items():
            self.history.setdefault(name, []).append(value)
        self.folder.mkdir(parents=True, exist_ok=True)
        for callback in self.watch:
            if getattr(callback, "restore_best_weights", False) and callback.best_epoch == epoch:
                io.save(self.folder / BEST, self.model)
        run_state = {"epochs_done": epoch + 1, "stopped": bool(self.model.stop_training), "history": self.history,
                     "random_state": backend.numpy_generator().bit_generator.state,
                     "callbacks": [callback.state_dict() for callback in self.watch]}
        io.save(self.last_path, self.model, extra=dict(self.extra, run_state=run_state), optimizer=self.optimizer)
