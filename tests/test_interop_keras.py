"""Keras 2 import (minidl.interop.keras, `minidl import-keras`).

The oracle is an independent NumPy forward of Keras 2.1.2's inference equations written
here (`keras_forward`), which walks the Keras JSON itself and reads the HDF5 arrays with
h5py, sharing nothing with minidl's layers. It runs on small models written in Keras'
formats by these tests, always, and on the notebook's own trained models in
../shared/data/keras-seed-models on the 400 URLs of url-incertum-sample (those tests
skip, saying so, where ../shared is absent). Then: Lambda bytecode is never unmarshalled,
the bad files (truncated HDF5, a weight of the wrong shape, an unknown layer, an
unmapped Lambda) give one clear error each, and the command line's file round-trips.
"""
import base64
import importlib.util
import csv
import json
import marshal
import os
import shutil
import string
import sys
from pathlib import Path

import numpy as np
import pytest

h5py = pytest.importorskip("h5py", reason='the Keras importer reads HDF5 with h5py (pip install -e ".[keras]")')

from minidl.cli import main  # noqa: E402
from minidl.interop.keras import KerasImportError, load_keras_model  # noqa: E402
from minidl.io import load  # noqa: E402
from minidl.models import GraphModel  # noqa: E402
from minidl.nn import LSTM  # noqa: E402
from minidl.train import predict  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("MINIDL_DATA_DIR") or REPO.parent / "shared" / "data")
SEED = DATA / "keras-seed-models" / "original"
SAMPLE = DATA / "url-incertum-sample" / "original" / "url_data_sample_deep_learning.csv"
seed_data = pytest.mark.skipif(not (SEED.is_dir() and SAMPLE.is_file()),
                               reason=f"shared data absent: needs {SEED} and {SAMPLE}")
CONV_LAMBDAS = {f"lambda_{i}": "sum" for i in range(1, 5)}


# ------------------------------------------- Keras 2.1.2's equations, in NumPy
def keras_hard_sigmoid(x):
    return np.clip(0.2 * x + 0.5, 0.0, 1.0)  # keras/backend/tensorflow_backend.py, 2.1.2


ACTIVATIONS = {
    "linear": lambda x: x, "tanh": np.tanh, "relu": lambda x: np.maximum(x, 0),
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)), "hard_sigmoid": keras_hard_sigmoid,
}


def keras_conv1d(x, kernel, bias, padding):
    """TensorFlow's conv1d: 'same' pads (width - 1) // 2 in front and the rest behind."""
    width = kernel.shape[0]
    if padding == "same":
        front = (width - 1) // 2
        x = np.pad(x, ((0, 0), (front, width - 1 - front), (0, 0)))
    steps = x.shape[1] - width + 1
    return sum(x[:, j:j + steps] @ kernel[j] for j in range(width)) + bias


def keras_lstm(x, weights, config):
    """LSTMCell.call, implementation 1: the gates' input parts x W_g + b_g, then
    i = s(. + h U_i), f = s(. + h U_f), c = f c + i act(. + h U_c), o = s(. + h U_o), h = o act(c)."""
    act, rec = ACTIVATIONS[config["activation"]], ACTIVATIONS[config["recurrent_activation"]]
    W, U, b = (np.split(weights[name], 4, axis=-1) for name in ("kernel", "recurrent_kernel", "bias"))
    h = c = np.zeros((x.shape[0], config["units"]))
    states = []
    for t in range(x.shape[1]):
        x_t = x[:, t]
        i = rec(x_t @ W[0] + b[0] + h @ U[0])
        f = rec(x_t @ W[1] + b[1] + h @ U[1])
        c = f * c + i * act(x_t @ W[2] + b[2] + h @ U[2])
        o = rec(x_t @ W[3] + b[3] + h @ U[3])
        h = o * act(c)
        states.append(h)
    return np.stack(states, axis=1) if config.get("return_sequences") else h


def keras_gru(x, weights, config):
    """GRUCell.call (reset_after=False, Keras 2's form): z = s(x W_z + b_z + h U_z),
    r = s(x W_r + b_r + h U_r), hh = act(x W_h + b_h + (r h) U_h), h = z h + (1 - z) hh."""
    act, rec = ACTIVATIONS[config["activation"]], ACTIVATIONS[config["recurrent_activation"]]
    W, U, b = (np.split(weights[name], 3, axis=-1) for name in ("kernel", "recurrent_kernel", "bias"))
    h = np.zeros((x.shape[0], config["units"]))
    for t in range(x.shape[1]):
        x_t = x[:, t]
        z = rec(x_t @ W[0] + b[0] + h @ U[0])
        r = rec(x_t @ W[1] + b[1] + h @ U[1])
        h = z * h + (1 - z) * act(x_t @ W[2] + b[2] + (r * h) @ U[2])
    return h


