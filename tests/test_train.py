"""fit / evaluate / predict, callbacks and the progress bar, on small seeded problems."""
import csv
import functools
import io as text_io
import types

import numpy as np
import pytest

import minidl
import minidl.functional as F
from minidl import io, nn, optim
from minidl.train import (
    Callback,
    CSVLogger,
    EarlyStopping,
    ModelCheckpoint,
    ReduceLROnPlateau,
    evaluate,
    fit,
    outputs_logits,
    predict,
)
from minidl.train.progress import ProgressBar, format_duration

BINARY_EVALUATE_KEYS = {"loss", "accuracy", "roc_auc", "precision", "recall", "f1",
                        "tpr_at_fpr_1e-2", "tpr_at_fpr_1e-3", "confusion_matrix"}


def quadrants(n=400, seed=0):
    """XOR of the signs of two coordinates: needs a hidden layer."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n, 2)).astype(np.float32)
    return x, (x[:, 0] * x[:, 1] > 0).astype(np.float32)


def blobs(n=300, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    centres = np.array([[2.0 * np.cos(2 * np.pi * c / classes), 2.0 * np.sin(2 * np.pi * c / classes)] for c in range(classes)])
    return (centres[y] + rng.normal(0, 0.5, (n, 2))).astype(np.float32), y


def mlp(outputs=1, activation="sigmoid", dropout=0.0):
    layers = [nn.Dense(16, activation="tanh")]
    if dropout:
        layers.append(nn.Dropout(dropout))
    layers += [nn.Dense(16, activation="tanh"), nn.Dense(outputs, activation=activation)]
    return minidl.Sequential(layers)


class Recorder(Callback):
    """Remembers what fit called it with."""

    def __init__(self):
        self.calls = []

    def on_train_begin(self, logs=None):
        self.calls.append("train_begin")

    def on_epoch_begin(self, epoch, logs=None):
        self.calls.append(f"epoch_begin {epoch}")

    def on_batch_end(self, batch, logs=None):
        self.calls.append(f"batch {batch} {logs['size']}")

    def on_epoch_end(self, epoch, logs=None):
        self.calls.append(f"epoch_end {epoch}")

    def on_train_end(self, logs=None):
        self.calls.append("train_end")


# ------------------------------------------------------------- real training
def test_an_mlp_learns_the_quadrant_problem():
    x, y = quadrants(500)
    model = mlp()
    history = fit(model, x, y, epochs=25, batch_size=32, optimizer=functools.partial(optim.Adam, lr=0.02),
                  validation_split=0.2, verbose=0)
    # Stated bar: at least 90 % validation accuracy (a linear model cannot beat ~60 %).
    assert history["val_accuracy"][-1] >= 0.9
    assert history["loss"][-1] < history["loss"][0]
    scores = evaluate(model, x[400:], y[400:])
    assert set(scores) == BINARY_EVALUATE_KEYS
    assert scores["accuracy"] == pytest.approx(history["val_accuracy"][-1])
    assert scores["roc_auc"] >= 0.95


def test_an_embedding_model_learns_from_integer_ids():
    rng = np.random.default_rng(1)
    ids = rng.integers(1, 10, (400, 6))
    y = (ids == 7).any(axis=1).astype(np.float32)  # "does the sequence hold character 7?"
    model = minidl.Sequential([nn.Embedding(10, 4), nn.Flatten(), nn.Dense(16, activation="relu"), nn.Dense(1, activation="sigmoid")])
    history = fit(model, ids, y[:, None], epochs=20, batch_size=32, optimizer=functools.partial(optim.Adam, lr=0.01),
                  validation_split=0.25, verbose=0)
    assert history["val_accuracy"][-1] >= 0.9


@pytest.mark.parametrize("head", ["logits", "softmax"])
def test_a_multiclass_model_learns_blobs(head):
    x, y = blobs()
    model = mlp(outputs=3, activation=None if head == "logits" else "softmax")
    model.build((None, 2))
    history = fit(model, x, y, epochs=15, batch_size=32, optimizer=optim.Adam(model.parameters(), lr=0.01),
                  validation_split=0.25, verbose=0)
    assert set(history) == {"loss", "accuracy", "val_loss", "val_accuracy", "val_precision", "val_recall", "val_f1"}
    assert history["val_accuracy"][-1] >= 0.9
    probabilities = predict(model, x)
    assert probabilities.shape == (300, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)
    scores = evaluate(model, x, y)
    assert len(scores["precision_per_class"]) == 3 and len(scores["confusion_matrix"]) == 3
    assert sum(map(sum, scores["confusion_matrix"])) == 300 and scores["support"] == np.bincount(y).tolist()
    assert scores["accuracy"] == pytest.approx(np.mean(probabilities.argmax(axis=1) == y))


def test_a_multi_input_model_trains_on_a_tuple_of_arrays():
    class Towers(nn.Module):
        def __init__(self, name=None):
            super().__init__(name)
            self.embedding = nn.Embedding(8, 3)
            self.head = nn.Dense(1, activation="sigmoid")

        def forward(self, ids, features):
            return self.head(F.concatenate([self.embedding(ids).mean(axis=1), features], axis=-1))

    rng = np.random.default_rng(2)
    ids, features = rng.integers(0, 8, (64, 4)), rng.normal(size=(64, 2))
    y = (features[:, 0] > 0).astype(np.float32)
    history = fit(Towers(), (ids, features), y, epochs=2, batch_size=16, validation_data=([ids, features], y), verbose=0)
    assert len(history["val_loss"]) == 2


# ---------------------------------------------------------------- semantics
def test_history_keys_and_callback_order():
    x, y = quadrants(40)
    recorder = Recorder()
    history = fit(mlp(), x, y, epochs=2, batch_size=16, validation_data=(x, y), callbacks=[recorder], verbose=0)
    assert set(history) == {"loss", "accuracy", "roc_auc"} | {f"val_{key}" for key in BINARY_EVALUATE_KEYS - {"confusion_matrix"}}
    assert all(len(values) == 2 for values in history.values()) and history.epochs == [0, 1]
    assert recorder.calls == ["train_begin", "epoch_begin 0", "batch 0 16", "batch 1 16", "batch 2 8", "epoch_end 0",
                              "epoch_begin 1", "batch 0 16", "batch 1 16", "batch 2 8", "epoch_end 1", "train_end"]
    assert recorder.params == {"epochs": 2, "batch_size": 16, "samples": 40, "steps": 3, "verbose": 0}


def test_validation_split_holds_out_the_last_samples_before_shuffling():
    x, y = quadrants(100)
    recorder = Recorder()
    model = mlp()
    history = fit(model, x, y, epochs=1, batch_size=16, validation_split=0.3, callbacks=[recorder], verbose=0)
    assert recorder.params["samples"] == 70
    held_out = evaluate(model, x[70:], y[70:])
    assert history["val_loss"][-1] == pytest.approx(held_out["loss"])
    assert history["val_accuracy"][-1] == pytest.approx(held_out["accuracy"])


def test_seeded_runs_repeat_and_shuffling_changes_the_order():
    x, y = quadrants(64)

    def run(shuffle, seed=3):
        minidl.manual_seed(seed)
        model = mlp()
        return fit(model, x, y, epochs=2, batch_size=8, shuffle=shuffle, verbose=0)["loss"]

    assert run(True) == run(True)
    assert run(True) != run(False)
    assert run(False, seed=3) == run(False, seed=3)


def test_the_loss_includes_class_weights_and_the_l2_penalty():
    rng = np.random.default_rng(4)
    ids = rng.integers(0, 6, (20, 3))
    y = (ids[:, 0] > 2).astype(np.float32)
    model = minidl.Sequential([nn.Embedding(6, 2, embeddings_regularizer=0.01), nn.Flatten(), nn.Dense(1, activation="sigmoid")])
    model.build((None, 3))
    p = predict(model, ids)[:, 0].astype(np.float64)
    weights = np.where(y == 1, 3.0, 0.5)
    bce = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    penalty = 0.01 * np.sum(model.state_dict()["layer0.embeddings"].astype(np.float64) ** 2)
    # One full batch: the logged loss is the one computed before the optimiser's step.
    history = fit(model, ids, y, epochs=1, batch_size=20, shuffle=False, class_weight={0: 0.5, 1: 3.0}, verbose=0)
    assert history["loss"][0] == pytest.approx(np.mean(weights * bce) + penalty, rel=1e-5)


def test_balanced_class_weights_follow_sklearn():
    x, y = quadrants(30)
    y[:] = 0
    y[:6] = 1
    model = mlp()
    model.build((None, 2))
    p = predict(model, x)[:, 0].astype(np.float64)
    weights = np.where(y == 1, 30 / (2 * 6), 30 / (2 * 24))
    bce = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    history = fit(model, x, y, epochs=1, batch_size=30, shuffle=False, class_weight="balanced", verbose=0)
    assert history["loss"][0] == pytest.approx(np.mean(weights * bce), rel=1e-5)


def test_sample_weights_multiply_class_weights_and_are_checked():
    x, y = quadrants(30)
    model = mlp()
    model.build((None, 2))
    p = predict(model, x)[:, 0].astype(np.float64)
    per_sample = np.linspace(0.0, 2.0, 30)
    bce = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    history = fit(model, x, y, epochs=1, batch_size=30, shuffle=False, class_weight={1: 2.0},
                  sample_weight=per_sample, verbose=0)
    assert history["loss"][0] == pytest.approx(np.mean(np.where(y == 1, 2.0, 1.0) * per_sample * bce), rel=1e-5)
    with pytest.raises(ValueError, match=r"one weight per sample, shape \(30,\)"):
        fit(mlp(), x, y, sample_weight=np.ones(29), verbose=0)
    with pytest.raises(ValueError, match="finite and non-negative"):
        fit(mlp(), x, y, sample_weight=-per_sample, verbose=0)


def test_a_last_batch_of_one_joins_the_previous_one_for_batch_norm():
    x, y = quadrants(33)
    model = minidl.Sequential([nn.Dense(4), nn.BatchNormalization(), nn.Dense(1, activation="sigmoid")])
    recorder = Recorder()
    fit(model, x, y, epochs=1, batch_size=16, callbacks=[recorder], verbose=0)
    assert [call for call in recorder.calls if call.startswith("batch")] == ["batch 0 16", "batch 1 17"]


def test_predict_is_deterministic_with_dropout_and_restores_the_mode():
    x, _ = quadrants(50)
    model = mlp(dropout=0.5)
    model.build((None, 2))
    first = predict(model, x, batch_size=7)
    assert model.training  # predict does not leave the model in eval mode
    np.testing.assert_array_equal(first, predict(model, x, batch_size=7))
    np.testing.assert_allclose(first, predict(model, x, batch_size=50), rtol=1e-6)
    model.eval()
    with minidl.no_grad():
        np.testing.assert_allclose(first, model(minidl.tensor(x)).numpy(), rtol=1e-6)


def test_predict_applies_the_sigmoid_to_logits():
    x, _ = quadrants(10)
    model = mlp(activation=None)
    model.build((None, 2))
    raw = predict(model, x, from_logits=False)
    np.testing.assert_allclose(predict(model, x), 1 / (1 + np.exp(-raw)), rtol=1e-6)


def test_outputs_logits_is_read_from_the_model():
    assert outputs_logits(mlp(activation="sigmoid")) is False
    assert outputs_logits(mlp(outputs=3, activation=None)) is True
    assert outputs_logits(minidl.Sequential([nn.Dense(3), nn.Softmax()])) is False
    assert outputs_logits(minidl.Sequential([mlp(outputs=3, activation="softmax")])) is False

    class Declared(nn.Module):
        outputs_logits = True

    assert outputs_logits(Declared()) is True
    assert outputs_logits(nn.Module()) is False  # Keras' default: probabilities


def test_fit_reports_bad_arguments_clearly():
    x, y = quadrants(20)
    with pytest.raises(ValueError, match="not both"):
        fit(mlp(), x, y, validation_data=(x, y), validation_split=0.5, verbose=0)
    with pytest.raises(ValueError, match="19 targets for 20 samples"):
        fit(mlp(), x, y[:19], verbose=0)
    with pytest.raises(ValueError, match="unknown loss"):
        fit(mlp(), x, y, loss="hinge", verbose=0)
    with pytest.raises(ValueError, match="binary outputs"):
        fit(mlp(outputs=3, activation=None), x, y, loss="binary_crossentropy", verbose=0)
    with pytest.raises(ValueError, match=r"labels must lie in 0..2"):
        fit(mlp(outputs=3, activation=None), x, np.full(20, 3), verbose=0)
    with pytest.raises(ValueError, match="different numbers of samples"):
        fit(mlp(), (x, x[:5]), y, verbose=0)
    with pytest.raises(ValueError, match="does not update 4 trainable parameters"):
        model = mlp()
        model.layers[0].build((None, 2))
        fit(model, x, y, optimizer=optim.Adam(model.layers[0].parameters()), verbose=0)
    with pytest.raises(ValueError, match="'val_loss' is not logged"):
        fit(mlp(), x, y, callbacks=[EarlyStopping()], verbose=0)


def test_a_custom_loss_callable_is_used():
    x, y = quadrants(32)

    def squared_error(output, target):
        return F.mean_squared_error(output, target.reshape(output.shape).astype(output.dtype))

    model = mlp()
    model.build((None, 2))
    p = predict(model, x)[:, 0]
    history = fit(model, x, y, epochs=1, batch_size=32, loss=squared_error, verbose=0)
    assert history["loss"][0] == pytest.approx(np.mean((p - y) ** 2), rel=1e-5)
    with pytest.raises(ValueError, match="class_weight needs a built-in loss"):
        fit(model, x, y, loss=squared_error, class_weight="balanced", verbose=0)


# ---------------------------------------------------------------- callbacks
class FakeModel:
    """What EarlyStopping needs of a model: a state to save and restore."""

    def __init__(self):
        self.weight, self.stop_training = 0, False

    def state_dict(self):
        return {"w": self.weight}

    def load_state_dict(self, state):
        self.weight = state["w"]


def run_monitor(callback, values, key="val_loss"):
    model = FakeModel()
    callback.bind(model, None, {})
    callback.on_train_begin({})
    for epoch, value in enumerate(values):
        model.weight = epoch
        callback.on_epoch_end(epoch, {key: value})
        if model.stop_training:
            break
    callback.on_train_end({})
    return model


def test_early_stopping_counts_patience_and_restores_the_best_epoch():
    stopper = EarlyStopping(patience=2, restore_best_weights=True)
    model = run_monitor(stopper, [1.0, 0.8, 0.9, 0.85, 0.7])
    assert (stopper.stopped_epoch, stopper.best_epoch, model.weight) == (3, 1, 1)
    # min_delta: 0.79 is not better than 0.8 by more than 0.05.
    stopper = EarlyStopping(patience=1, min_delta=0.05)
    run_monitor(stopper, [1.0, 0.8, 0.79, 0.6])
    assert stopper.stopped_epoch == 2
    # "auto" maximises accuracy-like metrics; patience 0 stops at the first miss.
    stopper = EarlyStopping(monitor="val_accuracy", patience=0)
    run_monitor(stopper, [0.5, 0.7, 0.6], key="val_accuracy")
    assert (stopper.stopped_epoch, stopper.best_epoch) == (2, 1)


def test_early_stopping_stops_fit_and_restores_the_best_weights():
    x, y = quadrants(200)
    flipped = 1 - y[150:]  # validation labels the model is trained away from: val_loss rises
    model = mlp()
    stopper = EarlyStopping(monitor="val_loss", patience=1, restore_best_weights=True)
    history = fit(model, x[:150], y[:150], epochs=30, batch_size=16, optimizer=functools.partial(optim.Adam, lr=0.02),
                  validation_data=(x[150:], flipped), callbacks=[stopper], verbose=0)
    assert len(history["loss"]) < 30 and stopper.stopped_epoch == len(history["loss"]) - 1
    best = int(np.argmin(history["val_loss"]))
    assert stopper.best_epoch == best
    assert evaluate(model, x[150:], flipped)["loss"] == pytest.approx(history["val_loss"][best], rel=1e-6)


def test_reduce_lr_on_plateau_waits_patience_then_cooldown_and_stops_at_min_lr():
    optimizer = types.SimpleNamespace(lr=1.0)
    reducer = ReduceLROnPlateau(patience=2, factor=0.5, cooldown=2, min_lr=0.2)
    reducer.bind(FakeModel(), optimizer, {})
    reducer.on_train_begin({})
    rates = []
    for epoch, value in enumerate([1.0, 0.9, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.8]):
        logs = {"val_loss": value}
        reducer.on_epoch_end(epoch, logs)
        rates.append(logs["lr"])
    # two misses -> 0.5; as in Keras, the last cooldown epoch already counts a miss, so two
    # epochs later 0.25; then the floor 0.2, however long the plateau
    assert rates == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.2, 0.2, 0.2]
    with pytest.raises(ValueError, match="factor must be in"):
        ReduceLROnPlateau(factor=1.5)


def test_reduce_lr_on_plateau_in_fit_logs_the_rate_in_the_history():
    x, y = quadrants(200)
    flipped = 1 - y[150:]  # val_loss rises, so the rate falls
    model = mlp()
    reducer = ReduceLROnPlateau(monitor="val_loss", patience=0, factor=0.5)
    history = fit(model, x[:150], y[:150], epochs=4, batch_size=16, optimizer=functools.partial(optim.Adam, lr=0.02),
                  validation_data=(x[150:], flipped), callbacks=[reducer], verbose=0)
    assert history["lr"][0] <= 0.02 and history["lr"][-1] < 0.02
    assert all(later <= earlier for earlier, later in zip(history["lr"], history["lr"][1:]))


def test_model_checkpoint_keeps_the_best_model(tmp_path):
    x, _ = quadrants(20)
    model = mlp()
    model.build((None, 2))
    checkpoint = ModelCheckpoint(tmp_path / "best.mdl", monitor="val_auc", mode="max", extra={"run": "a"},
                                 input_shape=(None, 2))
    checkpoint.bind(model, None, {})
    checkpoint.on_train_begin({})
    expected = None
    for epoch, auc in enumerate([0.6, 0.8, 0.7]):
        for parameter in model.parameters():
            parameter.data += 0.1  # a different model every epoch
        if auc == 0.8:
            expected = predict(model, x)
        checkpoint.on_epoch_end(epoch, {"val_auc": auc})
    saved = io.load(tmp_path / "best.mdl")
    assert saved.extra == {"run": "a", "epoch": 2, "monitor": "val_auc", "value": 0.8}
    np.testing.assert_array_equal(predict(saved.model, x), expected)
    assert checkpoint.saved_paths == [str(tmp_path / "best.mdl")] * 2


def test_model_checkpoint_formats_the_path_and_can_save_every_epoch(tmp_path):
    x, y = quadrants(40)
    model = mlp()
    pattern = str(tmp_path / "model-{epoch:02d}.mdl")
    fit(model, x, y, epochs=2, batch_size=20, verbose=0, callbacks=[
        ModelCheckpoint(pattern, save_best_only=False, include_optimizer=True, input_shape=(None, 2))])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model-01.mdl", "model-02.mdl"]
    assert io.load(tmp_path / "model-02.mdl").optimizer_state["iterations"] == 4


def test_a_callback_can_stop_training_mid_epoch():
    class StopAfterTwoBatches(Callback):
        def on_batch_end(self, batch, logs=None):
            if batch == 1:
                self.model.stop_training = True

    x, y = quadrants(64)
    recorder = Recorder()
    history = fit(mlp(), x, y, epochs=5, batch_size=8, callbacks=[StopAfterTwoBatches(), recorder], verbose=0)
    assert len(history["loss"]) == 1
    assert [call for call in recorder.calls if call.startswith("batch")] == ["batch 0 8", "batch 1 8"]


def test_csv_logger_writes_one_row_per_epoch(tmp_path):
    x, y = quadrants(32)
    path = tmp_path / "log.csv"
    history = fit(mlp(), x, y, epochs=3, batch_size=16, callbacks=[CSVLogger(path)], verbose=0)
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["epoch"] for row in rows] == ["1", "2", "3"]
    assert [float(row["loss"]) for row in rows] == pytest.approx(history["loss"])


def test_plot_history_from_fit(tmp_path):
    pytest.importorskip("matplotlib")
    from minidl.train.plots import plot_history

    x, y = quadrants(32)
    history = fit(mlp(), x, y, epochs=2, batch_size=16, validation_split=0.25, verbose=0)
    path = plot_history(history, tmp_path / "curves.png", metrics_shown=["loss", "accuracy", "roc_auc"])
    assert path.read_bytes()[:4] == b"\x89PNG"


# ------------------------------------------------------------- progress bar
def test_the_progress_bar_writes_one_line_per_epoch_on_a_pipe(capsys):
    x, y = quadrants(64)
    fit(mlp(), x, y, epochs=2, batch_size=16, validation_split=0.25, verbose=1)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 and lines[0].startswith("Epoch 1/2 [==============================] 48/48 - loss ")
    assert " - acc " in lines[0] and " - val_auc " in lines[0] and " samples/s - " in lines[0]
    fit(mlp(), x, y, epochs=1, verbose=0)
    assert capsys.readouterr().err == ""


def test_the_progress_bar_redraws_in_place_on_a_terminal():
    stream = text_io.StringIO()
    bar = ProgressBar(1000, epoch=3, epochs=10, stream=stream, interactive=True, refresh=0)
    bar.update(512, {"loss": 0.4123, "accuracy": 0.8123})
    bar.finish({"loss": 0.4, "accuracy": 0.8})
    first, last = stream.getvalue().split("\r")[1:]
    assert first.startswith("Epoch 3/10 [===============>..............]  512/1000 - loss 0.4123 - acc 0.8123 - ")
    assert " samples/s - ETA " in first
    assert last.startswith("Epoch 3/10 [==============================] 1000/1000 - loss 0.4000") and last.endswith("\n")
    assert [format_duration(s) for s in (3, 65, 7380)] == ["3s", "1m05s", "2h03m"]
