"""Export a minidl model to ONNX, for ONNX Runtime and the other tools that read it.

    from minidl.interop.onnx import export
    export(model, "model.onnx", tokenizer=tokenizer)      # or `minidl export-onnx`

The graph is built with the `onnx` package's helpers (pip install -e ".[onnx]"), one
small function per layer class in one table (`EXPORTERS`); a model exports when every
module it holds has an entry, and a module without one is an OnnxExportError naming it.
What it covers: every URL architecture (minidl.models.ARCHITECTURES) and their
ensembles (MeanEnsemble, `minidl ensemble`), the Keras models
`minidl.interop.keras` imports, and Sequential and GraphModel models built from Dense,
Embedding, EmbeddingBag, Conv1D, Conv2D, the poolings, Dropout, BatchNormalization,
the activation layers, Flatten, Concatenate, LSTM, GRU and SimpleRNN.

The graph computes what `predict` computes (eval mode): Dropout is the identity and
BatchNormalization uses its moving statistics. Its input is what the model reads, the
token ids (batch, width) as int32 for the URL models, with a dynamic batch axis
("batch"); the tokeniser stays outside the graph and its settings go into the model's
metadata (`metadata_props`: "minidl.tokenizer", JSON), so a service can rebuild it
(docs/interop.md shows the few lines). The output is the model's, the probability
(batch, 1) for the URL models.

How the layers map (weights are converted once, at export):
- Conv1D/Conv2D and the windowed poolings run channels first in ONNX: a Transpose
  around each; 'same' padding is written out as explicit pads, Keras' way (the odd
  pixel after). SumPooling is AveragePool counting the zero padding, times the window.
- LSTM, GRU and SimpleRNN are ONNX's own LSTM, GRU and RNN operators. ONNX orders the
  LSTM's gates i, o, f, c where Keras (and minidl) order i, f, c, o, and keeps
  (4*units, features) matrices where Keras keeps (features, 4*units): the blocks are
  reordered and transposed. The GRU's gates are z, r, h in both; Keras' reset_after=True
  (the reset gate applied after the recurrent product, with a second bias) is ONNX's
  linear_before_reset=1. Keras 2's hard_sigmoid, clip(0.2 x + 0.5, 0, 1), is ONNX's
  HardSigmoid activation with alpha 0.2, beta 0.5.
- BatchNormalization runs on the channel axis 1 in ONNX: a Transpose around it for
  inputs of more than two axes.
"""
import json

import numpy as np

from minidl import backend
from minidl.autograd import Tensor
from minidl.models.ensemble import MeanEnsemble
from minidl.models.graph import GraphModel
from minidl.models.sequential import Sequential
from minidl.models.url import ConvBranch, ConvFully, ConvMax, DenseBlock, LSTMConv, SimpleLSTM
from minidl.models.urlnet import MaxOverTimeBranch, URLNet
from minidl.models.wide import HashedLinear, NgramLinear, WideConvMax
from minidl.nn import (GRU, LSTM, ELU, Activation, AveragePooling1D, AveragePooling2D, BatchNormalization,
                       Concatenate, Conv1D, Conv2D, Dense, Dropout, Embedding, EmbeddingBag, Flatten,
                       GlobalAveragePooling1D, GlobalAveragePooling2D, GlobalMaxPooling1D, GlobalMaxPooling2D,
                       GlobalSumPooling1D, GlobalSumPooling2D, MaxPooling1D, MaxPooling2D, ReLU, SimpleRNN, Softmax,
                       SumPooling1D, SumPooling2D)
from minidl.ops.conv import window_geometry
from minidl.version import __version__

#: The ONNX operator set the graphs use (LSTM, GRU and RNN as of opset 14, the Reduce*
#: operators with their axes as an input as of 18).
OPSET = 18


def _array(value, dtype):
    """A parameter (a Tensor) or buffer (an array), on any device, as a NumPy array."""
    return np.asarray(backend.to_numpy(value.data if isinstance(value, Tensor) else value), dtype=dtype)


class OnnxExportError(ValueError):
    """A model minidl cannot write as ONNX; the message names the layer."""


