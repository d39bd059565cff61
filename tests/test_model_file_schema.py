"""Model files edited by hand with a recomputed checksum: the header and the config are
held to minidl.schema before anything is built, non-finite weights are refused, and a
file that declares huge arrays fails before any allocation. Every failure is a
ModelFileError, or one line from the command line."""
import json
import re
import tracemalloc

import numpy as np
import pytest
from test_cli import TINY, assert_one_line_error, run, synthetic_urls, write_csv
from test_io import first_entry, rewrite, seal, sequential_model, split

from minidl import io, nn, schema
from minidl.cli import main
from minidl.models.recipes import accepted_settings
from minidl.models import ARCHITECTURES, build_model
from minidl.train import predict

SMALL = {"max_len": 12, "emb_dim": 4, "max_vocab_len": 101}
SMALL_SIZES = {"simple_lstm": {"lstm_output_size": 3}, "lstm_conv": {"lstm_output_size": 3, "filters": 4},
               "conv_fully": {"filters": 4, "hidden_units": (8,)}, "conv_max": {"filters": 4},
               "ngram_linear": {"buckets": 64, "max_ngrams": 40}, "wide_conv_max": {"filters": 4, "buckets": 64},
               "urlnet": {"filters": 4, "kernel_sizes": (3,), "branch_units": 8, "hidden_units": (8,)}}


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "model.mdl"
    io.save(path, sequential_model(), extra={"note": "kept"})
    return path


def tiny_model_file(folder):
    """A tiny conv_fully trained for one epoch by `minidl train` on synthetic URLs: a
    model file with its tokeniser settings, in `folder`."""
    data = write_csv(folder / "urls.csv", synthetic_urls(60))
    path = folder / "model.mdl"
    assert main(["train", "--arch", "conv_fully", "--data", str(data), *TINY, "--epochs", "1", "--verbose", "0",
                 "--output", str(path)]) == 0
    return path


@pytest.fixture(scope="module")
def url_model_file(tmp_path_factory):
    return tiny_model_file(tmp_path_factory.mktemp("schema"))


def edited_copy(source, tmp_path, edit_header, edit_payload=None, edit_entries=None):
    """A copy of `source` after the edits (see test_io.rewrite; `edit_payload(entries,
    buffer)` edits the arrays' bytes), with a valid checksum."""
    path = tmp_path / "edited.mdl"
    path.write_bytes(source.read_bytes())
    rewrite(path, edit_header, edit_entries)
    if edit_payload is not None:
        raw, buffer = split(path.read_bytes())
        buffer = bytearray(buffer)
        edit_payload(raw, buffer)
        path.write_bytes(seal(raw, bytes(buffer)))
    return path


# ------------------------------------------------------------ files that stay valid
@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_every_url_architecture_passes_the_schema_and_round_trips(arch, tmp_path):
    model = build_model(arch, **accepted_settings(arch, **SMALL), **SMALL_SIZES.get(arch, {}))
    io.save(tmp_path / "m.mdl", model)
    loaded = io.load(tmp_path / "m.mdl").model
    urls = [url for url, _ in synthetic_urls(5)]
    ids = model.make_tokenizer(urls).encode(urls)
    np.testing.assert_allclose(predict(loaded, ids), predict(model, ids), rtol=1e-6)


def test_the_schema_follows_keyword_arguments_to_the_base_constructor():
    parameters = schema.constructor_parameters(nn.LSTM)
    assert {"units", "unit_forget_bias", "recurrent_initializer", "name"} <= set(parameters)


# ------------------------------------------------------------ the header
@pytest.mark.parametrize("edit, message", [
    (lambda h: h.update(colour="red"), "the header has the unknown key 'colour'"),
    (lambda h: h.pop("dtype"), "the header lacks 'dtype'"),
    (lambda h: h.update(dtype="complex64"), "dtype is a string ('complex64'), expected one of float16"),
    (lambda h: h.update(extra="garbage"), "extra is a string ('garbage'), expected an object"),
    (lambda h: h.update(input_shape=[None, "5"]), "input_shape[1] is a string"),
    (lambda h: h.update(input_dtype="object"), "input_dtype is a string ('object')"),
    (lambda h: h.update(optimizer={"class_name": 3}), "optimizer.class_name is an integer"),
    (lambda h: h["model"].update(config=[]), "model.config is a list"),
    (lambda h: h.update(input_shape=[None, 2**12, 2**12]), "input_shape [None, 4096, 4096] asks for samples of "
                                                            "16,777,216 values, more than the 1,048,576"),
])
def test_a_header_field_of_the_wrong_kind_is_named(saved, tmp_path, edit, message):
    with pytest.raises(io.ModelFileError, match=re.escape(message)):
        io.load(edited_copy(saved, tmp_path, edit))


@pytest.mark.parametrize("edit, message", [
    (lambda e: first_entry(e).update(shape=[4, True]), "arrays[0].shape[1] is a boolean"),
    (lambda e: first_entry(e).update(shape="4"), "arrays[0].shape is a string"),
    (lambda e: first_entry(e).update(colour="red"), "is not a safetensors tensor entry (dtype, shape, data_offsets)"),
    (lambda e: first_entry(e).update(data_offsets=[0]), "has data_offsets [0], not [begin, end]"),
    (lambda e: first_entry(e).update(shape=[2, 2]), "array 'layer0.embeddings' does not fit the payload"),
    (lambda e: e.update({"optimizer/m.0": dict(first_entry(e))}), "does not fit the payload"),
    (lambda e: e.update({"zzz": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}}),
     "not in the model ['zzz']"),
])
def test_an_array_entry_that_does_not_describe_its_bytes_is_named(saved, tmp_path, edit, message):
    with pytest.raises(io.ModelFileError, match=re.escape(message)):
        io.load(edited_copy(saved, tmp_path, None, edit_entries=edit))