def keras_layer(kind, config, inputs, weights):
    """One layer at inference (Dropout is the identity there)."""
    x = inputs[0]
    if kind == "Embedding":
        return weights["embeddings"][x]
    if kind in ("Dropout", "InputLayer"):
        return x
    if kind == "Conv1D":
        return ACTIVATIONS[config["activation"]](keras_conv1d(x, weights["kernel"], weights["bias"], config["padding"]))
    if kind == "ELU":
        return np.where(x > 0, x, config["alpha"] * (np.exp(np.minimum(x, 0)) - 1))
    if kind == "MaxPooling1D":
        size, steps = config["pool_size"][0], x.shape[1] // config["pool_size"][0]
        return x[:, :steps * size].reshape(x.shape[0], steps, size, x.shape[2]).max(axis=2)
    if kind == "GlobalMaxPooling1D":
        return x.max(axis=1)
    if kind == "Lambda":
        return x.sum(axis=1)  # the notebook's source: Lambda(lambda x: K.sum(x, axis=1))
    if kind == "LSTM":
        return keras_lstm(x, weights, config)
    if kind == "GRU":
        return keras_gru(x, weights, config)
    if kind == "Concatenate":
        return np.concatenate(inputs, axis=config["axis"])
    if kind == "Dense":
        return ACTIVATIONS[config["activation"]](x @ weights["kernel"] + weights["bias"])
    if kind == "BatchNormalization":
        normalised = (x - weights["moving_mean"]) / np.sqrt(weights["moving_variance"] + config["epsilon"])
        return normalised * weights["gamma"] + weights["beta"]
    raise AssertionError(f"the test's Keras forward has no {kind}")


def keras_forward(model_json, weights, ids):
    """The functional model's output for `ids`, in float64, walking the JSON's layers."""
    values = {}
    for spec in model_json["config"]["layers"]:
        nodes = spec["inbound_nodes"]
        inputs = [values[entry[0]] for entry in nodes[0]] if nodes else [ids]
        layer_weights = {name: array.astype(np.float64) for name, array in weights.get(spec["name"], {}).items()}
        values[spec["name"]] = keras_layer(spec["class_name"], spec["config"], inputs, layer_weights)
    return values[model_json["config"]["output_layers"][0][0]]


def read_weights(path):
    """{layer: {weight: array}} from a Keras 2 weights file, read here with h5py."""
    with h5py.File(path, "r") as handle:
        return {layer: {name.split("/")[-1].split(":")[0]: handle[layer][name][()]
                        for name in handle[layer].attrs["weight_names"].astype(str)}
                for layer in handle.attrs["layer_names"].astype(str)}


def notebook_ids(urls, max_len=75):
    """The notebook's tokeniser: printable.index(c) + 1, pad_sequences(maxlen) (pre, pre)."""
    ids = np.zeros((len(urls), max_len), dtype=np.int64)
    for row, url in enumerate(urls):
        tokens = [string.printable.index(c) + 1 for c in url if c in string.printable][-max_len:]
        if tokens:
            ids[row, -len(tokens):] = tokens
    return ids


# --------------------------------------------------- Keras' files, written here
def layer_json(kind, name, config, inbound):
    return {"name": name, "class_name": kind, "config": dict(config, name=name),
            "inbound_nodes": [[[source, 0, 0, {}] for source in inbound]] if inbound else []}


def functional_json(layers, name="model_t"):
    """What Keras 2.1.2's model.to_json() writes for [(class, name, config, inbound)],
    the first layer being the input and the last the output."""
    return {"class_name": "Model", "keras_version": "2.1.2", "backend": "tensorflow",
            "config": {"name": name, "layers": [layer_json(*layer) for layer in layers],
                       "input_layers": [[layers[0][1], 0, 0]], "output_layers": [[layers[-1][1], 0, 0]]}}


def write_weights(path, layer_names, weights, scopes=None):
    """model.save_weights' layout: per layer the attribute weight_names and the arrays
    <layer>/<scope>/<weight>:0 (the scope is the layer's name, or `scopes[layer]`)."""
    scopes = scopes or {}
    with h5py.File(path, "w") as handle:
        handle.attrs["layer_names"] = np.array([name.encode() for name in layer_names])
        handle.attrs["keras_version"], handle.attrs["backend"] = b"2.1.2", b"tensorflow"
        for layer in layer_names:
            group = handle.create_group(layer)
            arrays = weights.get(layer, {})
            names = [f"{scopes.get(layer, layer)}/{weight}:0" for weight in arrays]
            group.attrs["weight_names"] = np.array([n.encode() for n in names]) if names else np.array([])
            for full_name, array in zip(names, arrays.values()):
                group.create_dataset(full_name, data=array)
    return path