def _onnx():
    try:
        import onnx
    except ImportError:
        raise ImportError('ONNX export needs the onnx package: pip install -e ".[onnx]"') from None
    return onnx


class Value:
    """A tensor of the graph being built: its name, and its shape with None for the
    batch (and any other size not known at export)."""

    def __init__(self, name, shape):
        self.name, self.shape = name, tuple(shape)


class GraphBuilder:
    """The nodes and weights of the ONNX graph being built, with fresh names."""

    def __init__(self, float_dtype):
        self.onnx = _onnx()
        self.float_dtype = np.dtype(float_dtype)
        self.id_dtype = np.dtype(np.int32)
        self.nodes, self.initializers, self._used = [], [], set()

    def fresh(self, hint):
        name, count = hint, 1
        while name in self._used:
            count += 1
            name = f"{hint}_{count}"
        self._used.add(name)
        return name

    def constant(self, array, hint):
        """A weight or constant of the graph (an initializer): its name."""
        name = self.fresh(hint)
        self.initializers.append(self.onnx.numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def floats(self, values, hint):
        return self.constant(np.asarray(values, dtype=self.float_dtype), hint)

    def ints(self, values, hint):
        return self.constant(np.asarray(values, dtype=np.int64), hint)

    def zero_id(self):
        """0 in the dtype of the model's integer input (ids > 0 mark what counts)."""
        return self.constant(np.zeros(1, dtype=self.id_dtype), "zero_id")

    def weight(self, value, hint):
        """A parameter (a Tensor) or buffer (an array) of a layer, as a constant."""
        return self.constant(_array(value, self.float_dtype), hint)

    def op(self, op_type, inputs, shape, hint, **attributes):
        """One node with one output: the output's Value."""
        name = self.fresh(hint)
        names = [value.name if isinstance(value, Value) else value for value in inputs]
        self.nodes.append(self.onnx.helper.make_node(op_type, names, [name], name=name, **attributes))
        return Value(name, shape)

    def layer(self, module, inputs):
        """The output Value of `module` applied to the Values `inputs`, by EXPORTERS."""
        exporter = EXPORTERS.get(type(module))
        if exporter is None:
            raise OnnxExportError(f"layer {module.name!r} ({type(module).__name__}) has no ONNX form in minidl "
                                  f"(minidl.interop.onnx exports {', '.join(sorted(c.__name__ for c in EXPORTERS))})")
        return exporter(self, module, inputs)


# ------------------------------------------------------------ shared pieces
def _activation(g, name, x, hint):
    """x through the activation called `name` (Keras' names, as minidl.nn.activations)."""
    if name is None or name == "linear":
        return x
    simple = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "elu": "Elu"}
    if name in simple:
        return g.op(simple[name], [x], x.shape, hint)
    if name == "hard_sigmoid":
        return g.op("HardSigmoid", [x], x.shape, hint, alpha=0.2, beta=0.5)
    if name == "softmax":
        return g.op("Softmax", [x], x.shape, hint, axis=-1)
    if name == "log_softmax":
        return g.op("LogSoftmax", [x], x.shape, hint, axis=-1)
    if name == "leaky_relu":
        return g.op("LeakyRelu", [x], x.shape, hint, alpha=0.2)
    raise OnnxExportError(f"{hint}: the activation {name!r} has no ONNX form in minidl")


def _transpose(g, x, perm, hint):
    return g.op("Transpose", [x], tuple(x.shape[axis] for axis in perm), hint, perm=list(perm))


def _channels_first(g, x, hint):
    """(batch, *spatial, c) -> (batch, c, *spatial), ONNX's layout for Conv and pooling."""
    rank = len(x.shape)
    return _transpose(g, x, [0, rank - 1, *range(1, rank - 1)], f"{hint}_channels_first")


def _channels_last(g, x, hint):
    rank = len(x.shape)
    return _transpose(g, x, [0, *range(2, rank), 1], f"{hint}_channels_last")


