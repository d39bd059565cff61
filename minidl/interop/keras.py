"""Keras 2 models in minidl: the architecture from a model's JSON, the weights from HDF5.

    model = load_keras_model("deeplearning_LSTM.json", "deeplearning_LSTM.h5")
    model = load_keras_model("deeplearning_1DConv.json", lambdas={"lambda_1": "sum", ...})

The JSON is what Keras 2's `model.to_json()` writes (Sequential or functional `Model`),
also when it was JSON-encoded once more (a JSON string holding the JSON, as the notebook's
files are). The weights are what `model.save_weights()` writes (h5py reads them; `pip
install -e ".[keras]"`): per layer a group `<layer>` with the attribute `weight_names`
and the arrays `<layer>/<scope>/<weight>:0`; a whole-model file from `model.save()` works
too (its weights sit under `model_weights`). The result is a `minidl.models.GraphModel`
in eval mode, which saves with `minidl.io.save` like any minidl model.

The layers the importer knows, and their minidl twins: InputLayer (the model's input),
Embedding, Dropout, Conv1D, ELU, Activation, MaxPooling1D, GlobalMaxPooling1D,
GlobalAveragePooling1D, Flatten, Dense, LSTM, GRU, Concatenate and BatchNormalization.
Keras' weight layouts are minidl's (they were chosen to be): Dense kernel (in, units),
Conv1D kernel (width, in, filters), LSTM kernel (in, 4 units) and recurrent_kernel
(units, 4 units) with the gates in the order i, f, c, o and one bias, GRU gates z, r, h;
so every array is copied as it is, after its shape has been checked against the layer.
Keras 2's LSTM and GRU default to `recurrent_activation="hard_sigmoid"`,
clip(0.2 x + 0.5, 0, 1), which minidl's recurrent layers take too.

What the importer refuses, with an error that names the layer (`KerasImportError`, a
ValueError): a layer class it does not know, a setting its minidl twin does not have
(an LSTM with dropout, a causal Conv1D, an L1 regulariser, masking, shared layers), a
weight that is missing, extra or of the wrong shape, and an unreadable file. Settings that
only steer training in Keras (initialisers, constraints, `trainable`) are not carried
over: the weights come from the file.

**Lambda layers are never executed.** Keras stores a Lambda's function as marshalled
Python bytecode; unmarshalling it would run whatever the file's author wrote. The
importer never reads that field. A Lambda is an error unless the caller maps it, by
name, to a known reduction over the time axis (axis 1): "sum", "mean" or "max"
(`REDUCTIONS`; the notebook's conv + fully connected model sums, `K.sum(x, axis=1)`). The
Lambda's declared output shape, when the file states one, must match the reduction's.
"""
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from minidl import backend
from minidl.models.graph import GraphModel
from minidl.nn import (
    ELU,
    GRU,
    LSTM,
    Activation,
    BatchNormalization,
    Concatenate,
    Conv1D,
    Dense,
    Dropout,
    Embedding,
    Flatten,
    GlobalAveragePooling1D,
    GlobalMaxPooling1D,
    GlobalSumPooling1D,
    MaxPooling1D,
)
from minidl.nn import activations
from minidl.ops.recurrent import RECURRENT_ACTIVATIONS

#: The reductions over the time axis a Lambda layer may be mapped to, by name.
REDUCTIONS = {"sum": GlobalSumPooling1D, "mean": GlobalAveragePooling1D, "max": GlobalMaxPooling1D}

#: The model classes of Keras 2's JSON: Sequential, and the functional Model
#: ("Functional" in tf.keras 2.4 and later).
MODEL_CLASSES = ("Sequential", "Model", "Functional")


class KerasImportError(ValueError):
    """A Keras file that cannot be imported: unreadable, not Keras 2, or holding a layer,
    setting or weight that minidl cannot take over exactly."""


