"""Save and load a model in one self-describing file: a safetensors file, no pickle,
checksummed, atomic.

    save("model.mdl", model, extra={"tokenizer": {...}}, input_shape=(None, 75))
    model, extra, optimizer_state = load("model.mdl")

The file is a safetensors file (https://huggingface.co/docs/safetensors), written and
read with the `safetensors` package, so any safetensors reader (safetensors.numpy,
safetensors.torch, the Hugging Face tools) reads its weights by their minidl names:

    offset 0      8 bytes   header length H, unsigned 64-bit little-endian
    offset 8      H bytes   header: UTF-8 JSON, {"__metadata__": {str: str}, name:
                            {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}}
    offset 8+H    P bytes   the arrays' raw bytes, C order, little-endian, at their offsets

The arrays are the model's state_dict (weights and buffers, e.g. "layer1.kernel") and,
when an optimizer is saved, its state_dict under "optimizer/" (e.g. "optimizer/m.3").
`__metadata__` holds minidl's fields, each value the JSON encoding of the field:
`format` ("minidl.model"), `format_version` (2), `minidl_version`, `model` (the
architecture: {"class_name", "config", "module"} from `minidl.nn.serialize`),
`input_shape` and `input_dtype` (what loading needs to build layers that create their
weights on first call; batch as null), `dtype` (the floating dtype of the weights),
`extra` (the caller's JSON: tokeniser settings, training metadata), `optimizer`
({"class_name"} or null); and `sha256`, the integrity check (64 hex digits, not JSON).

The integrity check. safetensors readers refuse bytes after the arrays, so the digest
cannot trail the file as it did in format 1; it lives in the header, and covers the
whole file: `sha256` is the SHA-256 of every byte of the file with the digest's own 64
digits written as "0"s. A digest of the arrays alone would let the architecture or
`extra` change unnoticed, and one of a re-encoded header would miss edits that parse
the same (whitespace, key order, escapes); this one fails on any changed byte: outside
the 64 digits it changes the digest computed, inside them the digest stored. Its place
is the one occurrence of `"sha256":"` in the raw header (inside the metadata's values,
which are JSON in JSON, every quote is escaped, so no value can imitate it). A file
re-saved by another safetensors writer keeps its arrays readable but fails the check.

Loading trusts nothing before it is checked, in this order: the header's length
against the file's size and a limit; the header's JSON and minidl's format name; the
sizes the arrays' entries declare against the file's size on disk (before the arrays
are read, so a file that declares huge arrays allocates nothing); the digest; every
metadata field and the model's config against `minidl.schema` (types, known keys, the
constructors' own arguments; `read_header` gives these fields as one dict, with
`payload_bytes` and one {"group", "name", "dtype", "shape", "offset", "nbytes"} per
array, as format 1 stored them); every array's place in the buffer; then the safetensors
package reads the checked bytes; every floating array must be finite (a model saved
after training diverged, or edited, holds NaN). Then the model is rebuilt from its
config (classes looked up by name in `minidl.nn.LAYERS`) inside a weight budget of
about twice the values the file holds, so a config that asks for far more weights than
the file holds fails before it allocates them, and every array's name, dtype and shape
is checked against the rebuilt model before it is copied in. Every failure is a
ModelFileError (a ValueError) that says what is wrong; nothing in the file is ever
executed. `save` refuses non-finite weights for the same reason `load` does.

Files of format 1 (minidl's own layout: magic b"\\x89MDL\\r\\n\\x1a\\n", header length,
JSON header, arrays, trailing SHA-256) still load, with the same checks;
`convert("old.mdl")` rewrites one as a safetensors file.

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
import safetensors
import safetensors.numpy

from minidl import backend, schema
from minidl.autograd import Tensor, no_grad
from minidl.nn.budget import weight_budget
from minidl.nn.module import LAYERS, Module, layer_from_config, serialize

FORMAT = "minidl.model"
FORMAT_VERSION = 2
LENGTH_BYTES = 8  # the safetensors header length
DIGEST_FIELD = "sha256"
DIGEST_PLACEHOLDER = "0" * 64
OPTIMIZER_PREFIX = "optimizer/"
#: The metadata fields (besides the digest); `read_header` adds `payload_bytes` and `arrays`.
METADATA_FIELDS = tuple(field for field in schema.HEADER_FIELDS if field not in ("payload_bytes", "arrays"))
#: safetensors' dtype names and the NumPy dtypes minidl stores under them.
SAFETENSORS_DTYPES = {"BOOL": "|b1", "U8": "|u1", "I8": "|i1", "U16": "<u2", "I16": "<i2", "U32": "<u4",
                      "I32": "<i4", "U64": "<u8", "I64": "<i8", "F16": "<f2", "F32": "<f4", "F64": "<f8"}
ARRAY_KINDS = schema.ARRAY_KINDS
GROUPS = ("state", "optimizer")
#: The largest header `load` reads: a header holds the architecture and `extra`, a few
#: kilobytes in practice; the weights are in the buffer.
MAX_HEADER_BYTES = 64 * 2**20
#: Integers in a config may be as large as the number of values the file holds, and at
#: least this: a length or width far beyond the weights is a damaged or hostile file.
MIN_INTEGER_LIMIT = 2**20

#: Format 1, which `load` still reads.
MAGIC = b"\x89MDL\r\n\x1a\n"
LEGACY_FORMAT_VERSION = 1
PREFIX_BYTES = len(MAGIC) + 8  # magic + header length
DIGEST_BYTES = 32  # SHA-256


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


def _digest_place(header_bytes):
    """(begin, end) of the digest's 64 digits in the raw header, or None unless the
    header holds exactly one `"sha256":"` followed by 64 lowercase hex digits and `"`."""
    key = f'"{DIGEST_FIELD}":"'.encode()
    if header_bytes.count(key) != 1:
        return None
    begin = header_bytes.index(key) + len(key)
    if not re.fullmatch(rb"[0-9a-f]{64}\"", header_bytes[begin:begin + 65]):
        return None
    return begin, begin + 64


def _file_digest(prefix, header_bytes, place, body):
    """The SHA-256 of the file with the digest's digits as "0"s (see the docstring)."""
    begin, end = place
    digest = hashlib.sha256(prefix)
    digest.update(header_bytes[:begin])
    digest.update(DIGEST_PLACEHOLDER.encode())
    digest.update(header_bytes[end:])
    digest.update(body)
    return digest.hexdigest()


