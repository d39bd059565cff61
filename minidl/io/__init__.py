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
from minidl.io.layout import FORMAT, FORMAT_VERSION, ModelFileError
from minidl.io.model_file import SavedModel, convert, load, read_header, save

__all__ = ["FORMAT", "FORMAT_VERSION", "ModelFileError", "SavedModel", "convert", "load", "read_header", "save"]