@dataclass
class KerasLayer:
    """One layer of a Keras model's JSON: its name, class, config and the layers it reads."""

    name: str
    class_name: str
    config: dict
    inbound: list

    def fail(self, source, problem):
        return KerasImportError(f"{source}: layer {self.name!r} ({self.class_name}): {problem}")


@dataclass
class KerasGraph:
    """A Keras model's layers in their JSON order, with the inputs and outputs by name."""

    name: str
    layers: list
    inputs: list  # KerasLayer of each InputLayer, in the model's input order
    outputs: list  # layer names


# ------------------------------------------------------------------ the JSON
def read_keras_config(path):
    """The model JSON at `path` as a dict, decoding it twice when it is a JSON string
    that holds the JSON (as `json.dump(model.to_json(), f)` writes)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if isinstance(data, str):
            data = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise KerasImportError(f"{path}: not a Keras model JSON ({error})") from None
    if not isinstance(data, dict) or data.get("class_name") not in MODEL_CLASSES or "config" not in data:
        raise KerasImportError(f"{path}: not a Keras model JSON (expected class_name one of "
                               f"{', '.join(MODEL_CLASSES)} and a config)")
    version = str(data.get("keras_version", "2"))
    if not version.startswith("2"):
        raise KerasImportError(f"{path}: written by Keras {version}; this importer reads Keras 2 files")
    return data


def _batch_shape(layer, source):
    shape = layer.config.get("batch_input_shape")
    if not isinstance(shape, list) or not shape:
        raise layer.fail(source, "the input has no batch_input_shape")
    return tuple(shape)


def _input_layer(name, shape, dtype):
    return KerasLayer(name, "InputLayer", {"batch_input_shape": list(shape), "dtype": dtype}, [])


def _sequential_graph(config, source):
    """Keras 2.1's Sequential config is the list of layers; later ones {"name", "layers"}."""
    specs = config if isinstance(config, list) else config.get("layers", [])
    name = "sequential" if isinstance(config, list) else config.get("name", "sequential")
    if not specs:
        raise KerasImportError(f"{source}: the Sequential model has no layers")
    layers = [KerasLayer(spec["config"].get("name", f"layer_{i}"), spec["class_name"], spec["config"], [])
              for i, spec in enumerate(specs)]
    if layers[0].class_name == "InputLayer":
        first, layers = layers[0], layers[1:]
    else:
        # As Keras does: the input is made from the first layer's batch_input_shape; ids for an Embedding.
        dtype = "int32" if layers[0].class_name == "Embedding" else layers[0].config.get("dtype", "float32")
        first = _input_layer(f"{layers[0].name}_input", _batch_shape(layers[0], source), dtype)
    previous = first.name
    for layer in layers:
        layer.inbound, previous = [previous], layer.name
    return KerasGraph(name, layers, [first], [previous])


def _functional_graph(config, source):
    layers = []
    for spec in config.get("layers", []):
        layer = KerasLayer(spec["name"], spec["class_name"], spec.get("config", {}), [])
        nodes = spec.get("inbound_nodes", [])
        if len(nodes) > 1:
            raise layer.fail(source, f"called {len(nodes)} times; shared layers are not supported")
        for entry in nodes[0] if nodes else []:
            source_name, node_index, tensor_index = entry[0], entry[1], entry[2]
            keywords = entry[3] if len(entry) > 3 else {}
            if node_index != 0 or tensor_index != 0 or keywords:
                raise layer.fail(source, f"reads {entry}; only the single output of a layer called once, "
                                         "without call arguments, is supported")
            layer.inbound.append(source_name)
        layers.append(layer)
    by_name = {layer.name: layer for layer in layers}
    inputs = []
    for entry in config.get("input_layers", []):
        layer = by_name.get(entry[0])
        if layer is None or layer.class_name != "InputLayer":
            raise KerasImportError(f"{source}: the model's input {entry[0]!r} is not an InputLayer")
        inputs.append(layer)
    outputs = [entry[0] for entry in config.get("output_layers", [])]
    if not inputs or not outputs:
        raise KerasImportError(f"{source}: the model names no input_layers or output_layers")
    body = [layer for layer in layers if layer.class_name != "InputLayer"]
    return KerasGraph(config.get("name", "model"), body, inputs, outputs)


