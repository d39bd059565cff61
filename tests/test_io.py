"""Model files: round trips, rejection of damaged files, atomic saves, no pickle."""
import hashlib
import inspect
import json
import os
import re

import numpy as np
import pytest

import minidl
from minidl import io, nn, optim
from minidl.train import fit, predict


class TwoTower(nn.Module):
    """A model that is not Sequential, with two inputs: ids and float features."""

    def __init__(self, vocab=12, width=6, name=None):
        super().__init__(name)
        self.vocab, self.width = vocab, width
        self.embedding = nn.Embedding(vocab, 3)
        self.features = nn.Dense(width, activation="relu")
        self.head = nn.Dense(1, activation="sigmoid")

    def forward(self, ids, features):
        pooled = self.embedding(ids).mean(axis=1)
        return self.head(minidl.functional.concatenate([pooled, self.features(features)], axis=-1))

    def get_config(self):
        return {"name": self.name, "vocab": self.vocab, "width": self.width}


def sequential_model():
    """Embedding, Dense, BatchNormalization, Dropout: weights, buffers and randomness."""
    model = nn.Sequential([
        nn.Embedding(20, 4, embeddings_regularizer=1e-4),
        nn.Dense(8, activation="relu"),
        nn.BatchNormalization(),
        nn.Dropout(0.3),
        nn.Flatten(),
        nn.Dense(1, activation="sigmoid"),
    ])
    model.build((None, 5))
    return model


def trained_sequential():
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 20, (64, 5))
    y = (ids[:, 0] < 10).astype(np.float32)
    model = sequential_model()
    optimizer = optim.Adam(model.parameters(), lr=0.01)
    fit(model, ids, y, epochs=2, batch_size=16, optimizer=optimizer, verbose=0)
    return model, optimizer, ids


@pytest.fixture
def saved(tmp_path):
    model, optimizer, ids = trained_sequential()
    path = tmp_path / "model.mdl"
    io.save(path, model, extra={"tokenizer": {"max_len": 5}, "epochs": np.int64(2)}, optimizer=optimizer,
            input_shape=(None, 5))
    return path, model, optimizer, ids


def rewrite(path, edit_header):
    """Re-encode a model file after `edit_header(header)`, with a valid checksum."""
    data = path.read_bytes()
    length = int.from_bytes(data[8:16], "little")
    header = json.loads(data[16:16 + length])
    edit_header(header)
    header_bytes = json.dumps(header).encode()
    body = io.MAGIC + len(header_bytes).to_bytes(8, "little") + header_bytes + data[16 + length:-32]
    path.write_bytes(body + hashlib.sha256(body).digest())


# ------------------------------------------------------------------ round trips
def test_round_trip_keeps_predictions_running_statistics_and_extra(saved):
    path, model, _, ids = saved
    loaded, extra, optimizer_state = io.load(path)
    assert type(loaded) is nn.Sequential and not loaded.training
    assert extra == {"tokenizer": {"max_len": 5}, "epochs": 2}
    assert optimizer_state is not None
    original, restored = model.state_dict(), loaded.state_dict()
    assert list(original) == list(restored)
    for name in original:
        np.testing.assert_array_equal(original[name], restored[name])
    # Training moved the running statistics away from their initial 0 and 1.
    assert not np.allclose(restored["layer2.moving_mean"], 0)
    np.testing.assert_array_equal(predict(model, ids), predict(loaded, ids))
    assert io.read_header(path)["extra"]["tokenizer"] == {"max_len": 5}


def test_optimizer_state_resumes_training_exactly(saved):
    path, model, optimizer, ids = saved
    loaded, _, optimizer_state = io.load(path)
    resumed = optim.Adam(loaded.parameters(), lr=0.01)
    resumed.load_state_dict(optimizer_state)
    y = (ids[:, 0] < 10).astype(np.float32)
    for net, opt in ((model, optimizer), (loaded, resumed)):
        minidl.manual_seed(5)
        fit(net, ids, y, epochs=1, batch_size=16, optimizer=opt, verbose=0)
    for (name, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7, err_msg=name)


def test_a_custom_multi_input_module_round_trips(tmp_path):
    model = TwoTower(name="towers")
    rng = np.random.default_rng(1)
    inputs = (rng.integers(0, 12, (10, 4)), rng.normal(size=(10, 3)).astype(np.float32))
    before = predict(model, inputs)  # builds the lazy Dense layers
    io.save(tmp_path / "towers.mdl", model, input_shape=[(None, 4), (None, 3)], input_dtype=["int64", "float32"])
    loaded = io.load(tmp_path / "towers.mdl").model
    assert isinstance(loaded, TwoTower) and loaded.name == "towers"
    np.testing.assert_allclose(predict(loaded, inputs), before, rtol=1e-6)


def test_float64_weights_load_as_float64(tmp_path):
    minidl.set_default_dtype(np.float64)
    try:
        model = sequential_model()
    finally:
        minidl.set_default_dtype(np.float32)
    io.save(tmp_path / "m.mdl", model, input_shape=(None, 5))
    loaded = io.load(tmp_path / "m.mdl").model
    assert all(p.dtype == np.float64 for p in loaded.parameters())
    assert minidl.default_dtype() == np.float32