def _pads(layer, spatial, windows, strides, dilations):
    """ONNX's pads [begin..., end...] for minidl's padding ('same' as Keras pads)."""
    if layer.padding == "valid":
        return [0] * (2 * len(spatial))
    if any(size is None for size in spatial):
        raise OnnxExportError(f"layer {layer.name!r}: 'same' padding needs the input's size, unknown at export")
    geometry = [window_geometry(layer.name, "window", "axis", size, window, stride, dilation, "same")
                for size, window, stride, dilation in zip(spatial, windows, strides, dilations)]
    return [begin for _, begin, _ in geometry] + [end for _, _, end in geometry]


def _slice(g, x, start, stop, hint):
    """x[:, start:stop] of a (batch, width) input."""
    return g.op("Slice", [x, g.ints([start], "start"), g.ints([stop], "stop"), g.ints([1], "axis_1")],
                (x.shape[0], stop - start), hint)


def _unsqueeze_last(g, x, hint):
    return g.op("Unsqueeze", [x, g.ints([-1], "last_axis")], x.shape + (1,), hint)


def _reduce(g, op_type, x, axes, hint, keepdims=0):
    axes = [axis % len(x.shape) for axis in axes]
    shape = tuple(1 if axis in axes else size for axis, size in enumerate(x.shape)) if keepdims else \
        tuple(size for axis, size in enumerate(x.shape) if axis not in axes)
    return g.op(op_type, [x, g.ints(axes, "axes")], shape, hint, keepdims=keepdims)


def _bag(g, layer, ids, mask=None, weights=None):
    """EmbeddingBag: the sum or mean of the rows of each sample's ids (batch, length),
    counting only where the float `mask` is 1, each row times `weights` (mode sum)."""
    rows = g.op("Gather", [g.weight(layer.embeddings, f"{layer.name}.embeddings"), ids],
                ids.shape + (layer.output_dim,), f"{layer.name}_rows", axis=0)
    factor = weights if weights is not None else mask
    if factor is not None:
        rows = g.op("Mul", [rows, _unsqueeze_last(g, factor, f"{layer.name}_factor")], rows.shape,
                    f"{layer.name}_weighted")
    total = _reduce(g, "ReduceSum", rows, [1], f"{layer.name}_sum")
    if layer.mode == "sum":
        return total
    if mask is None:
        return _reduce(g, "ReduceMean", rows, [1], f"{layer.name}_mean")
    count = _reduce(g, "ReduceSum", mask, [1], f"{layer.name}_count", keepdims=1)
    count = g.op("Max", [count, g.floats(1, "one")], count.shape, f"{layer.name}_count_at_least_1")
    return g.op("Div", [total, count], total.shape, f"{layer.name}_mean")  # an empty bag: zeros


def _chain(g, layers, x):
    for layer in layers:
        x = g.layer(layer, [x])
    return x


# ------------------------------------------------------------ layers
def _dense(g, layer, inputs):
    (x,) = inputs
    y = g.op("MatMul", [x, g.weight(layer.kernel, f"{layer.name}.kernel")], x.shape[:-1] + (layer.units,),
             f"{layer.name}_matmul")
    if layer.use_bias:
        y = g.op("Add", [y, g.weight(layer.bias, f"{layer.name}.bias")], y.shape, f"{layer.name}_bias")
    return _activation(g, layer.activation_name, y, f"{layer.name}_{layer.activation_name}")


def _embedding(g, layer, inputs):
    (ids,) = inputs
    return g.op("Gather", [g.weight(layer.embeddings, f"{layer.name}.embeddings"), ids],
                ids.shape + (layer.output_dim,), layer.name, axis=0)


def _embedding_bag(g, layer, inputs):
    (ids,) = inputs  # as a layer of a Sequential or a graph: every id counts
    return _bag(g, layer, ids)