def url_model_layers(recurrent_activation="hard_sigmoid"):
    """The notebook's lstm_conv in miniature: ids (12) -> Embedding -> Dropout -> Conv1D(same)
    -> ELU -> MaxPooling1D -> LSTM -> Dense(sigmoid)."""
    return [
        ("InputLayer", "main_input", {"batch_input_shape": [None, 12], "dtype": "int32", "sparse": False}, []),
        ("Embedding", "embedding_1", {"input_dim": 100, "output_dim": 4, "mask_zero": False, "input_length": 12,
                                      "embeddings_regularizer": {"class_name": "L1L2",
                                                                 "config": {"l1": 0.0, "l2": 1e-4}}},
         ["main_input"]),
        ("Dropout", "dropout_1", {"rate": 0.25, "noise_shape": None}, ["embedding_1"]),
        ("Conv1D", "conv1d_1", {"filters": 6, "kernel_size": [4], "strides": [1], "padding": "same",
                                "dilation_rate": [1], "activation": "linear", "use_bias": True}, ["dropout_1"]),
        ("ELU", "elu_1", {"alpha": 1.0}, ["conv1d_1"]),
        ("MaxPooling1D", "max_pooling1d_1", {"pool_size": [2], "strides": [2], "padding": "valid"}, ["elu_1"]),
        ("LSTM", "lstm_1", {"units": 5, "activation": "tanh", "recurrent_activation": recurrent_activation,
                            "use_bias": True, "unit_forget_bias": True, "return_sequences": False,
                            "dropout": 0.0, "recurrent_dropout": 0.0, "implementation": 1}, ["max_pooling1d_1"]),
        ("Dense", "output", {"units": 1, "activation": "sigmoid", "use_bias": True}, ["lstm_1"]),
    ]


def random_weights(rng, shapes):
    return {layer: {name: rng.standard_normal(shape).astype(np.float32) for name, shape in arrays.items()}
            for layer, arrays in shapes.items()}


URL_MODEL_WEIGHTS = {
    "embedding_1": {"embeddings": (100, 4)}, "conv1d_1": {"kernel": (4, 4, 6), "bias": (6,)},
    "lstm_1": {"kernel": (6, 20), "recurrent_kernel": (5, 20), "bias": (20,)},
    "output": {"kernel": (5, 1), "bias": (1,)},
}


@pytest.fixture
def url_model(tmp_path):
    """(JSON path, weights path, model JSON) of the miniature lstm_conv, its JSON encoded
    twice as the notebook's files are and its output weights under another scope
    (output/output_2/kernel:0), as in the notebook's conv + LSTM file."""
    model_json = functional_json(url_model_layers())
    config = tmp_path / "url.json"
    config.write_text(json.dumps(json.dumps(model_json)))
    names = [layer[1] for layer in url_model_layers()]
    weights = write_weights(tmp_path / "url.h5", names, random_weights(np.random.default_rng(5), URL_MODEL_WEIGHTS),
                            scopes={"output": "output_2"})
    return config, weights, model_json


def some_urls(n=40, seed=0):
    rng = np.random.default_rng(seed)
    alphabet = list(string.ascii_lowercase + string.digits + "./-?=_")
    return [rng.choice(list(string.ascii_lowercase)) + "".join(rng.choice(alphabet, rng.integers(3, 30)))
            for _ in range(n)]


# ----------------------------------------------- models written here: always
def test_a_functional_url_model_scores_as_keras_would(url_model):
    config, weights, model_json = url_model
    model = load_keras_model(config, weights)
    assert isinstance(model, GraphModel) and not model.training
    assert model.get_layer("lstm_1").recurrent_activation == "hard_sigmoid"
    ids = notebook_ids(some_urls(), max_len=12)
    expected = keras_forward(model_json, read_weights(weights), ids)
    np.testing.assert_allclose(predict(model, ids), expected, rtol=0, atol=1e-5)
    assert np.ptp(expected) > 0.05  # the weights make the scores differ from URL to URL