def keras_graph(model_json, source="the model JSON"):
    """The KerasGraph of a model JSON dict (from `read_keras_config`)."""
    try:
        if model_json["class_name"] == "Sequential":
            return _sequential_graph(model_json["config"], source)
        return _functional_graph(model_json["config"], source)
    except (KeyError, IndexError, TypeError, AttributeError) as error:
        raise KerasImportError(f"{source}: a malformed Keras model JSON ({type(error).__name__}: {error})") from None


# ------------------------------------------------------------- the layers
def _setting(layer, source, key, allowed, default=None):
    """The config value `key`, which must be one of `allowed`."""
    value = layer.config.get(key, default)
    if value not in allowed:
        raise layer.fail(source, f"{key}={value!r} is not supported (minidl supports "
                                 f"{' or '.join(repr(a) for a in allowed)})")
    return value


def _no_setting(layer, source, *keys):
    """Settings minidl's twin lacks: each must be absent, null, false or zero."""
    for key in keys:
        if layer.config.get(key):
            raise layer.fail(source, f"{key}={layer.config[key]!r} is not supported by minidl's "
                                     f"{layer.class_name}")


def _l2(layer, source, key):
    """An L1L2 regulariser config -> its L2 factor (None when absent); L1 is refused."""
    spec = layer.config.get(key)
    if spec is None:
        return None
    settings = spec.get("config", {}) if isinstance(spec, dict) else {}
    if not isinstance(spec, dict) or spec.get("class_name") != "L1L2" or settings.get("l1", 0):
        raise layer.fail(source, f"{key}={spec!r}: only L2 regularisers are supported")
    return float(settings.get("l2", 0)) or None


def _activation(layer, source, key="activation"):
    name = layer.config.get(key, "linear")
    try:
        activations.get(name)
    except ValueError as error:
        raise layer.fail(source, str(error)) from None
    return None if name == "linear" else name


def _one(layer, source, key):
    """A 1D size that Keras writes as [n] (or n)."""
    value = layer.config.get(key)
    values = value if isinstance(value, list) else [value]
    if len(values) != 1 or not isinstance(values[0], int):
        raise layer.fail(source, f"{key}={value!r} is not one integer")
    return values[0]


def _embedding(layer, source):
    _no_setting(layer, source, "mask_zero", "activity_regularizer")
    config = layer.config
    return Embedding(config["input_dim"], config["output_dim"],
                     embeddings_regularizer=_l2(layer, source, "embeddings_regularizer"),
                     input_length=config.get("input_length"), name=layer.name), ["embeddings"]


def _dense(layer, source):
    _no_setting(layer, source, "bias_regularizer", "activity_regularizer")
    use_bias = bool(layer.config.get("use_bias", True))
    return (Dense(layer.config["units"], activation=_activation(layer, source), use_bias=use_bias,
                  kernel_regularizer=_l2(layer, source, "kernel_regularizer"), name=layer.name),
            ["kernel", "bias"] if use_bias else ["kernel"])


def _conv1d(layer, source):
    _no_setting(layer, source, "bias_regularizer", "activity_regularizer")
    _setting(layer, source, "data_format", ("channels_last",), default="channels_last")
    use_bias = bool(layer.config.get("use_bias", True))
    conv = Conv1D(layer.config["filters"], _one(layer, source, "kernel_size"),
                  strides=_one(layer, source, "strides"),
                  padding=_setting(layer, source, "padding", ("valid", "same")),
                  dilation_rate=_one(layer, source, "dilation_rate"), activation=_activation(layer, source),
                  use_bias=use_bias, kernel_regularizer=_l2(layer, source, "kernel_regularizer"), name=layer.name)
    return conv, ["kernel", "bias"] if use_bias else ["kernel"]


