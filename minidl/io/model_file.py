"""save, load, convert, read_header: a model as a file, rebuilt from its config inside a
weight budget and checked array by array against it (see minidl.io)."""
import math
import os
from typing import NamedTuple

import numpy as np

from minidl import backend, schema
from minidl.autograd import Tensor, no_grad
from minidl.io import layout
from minidl.io.atomic import atomic_write
from minidl.io.layout import (
    FORMAT,
    FORMAT_VERSION,
    GROUPS,
    METADATA_FIELDS,
    MIN_INTEGER_LIMIT,
    ModelFileError,
    dtype_to_json,
    encode,
    floating_dtype,
    little_endian,
    non_finite_count,
    parse,
    shape_to_json,
)
from minidl.nn.budget import weight_budget
from minidl.nn.module import LAYERS, Module, layer_from_config, serialize
from minidl.version import __version__


class SavedModel(NamedTuple):
    """What `load` returns: the rebuilt model (weights loaded, eval mode), the `extra`
    JSON given to `save` ({} when none), and the optimizer's state_dict (None when the
    file holds none; pass it to `optimizer.load_state_dict` to resume training)."""

    model: object
    extra: dict
    optimizer_state: dict


def _fields(model, extra, optimizer_class, input_shape, input_dtype):
    spec = serialize(model)
    spec["module"] = type(model).__module__
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION, "minidl_version": __version__,
        "model": spec, "input_shape": shape_to_json(input_shape), "input_dtype": dtype_to_json(input_dtype),
        "dtype": floating_dtype(model), "extra": {} if extra is None else extra,
        "optimizer": None if optimizer_class is None else {"class_name": optimizer_class},
    }


def _write(path, fields, arrays):
    for group, name, array in arrays:
        count = non_finite_count(array)
        if count:
            raise ValueError(f"save: the {group} array {name} holds {count:,} non-finite values (NaN or infinity), "
                             "which `load` would refuse; did training diverge?")
    atomic_write(path, layout.file_chunks(encode(fields, arrays)))


def save(path, model, extra=None, optimizer=None, input_shape=None, input_dtype=None):
    """Write `model` (architecture, weights and buffers) to `path` atomically, as a
    safetensors file (see the module docstring).

    extra: JSON data stored beside the model (tokeniser settings, training metadata).
    optimizer: also store its state_dict, to resume training from the file.
    input_shape: the input shape, batch as None (a list of shapes for several inputs),
        stored so `load` can build layers that create their weights on first call
        (Dense, Conv); defaults to `model.input_shape` when the model has one.
    input_dtype: the input's dtype name ("int32" for ids; a list for several inputs),
        for models built by a forward pass (no `build` of their own); defaults to
        `model.input_dtype`, else the floating dtype.
    The model's class (and every layer's) must be registered in minidl.nn.LAYERS and
    rebuildable from `get_config()`.
    """
    if input_shape is None:
        input_shape = getattr(model, "input_shape", None)
    if input_dtype is None:
        input_dtype = getattr(model, "input_dtype", None)
    arrays = [("state", name, little_endian(value)) for name, value in model.state_dict().items()]
    if optimizer is not None:
        arrays += [("optimizer", name, little_endian(value)) for name, value in optimizer.state_dict().items()]
    optimizer_class = None if optimizer is None else type(optimizer).__name__
    _write(path, _fields(model, extra, optimizer_class, input_shape, input_dtype), arrays)


def convert(source, destination=None):
    """Rewrite the model file `source` (any format `load` reads, such as format 1) as a
    safetensors file at `destination` (default: in place, atomically), after every
    check `load` makes. Returns the destination's path."""
    source = os.fspath(source)
    with open(source, "rb") as handle:
        header, groups = parse(handle, source)
    model = _rebuild(header, groups["state"], source)
    _check_state(model, groups["state"], source)
    fields = {field: header[field] for field in METADATA_FIELDS}
    fields.update(format_version=FORMAT_VERSION, minidl_version=__version__)
    arrays = [(group, name, little_endian(array)) for group in GROUPS for name, array in groups[group].items()]
    destination = source if destination is None else os.fspath(destination)
    _write(destination, fields, arrays)
    return destination


def _shape_from_json(shape):
    if shape is None:
        return None
    if len(shape) and isinstance(shape[0], list):
        return [_shape_from_json(part) for part in shape]
    return tuple(shape)


def _state_names(model):
    return [name for name, _ in model.named_parameters()] + [name for name, _ in model.named_buffers()]