def _encode(fields, arrays):
    """The bytes of a model file: `fields` (the metadata fields, JSON data) and
    `arrays` [(group, name, little-endian array)] as a safetensors file, sealed with
    its digest."""
    tensors = {}
    for group, name, array in arrays:
        if group == "state" and (name.startswith(OPTIMIZER_PREFIX) or name == "__metadata__"):
            raise ValueError(f"save: the model's array name {name!r} is reserved in a model file")
        tensors[name if group == "state" else OPTIMIZER_PREFIX + name] = array
    try:
        metadata = {field: json.dumps(fields[field], default=_json_default) for field in METADATA_FIELDS}
    except (TypeError, ValueError) as error:
        raise TypeError(f"save: the model's config and `extra` must be JSON data: {error}") from None
    metadata[DIGEST_FIELD] = DIGEST_PLACEHOLDER
    written = safetensors.numpy.save(tensors, metadata=metadata)
    length = int.from_bytes(written[:LENGTH_BYTES], "little")
    header_bytes = _canonical_header(json.loads(written[LENGTH_BYTES:LENGTH_BYTES + length]))
    prefix, body = len(header_bytes).to_bytes(LENGTH_BYTES, "little"), written[LENGTH_BYTES + length:]
    place = _digest_place(header_bytes)
    digest = _file_digest(prefix, header_bytes, place, body).encode()
    return b"".join((prefix, header_bytes[:place[0]], digest, header_bytes[place[1]:], body))