class _TwoDense(nn.Module):
    """A custom model whose Dense layers build lazily and that records no input shape."""

    def __init__(self, name=None):
        super().__init__(name)
        self.first, self.second = nn.Dense(3), nn.Dense(1, activation="sigmoid")

    def forward(self, x):
        return self.second(self.first(x))


def test_a_lazily_built_model_needs_its_input_shape(tmp_path):
    model = _TwoDense()
    model(minidl.tensor(np.ones((2, 4), np.float32)))
    io.save(tmp_path / "no_shape.mdl", model)
    with pytest.raises(io.ModelFileError, match="input_shape"):
        io.load(tmp_path / "no_shape.mdl")
    io.save(tmp_path / "shape.mdl", model, input_shape=(None, 4))
    assert io.load(tmp_path / "shape.mdl").model.count_params() == model.count_params()


def test_a_sequential_remembers_the_shape_it_was_built_for(tmp_path):
    model = nn.Sequential([nn.Dense(3), nn.Dense(1, activation="sigmoid")])
    model.build((None, 4))
    io.save(tmp_path / "seq.mdl", model)
    assert io.load(tmp_path / "seq.mdl").model.count_params() == model.count_params()


# ------------------------------------------------------------- rejected files
@pytest.mark.parametrize("where", ["magic", "header", "payload", "checksum"])
def test_a_flipped_byte_is_rejected(saved, where):
    path = saved[0]
    data = bytearray(path.read_bytes())
    length = int.from_bytes(data[8:16], "little")
    position = {"magic": 1, "header": 16 + length // 2, "payload": 16 + length + 5, "checksum": len(data) - 3}[where]
    data[position] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(io.ModelFileError):
        io.load(path)


def test_a_modified_payload_names_the_checksum(saved):
    path = saved[0]
    data = bytearray(path.read_bytes())
    data[-40] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(io.ModelFileError, match="checksum mismatch"):
        io.load(path)


@pytest.mark.parametrize("keep", [0, 5, 20, 200, -1])
def test_a_truncated_file_is_rejected(saved, keep):
    path = saved[0]
    data = path.read_bytes()
    path.write_bytes(data[:keep] if keep >= 0 else data[:keep])
    with pytest.raises(io.ModelFileError, match="truncated|not a minidl model"):
        io.load(path)


def test_other_files_and_newer_formats_are_rejected(tmp_path, saved):
    other = tmp_path / "notes.txt"
    other.write_text("hello")
    with pytest.raises(io.ModelFileError, match="not a minidl model file"):
        io.load(other)
    path = saved[0]
    rewrite(path, lambda header: header.update(format_version=99))
    with pytest.raises(io.ModelFileError, match="format version 99"):
        io.load(path)


def test_arrays_are_checked_against_the_rebuilt_model(saved):
    path = saved[0]

    def wider_dense(header):
        header["model"]["config"]["layers"][1]["config"]["units"] = 9

    rewrite(path, wider_dense)
    with pytest.raises(io.ModelFileError, match=r"layer1.kernel is float32 \(4, 8\) in the file, the model expects float32 \(4, 9\)"):
        io.load(path)


def test_an_unknown_class_is_a_clear_error(saved):
    path = saved[0]
    rewrite(path, lambda header: header["model"].update(class_name="NoSuchModel", module="elsewhere"))
    with pytest.raises(io.ModelFileError, match="import the module that defines 'NoSuchModel'"):
        io.load(path)


def test_an_object_dtype_in_the_header_is_refused(saved):
    path = saved[0]
    rewrite(path, lambda header: header["arrays"][0].update(dtype="|O"))
    with pytest.raises(io.ModelFileError, match="unsupported dtype"):
        io.load(path)


# ---------------------------------------------------------------- atomic save
def test_a_crash_mid_save_leaves_the_previous_file_intact(saved, monkeypatch):
    path, model, _, ids = saved
    before = path.read_bytes()
    real_chunks = io._file_chunks

    def crash_after_two_chunks(*args):
        for count, chunk in enumerate(real_chunks(*args)):
            if count == 3:
                raise OSError("disk full (simulated)")
            yield chunk

    monkeypatch.setattr(io, "_file_chunks", crash_after_two_chunks)
    with pytest.raises(OSError, match="simulated"):
        io.save(path, sequential_model(), input_shape=(None, 5))
    assert path.read_bytes() == before
    assert os.listdir(path.parent) == [path.name]  # the temporary file is gone
    np.testing.assert_array_equal(predict(io.load(path).model, ids), predict(model, ids))


def test_a_crash_before_the_rename_leaves_the_previous_file_intact(saved, monkeypatch):
    path = saved[0]
    before = path.read_bytes()

    def failing_replace(source, target):
        raise OSError("power cut (simulated)")

    monkeypatch.setattr(io.os, "replace", failing_replace)
    with pytest.raises(OSError, match="simulated"):
        io.save(path, sequential_model(), input_shape=(None, 5))
    assert path.read_bytes() == before
    assert os.listdir(path.parent) == [path.name]


def test_extra_that_is_not_json_fails_before_writing(tmp_path):
    with pytest.raises(TypeError, match="JSON"):
        io.save(tmp_path / "m.mdl", sequential_model(), extra={"when": object()})
    assert os.listdir(tmp_path) == []


def test_the_module_never_pickles():
    source = inspect.getsource(io)
    assert not re.search(r"import pickle|pickle\.|np\.load|allow_pickle|marshal|(?<![.\w])(eval|exec)\(", source)