def _conv(g, layer, inputs):
    """Conv1D and Conv2D: kernel (*k, c_in, filters) -> ONNX's W (filters, c_in, *k)."""
    (x,) = inputs
    rank = len(layer.kernel_size)
    kernel = _array(layer.kernel, g.float_dtype)
    names = [g.constant(kernel.transpose(rank + 1, rank, *range(rank)), f"{layer.name}.kernel")]
    if layer.use_bias:
        names.append(g.weight(layer.bias, f"{layer.name}.bias"))
    out_shape = layer.compute_output_shape(x.shape)
    y = g.op("Conv", [_channels_first(g, x, layer.name), *names], (out_shape[0], out_shape[-1]) + out_shape[1:-1],
             layer.name, kernel_shape=list(layer.kernel_size), strides=list(layer.strides),
             dilations=list(layer.dilation_rate),
             pads=_pads(layer, x.shape[1:-1], layer.kernel_size, layer.strides, layer.dilation_rate))
    return _activation(g, layer.activation_name, _channels_last(g, y, layer.name),
                       f"{layer.name}_{layer.activation_name}")


def _pooling(op_type, **attributes):
    def export(g, layer, inputs):
        (x,) = inputs
        out_shape = layer.compute_output_shape(x.shape)
        pads = _pads(layer, x.shape[1:-1], layer.pool_size, layer.strides, (1,) * len(layer.pool_size))
        y = g.op(op_type, [_channels_first(g, x, layer.name)], (out_shape[0], out_shape[-1]) + out_shape[1:-1],
                 layer.name, kernel_shape=list(layer.pool_size), strides=list(layer.strides), pads=pads,
                 **attributes)
        if isinstance(layer, (SumPooling1D, SumPooling2D)):  # the mean over the zero-padded window, times its size
            y = g.op("Mul", [y, g.floats(np.prod(layer.pool_size), "window_size")], y.shape, f"{layer.name}_sum")
        return _channels_last(g, y, layer.name)
    return export


def _global_pooling(op_type):
    def export(g, layer, inputs):
        (x,) = inputs
        return _reduce(g, op_type, x, list(range(1, len(x.shape) - 1)), layer.name)
    return export


def _dropout(g, layer, inputs):
    return inputs[0]  # the identity outside training


def _batch_normalization(g, layer, inputs):
    (x,) = inputs
    names = [g.weight(getattr(layer, weight), f"{layer.name}.{weight}")
             for weight in ("gamma", "beta", "moving_mean", "moving_variance")]
    if len(x.shape) == 2:
        return g.op("BatchNormalization", [x, *names], x.shape, layer.name, epsilon=layer.epsilon)
    y = g.op("BatchNormalization", [_channels_first(g, x, layer.name), *names],
             (x.shape[0], x.shape[-1]) + x.shape[1:-1], layer.name, epsilon=layer.epsilon)
    return _channels_last(g, y, layer.name)


def _activation_layer(g, layer, inputs):
    return _activation(g, layer.activation_name, inputs[0], layer.name)


def _relu(g, layer, inputs):
    return g.op("Relu", inputs, inputs[0].shape, layer.name)


def _elu(g, layer, inputs):
    return g.op("Elu", inputs, inputs[0].shape, layer.name, alpha=layer.alpha)


def _softmax(g, layer, inputs):
    return g.op("Softmax", inputs, inputs[0].shape, layer.name, axis=layer.axis)


def _flatten(g, layer, inputs):
    return g.op("Flatten", inputs, layer.compute_output_shape(inputs[0].shape), layer.name, axis=1)


def _concatenate(g, layer, inputs):
    return _concat(g, inputs, layer.axis, layer.name)


def _concat(g, inputs, axis, hint):
    rank = len(inputs[0].shape)
    axis %= rank
    size = None if any(x.shape[axis] is None for x in inputs) else sum(x.shape[axis] for x in inputs)
    return g.op("Concat", inputs, inputs[0].shape[:axis] + (size,) + inputs[0].shape[axis + 1:], hint, axis=axis)


def _gate_activations(layer, count):
    """The activations of ONNX's recurrent operators: the gates' (f), then tanh (g, h)."""
    gate = "HardSigmoid" if layer.recurrent_activation == "hard_sigmoid" else "Sigmoid"
    attributes = {"activations": [gate] + ["Tanh"] * (count - 1)}
    if gate == "HardSigmoid":  # Keras 2's clip(0.2 x + 0.5, 0, 1); alpha and beta go to the activations that take them
        attributes.update(activation_alpha=[0.2], activation_beta=[0.5])
    return attributes