def _max_pooling1d(layer, source):
    strides = layer.config.get("strides")
    return MaxPooling1D(_one(layer, source, "pool_size"),
                        strides=None if strides is None else _one(layer, source, "strides"),
                        padding=_setting(layer, source, "padding", ("valid", "same")), name=layer.name), []


def _recurrent(layer, source):
    """LSTM or GRU: the settings both take, checked, as keyword arguments."""
    _setting(layer, source, "activation", ("tanh",))
    _setting(layer, source, "use_bias", (True,), default=True)
    _no_setting(layer, source, "return_state", "go_backwards", "stateful", "dropout", "recurrent_dropout",
                "activity_regularizer")
    return dict(
        units=layer.config["units"], return_sequences=bool(layer.config.get("return_sequences", False)),
        recurrent_activation=_setting(layer, source, "recurrent_activation", tuple(RECURRENT_ACTIVATIONS)),
        kernel_regularizer=_l2(layer, source, "kernel_regularizer"),
        recurrent_regularizer=_l2(layer, source, "recurrent_regularizer"),
        bias_regularizer=_l2(layer, source, "bias_regularizer"), name=layer.name)


def _lstm(layer, source):
    settings = _recurrent(layer, source)
    lstm = LSTM(unit_forget_bias=bool(layer.config.get("unit_forget_bias", True)), **settings)
    return lstm, ["kernel", "recurrent_kernel", "bias"]


def _gru(layer, source):
    settings = _recurrent(layer, source)
    # Keras 2's GRU defaults to reset_after=False (the 2014 paper's form), unlike Keras 3's.
    gru = GRU(reset_after=bool(layer.config.get("reset_after", False)), **settings)
    return gru, ["kernel", "recurrent_kernel", "bias"]


def _batch_normalization(layer, source):
    _setting(layer, source, "axis", (-1, [-1]), default=-1)
    _no_setting(layer, source, "beta_regularizer", "gamma_regularizer")
    config = layer.config
    center, scale = bool(config.get("center", True)), bool(config.get("scale", True))
    norm = BatchNormalization(momentum=config.get("momentum", 0.99), epsilon=config.get("epsilon", 1e-3),
                              center=center, scale=scale, name=layer.name)
    # Keras stores gamma and beta only when the layer scales and centres.
    return norm, ["gamma"] * scale + ["beta"] * center + ["moving_mean", "moving_variance"]


def _concatenate(layer, source):
    if len(layer.inbound) < 2:
        raise layer.fail(source, f"joins {len(layer.inbound)} input; Concatenate needs two or more")
    return Concatenate(axis=layer.config.get("axis", -1), name=layer.name), []


def _dropout(layer, source):
    _no_setting(layer, source, "noise_shape")
    return Dropout(layer.config["rate"], name=layer.name), []


def _flatten(layer, source):
    _setting(layer, source, "data_format", ("channels_last", None), default="channels_last")
    return Flatten(name=layer.name), []


def _global_pooling(layer_class):
    def convert(layer, source):
        _setting(layer, source, "data_format", ("channels_last",), default="channels_last")
        return layer_class(name=layer.name), []
    return convert


#: Keras class name -> (layer, source) -> (the minidl layer, the weight names Keras stores, in order).
CONVERTERS = {
    "Embedding": _embedding,
    "Dropout": _dropout,
    "Conv1D": _conv1d,
    "ELU": lambda layer, source: (ELU(layer.config.get("alpha", 1.0), name=layer.name), []),
    "Activation": lambda layer, source: (Activation(_activation(layer, source) or "linear", name=layer.name), []),
    "MaxPooling1D": _max_pooling1d,
    "GlobalMaxPooling1D": _global_pooling(GlobalMaxPooling1D),
    "GlobalAveragePooling1D": _global_pooling(GlobalAveragePooling1D),
    "Flatten": _flatten,
    "Dense": _dense,
    "LSTM": _lstm,
    "GRU": _gru,
    "Concatenate": _concatenate,
    "BatchNormalization": _batch_normalization,
}


