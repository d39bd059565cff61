"""Save and load a model in one self-describing file: no pickle, checksummed, atomic.

    save("model.mdl", model, extra={"tokenizer": {...}}, input_shape=(None, 75))
    model, extra, optimizer_state = load("model.mdl")

The file layout (all integers little-endian):

    offset 0      8 bytes   magic b"\\x89MDL\\r\\n\\x1a\\n" (PNG's trick: the high byte and
                            the line endings expose 7-bit or text-mode transfers)
    offset 8      8 bytes   header length H, unsigned 64-bit
    offset 16     H bytes   header: UTF-8 JSON (below)
    offset 16+H   P bytes   payload: each array's raw bytes, C order, little-endian,
                            one after another at the offsets the header gives
    end - 32     32 bytes   SHA-256 of every byte before it

The header holds `format` ("minidl.model"), `format_version` (1), `minidl_version`,
`model` (the architecture: {"class_name", "config", "module"} from
`minidl.nn.serialize`), `input_shape` and `input_dtype` (what loading needs to build
layers that create their weights on first call; batch as null), `dtype` (the floating dtype of the weights),
`extra` (the caller's JSON: tokeniser settings, training metadata), `optimizer`
({"class_name"} or null), `payload_bytes` P, and `arrays`: one
{"group": "state"|"optimizer", "name", "dtype" (NumPy's string, e.g. "<f4"), "shape",
"offset", "nbytes"} per array. Arrays are NumPy on disk, so a file saved from the GPU
loads on any machine.

Loading trusts nothing before it is checked, in this order: the magic bytes; the sizes
the header declares against the file's size on disk (before the payload is read, so a
file that declares huge arrays allocates nothing); the checksum; every header field and
the model's config against `minidl.schema` (types, known keys, the constructors' own
arguments); every array's place in the payload; that every floating array is finite
(a model saved after training diverged, or edited, holds NaN). Then the model is rebuilt
from its config (classes looked up by name in `minidl.nn.LAYERS`) inside a weight
budget of about twice the values the file holds, so a config that asks for far more
weights than the file holds fails before it allocates them, and every array's name,
dtype and shape is checked against the rebuilt model before it is copied in. Every failure is a
ModelFileError (a ValueError) that says what is wrong; nothing in the file is ever
executed. `save` refuses non-finite weights for the same reason `load` does.

`save` writes a hidden temporary file beside the path, fsyncs it and renames it over
the path, so a reader (or a process killed midway) sees the old file or the new one,
never half of one; the temporary a killed save leaves goes at the next save to that path.
"""
import contextlib
import hashlib
import importlib
import json
import math
import os
import re
import socket
import tempfile
from typing import NamedTuple

import numpy as np

from minidl import backend, schema
from minidl.autograd import Tensor, no_grad
from minidl.nn.budget import weight_budget
from minidl.nn.module import LAYERS, Module, layer_from_config, serialize

MAGIC = b"\x89MDL\r\n\x1a\n"
FORMAT = "minidl.model"
FORMAT_VERSION = 1
PREFIX_BYTES = len(MAGIC) + 8  # magic + header length
DIGEST_BYTES = 32  # SHA-256
ARRAY_KINDS = schema.ARRAY_KINDS
GROUPS = ("state", "optimizer")
#: The largest header `load` reads: a header holds the architecture and `extra`, a few
#: kilobytes in practice; the weights are in the payload.
MAX_HEADER_BYTES = 64 * 2**20
#: Integers in a config may be as large as the number of values the file holds, and at
#: least this: a length or width far beyond the weights is a damaged or hostile file.
MIN_INTEGER_LIMIT = 2**20


class ModelFileError(ValueError):
    """A model file that cannot be trusted or used: not a minidl file, truncated,
    damaged, modified, from a newer format, or not matching the model it describes."""


class SavedModel(NamedTuple):
    """What `load` returns: the rebuilt model (weights loaded, eval mode), the `extra`
    JSON given to `save` ({} when none), and the optimizer's state_dict (None when the
    file holds none; pass it to `optimizer.load_state_dict` to resume training)."""

    model: object
    extra: dict
    optimizer_state: dict


# ------------------------------------------------------------------------ save
def _minidl_version():
    import minidl  # at call time: minidl/__init__ may import this module

    return minidl.__version__


def _json_default(value):
    # NumPy scalars and arrays are common in metadata (metrics, counts): store them as numbers.
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON data")


def _little_endian(array):
    array = np.asarray(array)
    if array.dtype.kind not in ARRAY_KINDS:
        raise TypeError(f"save: cannot store an array of dtype {array.dtype} (only bool, integer and float arrays)")
    # np.asarray, not np.ascontiguousarray: the latter turns 0-d arrays (a step count) into 1-d.
    return np.asarray(array, dtype=array.dtype.newbyteorder("<"), order="C")


def _floating_dtype(model):
    for parameter in model.parameters():
        if parameter.dtype.kind == "f":
            return np.dtype(parameter.dtype).name
    return np.dtype(backend.default_dtype()).name