def _recurrent(op_type, order, count):
    """LSTM, GRU, SimpleRNN on ONNX's operators: `order` picks Keras' gate blocks in
    ONNX's order; `count` is the number of activations the operator takes."""
    def export(g, layer, inputs):
        (x,) = inputs
        units = layer.units
        kernel, recurrent, bias = (_array(w, g.float_dtype) for w in (layer.kernel, layer.recurrent_kernel, layer.bias))

        def onnx_matrix(matrix):  # (in, gates*units) blocks in Keras' order -> (gates*units, in) in ONNX's
            return np.concatenate([matrix[:, gate * units:(gate + 1) * units].T for gate in order])[None]

        def onnx_bias(vector):
            return np.concatenate([vector[gate * units:(gate + 1) * units] for gate in order])

        if bias.ndim == 2:  # GRU(reset_after=True): an input and a recurrent bias
            biases = np.concatenate([onnx_bias(bias[0]), onnx_bias(bias[1])])
        else:
            biases = np.concatenate([onnx_bias(bias), np.zeros_like(bias)])
        attributes = {"hidden_size": units, "direction": "forward"}
        if isinstance(layer, GRU):
            attributes["linear_before_reset"] = int(layer.reset_after)
        attributes.update(_gate_activations(layer, count) if count > 1 else {"activations": ["Tanh"]})
        time_major = _transpose(g, x, [1, 0, 2], f"{layer.name}_time_major")
        names = [time_major.name, g.constant(onnx_matrix(kernel), f"{layer.name}.W"),
                 g.constant(onnx_matrix(recurrent), f"{layer.name}.R"), g.constant(biases[None], f"{layer.name}.B")]
        every, last = g.fresh(f"{layer.name}_Y"), g.fresh(f"{layer.name}_Y_h")
        g.nodes.append(g.onnx.helper.make_node(op_type, names, [every, last], name=g.fresh(layer.name),
                                               **attributes))
        batch, steps = x.shape[0], x.shape[1]
        if layer.return_sequences:  # Y (time, 1, batch, units) -> (batch, time, units)
            y = g.op("Squeeze", [every, g.ints([1], "axis_1")], (steps, batch, units), f"{layer.name}_states")
            return _transpose(g, y, [1, 0, 2], f"{layer.name}_batch_major")
        # Y_h (1, batch, units) -> (batch, units)
        return g.op("Squeeze", [last, g.ints([0], "axis_0")], (batch, units), f"{layer.name}_last")
    return export


# ------------------------------------------------------------ models
def _sequential(g, model, inputs):
    return _chain(g, model.layers, inputs[0])


def _graph_model(g, model, inputs):
    values = dict(zip(model.inputs, inputs))
    for layer in model.layers:
        values[layer.name] = g.layer(layer, [values[source] for source in model.inbound[layer.name]])
    outputs = [values[name] for name in model.outputs]
    return outputs[0] if len(outputs) == 1 else outputs


def _url_chain(g, model, inputs):
    """SimpleLSTM and LSTMConv: the embedding, then layers_after_embedding() in order."""
    return _chain(g, model.layers_after_embedding(), g.layer(model.embedding, inputs))


def _conv_branch(g, branch, inputs):
    return _chain(g, [branch.conv, branch.elu, branch.reduce, branch.dropout], inputs[0])


def _dense_block(g, block, inputs):
    return _chain(g, [block.dense, block.elu, block.norm, block.dropout], inputs[0])


def _conv_fully(g, model, inputs):
    """ConvFully and ConvMax: embedding -> branches, concatenated -> hidden blocks -> output."""
    x = g.layer(model.input_dropout, [g.layer(model.embedding, inputs)])
    x = _concat(g, [g.layer(branch, [x]) for branch in model.branches], -1, "branches")
    return _chain(g, [*model.hidden, model.output], x)


def _parts(g, model, x):
    """{name: Value} of a packed input row (minidl.models.packed)."""
    parts, start = {}, 0
    for name, width in model.input_parts():
        parts[name] = _slice(g, x, start, start + width, name)
        start += width
    return parts


