"""Keras-like model summaries: a table of layers, output shapes and parameter counts,
and the source notebook's `print_layers_dims` (each layer's input and output shape).

The rows come from tracing one forward pass on a single zero sample (eval mode):
every layer records the shapes it was called with, in call order, so models with
branches (conv_fully) are listed as they run, fused ones layer by layer
(minidl.nn.fusion). Containers (a module with children but no weights of its own, such
as Sequential or a URL model) are looked through; a layer's own inner calls are not
listed. The pass builds the autograd graph, and each layer's inputs are followed back
through it (past ops such as a concatenation) to the layers that made them: Keras'
"Connected to" column, shown when the layers do not simply follow one another.

Totals follow Keras: "Total params" counts every weight and buffer (batch
normalisation's moving mean and variance included), "Non-trainable params" the
buffers and the parameters that do not train. `Module.count_params()` counts the
parameters only, so it is the total minus the buffers.
"""
from dataclasses import dataclass

import numpy as np

from minidl import backend
from minidl.autograd import Tensor
from minidl.nn.fusion import layer_by_layer
from minidl.nn.module import Parameter


@dataclass
class LayerRow:
    name: str
    class_name: str
    input_shape: object  # a tuple with None for the batch, or a list of them
    output_shape: object
    params: int
    trainable: int
    connected: tuple = ()  # names of the rows whose outputs this layer reads


def _batchless(value):
    if isinstance(value, (list, tuple)) and not hasattr(value, "shape"):
        return [_batchless(item) for item in value]
    return (None,) + tuple(value.shape[1:])


def _is_container(module):
    return bool(module._modules) and not module._parameters and not module._buffers


def parameter_counts(module):
    """(total, trainable) as Keras counts them: every weight and buffer of `module` and
    its children, and the weights that train."""
    parameters = module.parameters()
    buffers = sum(int(np.size(data)) for _, data in module.named_buffers())
    trainable = sum(p.size for p in parameters if p.requires_grad)
    return sum(p.size for p in parameters) + buffers, trainable


def _input_spec(model, input_shape, input_dtype):
    shape = input_shape if input_shape is not None else getattr(model, "input_shape", None)
    if shape is None:
        raise ValueError(
            f"summary: {type(model).__name__} does not know its input shape; pass input_shape=(None, ...)"
        )
    dtype = input_dtype or getattr(model, "input_dtype", None) or backend.default_dtype()
    return tuple(shape), dtype


def layer_rows(model, input_shape=None, input_dtype=None):
    """The summary's rows: one LayerRow per layer call, in call order, after an input
    row. input_shape has None (or any number) for the batch; it defaults to the model's
    `input_shape` attribute, and input_dtype to its `input_dtype` (ids are int32)."""
    shape, dtype = _input_spec(model, input_shape, input_dtype)
    rows = [LayerRow("input", "InputLayer", (None,) + shape[1:], (None,) + shape[1:], 0, 0)]
    active = []  # the layer calls in progress; calls inside a layer are its own business
    xp = backend.array_module_for()
    sample = xp.zeros((1,) + shape[1:], dtype=dtype)
    sample = Tensor(sample) if np.issubdtype(np.dtype(dtype), np.floating) else sample
    made_by = {}  # id of a traced layer's output -> the layer's name

    def traced(module, forward):
        def call(*inputs, **kwargs):
            if active:
                return forward(*inputs, **kwargs)
            active.append(module)
            try:
                out = forward(*inputs, **kwargs)
            finally:
                active.pop()
            total, trainable = parameter_counts(module)
            rows.append(LayerRow(module.name, type(module).__name__, _batchless(inputs if len(inputs) > 1 else inputs[0]),
                                 _batchless(out), total, trainable, _producers(inputs, made_by)))
            made_by[id(out)] = module.name
            return out
        return call

    layers = [m for m in model.modules()[1:] if not _is_container(m)]
    was_training = model.training
    for layer in layers:
        object.__setattr__(layer, "forward", traced(layer, layer.forward))
    model.eval()
    try:
        with layer_by_layer():  # fused modules call each of their layers
            model(sample)
    finally:
        for layer in layers:
            del layer.__dict__["forward"]
        model.train(was_training)
    return rows


def _producers(inputs, made_by):
    """The rows whose outputs `inputs` come from: each input is followed back through
    the graph's nodes to a traced layer's output, or to a leaf that is not a weight:
    the model's input."""
    found, stack, seen = [], list(inputs), set()
    while stack:
        value = stack.pop()
        if id(value) in seen or isinstance(value, Parameter):
            continue
        seen.add(id(value))
        node = getattr(value, "_node", None)
        if id(value) in made_by or node is None:
            name = made_by.get(id(value), "input")
            if name not in found:
                found.append(name)
        else:
            stack.extend(reversed(node.inputs))
    return tuple(found)


def _format_shape(shape):
    if isinstance(shape, list):
        return "[" + ", ".join(_format_shape(s) for s in shape) + "]"
    return "(" + ", ".join("None" if n is None else str(n) for n in shape) + ("," if len(shape) == 1 else "") + ")"


def summary(model, input_shape=None, input_dtype=None, print_fn=print):
    """Print (with print_fn; None to only return) and return Keras' summary table:
    layer name and type, output shape (None for the batch), parameter count, then
    Total / Trainable / Non-trainable params."""
    rows = layer_rows(model, input_shape, input_dtype)
    total, trainable = parameter_counts(model)
    table = [(f"{r.name} ({r.class_name})", _format_shape(r.output_shape), f"{r.params:,}") for r in rows]
    header = ("Layer (type)", "Output Shape", "Param #")
    if _branched(rows):
        table = [cells + (", ".join(row.connected),) for cells, row in zip(table, rows)]
        header += ("Connected to",)
    widths = [max(len(cells[i]) for cells in table + [header]) + 3 for i in range(len(header))]
    width = sum(widths)

    def line(cells):
        return "".join(cell.ljust(w) for cell, w in zip(cells, widths)).rstrip()

    text = [f'Model: "{model.name}"', "_" * width, line(header), "=" * width]
    for i, cells in enumerate(table):
        text.append(line(cells))
        text.append("_" * width if i < len(table) - 1 else "=" * width)
    text += [f"Total params: {total:,}", f"Trainable params: {trainable:,}",
             f"Non-trainable params: {total - trainable:,}", "_" * width]
    result = "\n".join(text)
    if print_fn is not None:
        print_fn(result)
    return result


def _branched(rows):
    """True unless every layer reads the output of the row just before it."""
    return any(row.connected != (previous.name,) for previous, row in zip(rows, rows[1:]))


def print_layers_dims(model, input_shape=None, input_dtype=None, print_fn=print):
    """The source notebook's print_layers_dims: each layer, then
    `Input Shape: (None, 75) Output Shape: (None, 75, 32)`. Returns the text."""
    lines = []
    for row in layer_rows(model, input_shape, input_dtype)[1:]:
        lines.append(f"{row.name} ({row.class_name})")
        lines.append(f"Input Shape: {_format_shape(row.input_shape)} Output Shape: {_format_shape(row.output_shape)}")
    result = "\n".join(lines)
    if print_fn is not None:
        print_fn(result)
    return result
