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
from minidl.io import layout
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
    model = minidl.Sequential([
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


def split(data):
    """(raw safetensors header, buffer) of a model file's bytes."""
    length = int.from_bytes(data[:8], "little")
    return json.loads(data[8:8 + length]), bytes(data[8 + length:])


def seal(header, buffer):
    """The bytes of a model file with this raw header and buffer, its digest computed as
    minidl.io documents it: the SHA-256 of the file with the digest's 64 digits as "0"s."""
    header["__metadata__"]["sha256"] = "0" * 64
    header_bytes = json.dumps(header, separators=(",", ":")).encode()
    unsealed = len(header_bytes).to_bytes(8, "little") + header_bytes + buffer
    place = b'"sha256":"' + b"0" * 64
    return unsealed.replace(place, b'"sha256":"' + hashlib.sha256(unsealed).hexdigest().encode(), 1)


def first_entry(entries):
    """The safetensors entry of the array stored first (arrays[0] in io.read_header)."""
    arrays = [entry for name, entry in entries.items() if name != "__metadata__"]
    return min(arrays, key=lambda entry: tuple(entry["data_offsets"]))


def rewrite(path, edit_header=None, edit_entries=None):
    """Re-encode a model file after `edit_header(fields)` (its metadata fields, decoded
    from JSON) and `edit_entries(entries)` (the safetensors entries of its arrays, by
    name), with a valid checksum, as a hand edit would."""
    raw, buffer = split(path.read_bytes())
    metadata = raw.pop("__metadata__")
    fields = {key: json.loads(value) for key, value in metadata.items() if key != "sha256"}
    if edit_header is not None:
        edit_header(fields)
    if edit_entries is not None:
        edit_entries(raw)
    path.write_bytes(seal({"__metadata__": {key: json.dumps(value) for key, value in fields.items()}, **raw}, buffer))


# ------------------------------------------------------------------ round trips
def test_round_trip_keeps_predictions_running_statistics_and_extra(saved):
    path, model, _, ids = saved
    loaded, extra, optimizer_state = io.load(path)
    assert type(loaded) is minidl.Sequential and not loaded.training
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
    model = minidl.Sequential([nn.Dense(3), nn.Dense(1, activation="sigmoid")])
    model.build((None, 4))
    io.save(tmp_path / "seq.mdl", model)
    assert io.load(tmp_path / "seq.mdl").model.count_params() == model.count_params()


# ------------------------------------------------------------- rejected files
@pytest.mark.parametrize("where", ["length", "header", "digest", "payload", "last"])
def test_a_flipped_byte_is_rejected(saved, where):
    path = saved[0]
    data = bytearray(path.read_bytes())
    length = int.from_bytes(data[:8], "little")
    digest = data.index(b'"sha256":"') + len('"sha256":"')
    position = {"length": 1, "header": 8 + length // 2, "digest": digest + 10, "payload": 8 + length + 5,
                "last": len(data) - 3}[where]
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


@pytest.mark.parametrize("dtype", ["BF16", "O", "C64"])
def test_a_dtype_minidl_does_not_store_is_refused(saved, dtype):
    path = saved[0]
    rewrite(path, edit_entries=lambda entries: first_entry(entries).update(dtype=dtype))
    with pytest.raises(io.ModelFileError, match=f"unsupported dtype '{dtype}'"):
        io.load(path)


# ------------------------------------------------------- the ecosystem's readers
def test_safetensors_reads_every_array_bit_for_bit(saved):
    from safetensors import safe_open
    from safetensors.numpy import load_file

    path, model, optimizer, _ = saved
    arrays = load_file(path)
    expected = dict(model.state_dict())
    expected.update({f"optimizer/{name}": value for name, value in optimizer.state_dict().items()})
    assert sorted(arrays) == sorted(expected)
    for name, value in expected.items():
        assert arrays[name].dtype == np.asarray(value).dtype and arrays[name].tobytes() == np.asarray(value).tobytes()
    with safe_open(str(path), framework="numpy") as handle:
        metadata = handle.metadata()
    assert json.loads(metadata["format"]) == "minidl.model" and json.loads(metadata["format_version"]) == 2
    assert json.loads(metadata["extra"]) == {"tokenizer": {"max_len": 5}, "epochs": 2}
    assert json.loads(metadata["model"])["class_name"] == "Sequential"
    assert re.fullmatch("[0-9a-f]{64}", metadata["sha256"])


def test_pytorch_reads_every_array_bit_for_bit(saved):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed: safetensors.torch cannot be checked")
    from safetensors.torch import load_file

    path, model, _, _ = saved
    tensors = load_file(path)
    for name, value in model.state_dict().items():
        assert tensors[name].numpy().tobytes() == np.asarray(value).tobytes(), name
    assert isinstance(tensors["layer0.embeddings"], torch.Tensor)


def test_a_safetensors_file_without_minidl_metadata_is_named(tmp_path):
    from safetensors.numpy import save_file

    save_file({"weight": np.ones((2, 2), np.float32)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(io.ModelFileError, match=r"not a minidl model file \(a safetensors file without minidl's"):
        io.load(tmp_path / "other.safetensors")


def test_the_digest_is_the_documented_one(saved, tmp_path):
    path = saved[0]
    data = path.read_bytes()
    raw, buffer = split(data)
    digest = raw["__metadata__"]["sha256"]
    assert hashlib.sha256(data.replace(digest.encode(), b"0" * 64, 1)).hexdigest() == digest
    # A header re-encoded differently (spacing, no padding) and sealed by the same rule loads.
    (tmp_path / "resealed.mdl").write_bytes(seal(raw, buffer))
    assert (tmp_path / "resealed.mdl").read_bytes() != data
    assert io.load(tmp_path / "resealed.mdl").extra == io.load(path).extra


# --------------------------------------------------------------- format 1 files
def legacy_bytes(model, input_shape, optimizer=None, extra=None):
    """A format 1 file (minidl's own layout before safetensors) of `model`, written out:
    magic, header length, JSON header, payload, SHA-256 of every byte before it."""
    arrays = [("state", name, np.asarray(value)) for name, value in model.state_dict().items()]
    if optimizer is not None:
        arrays += [("optimizer", name, np.asarray(value)) for name, value in optimizer.state_dict().items()]
    entries, offset = [], 0
    for group, name, array in arrays:
        entries.append({"group": group, "name": name, "dtype": array.dtype.str, "shape": list(array.shape),
                        "offset": offset, "nbytes": array.nbytes})
        offset += array.nbytes
    spec = nn.serialize(model)
    spec["module"] = type(model).__module__
    header = {"format": "minidl.model", "format_version": 1, "minidl_version": "0.1.0", "model": spec,
              "input_shape": list(input_shape), "input_dtype": None, "dtype": "float32", "extra": extra or {},
              "optimizer": None if optimizer is None else {"class_name": type(optimizer).__name__},
              "payload_bytes": offset, "arrays": entries}
    header_bytes = json.dumps(header).encode()
    body = (b"\x89MDL\r\n\x1a\n" + len(header_bytes).to_bytes(8, "little") + header_bytes
            + b"".join(array.tobytes() for _, _, array in arrays))
    return body + hashlib.sha256(body).digest()


def test_a_format_1_file_still_loads_and_converts(tmp_path):
    model, optimizer, ids = trained_sequential()
    old = tmp_path / "old.mdl"
    old.write_bytes(legacy_bytes(model, (None, 5), optimizer, extra={"note": "kept"}))
    loaded, extra, optimizer_state = io.load(old)
    np.testing.assert_array_equal(predict(loaded, ids), predict(model, ids))
    assert extra == {"note": "kept"} and optimizer_state["iterations"] == optimizer.iterations
    assert io.read_header(old)["format_version"] == 1
    io.convert(old, tmp_path / "new.mdl")
    assert io.read_header(tmp_path / "new.mdl")["format_version"] == 2
    from safetensors.numpy import load_file

    assert sorted(load_file(tmp_path / "new.mdl")) == sorted(
        [*model.state_dict(), *(f"optimizer/{name}" for name in optimizer.state_dict())])
    again, extra, optimizer_state = io.load(tmp_path / "new.mdl")
    np.testing.assert_array_equal(predict(again, ids), predict(model, ids))
    assert extra == {"note": "kept"} and optimizer_state is not None
    io.convert(old)  # in place
    assert io.read_header(old)["format_version"] == 2


@pytest.mark.parametrize("position", [1, 12, 40, -40, -3])
def test_a_flipped_byte_in_a_format_1_file_is_rejected(tmp_path, position):
    data = bytearray(legacy_bytes(sequential_model(), (None, 5)))
    data[position] ^= 0x01
    (tmp_path / "old.mdl").write_bytes(bytes(data))
    with pytest.raises(io.ModelFileError):
        io.load(tmp_path / "old.mdl")


# ---------------------------------------------------------------- atomic save
def test_a_crash_mid_save_leaves_the_previous_file_intact(saved, monkeypatch):
    path, model, _, ids = saved
    before = path.read_bytes()
    real_chunks = layout.file_chunks

    def crash_after_two_chunks(*args):
        for count, chunk in enumerate(real_chunks(*args)):
            if count == 3:
                raise OSError("disk full (simulated)")
            yield chunk

    monkeypatch.setattr(layout, "file_chunks", crash_after_two_chunks)
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

    monkeypatch.setattr(os, "replace", failing_replace)
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