def _hashed_linear(g, layer, inputs):
    """HashedLinear on NgramHasher's ids and counts, weighted as minidl.models.wide.ngram_weights."""
    (ngrams,) = inputs
    n = layer.max_ngrams
    ids = _slice(g, ngrams, 0, n, f"{layer.name}_ids")
    counts = g.op("Cast", [_slice(g, ngrams, n, 2 * n, f"{layer.name}_counts")], ids.shape,
                  f"{layer.name}_counts_float", to=g.onnx.helper.np_dtype_to_tensor_dtype(g.float_dtype))
    present = g.op("Greater", [ids, g.zero_id()], ids.shape,
                   f"{layer.name}_present")
    mask = g.op("Cast", [present], ids.shape, f"{layer.name}_mask",
                to=g.onnx.helper.np_dtype_to_tensor_dtype(g.float_dtype))
    if layer.weighting == "binary":
        weights = mask
    elif layer.weighting == "count":
        weights = counts
    else:  # sublinear: 1 + log(count) where an n-gram is present
        at_least_1 = g.op("Max", [counts, g.floats(1, "one")], ids.shape, f"{layer.name}_counts_at_least_1")
        log = g.op("Log", [at_least_1], ids.shape, f"{layer.name}_log_counts")
        sublinear = g.op("Add", [log, g.floats(1, "one")], ids.shape, f"{layer.name}_sublinear")
        weights = g.op("Where", [present, sublinear, g.floats(0, "zero")], ids.shape, f"{layer.name}_weights")
    if layer.normalize:  # the URL's vector scaled to unit length
        squares = g.op("Mul", [weights, weights], ids.shape, f"{layer.name}_squares")
        norms = g.op("Sqrt", [_reduce(g, "ReduceSum", squares, [1], f"{layer.name}_sum_squares", keepdims=1)],
                     (ids.shape[0], 1), f"{layer.name}_norms")
        norms = g.op("Max", [norms, g.floats(np.finfo(g.float_dtype).tiny, "tiny")], norms.shape,
                     f"{layer.name}_norms_nonzero")
        weights = g.op("Div", [weights, norms], ids.shape, f"{layer.name}_normalized")
    weights = g.op("Mul", [weights, mask], ids.shape, f"{layer.name}_present_weights")
    logit = _bag(g, layer.weights, ids, weights=weights)
    if layer.use_bias:
        logit = g.op("Add", [logit, g.weight(layer.bias, f"{layer.name}.bias")], logit.shape, f"{layer.name}_bias")
    return logit


def _ngram_linear(g, model, inputs):
    return g.layer(model.output, [g.layer(model.linear, [_parts(g, model, inputs[0])["ngrams"]])])


def _wide_conv_max(g, model, inputs):
    parts = _parts(g, model, inputs[0])
    chars = g.layer(model.input_dropout, [g.layer(model.embedding, [parts["chars"]])])
    features = [g.layer(branch, [chars]) for branch in model.branches]
    if model.ngram_dim:  # the mean of the n-grams' vectors (binary, unnormalised: ids > 0 count)
        ids = _slice(g, parts["ngrams"], 0, model.max_ngrams, "ngram_bag_ids")
        present = g.op("Greater", [ids, g.zero_id()], ids.shape,
                       "ngram_bag_present")
        mask = g.op("Cast", [present], ids.shape, "ngram_bag_mask",
                    to=g.onnx.helper.np_dtype_to_tensor_dtype(g.float_dtype))
        features.append(g.layer(model.ngram_dropout, [_bag(g, model.ngram_bag, ids, mask=mask)]))
    logit = g.layer(model.logit, [_concat(g, features, -1, "features")])
    wide = g.layer(model.wide, [parts["ngrams"]])
    return g.layer(model.output, [g.op("Add", [logit, wide], logit.shape, "deep_plus_wide")])


def _max_over_time_branch(g, branch, inputs):
    pooled = [g.layer(pool, [g.layer(conv, inputs)]) for conv, pool in zip(branch.convs, branch.pools)]
    return _chain(g, [branch.dropout, branch.dense], _concat(g, pooled, -1, f"{branch.name}_pooled"))