def _canonical_header(header):
    """The safetensors header re-encoded with its metadata in a fixed order (the
    safetensors writer orders the metadata's keys at random; one model should make one
    file), compact and padded with spaces to a multiple of 8 bytes as safetensors pads
    it; the arrays' entries as safetensors placed them."""
    metadata = header.pop("__metadata__")
    ordered = {"__metadata__": {key: metadata[key] for key in (*METADATA_FIELDS, DIGEST_FIELD)}, **header}
    encoded = json.dumps(ordered, separators=(",", ":")).encode()
    return encoded + b" " * (-len(encoded) % 8)


def _file_chunks(data):
    """The file's bytes in the pieces they are written in: the header's length, the
    header, then each array's bytes (the crash tests die between two of them)."""
    view = memoryview(data)
    length = int.from_bytes(data[:LENGTH_BYTES], "little")
    yield view[:LENGTH_BYTES]
    yield view[LENGTH_BYTES:LENGTH_BYTES + length]
    entries = json.loads(data[LENGTH_BYTES:LENGTH_BYTES + length])
    entries.pop("__metadata__", None)
    start = LENGTH_BYTES + length
    for begin, end in sorted(entry["data_offsets"] for entry in entries.values()):
        yield view[start + begin:start + end]


def _fields(model, extra, optimizer_class, input_shape, input_dtype):
    spec = serialize(model)
    spec["module"] = type(model).__module__
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION, "minidl_version": _minidl_version(),
        "model": spec, "input_shape": _shape_to_json(input_shape), "input_dtype": _dtype_to_json(input_dtype),
        "dtype": _floating_dtype(model), "extra": {} if extra is None else extra,
        "optimizer": None if optimizer_class is None else {"class_name": optimizer_class},
    }


def _write(path, fields, arrays):
    for group, name, array in arrays:
        count = _non_finite_count(array)
        if count:
            raise ValueError(f"save: the {group} array {name} holds {count:,} non-finite values (NaN or infinity), "
                             "which `load` would refuse; did training diverge?")
    _atomic_write(path, _file_chunks(_encode(fields, arrays)))


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
    arrays = [("state", name, _little_endian(value)) for name, value in model.state_dict().items()]
    if optimizer is not None:
        arrays += [("optimizer", name, _little_endian(value)) for name, value in optimizer.state_dict().items()]
    optimizer_class = None if optimizer is None else type(optimizer).__name__
    _write(path, _fields(model, extra, optimizer_class, input_shape, input_dtype), arrays)


def convert(source, destination=None):
    """Rewrite the model file `source` (any format `load` reads, such as format 1) as a
    safetensors file at `destination` (default: in place, atomically), after every
    check `load` makes. Returns the destination's path."""
    source = os.fspath(source)
    with open(source, "rb") as handle:
        header, groups = _parse(handle, source)
    model = _rebuild(header, groups["state"], source)
    _check_state(model, groups["state"], source)
    fields = {field: header[field] for field in METADATA_FIELDS}
    fields.update(format_version=FORMAT_VERSION, minidl_version=_minidl_version())
    arrays = [(group, name, _little_endian(array)) for group in GROUPS for name, array in groups[group].items()]
    destination = source if destination is None else os.fspath(destination)
    _write(destination, fields, arrays)
    return destination


# ------------------------------------------------------------------------ load
def _non_finite_count(array):
    """How many NaN and infinite values a floating array holds (0 for other dtypes)."""
    return 0 if array.dtype.kind != "f" else int(array.size - np.count_nonzero(np.isfinite(array)))


def _not_minidl(path, why):
    return ModelFileError(f"{path}: not a minidl model file ({why})")


def _read_header_bytes(handle, path, size):
    """(prefix, raw header, header dict) of an open safetensors file, after the header's
    length is checked against the file's size and MAX_HEADER_BYTES."""
    prefix = handle.read(LENGTH_BYTES)
    if size < LENGTH_BYTES:
        raise _not_minidl(path, f"{size} bytes: truncated, or never a model file")
    length = int.from_bytes(prefix, "little")
    if length > MAX_HEADER_BYTES:
        raise _not_minidl(path, f"a header of {length:,} bytes, more than a minidl model file holds "
                                f"(at most {MAX_HEADER_BYTES:,})")
    if LENGTH_BYTES + length > size:
        raise ModelFileError(f"{path}: truncated (the header alone needs {length} bytes)")
    header_bytes = handle.read(length)
    try:
        header = json.loads(header_bytes.decode("utf-8"))
    except (ValueError, RecursionError):
        header = None
    if not isinstance(header, dict):
        raise ModelFileError(f"{path}: the header is not a minidl model header (not a JSON object)")
    metadata = header.get("__metadata__")
    if not isinstance(metadata, dict) or metadata.get("format") != json.dumps(FORMAT):
        raise _not_minidl(path, "a safetensors file without minidl's metadata")
    return prefix, header_bytes, header