# ------------------------------------------------------------ the config
@pytest.mark.parametrize("edit, message", [
    (lambda c: c.update(colour="red"), "model.config: Sequential has no argument 'colour'"),
    (lambda c: c["layers"][2]["config"].update(epsilon="0.001"),
     "model.config.layers[2].config.epsilon is a string ('0.001'), expected a number"),
    (lambda c: c["layers"][1]["config"].pop("units"), "Dense needs 'units', which the config lacks"),
    (lambda c: c["layers"][2]["config"].update(momentum=float("nan")), "expected a finite number"),
    (lambda c: c["layers"][2]["config"].update(center="yes"), "expected true or false"),
    (lambda c: c["layers"][3].update(class_name="Teleport"), "unknown layer class 'Teleport'"),
    (lambda c: c["layers"][0]["config"].update(input_dim=10**9), "expected an integer of at most"),
    (lambda c: c["layers"][1]["config"].update(name=["a"]), "expected a string or null"),
])
def test_a_config_value_the_constructor_cannot_take_is_named(saved, tmp_path, edit, message):
    with pytest.raises(io.ModelFileError, match=re.escape(message)):
        io.load(edited_copy(saved, tmp_path, lambda header: edit(header["model"]["config"])))


DEEP = "[" * 100_000 + "]" * 100_000  # beyond what the JSON decoder can recurse into


def test_deeply_nested_json_in_the_header_is_a_model_file_error(saved):
    data = saved.read_bytes()
    length = int.from_bytes(data[:8], "little")
    header = data[8:8 + length].replace(b'{"__metadata__"', b'{"deep":' + DEEP.encode() + b',"__metadata__"', 1)
    saved.write_bytes(len(header).to_bytes(8, "little") + header + data[8 + length:])
    with pytest.raises(io.ModelFileError, match="the header is not a minidl model header"):
        io.load(saved)


def test_deeply_nested_json_in_a_metadata_field_is_a_model_file_error(saved):
    raw, buffer = split(saved.read_bytes())
    raw["__metadata__"]["extra"] = '{"deep": ' + DEEP + "}"
    saved.write_bytes(seal(raw, buffer))
    with pytest.raises(io.ModelFileError, match="its metadata field 'extra' is not JSON"):
        io.load(saved)


def test_a_config_asking_for_far_more_weights_than_the_file_holds_allocates_nothing(saved, tmp_path):
    # 10^12 values (4 TB of float32) in an Embedding whose sizes are each within the limit.
    def huge(header):
        header["model"]["config"]["layers"][0]["config"].update(input_dim=10**6, output_dim=10**6)

    path = edited_copy(saved, tmp_path, huge)
    tracemalloc.start()
    try:
        with pytest.raises(io.ModelFileError, match=r"would create embeddings of shape \(1000000, 1000000\)"):
            io.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20


def test_a_file_declaring_huge_arrays_is_refused_before_reading_them(saved, tmp_path):
    def huge_array(entries):
        first_entry(entries).update(shape=[10**6, 10**6], data_offsets=[0, 4 * 10**12])

    path = edited_copy(saved, tmp_path, None, edit_entries=huge_array)
    tracemalloc.start()
    try:
        with pytest.raises(io.ModelFileError, match="truncated: .* bytes expected"):
            io.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2**20


# ------------------------------------------------------------ values
def nan_first_array(entries, buffer):
    begin, end = first_entry(entries)["data_offsets"]
    buffer[begin:end] = np.full((end - begin) // 4, np.nan, np.float32).tobytes()


def test_non_finite_weights_are_refused_at_load(saved, tmp_path):
    path = edited_copy(saved, tmp_path, lambda header: None, nan_first_array)
    with pytest.raises(io.ModelFileError, match=r"layer0.embeddings holds 80 non-finite values"):
        io.load(path)


def test_save_refuses_non_finite_weights_and_writes_nothing(tmp_path):
    model = sequential_model()
    model.layers[1].kernel.data[0, 0] = np.inf
    with pytest.raises(ValueError, match="layer1.kernel holds 1 non-finite values"):
        io.save(tmp_path / "m.mdl", model)
    assert not (tmp_path / "m.mdl").exists()


# ------------------------------------------------------------ the command line
@pytest.mark.parametrize("edit, fragment", [
    (lambda h: h["extra"].update(tokenizer="garbage"), "extra.tokenizer is a string ('garbage'), expected an object"),
    (lambda h: h["extra"]["tokenizer"].update(lowercase=True), "CharTokenizer has no argument 'lowercase'"),
    (lambda h: h["extra"]["tokenizer"].update(max_len=41), "the tokeniser makes 41 ids per URL, the model reads 40"),
    (lambda h: h["extra"]["tokenizer"].update(padding="middle"), 'padding must be "pre" or "post"'),
    (lambda h: h["model"]["config"].update(colour="red"), "ConvFully has no argument 'colour'"),
])
def test_predict_on_an_edited_file_is_one_line(url_model_file, tmp_path, capsys, edit, fragment):
    status, _, err = run(["predict", "--model", edited_copy(url_model_file, tmp_path, edit), "a.com"], capsys)
    assert_one_line_error(status, err, fragment)


def test_predict_on_nan_weights_is_one_line_not_nan_benign(url_model_file, tmp_path, capsys):
    status, out, err = run(["predict", "--model", edited_copy(url_model_file, tmp_path, lambda h: None,
                                                               nan_first_array), "a.com"], capsys)
    assert_one_line_error(status, err, "non-finite values")
    assert out == ""