def _urlnet(g, model, inputs):
    parts = _parts(g, model, inputs[0])
    chars = g.layer(model.char_branch, [g.layer(model.embedding, [parts["chars"]])])
    # Each word: its embedding plus the sum of its characters' (URLNet._embed_words).
    words, length = model.max_words, model.max_word_len
    word_ids = _slice(g, parts["words"], 0, words, "word_ids")
    word_chars = _slice(g, parts["words"], words, words * (1 + length), "word_chars")
    flat = g.op("Reshape", [word_chars, g.ints([-1, length], "word_chars_shape")], (None, length),
                "word_chars_flat")
    present = g.op("Greater", [flat, g.zero_id()], flat.shape,
                   "word_chars_present")
    mask = g.op("Cast", [present], flat.shape, "word_chars_mask",
                to=g.onnx.helper.np_dtype_to_tensor_dtype(g.float_dtype))
    sums = _bag(g, model.word_chars, flat, mask=mask)
    sums = g.op("Reshape", [sums, g.ints([-1, words, model.emb_dim], "word_sums_shape")],
                (None, words, model.emb_dim), "word_char_sums")
    embedded = g.op("Add", [g.layer(model.word_embedding, [word_ids]), sums], sums.shape, "word_vectors")
    h = _concat(g, [chars, g.layer(model.word_branch, [embedded])], -1, "branches")
    logit = g.layer(model.logit, [_chain(g, model.hidden, h)])
    if model.wide is not None:
        logit = g.op("Add", [logit, g.layer(model.wide, [parts["ngrams"]])], logit.shape, "deep_plus_wide")
    return g.layer(model.output, [logit])


def _mean_ensemble(g, model, inputs):
    """The mean of the members' probabilities, each member on its own columns."""
    parts = _parts(g, model, inputs[0])
    outputs = [g.layer(member, [parts[f"member{i}"]]) for i, member in enumerate(model.members)]
    return g.op("Mean", outputs, outputs[0].shape, "mean_of_members")


#: Layer and model class -> its export: (GraphBuilder, module, [input Values]) -> output Value.
EXPORTERS = {
    Dense: _dense, Embedding: _embedding, EmbeddingBag: _embedding_bag, Conv1D: _conv, Conv2D: _conv,
    MaxPooling1D: _pooling("MaxPool"), MaxPooling2D: _pooling("MaxPool"),
    AveragePooling1D: _pooling("AveragePool", count_include_pad=0),
    AveragePooling2D: _pooling("AveragePool", count_include_pad=0),
    SumPooling1D: _pooling("AveragePool", count_include_pad=1),
    SumPooling2D: _pooling("AveragePool", count_include_pad=1),
    GlobalMaxPooling1D: _global_pooling("ReduceMax"), GlobalMaxPooling2D: _global_pooling("ReduceMax"),
    GlobalAveragePooling1D: _global_pooling("ReduceMean"), GlobalAveragePooling2D: _global_pooling("ReduceMean"),
    GlobalSumPooling1D: _global_pooling("ReduceSum"), GlobalSumPooling2D: _global_pooling("ReduceSum"),
    Dropout: _dropout, BatchNormalization: _batch_normalization, Activation: _activation_layer, ReLU: _relu,
    ELU: _elu, Softmax: _softmax, Flatten: _flatten, Concatenate: _concatenate,
    LSTM: _recurrent("LSTM", order=(0, 3, 1, 2), count=3),  # Keras i, f, c, o -> ONNX i, o, f, c
    GRU: _recurrent("GRU", order=(0, 1, 2), count=2),  # z, r, h in both
    SimpleRNN: _recurrent("RNN", order=(0,), count=1),
    Sequential: _sequential, GraphModel: _graph_model,
    SimpleLSTM: _url_chain, LSTMConv: _url_chain, ConvFully: _conv_fully, ConvMax: _conv_fully,
    ConvBranch: _conv_branch, DenseBlock: _dense_block, HashedLinear: _hashed_linear, NgramLinear: _ngram_linear,
    WideConvMax: _wide_conv_max, MaxOverTimeBranch: _max_over_time_branch, URLNet: _urlnet,
    MeanEnsemble: _mean_ensemble,
}