def branched_layers(lambda_function):
    """conv_fully's shape in miniature, plus a GRU branch: three branches (Conv1D -> sum
    Lambda, Conv1D -> global max, GRU) concatenated -> Dense(relu) -> BatchNormalization
    -> Dense(sigmoid)."""
    lambda_config = {"function": lambda_function, "function_type": "lambda", "arguments": {},
                     "output_shape": [3], "output_shape_type": "raw"}
    return [
        ("InputLayer", "ids", {"batch_input_shape": [None, 9], "dtype": "int32"}, []),
        ("Embedding", "embedding", {"input_dim": 20, "output_dim": 4}, ["ids"]),
        ("Conv1D", "conv_a", {"filters": 3, "kernel_size": [2], "strides": [1], "padding": "same",
                              "dilation_rate": [1], "activation": "linear"}, ["embedding"]),
        ("Conv1D", "conv_b", {"filters": 3, "kernel_size": [3], "strides": [1], "padding": "valid",
                              "dilation_rate": [1], "activation": "relu"}, ["embedding"]),
        ("Lambda", "lambda_1", lambda_config, ["conv_a"]),
        ("GlobalMaxPooling1D", "max_b", {}, ["conv_b"]),
        ("GRU", "gru", {"units": 2, "activation": "tanh", "recurrent_activation": "hard_sigmoid",
                        "return_sequences": False}, ["embedding"]),
        ("Concatenate", "join", {"axis": -1}, ["lambda_1", "max_b", "gru"]),
        ("Dense", "hidden", {"units": 4, "activation": "relu"}, ["join"]),
        ("BatchNormalization", "norm", {"axis": -1, "momentum": 0.99, "epsilon": 1e-3, "center": True,
                                        "scale": True}, ["hidden"]),
        ("Dense", "output", {"units": 1, "activation": "sigmoid"}, ["norm"]),
    ]


BRANCHED_WEIGHTS = {
    "embedding": {"embeddings": (20, 4)}, "conv_a": {"kernel": (2, 4, 3), "bias": (3,)},
    "conv_b": {"kernel": (3, 4, 3), "bias": (3,)},
    "gru": {"kernel": (4, 6), "recurrent_kernel": (2, 6), "bias": (6,)},
    "hidden": {"kernel": (8, 4), "bias": (4,)},
    "norm": {"gamma": (4,), "beta": (4,), "moving_mean": (4,), "moving_variance": (4,)},
    "output": {"kernel": (4, 1), "bias": (1,)},
}


def marshalled_payload(marker):
    """A Lambda `function` field holding real marshalled bytecode that, if it ever ran,
    would write `marker`."""
    code = compile(f"open({str(marker)!r}, 'w').write('executed')", "<lambda>", "exec")
    return [base64.b64encode(marshal.dumps(code)).decode("ascii"), None, None]


def guard_marshal(monkeypatch):
    """marshal.loads and marshal.load raise, except for Python's import system reading
    a .pyc: a test passes only if the importer unmarshals nothing."""
    real = {name: getattr(marshal, name) for name in ("loads", "load")}

    def guarded(name):
        def call(*args, **kwargs):
            if sys._getframe(1).f_globals.get("__name__") == "importlib._bootstrap_external":
                return real[name](*args, **kwargs)
            raise AssertionError(f"the importer called marshal.{name}")
        return call

    for name in real:
        monkeypatch.setattr(marshal, name, guarded(name))


@pytest.fixture
def refuse_to_unmarshal(monkeypatch):
    guard_marshal(monkeypatch)


def test_the_payload_is_live_bytecode_and_the_guard_catches_an_unmarshal(tmp_path, monkeypatch):
    marker = tmp_path / "ran"
    exec(marshal.loads(base64.b64decode(marshalled_payload(marker)[0])))  # what a careless importer would do
    assert marker.read_text() == "executed"
    guard_marshal(monkeypatch)
    with pytest.raises(AssertionError, match="the importer called marshal.loads"):
        marshal.loads(marshal.dumps(1))


@pytest.fixture
def branched_model(tmp_path):
    marker = tmp_path / "lambda_ran"
    model_json = functional_json(branched_layers(marshalled_payload(marker)), name="branched")
    config = tmp_path / "branched.json"
    config.write_text(json.dumps(model_json))
    weights = random_weights(np.random.default_rng(7), BRANCHED_WEIGHTS)
    weights["norm"]["moving_variance"] = np.abs(weights["norm"]["moving_variance"]) + 0.5
    names = [layer[1] for layer in branched_layers(None)]
    return config, write_weights(tmp_path / "branched.h5", names, weights), model_json, marker


def test_lambda_bytecode_is_never_unmarshalled_and_a_mapped_lambda_sums(branched_model, refuse_to_unmarshal, rng):
    config, weights, model_json, marker = branched_model
    with pytest.raises(KerasImportError, match=r"layer 'lambda_1' \(Lambda\): its function is marshalled "
                                               r"Python bytecode, which minidl never runs"):
        load_keras_model(config, weights)
    model = load_keras_model(config, weights, lambdas={"lambda_1": "sum"})
    assert not marker.exists()
    ids = rng.integers(0, 20, (16, 9))
    np.testing.assert_allclose(predict(model, ids), keras_forward(model_json, read_weights(weights), ids),
                               rtol=0, atol=1e-5)
    assert model.get_layer("gru").recurrent_activation == "hard_sigmoid" and not model.get_layer("gru").reset_after