def _lambda(layer, source, lambdas):
    """The reduction a Lambda is mapped to. Its `function` field (marshalled bytecode)
    is never read."""
    if layer.name not in lambdas:
        raise layer.fail(source, "its function is marshalled Python bytecode, which minidl never runs; if it "
                                 "reduces over the time axis, map it by name to one of "
                                 f"{', '.join(REDUCTIONS)} (lambdas={{{layer.name!r}: 'sum'}}, "
                                 f"or on the command line --lambda {layer.name}=sum)")
    reduction = lambdas[layer.name]
    if reduction not in REDUCTIONS:
        raise layer.fail(source, f"mapped to {reduction!r}; the known reductions are {', '.join(REDUCTIONS)}")
    return REDUCTIONS[reduction](name=layer.name), []


def _declared_output_shape(layer):
    """A Lambda's output shape (batch excluded) when the file states it as data, else None."""
    shape = layer.config.get("output_shape")
    if layer.config.get("output_shape_type", "raw") != "raw" or not isinstance(shape, list):
        return None  # absent, or itself bytecode (output_shape_type "lambda"): never read
    return tuple(shape)


def convert_layers(graph, source="the model JSON", lambdas=None):
    """[(KerasLayer, minidl layer, Keras weight names)] for the graph's layers."""
    lambdas = dict(lambdas or {})
    names = {layer.name for layer in graph.layers if layer.class_name == "Lambda"}
    unknown = sorted(set(lambdas) - names)
    if unknown:
        raise KerasImportError(f"{source}: lambdas maps {unknown}, which are not Lambda layers of the model "
                               f"(its Lambda layers: {sorted(names) or 'none'})")
    converted = []
    for layer in graph.layers:
        if layer.class_name != "Lambda" and layer.class_name not in CONVERTERS:
            raise layer.fail(source, f"minidl does not know this layer class (it imports "
                                     f"{', '.join(['InputLayer', 'Lambda'] + sorted(CONVERTERS))})")
        try:
            if layer.class_name == "Lambda":
                module, weights = _lambda(layer, source, lambdas)
            else:
                module, weights = CONVERTERS[layer.class_name](layer, source)
        except KerasImportError:
            raise
        except KeyError as error:
            raise layer.fail(source, f"its config lacks {error}") from None
        except (ValueError, TypeError) as error:  # a value minidl's layer refuses
            raise layer.fail(source, str(error)) from None
        converted.append((layer, module, weights))
    return converted


def build_graph_model(graph, converted, source="the model JSON"):
    """The GraphModel of a KerasGraph and its converted layers; each mapped Lambda's
    declared output shape checked against its reduction's."""
    shapes, dtypes = [], []
    for layer in graph.inputs:
        _no_setting(layer, source, "sparse")
        shapes.append(_batch_shape(layer, source))
        dtypes.append(layer.config.get("dtype", "float32"))
    try:
        model = GraphModel([module for _, module, _ in converted],
                           {layer.name: layer.inbound for layer, _, _ in converted},
                           [layer.name for layer in graph.inputs], graph.outputs,
                           shapes[0] if len(shapes) == 1 else shapes,
                           dtypes[0] if len(dtypes) == 1 else dtypes, name=graph.name)
    except (ValueError, TypeError) as error:
        raise KerasImportError(f"{source}: the layers do not form a model minidl can build: {error}") from None
    for layer, _, _ in converted:
        declared = _declared_output_shape(layer) if layer.class_name == "Lambda" else None
        if declared is not None and tuple(model.layer_output_shape(layer.name)[1:]) != declared:
            raise layer.fail(source, f"declares the output shape {declared}, the mapped reduction gives "
                                     f"{tuple(model.layer_output_shape(layer.name)[1:])}")
    return model