def _declared_bytes(entries):
    """The buffer's size that the arrays' entries declare, or None when they are not
    entries (the digest check and the schema then say what is wrong)."""
    try:
        return max((int(entry["data_offsets"][1]) for entry in entries.values()), default=0)
    except (TypeError, KeyError, IndexError, ValueError, OverflowError):
        return None


def _array_entries(entries, path):
    """The header's arrays as format 1 listed them, in the order of their offsets:
    {"group", "name", "dtype" (NumPy's string), "shape", "offset", "nbytes"}."""
    listed = []
    for name, entry in entries.items():
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            raise ModelFileError(f"{path}: the entry of array {name!r} is not a safetensors tensor entry "
                                 "(dtype, shape, data_offsets)")
        offsets = entry["data_offsets"]
        if (not isinstance(offsets, list) or len(offsets) != 2 or not all(map(schema.is_integer, offsets))
                or not 0 <= offsets[0] <= offsets[1]):
            raise ModelFileError(f"{path}: array {name!r} has data_offsets {offsets!r}, not [begin, end]")
        if not isinstance(entry["dtype"], str) or entry["dtype"] not in SAFETENSORS_DTYPES:
            raise ModelFileError(f"{path}: array {name!r} has an unsupported dtype {entry['dtype']!r} "
                                 f"(minidl stores {', '.join(SAFETENSORS_DTYPES)})")
        group = "optimizer" if name.startswith(OPTIMIZER_PREFIX) else "state"
        listed.append({"group": group, "name": name[len(OPTIMIZER_PREFIX):] if group == "optimizer" else name,
                       "dtype": SAFETENSORS_DTYPES[entry["dtype"]], "shape": entry["shape"],
                       "offset": offsets[0], "nbytes": offsets[1] - offsets[0]})
    return sorted(listed, key=lambda entry: (entry["offset"], entry["nbytes"]))


def _read_safetensors(handle, path, size):
    """(header, {group: {name: array}}) of an open model file in the safetensors
    layout, after every check that needs no model (see the module docstring)."""
    prefix, header_bytes, raw = _read_header_bytes(handle, path, size)
    metadata = raw.pop("__metadata__")
    declared = _declared_bytes(raw)
    if declared is not None:
        expected = LENGTH_BYTES + len(header_bytes) + declared
        if expected != size:
            state = "truncated" if size < expected else "damaged (longer than its header says)"
            raise ModelFileError(f"{path}: {state}: {expected} bytes expected, {size} found")
    body = handle.read()
    place = _digest_place(header_bytes)
    if place is None or metadata.get(DIGEST_FIELD) != header_bytes[place[0]:place[1]].decode():
        raise ModelFileError(f"{path}: no checksum in its metadata: the file was not written by minidl.io.save, "
                             "or was modified after saving")
    if _file_digest(prefix, header_bytes, place, body) != metadata[DIGEST_FIELD]:
        raise ModelFileError(f"{path}: checksum mismatch: the file is damaged or was modified after saving")
    header = {}
    for field, value in metadata.items():
        if field == DIGEST_FIELD:
            continue
        if field in ("payload_bytes", "arrays"):
            raise ModelFileError(f"{path}: the metadata has the field {field!r}, which minidl does not write there")
        try:
            header[field] = json.loads(value)
        except (TypeError, ValueError, RecursionError):
            raise ModelFileError(f"{path}: the header is not a minidl model header "
                                 f"(its metadata field {field!r} is not JSON)") from None
    if header.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(f"{path}: format version {header.get('format_version')!r}; this minidl "
                             f"({_minidl_version()}) reads version {FORMAT_VERSION} (and version "
                             f"{LEGACY_FORMAT_VERSION}, its own layout before safetensors)")
    header["payload_bytes"] = len(body)
    header["arrays"] = _array_entries(raw, path)
    _check_schema(header, path)
    _check_places(header, len(body), path)
    try:
        arrays = safetensors.numpy.load(prefix + header_bytes + body)
    except (safetensors.SafetensorError, ValueError, TypeError) as error:
        raise ModelFileError(f"{path}: the safetensors reader refuses the file: {error}") from None
    groups = {group: {} for group in GROUPS}
    for entry in header["arrays"]:
        key = entry["name"] if entry["group"] == "state" else OPTIMIZER_PREFIX + entry["name"]
        groups[entry["group"]][entry["name"]] = _checked_array(arrays[key], entry, path)
    return header, groups