@pytest.mark.parametrize("lambdas, message", [
    ({"lambda_1": "median"}, r"'lambda_1' \(Lambda\): mapped to 'median'; the known reductions are sum, mean, max"),
    ({"lambda_1": "sum", "lambda_9": "sum"}, r"lambdas maps \['lambda_9'\], which are not Lambda layers"),
])
def test_a_bad_lambda_mapping_is_named(branched_model, lambdas, message):
    with pytest.raises(KerasImportError, match=message):
        load_keras_model(branched_model[0], branched_model[1], lambdas=lambdas)


def test_a_lambda_whose_declared_shape_the_reduction_does_not_give_is_refused(tmp_path):
    layers = branched_layers(["AAAA", None, None])
    layers[4][2]["output_shape"] = [9, 3]  # what no reduction over time gives
    config = tmp_path / "m.json"
    config.write_text(json.dumps(functional_json(layers)))
    with pytest.raises(KerasImportError, match=r"'lambda_1' \(Lambda\): declares the output shape \(9, 3\), "
                                               r"the mapped reduction gives \(3,\)"):
        load_keras_model(config, lambdas={"lambda_1": "sum"})


@pytest.mark.parametrize("form", ["keras_2_1", "keras_2_2"])
def test_a_sequential_json_imports_as_its_functional_twin(url_model, tmp_path, form):
    config, weights, _ = url_model
    layers = [{"class_name": kind, "config": dict(settings, name=name)} for kind, name, settings, _ in
              url_model_layers()[1:]]
    layers[0]["config"]["batch_input_shape"] = [None, 12]  # Keras puts the input's shape on the first layer
    body = layers if form == "keras_2_1" else {"name": "sequential_1", "layers": layers}
    sequential = tmp_path / "sequential.json"
    sequential.write_text(json.dumps({"class_name": "Sequential", "keras_version": "2.1.2", "config": body}))
    weights_file = tmp_path / "sequential.h5"
    shutil.copy(weights, weights_file)
    with h5py.File(weights_file, "a") as handle:  # a Sequential's file has no input layer's group
        handle.attrs["layer_names"] = np.array([n for n in handle.attrs["layer_names"] if n != b"main_input"])
    model = load_keras_model(sequential, weights_file)
    assert model.input_shape == (None, 12) and model.input_dtype == "int32"
    ids = notebook_ids(some_urls(), max_len=12)
    np.testing.assert_array_equal(predict(model, ids), predict(load_keras_model(config, weights), ids))


def test_a_whole_model_file_from_model_save_works_too(url_model, tmp_path):
    config, weights, _ = url_model
    whole = tmp_path / "whole.h5"
    with h5py.File(weights, "r") as source, h5py.File(whole, "w") as target:
        source.copy(source["/"], target, name="model_weights")
        for key, value in source.attrs.items():
            target["model_weights"].attrs[key] = value
        target.attrs["model_config"] = config.read_text()
    ids = notebook_ids(some_urls(), max_len=12)
    np.testing.assert_array_equal(predict(load_keras_model(config, whole), ids),
                                  predict(load_keras_model(config, weights), ids))


# ----------------------------------------------------------------- bad files
def test_a_truncated_hdf5_file_is_one_clear_error(url_model, tmp_path):
    config, weights, _ = url_model
    for keep in (0.3, 0.9):
        cut = tmp_path / f"cut_{keep}.h5"
        data = weights.read_bytes()
        cut.write_bytes(data[:int(len(data) * keep)])
        with pytest.raises(KerasImportError, match=str(cut)):
            load_keras_model(config, cut)


def test_a_weight_of_the_wrong_shape_names_its_layer(url_model, tmp_path):
    config, weights, _ = url_model
    with h5py.File(weights, "a") as handle:
        del handle["lstm_1/lstm_1/recurrent_kernel:0"]
        handle["lstm_1/lstm_1/recurrent_kernel:0"] = np.zeros((5, 16), dtype=np.float32)
    with pytest.raises(KerasImportError, match=r"layer 'lstm_1' \(LSTM\): weight recurrent_kernel has shape "
                                               r"\(5, 16\) in the file, the layer expects \(5, 20\)"):
        load_keras_model(config, weights)


def test_missing_and_extra_weights_are_named(url_model, tmp_path):
    config, weights, _ = url_model
    other = write_weights(tmp_path / "other.h5", ["main_input", "embedding_1", "stranger"],
                          random_weights(np.random.default_rng(0), {"embedding_1": {"embeddings": (100, 4)},
                                                                    "stranger": {"kernel": (2, 2)}}))
    with pytest.raises(KerasImportError, match=r"holds weights of layers the architecture does not have: \['stranger'\]"):
        load_keras_model(config, other)
    with h5py.File(other, "a") as handle:
        del handle["stranger"]
        handle.attrs["layer_names"] = np.array([b"main_input", b"embedding_1"])
    with pytest.raises(KerasImportError, match=r"layer 'conv1d_1' \(Conv1D\): the weights file holds no weights"):
        load_keras_model(config, other)