# ------------------------------------------------------------------ the weights
def _h5py():
    try:
        import h5py
    except ImportError:
        raise ImportError("reading Keras HDF5 weights needs h5py: pip install -e \".[keras]\"") from None
    return h5py


def _text(value):
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _assign(module, name, array, fail):
    """Copy `array` into the layer's weight or buffer `name`, after checking its shape."""
    parameters, buffers = dict(module.named_parameters()), dict(module.named_buffers())
    current = parameters[name].data if name in parameters else buffers[name]
    if tuple(array.shape) != tuple(current.shape):
        raise fail(f"weight {name} has shape {tuple(array.shape)} in the file, the layer expects "
                   f"{tuple(current.shape)}")
    data = backend.get_array_module(current).asarray(array.astype(current.dtype))
    if name in parameters:
        parameters[name].data = data
    else:
        module.set_buffer(name, data)


def _stored_weights(group):
    """{weight name: array} of one layer's group (names from `weight_names`, e.g.
    'output_2/kernel:0' -> 'kernel')."""
    stored = {}
    for full_name in (_text(n) for n in group.attrs.get("weight_names", [])):
        stored[full_name.split("/")[-1].split(":")[0]] = np.asarray(group[full_name])
    return stored


def load_keras_weights(converted, path):
    """Copy the arrays of the Keras HDF5 weights file at `path` into the converted layers
    (from `convert_layers`, already built), checking that every layer's weights are
    there, with the names and shapes the layer expects, and that the file holds no
    weights of layers the architecture lacks."""
    h5py = _h5py()
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise KerasImportError(f"{path}: not a readable HDF5 file ({error})") from None
    try:
        with handle:
            group = handle["model_weights"] if "model_weights" in handle else handle
            if "layer_names" not in group.attrs:
                raise KerasImportError(f"{path}: holds no Keras weights (no layer_names attribute; "
                                       "expected a file from Keras 2's model.save_weights or model.save)")
            in_file = [_text(name) for name in group.attrs["layer_names"]]
            known = {layer.name for layer, _, _ in converted}
            strangers = [name for name in in_file if name not in known and len(group[name].attrs.get("weight_names", []))]
            if strangers:
                raise KerasImportError(f"{path}: holds weights of layers the architecture does not have: {strangers}")
            for layer, module, expected in converted:
                def fail(problem, layer=layer):
                    return layer.fail(path, problem)

                if not expected:
                    continue
                if layer.name not in in_file or layer.name not in group:
                    raise fail("the weights file holds no weights for this layer")
                stored = _stored_weights(group[layer.name])
                if sorted(stored) != sorted(expected):
                    raise fail(f"the file holds the weights {sorted(stored)}, the layer has {sorted(expected)}")
                for name in expected:
                    _assign(module, name, stored[name], fail)
    except (OSError, KeyError, RuntimeError) as error:
        raise KerasImportError(f"{path}: cannot read the weights ({type(error).__name__}: {error}); "
                               "is the file complete?") from None


# ------------------------------------------------------------------ the model
def load_keras_model(config, weights=None, lambdas=None):
    """The Keras 2 model of the JSON at `config` as a minidl GraphModel in eval mode,
    with the weights of the HDF5 file at `weights` (None: minidl's initial weights, as
    a fresh Keras model would have its own). `lambdas` maps Lambda layer names to a
    reduction over the time axis ("sum", "mean", "max"; see the module docstring)."""
    graph = keras_graph(read_keras_config(config), str(config))
    converted = convert_layers(graph, str(config), lambdas)
    model = build_graph_model(graph, converted, str(config))
    if weights is not None:
        load_keras_weights(converted, weights)
    return model.eval()
