"""The bytes of a model file: a safetensors file (8-byte header length, JSON header
with minidl's fields in `__metadata__`, the arrays) whose digest covers every byte, and
the checks that read one without trusting it; format 1 (`\\x89MDL`) read as well."""
import hashlib
import json
import math
import os
import re

import numpy as np
import safetensors
import safetensors.numpy

from minidl import backend, schema
from minidl.version import __version__

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


def _json_default(value):
    # NumPy scalars and arrays are common in metadata (metrics, counts): store them as numbers.
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON data")


def little_endian(array):
    array = np.asarray(array)
    if array.dtype.kind not in ARRAY_KINDS:
        raise TypeError(f"save: cannot store an array of dtype {array.dtype} (only bool, integer and float arrays)")
    # np.asarray, not np.ascontiguousarray: the latter turns 0-d arrays (a step count) into 1-d.
    return np.asarray(array, dtype=array.dtype.newbyteorder("<"), order="C")


def floating_dtype(model):
    for parameter in model.parameters():
        if parameter.dtype.kind == "f":
            return np.dtype(parameter.dtype).name
    return np.dtype(backend.default_dtype()).name


def shape_to_json(shape):
    if shape is None:
        return None
    if len(shape) and isinstance(shape[0], (tuple, list)):  # several inputs
        return [shape_to_json(part) for part in shape]
    return [None if n is None else int(n) for n in shape]


def dtype_to_json(dtype):
    if dtype is None:
        return None
    if isinstance(dtype, (tuple, list)):
        return [dtype_to_json(part) for part in dtype]
    return np.dtype(dtype).name


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


def encode(fields, arrays):
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


def file_chunks(data):
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


# ------------------------------------------------------------------------ load
def non_finite_count(array):
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
                             f"({__version__}) reads version {FORMAT_VERSION} (and version "
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
    count = non_finite_count(array)
    if count:
        raise ModelFileError(f"{path}: the {entry['group']} array {entry['name']} holds {count:,} non-finite values "
                             "(NaN or infinity): the model was saved after training diverged, or the file was edited")
    return np.array(array, dtype=array.dtype.newbyteorder("="))


def parse(handle, path):
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
