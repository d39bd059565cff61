"""Fuzz tests (Hypothesis): the model-file reader on flipped, truncated and inserted
bytes and on random JSON in the header (the safetensors entries and minidl's metadata);
the CSV loaders on random rows, quotes, encodings and line ends; the character
tokeniser on arbitrary Unicode. The only outcomes allowed are the correct result or the
library's own error (ModelFileError for model files, ValueError for CSV files,
TypeError or ValueError for the tokeniser's arguments); anything else escapes the `try`
and fails the test.

The runs are derandomised (the same examples every time) and bounded: FUZZ_EXAMPLES
examples per test (MINIDL_FUZZ_EXAMPLES, default 60), a few seconds per test here.
Raise it to fuzz longer: MINIDL_FUZZ_EXAMPLES=5000 python -m pytest tests/test_fuzz.py
"""
import csv
import io as stdio
import json
import os
import string
import tempfile
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from safetensors.numpy import load as safetensors_load
from test_io import seal, sequential_model, split

from minidl import io
from minidl.data import CharTokenizer, load_text_csv, load_url_csv, pad_sequences
from minidl.models import build_model

FUZZ_EXAMPLES = int(os.environ.get("MINIDL_FUZZ_EXAMPLES", "60"))
fuzz = settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


# ------------------------------------------------------------ model files
def model_file_bytes(model):
    """A valid model file's bytes, as io.save writes them."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.mdl")
        io.save(path, model)
        with open(path, "rb") as handle:
            return handle.read()


MODELS = {
    "sequential": lambda: sequential_model(),
    "simple_lstm": lambda: build_model("simple_lstm", max_len=6, emb_dim=3, max_vocab_len=101, lstm_output_size=2),
}
VALID = {name: model_file_bytes(make()) for name, make in MODELS.items()}


def header_of(data):
    """The raw safetensors header of a model file, its metadata's values decoded from
    JSON: {"__metadata__": {"model": {...}, ...}, name: {"dtype", "shape", "data_offsets"}}."""
    raw, _ = split(data)
    raw["__metadata__"] = {key: json.loads(value) for key, value in raw["__metadata__"].items() if key != "sha256"}
    return raw


def with_header(data, header):
    """`data` with its header replaced by `header` (as `header_of` gives it; its metadata
    encoded back to JSON strings) and the checksum recomputed, as a hand edit would; a
    header without a metadata object is written as it is, unsealed."""
    _, buffer = split(data)
    if isinstance(header, dict) and isinstance(header.get("__metadata__"), dict):
        metadata = {key: json.dumps(value) for key, value in header["__metadata__"].items()}
        return seal({**header, "__metadata__": metadata}, buffer)
    header_bytes = json.dumps(header).encode()
    return len(header_bytes).to_bytes(8, "little") + header_bytes + buffer


def with_raw_header(data, header_bytes):
    """`data` with these bytes as its header (no checksum can be computed for them)."""
    _, buffer = split(data)
    return len(header_bytes).to_bytes(8, "little") + header_bytes + buffer


def load_or_refuse(tmp_path, data):
    """io.load of `data`: the SavedModel, or None when it raised ModelFileError."""
    path = tmp_path / "fuzzed.mdl"
    path.write_bytes(data)
    try:
        return io.load(path)
    except io.ModelFileError:
        return None


@fuzz
@given(name=st.sampled_from(sorted(VALID)), flips=st.lists(st.tuples(st.integers(0, 10**9), st.integers(1, 255)),
                                                            min_size=1, max_size=4))
def test_flipped_bytes_are_refused(tmp_path, name, flips):
    data = bytearray(VALID[name])
    for position, mask in flips:
        data[position % len(data)] ^= mask
    assume(bytes(data) != VALID[name])
    assert load_or_refuse(tmp_path, bytes(data)) is None


@fuzz
@given(name=st.sampled_from(sorted(VALID)), keep=st.integers(0, 10**9))
def test_truncated_files_are_refused(tmp_path, name, keep):
    data = VALID[name]
    assert load_or_refuse(tmp_path, data[:keep % len(data)]) is None


@fuzz
@given(name=st.sampled_from(sorted(VALID)), position=st.integers(0, 10**9), inserted=st.binary(min_size=1, max_size=64))
def test_inserted_bytes_are_refused(tmp_path, name, position, inserted):
    data = VALID[name]
    position %= len(data) + 1
    assert load_or_refuse(tmp_path, data[:position] + inserted + data[position:]) is None


#: Keys and words that occur in real headers, so random JSON reaches past the first checks.
WORDS = ["class_name", "config", "layers", "module", "name", "units", "input_dim", "output_dim", "rate",
         "Dense", "Embedding", "Sequential", "Dropout", "LSTM", "SimpleLSTM", "state", "optimizer", "<f4", "float32",
         "shape", "offset", "nbytes", "minidl.models.url"]
json_leaves = (st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.sampled_from([0, 1, 2, -1, 10**6])
               | st.floats() | st.text(max_size=6) | st.sampled_from(WORDS))
json_values = st.recursive(json_leaves, lambda children: st.lists(children, max_size=4)
                           | st.dictionaries(st.text(max_size=6) | st.sampled_from(WORDS), children, max_size=4),
                           max_leaves=16)


def replace_at(value, choices, new):
    """`value` with the node reached by following `choices` replaced by `new`: each choice
    names a key, or picks a child by its position (modulo the number of children)."""
    if not choices or not isinstance(value, (list, dict)) or not value:
        return new
    keys = list(range(len(value))) if isinstance(value, list) else list(value)
    key = choices[0] if isinstance(choices[0], str) else keys[choices[0] % len(keys)]
    copy = list(value) if isinstance(value, list) else dict(value)
    copy[key] = replace_at(value[key], choices[1:], new)
    return copy


def assert_loaded_correctly(saved, data):
    """A file that loads holds the arrays that the safetensors package reads from it,
    in the rebuilt model."""
    state = saved.model.state_dict()
    for name, stored in safetensors_load(data).items():
        if not name.startswith("optimizer/"):
            np.testing.assert_array_equal(state[name], stored)


@fuzz
@given(name=st.sampled_from(sorted(VALID)),
       region=st.sampled_from([(), ("__metadata__",), ("__metadata__", "model", "config"),
                               ("__metadata__", "input_shape")]),
       choices=st.lists(st.integers(0, 50), max_size=8), new=json_values)
def test_a_random_json_value_anywhere_in_the_header_loads_correctly_or_is_refused(tmp_path, name, region, choices,
                                                                                   new):
    header = replace_at(header_of(VALID[name]), [*region, *choices], new)
    data = with_header(VALID[name], header)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        saved = load_or_refuse(tmp_path, data)
    if saved is not None:
        assert_loaded_correctly(saved, data)


@fuzz
@given(name=st.sampled_from(sorted(VALID)), config=json_values)
def test_a_random_config_loads_correctly_or_is_refused(tmp_path, name, config):
    header = header_of(VALID[name])
    header["__metadata__"]["model"]["config"] = config
    data = with_header(VALID[name], header)
    saved = load_or_refuse(tmp_path, data)
    if saved is not None:
        assert_loaded_correctly(saved, data)


@fuzz
@given(header=json_values | st.binary(max_size=64).map(lambda raw: raw.decode("latin-1")))
def test_a_random_header_is_refused(tmp_path, header):
    raw = json.dumps(header).encode() if not isinstance(header, str) else header.encode("utf-8", "surrogatepass")
    assert load_or_refuse(tmp_path, with_raw_header(VALID["sequential"], raw)) is None


# ------------------------------------------------------------ CSV files
texts = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=20).filter(
    lambda text: text.strip())
rows = st.lists(st.tuples(texts, st.sampled_from(["0", "1"])), max_size=12)
line_ends = st.sampled_from(["\n", "\r\n", "\r"])
quoting = st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC])


def csv_text(header, body, line_end, quote_mode):
    stream = stdio.StringIO()
    writer = csv.writer(stream, lineterminator=line_end, quoting=quote_mode)
    writer.writerow(header)
    writer.writerows(body)
    return stream.getvalue()


@fuzz
@given(body=rows, line_end=line_ends, quote_mode=quoting, bom=st.booleans(), extra_column=st.booleans())
def test_valid_utf8_rows_come_back_exactly(tmp_path, body, line_end, quote_mode, bom, extra_column):
    # Python's writer quotes a field with a line break only if the break is one of the
    # line end's characters; otherwise the file it writes is not valid CSV.
    assume(quote_mode != csv.QUOTE_MINIMAL or not any(set(text) & (set("\r\n") - set(line_end)) for text, _ in body))
    header = ["url", "isMalicious"] + (["note"] if extra_column else [])
    table = [(text, label) + (("x, \"y\"",) if extra_column else ()) for text, label in body]
    path = tmp_path / "rows.csv"
    path.write_bytes(("\ufeff" if bom else "").encode() + csv_text(header, table, line_end, quote_mode).encode())
    urls, labels, report = load_url_csv(path)
    assert urls == [text for text, _ in body]
    assert labels.tolist() == [int(label) for _, label in body]
    assert report.rows == len(body) and report.n_skipped == 0


@fuzz
@given(body=rows, line_end=line_ends, encoding=st.sampled_from(["latin-1", "utf-16", "cp1252", "utf-8"]),
       on_error=st.sampled_from(["raise", "skip"]))
def test_rows_in_any_encoding_load_or_fail_with_a_value_error(tmp_path, body, line_end, encoding, on_error):
    path = tmp_path / "rows.csv"
    path.write_bytes(csv_text(["url", "isMalicious"], body, line_end, csv.QUOTE_MINIMAL).encode(encoding, "replace"))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a skip warns about what it skipped
            urls, labels, report = load_url_csv(path, on_error=on_error)
    except ValueError:
        return
    assert len(urls) == len(labels) == report.rows <= len(body)
    assert set(labels.tolist()) <= {0, 1} and all(url.strip() for url in urls)


@fuzz
@given(raw=st.binary(max_size=300) | st.text(string.printable + "\"',\r\n\x00é", max_size=300).map(str.encode),
       on_error=st.sampled_from(["raise", "skip"]), classes=st.sampled_from([("0", "1"), None]))
def test_arbitrary_bytes_load_or_fail_with_a_value_error(tmp_path, raw, on_error, classes):
    path = tmp_path / "random.csv"
    path.write_bytes(b"text,label\n" + raw)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            texts_read, labels, report = load_text_csv(path, "text", "label", classes=classes, on_error=on_error)
    except ValueError:
        return
    assert len(texts_read) == len(labels) == report.rows
    assert labels.dtype == np.int64 and (labels >= 0).all() and (labels < max(1, len(report.classes))).all()


# ------------------------------------------------------------ the tokeniser
any_text = st.text(st.characters(codec=None, exclude_categories=()) | st.characters(categories=["Cs"]), max_size=30)


def source_ids(url, max_len):
    """The source notebook's tokeniser and Keras' pad_sequences (pre, pre), written out."""
    ids = [string.printable.index(char) + 1 for char in url if char in string.printable][-max_len:]
    return [0] * (max_len - len(ids)) + ids


@fuzz
@given(urls=st.lists(any_text, max_size=8), max_len=st.integers(1, 40))
def test_the_default_tokeniser_matches_the_source_on_any_unicode(urls, max_len):
    tokenizer = CharTokenizer(max_len=max_len)
    ids, unknown = tokenizer.encode(urls, return_unknown=True)
    assert ids.dtype == np.int32 and ids.shape == (len(urls), max_len)
    assert ids.tolist() == [source_ids(url, max_len) for url in urls]
    assert unknown.tolist() == [sum(char not in string.printable for char in url) for url in urls]
    for url, row in zip(urls, ids):
        kept = "".join(char for char in url if char in string.printable)
        assert tokenizer.decode(row) == kept[-max_len:]


@fuzz
@given(corpus=st.lists(any_text, min_size=1, max_size=6), urls=st.lists(any_text, max_size=6),
       max_len=st.integers(1, 30), padding=st.sampled_from(["pre", "post"]),
       truncating=st.sampled_from(["pre", "post"]))
def test_a_fitted_tokeniser_with_oov_round_trips_any_unicode(corpus, urls, max_len, padding, truncating):
    try:
        tokenizer = CharTokenizer.fit(corpus, max_len=max_len, padding=padding, truncating=truncating)
    except ValueError:
        assert not "".join(corpus)  # no character to build a vocabulary from
        return
    ids = tokenizer.encode(urls)
    assert ((ids >= 0) & (ids < tokenizer.vocab_size)).all()
    sequences, unknown = tokenizer.tokenize(urls)
    for url, sequence, row, missing in zip(urls, sequences, ids, unknown):
        expected = "".join(char if char in tokenizer.vocabulary else "\ufffd" for char in url)
        assert tokenizer.decode(sequence) == expected
        assert missing == sum(char not in tokenizer.vocabulary for char in url)
        kept = expected[-max_len:] if truncating == "pre" else expected[:max_len]
        assert tokenizer.decode(row) == kept
    rebuilt = CharTokenizer.from_config(json.loads(json.dumps(tokenizer.get_config())))
    np.testing.assert_array_equal(rebuilt.encode(urls), ids)


@fuzz
@given(items=st.lists(any_text | st.integers() | st.none() | st.binary(max_size=4), max_size=5))
def test_the_tokeniser_refuses_what_is_not_a_list_of_strings_with_a_type_error(items):
    try:
        CharTokenizer().encode(items)
    except TypeError:
        assert not all(isinstance(item, str) for item in items)
        return
    assert all(isinstance(item, str) for item in items)


@fuzz
@given(sequences=st.lists(st.lists(st.integers(-5, 5), max_size=6), max_size=6), maxlen=st.integers(-2, 8) | st.none(),
       padding=st.sampled_from(["pre", "post", "middle"]))
def test_pad_sequences_pads_or_refuses_with_a_value_error(sequences, maxlen, padding):
    try:
        padded = pad_sequences(sequences, maxlen=maxlen, padding=padding)
    except ValueError:
        assert padding == "middle" or (maxlen is not None and maxlen < 0)
        return
    width = max(map(len, sequences), default=0) if maxlen is None else maxlen
    assert padded.shape == (len(sequences), width)
    for sequence, row in zip(sequences, padded.tolist()):
        kept = sequence[-width:] if width else []
        assert (row[width - len(kept):] if padding == "pre" else row[:len(kept)]) == kept


@pytest.mark.parametrize("name", sorted(VALID))
def test_the_fuzzed_files_start_valid(tmp_path, name):
    saved = load_or_refuse(tmp_path, VALID[name])
    assert saved is not None
    assert_loaded_correctly(saved, VALID[name])