def _check_schema(header, path):
    try:
        schema.check_header(header)
    except schema.ConfigError as error:
        raise ModelFileError(f"{path}: {error}") from None


def _check_places(header, payload_bytes, path):
    """Every array fills the bytes its shape and dtype need, the arrays follow one
    another without gaps or overlaps, and together they fill the buffer."""
    offset, seen = 0, set()
    for entry in header["arrays"]:
        group, name, shape = entry["group"], entry["name"], tuple(entry["shape"])
        dtype, start, nbytes = np.dtype(entry["dtype"]), entry["offset"], entry["nbytes"]
        if (group, name) in seen:
            raise ModelFileError(f"{path}: array {name!r} appears twice")
        seen.add((group, name))
        if start != offset or nbytes != math.prod(shape) * dtype.itemsize or start + nbytes > payload_bytes:
            raise ModelFileError(f"{path}: array {name!r} does not fit the payload "
                                 f"(offset {start}, {nbytes} bytes for shape {shape} of {dtype})")
        offset += nbytes
    if offset != payload_bytes:
        raise ModelFileError(f"{path}: the arrays cover {offset} of the payload's {payload_bytes} bytes")


def _checked_array(array, entry, path):
    """A writable native-order copy of `array`, once its values are finite."""
    count = _non_finite_count(array)
    if count:
        raise ModelFileError(f"{path}: the {entry['group']} array {entry['name']} holds {count:,} non-finite values "
                             "(NaN or infinity): the model was saved after training diverged, or the file was edited")
    return np.array(array, dtype=array.dtype.newbyteorder("="))


def _parse(handle, path):
    """(header, {group: {name: array}}) of an open model file of either format, after
    every check that needs no model."""
    size = os.fstat(handle.fileno()).st_size
    if handle.read(len(MAGIC)) == MAGIC:
        handle.seek(0)
        return _read_legacy(handle, path)
    handle.seek(0)
    return _read_safetensors(handle, path, size)


# Format 1, minidl's own layout before safetensors: read, never written.
def _read_legacy(handle, path):
    """(header, {group: {name: array}}) of a format 1 file: magic, header length, JSON
    header, payload, SHA-256 of every byte before it; the same checks as format 2."""
    size = os.fstat(handle.fileno()).st_size
    prefix = handle.read(PREFIX_BYTES)
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
    payload = memoryview(rest)[:-DIGEST_BYTES]
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ModelFileError(f"{path}: the header is not a minidl model header")
    if header.get("format_version") != LEGACY_FORMAT_VERSION:
        raise ModelFileError(f"{path}: format version {header.get('format_version')!r} in minidl's own layout, "
                             f"which held version {LEGACY_FORMAT_VERSION} only")
    _check_schema(header, path)
    _check_places(header, len(payload), path)
    groups = {group: {} for group in GROUPS}
    for entry in header["arrays"]:
        array = np.frombuffer(payload, dtype=np.dtype(entry["dtype"]), count=math.prod(entry["shape"]),
                              offset=entry["offset"]).reshape(entry["shape"])
        groups[entry["group"]][entry["name"]] = _checked_array(array, entry, path)
    return header, groups


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