def edited_url_model(tmp_path, layer, **changes):
    model_json = functional_json(url_model_layers())
    spec = next(s for s in model_json["config"]["layers"] if s["name"] == layer)
    spec.update({key: value for key, value in changes.items() if key == "class_name"})
    spec["config"].update({key: value for key, value in changes.items() if key != "class_name"})
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(model_json))
    return path


def test_an_unknown_layer_is_one_clear_error(tmp_path):
    config = edited_url_model(tmp_path, "dropout_1", class_name="SpatialDropout1D")
    with pytest.raises(KerasImportError, match=r"layer 'dropout_1' \(SpatialDropout1D\): minidl does not know "
                                               r"this layer class \(it imports .*Conv1D"):
        load_keras_model(config)


@pytest.mark.parametrize("layer, changes, message", [
    ("lstm_1", {"dropout": 0.2}, "dropout=0.2 is not supported by minidl's LSTM"),
    ("lstm_1", {"recurrent_activation": "hard_sigmoid_keras3"}, "recurrent_activation='hard_sigmoid_keras3' is "
                                                                "not supported"),
    ("lstm_1", {"activation": "relu"}, "activation='relu' is not supported"),
    ("conv1d_1", {"padding": "causal"}, "padding='causal' is not supported"),
    ("embedding_1", {"mask_zero": True}, "mask_zero=True is not supported"),
    ("embedding_1", {"embeddings_regularizer": {"class_name": "L1L2", "config": {"l1": 0.1, "l2": 0.0}}},
     "only L2 regularisers are supported"),
    ("output", {"activation": "swish"}, "unknown activation 'swish'"),
])
def test_a_setting_minidl_cannot_take_over_is_named(tmp_path, layer, changes, message):
    with pytest.raises(KerasImportError, match=f"layer '{layer}'.*{message}"):
        load_keras_model(edited_url_model(tmp_path, layer, **changes))


@pytest.mark.parametrize("text, message", [
    ("{not json", "not a Keras model JSON"),
    (json.dumps({"class_name": "Dense", "config": {}}), "expected class_name one of Sequential, Model"),
    (json.dumps({"class_name": "Model", "keras_version": "1.2.2", "config": {}}), "written by Keras 1.2.2"),
])
def test_a_file_that_is_not_a_keras_2_model_json_is_refused(tmp_path, text, message):
    path = tmp_path / "m.json"
    path.write_text(text)
    with pytest.raises(KerasImportError, match=message):
        load_keras_model(path)


def test_a_weights_file_that_is_not_keras_is_refused(url_model, tmp_path):
    other = tmp_path / "plain.h5"
    with h5py.File(other, "w") as handle:
        handle["x"] = np.zeros(3)
    with pytest.raises(KerasImportError, match="holds no Keras weights"):
        load_keras_model(url_model[0], other)


# ---------------------------------------------------------------- command line
def run(argv, capsys):
    try:
        status = main([str(arg) for arg in argv])
    except SystemExit as exit_:
        status = exit_.code
    out, err = capsys.readouterr()
    return status, out, err


