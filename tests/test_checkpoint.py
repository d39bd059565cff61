"""Resumable runs: a run interrupted after an epoch and resumed ends exactly as the
uninterrupted run does (weights, history, early stopping, random streams), in the
library (BackupAndRestore) and on the command line (--checkpoint, --resume)."""
import numpy as np
import pytest

import minidl
from minidl import nn
from minidl.cli import main
from minidl.train import BackupAndRestore, Callback, EarlyStopping, fit


class InterruptAfter(Callback):
    """Raise KeyboardInterrupt at the end of epoch `epoch`, as a user's Ctrl-C would."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt


def data():
    rng = np.random.default_rng(5)
    ids = rng.integers(1, 20, size=(96, 12))
    labels = (ids == 7).any(axis=1).astype(np.float32)
    return ids, labels


def run(folder, epochs, interrupt_after=None, resume=False, patience=10):
    """(model, history, backup) of a seeded run; with dropout, so the random stream matters."""
    minidl.manual_seed(3)
    model = minidl.Sequential([nn.Embedding(20, 6), nn.Conv1D(8, 3, padding="same"), nn.ELU(), nn.Dropout(0.3),
                           nn.GlobalMaxPooling1D(), nn.Dense(1, activation="sigmoid")])
    model.build((None, 12))
    optimizer = minidl.optim.Adam(model.parameters(), lr=0.01)
    early = EarlyStopping("val_auc", patience=patience, restore_best_weights=True)
    backup = BackupAndRestore(folder, watch=[early])
    start = backup.restore(model, optimizer) if resume else 0
    callbacks = [early, backup] + ([InterruptAfter(interrupt_after)] if interrupt_after is not None else [])
    ids, labels = data()
    fit(model, ids[:72], labels[:72], epochs=epochs, batch_size=16, optimizer=optimizer,
        validation_data=(ids[72:], labels[72:]), callbacks=callbacks, verbose=0, initial_epoch=start)
    return model, backup.history, backup


def test_an_interrupted_run_resumes_exactly(tmp_path):
    whole, whole_history, _ = run(tmp_path / "whole", epochs=5)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "cut", epochs=5, interrupt_after=1)
    resumed, resumed_history, backup = run(tmp_path / "cut", epochs=5, resume=True)
    assert resumed_history == whole_history and len(whole_history["loss"]) == 5
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        np.testing.assert_array_equal(a, b, err_msg=name)
    assert (tmp_path / "cut" / "last.mdl").is_file() and (tmp_path / "cut" / "best.mdl").is_file()


def test_early_stopping_keeps_its_count_across_an_interruption(tmp_path):
    whole, whole_history, _ = run(tmp_path / "whole", epochs=12, patience=1)
    stopped_at = len(whole_history["loss"])
    assert stopped_at < 12, "the test needs a run that stops early"
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "cut", epochs=12, patience=1, interrupt_after=stopped_at - 2)
    resumed, resumed_history, _ = run(tmp_path / "cut", epochs=12, patience=1, resume=True)
    assert resumed_history == whole_history
    for a, b in zip(whole.state_dict().values(), resumed.state_dict().values()):
        np.testing.assert_array_equal(a, b)  # the best epoch's weights, restored at the end


def test_the_command_line_resumes_a_run(tmp_path, capsys):
    from test_cli import TINY, synthetic_urls, write_csv

    csv_path = write_csv(tmp_path / "urls.csv", synthetic_urls(120))
    common = ["train", "--arch", "conv_fully", "--data", str(csv_path), *TINY, "--verbose", "0", "--early-stopping", "0"]
    assert main([*common, "--epochs", "3", "--output", str(tmp_path / "whole.mdl")]) == 0
    whole = capsys.readouterr().out
    assert main([*common, "--epochs", "2", "--checkpoint", str(tmp_path / "run")]) == 0
    capsys.readouterr()
    assert main([*common, "--epochs", "3", "--checkpoint", str(tmp_path / "run"), "--resume",
                 "--output", str(tmp_path / "resumed.mdl")]) == 0
    resumed = capsys.readouterr().out
    assert "resuming the run in" in resumed and "after epoch 2" in resumed
    scores = [out[out.index("test set"):out.index("saved")] for out in (whole, resumed)]
    assert scores[0] == scores[1]

    assert main([*common, "--epochs", "3", "--lr", "0.5", "--checkpoint", str(tmp_path / "run"), "--resume"]) == 2
    assert "was trained with lr" in capsys.readouterr().err
    assert main([*common, "--epochs", "3", "--checkpoint", str(tmp_path / "empty"), "--resume"]) == 1
    assert "holds no checkpoint" in capsys.readouterr().err
    assert main([*common, "--resume"]) == 2
    assert "--resume needs --checkpoint DIR" in capsys.readouterr().err