# ------------------------------------------------------------ export
def _inputs(model, input_dtype=None):
    """[(name, shape, dtype)] of the model's inputs, batch as None. The dtype: the
    argument, else the model's `input_dtype`, else int32 (the tokenisers' ids) for a
    Sequential that starts with an embedding, else the floating default."""
    if isinstance(model, GraphModel):
        dtypes = input_dtype if isinstance(input_dtype, (list, tuple)) else [input_dtype] * len(model.inputs)
        return [(name, shape, np.dtype(given or dtype or backend.default_dtype()))
                for name, shape, dtype, given in zip(model.inputs, model.input_shapes, model.input_dtypes, dtypes)]
    shape = getattr(model, "input_shape", None)
    if shape is None:
        raise OnnxExportError(f"{model.name}: the model's input shape is unknown; build it first "
                              "(model.build(input_shape))")
    dtype = input_dtype or getattr(model, "input_dtype", None)
    if dtype is None and isinstance(model, Sequential) and isinstance(model.layers[0], (Embedding, EmbeddingBag)):
        dtype = "int32"
    dtype = np.dtype(dtype or backend.default_dtype())
    return [("ids" if dtype.kind in "iu" else "input", tuple(shape), dtype)]


def _float_dtype(model):
    for parameter in model.parameters():
        if parameter.dtype.kind == "f":
            return parameter.dtype
    return np.dtype(backend.default_dtype())


def _tensor_info(onnx, name, shape, dtype):
    dims = ["batch" if axis == 0 else size for axis, size in enumerate(shape)]
    return onnx.helper.make_tensor_value_info(name, onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype)), dims)


def export(model, path=None, tokenizer=None, metadata=None, input_dtype=None, opset=OPSET):
    """The ONNX model (an onnx.ModelProto) of `model` in eval mode; written to `path`
    when given. See the module docstring for what maps to what.

    tokenizer: the tokeniser that makes the model's ids from URLs (or its get_config()
        dict), stored as JSON in the metadata ("minidl.tokenizer").
    metadata: more {str: str} for the model's metadata_props.
    input_dtype: the input's dtype name (a list for several inputs), when the model
        does not say (see `_inputs`).
    Raises OnnxExportError naming the first layer that has no ONNX form.
    """
    onnx = _onnx()
    g = GraphBuilder(_float_dtype(model))
    described = _inputs(model, input_dtype)
    g.id_dtype = next((dtype for _, _, dtype in described if dtype.kind in "iu"), g.id_dtype)
    inputs = [Value(name, shape) for name, shape, _ in described]
    # The graph's outputs: "output", or the output layers' names for several.
    names = list(model.outputs) if isinstance(model, GraphModel) and len(model.outputs) > 1 else ["output"]
    for name in [value.name for value in inputs] + names:  # the graph's own names, before any node's
        g.fresh(name)
    outputs = g.layer(model, inputs)
    outputs = outputs if isinstance(outputs, list) else [outputs]
    for output, name in zip(outputs, names):  # the outputs by stable names, whatever node made them
        g.nodes.append(onnx.helper.make_node("Identity", [output.name], [name], name=g.fresh(f"{name}_identity")))
    graph = onnx.helper.make_graph(
        g.nodes, model.name or type(model).__name__,
        [_tensor_info(onnx, name, shape, dtype) for name, shape, dtype in described],
        [_tensor_info(onnx, name, output.shape, g.float_dtype) for name, output in zip(names, outputs)],
        initializer=g.initializers)
    proto = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", opset)],
                                   producer_name="minidl", producer_version=__version__)
    properties = {"minidl.model": type(model).__name__, "minidl.version": __version__}
    if tokenizer is not None:
        config = tokenizer if isinstance(tokenizer, dict) else tokenizer.get_config()
        properties["minidl.tokenizer"] = json.dumps(config)
    properties.update(metadata or {})
    onnx.helper.set_model_props(proto, properties)
    if path is not None:
        onnx.save(proto, str(path))
    return proto
