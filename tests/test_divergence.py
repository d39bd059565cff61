"""A training run that diverges stops with TrainingDiverged naming the epoch, the step
and what to do, without NumPy's raw warnings; the command line exits non-zero and writes
no model. Normal training raises none of the floating-point errors the guard watches."""
import functools
import warnings

import numpy as np
import pytest
from test_cli import TINY, assert_one_line_error, run, synthetic_urls, write_csv
from test_model_file_schema import SMALL_SIZES

import minidl
from minidl import io, nn, optim
from minidl.models.recipes import accepted_settings
from minidl.models import ARCHITECTURES, build_model
from minidl.train import Callback, ModelCheckpoint, TrainingDiverged, fit


def data(n=64):
    x = np.random.default_rng(0).normal(size=(n, 4)).astype(np.float32)
    return x, (x[:, 0] > 0).astype(np.float32)


def batch_norm_model():
    """Dense -> ELU -> BatchNormalization -> Dense: with a huge step the variance overflows
    and batch normalisation turns it into zeros, so the loss alone stays finite."""
    minidl.manual_seed(0)
    return minidl.Sequential([nn.Dense(8, activation="elu"), nn.BatchNormalization(), nn.Dense(1, activation="sigmoid")])


def fit_quietly(model, x, y, **options):
    """fit, failing on any warning (NumPy's overflow warnings included)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return fit(model, x, y, epochs=3, batch_size=16, verbose=0, **options)


def test_an_overflow_stops_training_even_when_the_loss_stays_finite():
    with pytest.raises(TrainingDiverged) as caught:
        fit_quietly(batch_norm_model(), *data(), optimizer=functools.partial(optim.SGD, lr=1e20))
    error = caught.value
    assert (error.epoch, error.step) == (1, 2)
    assert "training diverged at epoch 1, step 2 of 4: its arithmetic went out of range (overflow" in str(error)
    assert "lower the learning rate (it is 1e+20; try 1e+19)" in str(error)
    assert error.checkpoint is None and "no checkpoint" in str(error)


def test_a_nan_loss_stops_training():
    with pytest.raises(TrainingDiverged, match=r"step 2 of 4: the loss is nan; lower the learning rate"):
        fit_quietly(batch_norm_model(), *data(), optimizer=functools.partial(optim.SGD, lr=1e30))


def test_a_nan_in_the_inputs_blames_the_inputs_not_the_learning_rate():
    x, y = data()
    x[3, 2] = np.nan
    with pytest.raises(TrainingDiverged, match="step 1 of 4: the loss is nan; this is before the first update, "
                                               "so look at the inputs"):
        fit_quietly(batch_norm_model(), x, y, shuffle=False)


class BlowUpAfter(Callback):
    """Sets the first weights to 1e30 at the end of `epoch`, as a run diverging there would."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            self.model.parameters()[0].data[:] = 1e30


def test_the_message_names_the_last_checkpoint_which_holds_a_finite_model(tmp_path):
    checkpoint = ModelCheckpoint(tmp_path / "epoch-{epoch}.mdl", save_best_only=False, input_shape=(None, 4))
    with pytest.raises(TrainingDiverged) as caught:
        fit_quietly(batch_norm_model(), *data(), callbacks=[checkpoint, BlowUpAfter(1)],
                    optimizer=functools.partial(optim.SGD, lr=0.01))
    path = str(tmp_path / "epoch-2.mdl")
    assert (caught.value.epoch, caught.value.step, caught.value.checkpoint) == (3, 1, path)
    assert f"the last checkpoint written, {path}, holds the model before it diverged" in str(caught.value)
    assert np.isfinite(io.load(path).model.parameters()[0].numpy()).all()


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_normal_training_raises_no_floating_point_error(arch):
    minidl.manual_seed(0)
    model = build_model(arch, **accepted_settings(arch, max_len=20, emb_dim=4, max_vocab_len=101), **SMALL_SIZES[arch])
    urls, labels = zip(*synthetic_urls(48))
    ids = model.make_tokenizer(list(urls)).encode(list(urls))
    with np.errstate(all="raise"):
        fit(model, ids, np.array(labels), epochs=2, batch_size=16, optimizer=model.make_optimizer(1e-2), verbose=0)


def test_the_command_line_exits_non_zero_and_writes_no_model(tmp_path, capsys):
    data_file = write_csv(tmp_path / "urls.csv", synthetic_urls(200))
    output = tmp_path / "model.mdl"
    status, out, err = run(["train", "--arch", "conv_fully", "--data", data_file, *TINY, "--lr", "1e6",
                            "--batch-size", "32", "--epochs", "2", "--verbose", "0", "--output", output], capsys)
    assert_one_line_error(status, err, "training diverged at epoch 1, step 2 of 5",
                          "lower the learning rate (it is 1e+06; try 100000)")
    assert "RuntimeWarning" not in err and "saved the model" not in out
    assert not output.exists()