def _shape_to_json(shape):
    if shape is None:
        return None
    if len(shape) and isinstance(shape[0], (tuple, list)):  # several inputs
        return [_shape_to_json(part) for part in shape]
    return [None if n is None else int(n) for n in shape]


def _dtype_to_json(dtype):
    if dtype is None:
        return None
    if isinstance(dtype, (tuple, list)):
        return [_dtype_to_json(part) for part in dtype]
    return np.dtype(dtype).name


def _temporary_stem(name):
    """How the names of the temporary files that will replace `name` start, before the
    writer's pid: hidden, and naming this host."""
    return f".{name}.{socket.gethostname()}-"


def _remove_dead_temporaries(directory, name):
    """Remove the temporary files that processes of this host which no longer run (a
    save killed midway) left beside `name`; a live writer's, or another host's, stay.
    POSIX only (Windows' os.kill would end the process it asks about)."""
    if os.name != "posix":
        return
    pattern = re.compile(re.escape(_temporary_stem(name)) + r"(\d+)\..*\.tmp")
    for entry in os.listdir(directory):
        match = pattern.fullmatch(entry)
        pid = None if match is None else int(match.group(1))
        if pid is None or pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:  # no such process: the writer is gone
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(directory, entry))
        except (PermissionError, OverflowError):  # alive under another user; not a pid
            pass


def _atomic_write(path, chunks):
    """Write `chunks` to a temporary file beside `path`, fsync it, then rename it over
    `path`: readers see the old file or the new one, never half of one. Temporaries
    that killed saves to `path` left behind go first."""
    path = os.path.abspath(os.fspath(path))
    directory = os.path.dirname(path)
    if os.path.isdir(path):
        raise IsADirectoryError(f"save: {path} is a directory")
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"save: the folder {directory} does not exist")
    _remove_dead_temporaries(directory, os.path.basename(path))
    descriptor, temporary = tempfile.mkstemp(prefix=f"{_temporary_stem(os.path.basename(path))}{os.getpid()}.",
                                             suffix=".tmp", dir=directory)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp makes the file private (0600); give it the mode a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    # Persist the rename itself (POSIX); not possible on every platform or filesystem.
    with contextlib.suppress(OSError, AttributeError):
        directory_descriptor = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(directory_descriptor)
        finally:
            os.close(directory_descriptor)


def _file_chunks(header_bytes, arrays):
    """The file's bytes in pieces, the SHA-256 computed on the way and written last."""
    digest = hashlib.sha256()
    for chunk in (MAGIC, len(header_bytes).to_bytes(8, "little"), header_bytes):
        digest.update(chunk)
        yield chunk
    for array in arrays:
        chunk = array.tobytes()
        digest.update(chunk)
        yield chunk
    yield digest.digest()