def write_url_csv(path, urls, labels):
    with open(path, "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["url", "isMalicious"])
        writer.writerows(zip(urls, labels))
    return path


def test_import_keras_writes_a_model_file_predict_evaluate_and_summary_use(url_model, tmp_path, capsys):
    config, weights, model_json = url_model
    output = tmp_path / "imported.mdl"
    status, out, err = run(["import-keras", "--config", config, "--weights", weights, "--output", output], capsys)
    assert status == 0, err
    assert "model_t (Keras 2.1.2): 7 layers, 748 parameters as Keras counts them" in out
    urls = some_urls(12)
    status, out, err = run(["predict", "--model", output, *urls], capsys)
    assert status == 0, err
    printed = np.array([float(line.split("\t")[0]) for line in out.splitlines()])
    expected = keras_forward(model_json, read_weights(weights), notebook_ids(urls, max_len=12)).ravel()
    np.testing.assert_allclose(printed, expected, atol=1e-4)  # printed with 4 decimals
    labels = np.arange(len(urls)) % 2
    status, out, err = run(["evaluate", "--model", output, "--data", write_url_csv(tmp_path / "u.csv", urls, labels)],
                           capsys)
    cross_entropy = -np.mean(labels * np.log(expected) + (1 - labels) * np.log(1 - expected))
    penalty = 1e-4 * np.sum(read_weights(weights)["embedding_1"]["embeddings"].astype(np.float64) ** 2)  # its L2
    assert status == 0 and f"loss              {cross_entropy + penalty:.4f}" in out, out + err
    status, out, err = run(["summary", "--model", output], capsys)
    assert status == 0 and "lstm_1 (LSTM)" in out and "Total params: 748" in out, out + err


def test_import_save_load_predict_is_identical(url_model, tmp_path, capsys):
    config, weights, _ = url_model
    output = tmp_path / "m.mdl"
    assert run(["import-keras", "--config", config, "--weights", weights, "--output", output], capsys)[0] == 0
    model, extra, _ = load(output)
    assert extra["tokenizer"]["max_len"] == 12 and extra["tokenizer"]["truncating"] == "pre"
    assert extra["tokenizer"]["padding"] == "pre" and extra["tokenizer"]["vocabulary"] == string.printable
    ids = notebook_ids(some_urls(), max_len=12)
    np.testing.assert_array_equal(predict(model, ids), predict(load_keras_model(config, weights), ids))


def test_import_keras_maps_lambdas_from_the_command_line(branched_model, tmp_path, capsys, refuse_to_unmarshal):
    config, weights, _, marker = branched_model
    output = tmp_path / "b.mdl"
    status, _, err = run(["import-keras", "--config", config, "--weights", weights, "--output", output], capsys)
    assert status == 1 and len(err.strip().splitlines()) == 1 and "--lambda lambda_1=sum" in err, err
    status, out, err = run(["import-keras", "--config", config, "--weights", weights, "--output", output,
                            "--lambda", "lambda_1=sum"], capsys)
    assert status == 0 and output.is_file() and not marker.exists(), err


def test_import_keras_has_help(capsys):
    status, out, _ = run(["import-keras", "--help"], capsys)
    assert status == 0 and out.startswith("usage: minidl import-keras") and "--lambda NAME=REDUCTION" in out


@pytest.mark.parametrize("argv, message", [
    (["--lambda", "lambda_1"], "expected NAME=REDUCTION"),
    (["--weights", "missing.h5"], "--weights missing.h5: no such file"),
])
def test_import_keras_command_line_errors(url_model, tmp_path, capsys, argv, message):
    status, _, err = run(["import-keras", "--config", url_model[0], "--output", tmp_path / "x.mdl", *argv], capsys)
    assert status in (1, 2) and message in err and "Traceback" not in err, err


# ------------------------------------------------ the notebook's trained models
def sample():
    with open(SAMPLE, newline="", encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    return [row["url"] for row in rows], np.array([int(row["isMalicious"]) for row in rows])


def seed_json(stem):
    return json.loads(json.loads((SEED / f"deeplearning_{stem}.json").read_text()))


@seed_data
@pytest.mark.shared_data
@pytest.mark.parametrize("stem, accuracy, roc_auc", [("LSTM", 0.8375, 0.9077), ("1DConvLSTM", 0.8925, 0.9608)])
def test_the_lectures_trained_models_score_as_keras_2_1_2_would(stem, accuracy, roc_auc):
    from sklearn.metrics import roc_auc_score

    urls, labels = sample()
    ids = notebook_ids(urls)
    expected = keras_forward(seed_json(stem), read_weights(SEED / f"deeplearning_{stem}.h5"), ids).ravel()
    model = load_keras_model(SEED / f"deeplearning_{stem}.json", SEED / f"deeplearning_{stem}.h5")
    np.testing.assert_allclose(predict(model, ids).ravel(), expected, rtol=0, atol=1e-5)
    assert np.mean((expected > 0.5) == labels) == pytest.approx(accuracy, abs=1e-9)
    assert roc_auc_score(labels, expected) == pytest.approx(roc_auc, abs=5e-5)


@seed_data
@pytest.mark.shared_data
def test_the_lectures_conv_fully_builds_with_keras_parameter_count_and_runs_no_bytecode(refuse_to_unmarshal, rng):
    path = SEED / "deeplearning_1DConv.json"
    with pytest.raises(KerasImportError, match="'lambda_1' \\(Lambda\\)"):
        load_keras_model(path)
    model = load_keras_model(path, lambdas=CONV_LAMBDAS)
    buffers = sum(values.size for _, values in model.named_buffers())
    assert model.count_params() + buffers == 2_227_329  # Keras' summary: Total params
    assert sum(p.size for p in model.parameters() if p.requires_grad) == 2_223_233
    # Its (untrained) weights through the test's Keras equations: the same graph.
    weights = {layer.name: layer.state_dict() for layer in model.layers}
    ids = rng.integers(0, 100, (8, 75))
    np.testing.assert_allclose(predict(model, ids), keras_forward(seed_json("1DConv"), weights, ids),
                               rtol=1e-4, atol=1e-5)


@seed_data
@pytest.mark.shared_data
def test_the_command_line_imports_the_lectures_conv_fully_and_summarises_it(tmp_path, capsys, refuse_to_unmarshal):
    output = tmp_path / "conv_fully.mdl"
    status, out, err = run(["import-keras", "--config", SEED / "deeplearning_1DConv.json", "--output", output,
                            "--lambda", ",".join(CONV_LAMBDAS) + "=sum"], capsys)
    assert status == 0 and "untrained" in out, err
    status, out, err = run(["summary", "--model", output], capsys)
    assert status == 0, err
    assert "lambda_4 (GlobalSumPooling1D)" in out and "concatenate_1 (Concatenate)" in out
    assert "Total params: 2,227,329" in out and "Trainable params: 2,223,233" in out and "Non-trainable params: 4,096" in out


@seed_data
@pytest.mark.shared_data
def test_the_command_line_imports_the_lectures_lstm_and_scores_its_urls(tmp_path, capsys):
    output = tmp_path / "lstm.mdl"
    status, out, err = run(["import-keras", "--config", SEED / "deeplearning_LSTM.json",
                            "--weights", SEED / "deeplearning_LSTM.h5", "--output", output], capsys)
    assert status == 0 and "11,553 parameters" in out, err
    status, out, err = run(["predict", "--model", output, "naureen.net/etisalat.ae/index2.php",
                            "sixt.com/php/reservation?language=en_US"], capsys)
    verdicts = [line.split("\t")[1] for line in out.splitlines()]
    assert status == 0 and verdicts == ["malicious", "benign"], out + err  # as the notebook's notebook says
    status, out, err = run(["evaluate", "--model", output, "--data", SAMPLE], capsys)
    assert status == 0 and "accuracy          0.8375" in out, out + err


@seed_data
@pytest.mark.shared_data
def test_the_walkthrough_imports_the_lectures_models_and_scores_its_urls(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("seed_walkthrough", REPO / "examples" / "seed_walkthrough.py")
    walkthrough = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(walkthrough)
    loaded = walkthrough.step_notebook_models(SEED, tmp_path, walkthrough.NEW_URLS[:2])
    output = capsys.readouterr().out
    assert "=== Step 11:" in output and "2,227,329 parameters as Keras counts them" in output
    lines = {line.split()[0]: [float(v) for v in line.split()[1:]] for line in output.splitlines()
             if line.startswith(("naureen.net", "sixt.com"))}
    assert lines["naureen.net/etisalat.ae/index2.php"][0] > 0.5 > lines["sixt.com/php/reservation?language=en_US"][0]
    assert set(loaded) == {"keras_lstm", "keras_conv"}
    assert {path.name for path in tmp_path.iterdir()} == {
        "notebook_simple_lstm.mdl", "notebook_lstm_conv.mdl", "notebook_conv_fully.mdl"}


@seed_data
@pytest.mark.shared_data
@pytest.mark.parametrize("stem, accuracy", [("LSTM", 0.795), ("1DConvLSTM", 0.8775)])
def test_the_seed_weights_with_sigmoid_gates_score_as_the_tour_says(stem, accuracy):
    urls, labels = sample()
    model = load_keras_model(SEED / f"deeplearning_{stem}.json", SEED / f"deeplearning_{stem}.h5")
    ids = notebook_ids(urls)
    hard = predict(model, ids).ravel()
    next(layer for layer in model.layers if isinstance(layer, LSTM)).recurrent_activation = "sigmoid"
    soft = predict(model, ids).ravel()
    assert np.mean((soft > 0.5) == labels) == pytest.approx(accuracy, abs=1e-9)
    if stem == "LSTM":  # docs/tour.md, stop 21
        from sklearn.metrics import roc_auc_score

        assert roc_auc_score(labels, soft) == pytest.approx(0.882, abs=5e-4)
        assert np.abs(soft - hard).max() == pytest.approx(0.87, abs=5e-3)


@pytest.mark.parametrize("edit, message", [
    (lambda spec: spec["config"].pop("units"), r"layer 'lstm_1' \(LSTM\): its config lacks 'units'"),
    (lambda spec: spec["config"].update(units=0), r"layer 'lstm_1' \(LSTM\): LSTM: units must be positive"),
    (lambda spec: spec.pop("class_name"), "a malformed Keras model JSON"),
])
def test_a_malformed_config_is_one_clear_error(tmp_path, edit, message):
    model_json = functional_json(url_model_layers())
    edit(next(spec for spec in model_json["config"]["layers"] if spec["name"] == "lstm_1"))
    path = tmp_path / "m.json"
    path.write_text(json.dumps(model_json))
    with pytest.raises(KerasImportError, match=message):
        load_keras_model(path)