def _build(model, input_shape, input_dtype):
    """Create the weights of layers that make them on first call: `model.build` where
    the class defines one (Sequential, layers), else one forward pass on a zero sample
    of each input in eval mode without grad (ids 0 are valid: padding)."""
    if type(model).build is not Module.build:
        model.build(input_shape)
        model.built = True
        return
    shapes = input_shape if isinstance(input_shape, list) else [input_shape]
    dtypes = input_dtype if isinstance(input_dtype, list) else [input_dtype] * len(shapes)
    xp = backend.array_module_for()
    samples = [Tensor(xp.zeros((1,) + tuple(shape[1:]), dtype=dtype or backend.default_dtype()))
               for shape, dtype in zip(shapes, dtypes)]
    model.eval()
    with no_grad():
        model(*samples)


def _rebuild(header, state, path):
    """The model described by the header, in the header's dtype, built far enough to
    hold the arrays of `state`; its config checked by the schema first, and its weights
    created inside a budget sized to the values `state` holds."""
    spec = header["model"]
    class_name = spec["class_name"]
    # Every class registers itself when its module is imported (`import minidl` imports
    # minidl's own); loading never imports code a file names.
    if class_name not in LAYERS:
        where = f" ({spec['module']})" if spec.get("module") else ""
        raise ModelFileError(f"{path}: cannot rebuild the model: unknown class {class_name!r}; "
                             f"import the module that defines {class_name!r}{where} before loading")
    values = sum(array.size for array in state.values())
    limit = max(MIN_INTEGER_LIMIT, values)
    try:
        schema.check_layer_spec(spec, "model", limit)
    except schema.ConfigError as error:
        raise ModelFileError(f"{path}: {error}") from None
    input_shape = _shape_from_json(header["input_shape"])
    for shape in input_shape if isinstance(input_shape, list) else [input_shape] if input_shape else []:
        sample = math.prod(size for size in shape[1:] if size is not None)
        if sample > limit:  # the build's forward pass would allocate at least that much
            raise ModelFileError(f"{path}: input_shape {list(shape)} asks for samples of {sample:,} values, "
                                 f"more than the {limit:,} a file of this size may")
    previous_dtype = backend.default_dtype()
    try:
        backend.set_default_dtype(header["dtype"])
        # Room for a small mismatch, which _check_state then names array by array.
        budget = 2 * values + MIN_INTEGER_LIMIT
        with weight_budget(budget, f"allowed for a file of {values:,}: the config does not match its arrays"):
            model = layer_from_config({"class_name": class_name, "config": spec["config"]})
            if input_shape is not None and not set(state) <= set(_state_names(model)):
                _build(model, input_shape, header["input_dtype"])
    except Exception as error:  # any failure of the model's own code to rebuild itself (MemoryError included)
        raise ModelFileError(f"{path}: cannot rebuild the model from its config: {error}") from error
    finally:
        backend.set_default_dtype(previous_dtype)
    return model


def _check_state(model, state, path):
    expected = dict(model.named_parameters())
    expected.update(model.named_buffers())
    missing = [name for name in expected if name not in state]
    unexpected = [name for name in state if name not in expected]
    if missing or unexpected:
        # Arrays the rebuilt model lacks usually mean layers that create their weights on first call.
        hint = ("; save the model with input_shape=... (and input_dtype=...) so loading can build it"
                if unexpected and not missing else "")
        raise ModelFileError(f"{path}: the file's arrays do not match the rebuilt model: not in the file "
                             f"{missing[:5] or 'none'}, not in the model {unexpected[:5] or 'none'}{hint}")
    for name, value in expected.items():
        stored = state[name]
        if tuple(stored.shape) != tuple(value.shape) or stored.dtype != value.dtype:
            raise ModelFileError(f"{path}: {name} is {stored.dtype} {tuple(stored.shape)} in the file, "
                                 f"the model expects {np.dtype(value.dtype)} {tuple(value.shape)}")


def read_header(path):
    """The verified header of a model file (a dict; see the module docstring), without
    rebuilding the model: for `extra` (tokeniser settings) or a summary."""
    path = os.fspath(path)
    with open(path, "rb") as handle:
        header, _ = parse(handle, path)
    return header


def load(path):
    """Rebuild the model saved at `path`: a SavedModel(model, extra, optimizer_state)
    with the model in eval mode on the current device.

    Raises ModelFileError when the file is not a minidl model, is truncated, damaged or
    modified (checksum), breaks the header's schema, holds non-finite values, or its
    config does not match its arrays' names, dtypes and shapes."""
    path = os.fspath(path)
    with open(path, "rb") as handle:
        header, groups = parse(handle, path)
    model = _rebuild(header, groups["state"], path)
    _check_state(model, groups["state"], path)
    model.load_state_dict(groups["state"])
    model.eval()
    optimizer_state = groups["optimizer"] if header["optimizer"] else None
    return SavedModel(model, header["extra"], optimizer_state)