def save(path, model, extra=None, optimizer=None, input_shape=None, input_dtype=None):
    """Write `model` (architecture, weights and buffers) to `path` atomically.

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
    arrays = [("state", name, _little_endian(value)) for name, value in model.state_dict().items()]
    if optimizer is not None:
        arrays += [("optimizer", name, _little_endian(value)) for name, value in optimizer.state_dict().items()]
    for group, name, array in arrays:
        count = _non_finite_count(array)
        if count:
            raise ValueError(f"save: the {group} array {name} holds {count:,} non-finite values (NaN or infinity), "
                             "which `load` would refuse; did training diverge?")
    entries, offset = [], 0
    for group, name, array in arrays:
        entries.append({"group": group, "name": name, "dtype": array.dtype.str, "shape": list(array.shape),
                        "offset": offset, "nbytes": array.nbytes})
        offset += array.nbytes
    spec = serialize(model)
    spec["module"] = type(model).__module__
    header = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "minidl_version": _minidl_version(),
        "model": spec, "input_shape": _shape_to_json(input_shape), "input_dtype": _dtype_to_json(input_dtype),
        "dtype": _floating_dtype(model),
        "extra": {} if extra is None else extra,
        "optimizer": None if optimizer is None else {"class_name": type(optimizer).__name__},
        "payload_bytes": offset, "arrays": entries,
    }
    try:
        header_bytes = json.dumps(header, default=_json_default).encode("utf-8")
    except (TypeError, ValueError) as error:
        raise TypeError(f"save: the model's config and `extra` must be JSON data: {error}") from None
    _atomic_write(path, _file_chunks(header_bytes, [array for _, _, array in arrays]))


# ------------------------------------------------------------------------ load
def _non_finite_count(array):
    """How many NaN and infinite values a floating array holds (0 for other dtypes)."""
    return 0 if array.dtype.kind != "f" else int(array.size - np.count_nonzero(np.isfinite(array)))


def _read_verified(handle, path):
    """(header, payload) of an open model file after the size and checksum checks; reads
    the payload only once the header's sizes match the file's size on disk."""
    size = os.fstat(handle.fileno()).st_size
    prefix = handle.read(PREFIX_BYTES)
    if prefix[:len(MAGIC)] != MAGIC:
        raise ModelFileError(f"{path}: not a minidl model file (it does not start with the minidl magic bytes)")
    if size < PREFIX_BYTES + DIGEST_BYTES:
        raise ModelFileError(f"{path}: truncated ({size} bytes, too short for a model file)")
    header_length = int.from_bytes(prefix[len(MAGIC):], "little")
    if PREFIX_BYTES + header_length + DIGEST_BYTES > size:
        raise ModelFileError(f"{path}: truncated (the header alone needs {header_length} bytes)")
    if header_length > MAX_HEADER_BYTES:
        raise ModelFileError(f"{path}: a header of {header_length:,} bytes, more than a minidl model file holds "
                             f"(at most {MAX_HEADER_BYTES:,})")
    header_bytes = handle.read(header_length)
    try:
        header = json.loads(header_bytes.decode("utf-8"))
        expected = PREFIX_BYTES + header_length + int(header["payload_bytes"]) + DIGEST_BYTES
    except (ValueError, KeyError, TypeError, IndexError, RecursionError, OverflowError):
        header, expected = None, None  # unreadable: the checksum below says why
    if expected is not None and expected != size:
        state = "truncated" if size < expected else "damaged (longer than its header says)"
        raise ModelFileError(f"{path}: {state}: {expected} bytes expected, {size} found")
    rest = handle.read()
    digest = hashlib.sha256(prefix)
    digest.update(header_bytes)
    digest.update(memoryview(rest)[:-DIGEST_BYTES])
    if len(rest) < DIGEST_BYTES or digest.digest() != rest[-DIGEST_BYTES:]:
        raise ModelFileError(f"{path}: checksum mismatch: the file is damaged or was modified after saving")
    return header, memoryview(rest)[:-DIGEST_BYTES]


def _parse(handle, path):
    """(header, {group: {name: array}}) of an open model file, after every check that
    needs no model: sizes, checksum, format, the header's schema, the arrays' places in
    the payload and their values."""
    header, payload = _read_verified(handle, path)
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ModelFileError(f"{path}: the header is not a minidl model header")
    if header.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(f"{path}: format version {header.get('format_version')!r}; this minidl "
                             f"({_minidl_version()}) reads version {FORMAT_VERSION}")
    try:
        schema.check_header(header)
    except schema.ConfigError as error:
        raise ModelFileError(f"{path}: {error}") from None
    return header, _read_arrays(header, payload, path)


def _read_arrays(header, payload, path):
    """Each array of the payload (a writable native-order copy) by group and name, once
    its entry (types already checked by the schema) fits the payload and its values are
    finite."""
    groups = {group: {} for group in GROUPS}
    offset = 0
    for entry in header["arrays"]:
        group, name, shape = entry["group"], entry["name"], tuple(entry["shape"])
        dtype, start, nbytes = np.dtype(entry["dtype"]), entry["offset"], entry["nbytes"]
        if name in groups[group]:
            raise ModelFileError(f"{path}: array {name!r} appears twice")
        if start != offset or nbytes != math.prod(shape) * dtype.itemsize or start + nbytes > len(payload):
            raise ModelFileError(f"{path}: array {name!r} does not fit the payload "
                                 f"(offset {start}, {nbytes} bytes for shape {shape} of {dtype})")
        array = np.frombuffer(payload, dtype=dtype, count=math.prod(shape), offset=start).reshape(shape)
        count = _non_finite_count(array)
        if count:
            raise ModelFileError(f"{path}: the {group} array {name} holds {count:,} non-finite values (NaN or "
                                 "infinity): the model was saved after training diverged, or the file was edited")
        groups[group][name] = array.astype(dtype.newbyteorder("="))
        offset += nbytes
    if offset != len(payload):
        raise ModelFileError(f"{path}: the arrays cover {offset} of the payload's {len(payload)} bytes")
    return groups


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
    class_name, module = spec["class_name"], spec.get("module", "")
    # minidl's own model classes register themselves on import; never import other code.
    if class_name not in LAYERS and module.startswith("minidl."):
        with contextlib.suppress(ImportError):
            importlib.import_module(module)
    if class_name not in LAYERS:
        raise ModelFileError(f"{path}: cannot rebuild the model: unknown class {class_name!r}; "
                             f"import the module that defines {class_name!r} before loading")
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
        header, _ = _parse(handle, path)
    return header


def load(path):
    """Rebuild the model saved at `path`: a SavedModel(model, extra, optimizer_state)
    with the model in eval mode on the current device.

    Raises ModelFileError when the file is not a minidl model, is truncated, damaged or
    modified (checksum), breaks the header's schema, holds non-finite values, or its
    config does not match its arrays' names, dtypes and shapes."""
    path = os.fspath(path)
    with open(path, "rb") as handle:
        header, groups = _parse(handle, path)
    model = _rebuild(header, groups["state"], path)
    _check_state(model, groups["state"], path)
    model.load_state_dict(groups["state"])
    model.eval()
    optimizer_state = groups["optimizer"] if header["optimizer"] else None
    return SavedModel(model, header["extra"], optimizer_state)
