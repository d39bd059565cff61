"""ONNX export (minidl.interop.onnx), checked by the ecosystem's own readers: every
export passes onnx.checker, and ONNX Runtime's outputs equal minidl's `predict` to 1e-5
on 1,000 URLs of the embedded sample for every URL architecture, on the lecture's Keras
models (../shared; skipped without it) and on small Sequential and graph models of
every layer the exporter maps. The models are small and their weights random (seeded),
not trained: the test is of the mapping, which trained weights would not exercise more
(the zero-initialised wide parts get random values too, so they count)."""
import json
import os
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason='ONNX export needs the onnx package (pip install -e ".[onnx]")')
ort = pytest.importorskip("onnxruntime", reason='the ONNX check needs onnxruntime (pip install -e ".[onnx]")')

import minidl  # noqa: E402
from minidl import nn  # noqa: E402
from minidl.autograd import no_grad  # noqa: E402
from minidl.data import CharTokenizer, load_dataset  # noqa: E402
from minidl.interop.onnx import OnnxExportError, export  # noqa: E402
from minidl.models import ARCHITECTURES, GraphModel, Sequential, build_model  # noqa: E402
from minidl.train import predict  # noqa: E402

SIZES = {
    "simple_lstm": {"max_len": 40, "emb_dim": 8, "lstm_output_size": 8},
    "lstm_conv": {"max_len": 40, "emb_dim": 8, "lstm_output_size": 8, "filters": 8},
    "conv_fully": {"max_len": 40, "emb_dim": 8, "filters": 8, "hidden_units": (16, 8)},
    "conv_max": {"max_len": 40, "emb_dim": 8, "filters": 8},
    "ngram_linear": {"buckets": 512, "max_ngrams": 60, "weighting": "sublinear"},
    "wide_conv_max": {"max_len": 40, "emb_dim": 8, "filters": 8, "buckets": 512, "max_ngrams": 60, "ngram_dim": 4},
    "urlnet": {"max_len": 40, "emb_dim": 8, "filters": 8, "kernel_sizes": (3, 4), "branch_units": 8,
               "hidden_units": (8,), "max_words": 10, "max_word_len": 8, "max_vocabulary": 200, "wide": True,
               "buckets": 512, "max_ngrams": 60},
}
TOLERANCE = {"rtol": 1e-5, "atol": 1e-5}


@pytest.fixture(scope="module")
def urls():
    texts, _, _ = load_dataset("url-bahnsen-phishing-sample")
    return list(np.random.default_rng(0).choice(texts, 1000, replace=False))


def perturbed(model, seed=1, scale=0.1):
    """`model` in eval mode, every weight and buffer moved by seeded noise (variances kept positive)."""
    rng = np.random.default_rng(seed)
    for name, value in [*model.named_parameters(), *model.named_buffers()]:
        array = value if isinstance(value, np.ndarray) else value.data
        moved = array + rng.normal(0, scale, array.shape)
        array[...] = np.abs(moved) if "variance" in name else moved
    return model.eval()


def onnx_run(model, inputs, tmp_path, **options):
    """(ONNX Runtime's outputs, the ModelProto) of `model` exported and checked."""
    path = tmp_path / "model.onnx"
    proto = export(model, path, **options)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [item.name for item in session.get_inputs()]
    return session.run(None, dict(zip(names, inputs))), proto


# ------------------------------------------------------------ the URL models
@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_every_url_architecture_scores_the_same_in_onnx_runtime(arch, urls, tmp_path):
    minidl.manual_seed(0)
    model = perturbed(build_model(arch, **SIZES[arch]))
    tokenizer = model.make_tokenizer(urls)
    ids = tokenizer.encode(urls)
    (probabilities,), proto = onnx_run(model, [ids], tmp_path, tokenizer=tokenizer)
    expected = predict(model, ids)
    assert probabilities.shape == expected.shape == (1000, 1)
    np.testing.assert_allclose(probabilities, expected, **TOLERANCE)
    assert expected.std() > 1e-3  # the URLs score differently: the comparison is not of constants
    # The batch axis is dynamic and the tokeniser travels in the metadata.
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    properties = {prop.key: prop.value for prop in proto.metadata_props}
    assert json.loads(properties["minidl.tokenizer"]) == json.loads(json.dumps(tokenizer.get_config()))
    assert properties["minidl.model"] == type(model).__name__


def test_an_ensemble_of_url_models_scores_the_same(urls, tmp_path):
    from minidl.models import MeanEnsemble

    archs = ("ngram_linear", "conv_max")
    members = [perturbed(build_model(arch, **SIZES[arch]), seed=i) for i, arch in enumerate(archs)]
    ensemble = MeanEnsemble(members).eval()
    tokenizer = ensemble.make_tokenizer_from([member.make_tokenizer(urls) for member in members])
    x = tokenizer.encode(urls)
    (probabilities,), _ = onnx_run(ensemble, [x], tmp_path, tokenizer=tokenizer)
    np.testing.assert_allclose(probabilities, predict(ensemble, x), **TOLERANCE)


def documented_url_ids(url, s):
    """docs/interop.md's lines that make a character model's ids from a URL, without minidl."""
    first = 2 if s["oov"] else 1  # 0 pads; with "oov", 1 stands for any character outside the vocabulary
    ids = [s["vocabulary"].index(c) + first if c in s["vocabulary"] else 1
           for c in url if c in s["vocabulary"] or s["oov"]]
    ids = ids[-s["max_len"]:] if s["truncating"] == "pre" else ids[:s["max_len"]]
    padding = [0] * (s["max_len"] - len(ids))
    return padding + ids if s["padding"] == "pre" else ids + padding


@pytest.mark.parametrize("make_tokenizer", [
    lambda urls: CharTokenizer(max_len=40),
    lambda urls: CharTokenizer.fit(urls[:200], max_len=40, padding="post", truncating="post"),  # oov, fitted
])
def test_the_documented_ids_from_a_url_feed_the_graph(make_tokenizer, urls, tmp_path):
    tokenizer = make_tokenizer(urls)
    model = perturbed(build_model("conv_max", **SIZES["conv_max"]))
    path = tmp_path / "conv_max.onnx"
    export(model, path, tokenizer=tokenizer)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    settings = json.loads(session.get_modelmeta().custom_metadata_map["minidl.tokenizer"])
    some = urls[:300] + ["\u00e9t\u00e9.example/\u00fcber", ""]
    ids = np.array([documented_url_ids(url, settings) for url in some], dtype=np.int32)
    np.testing.assert_array_equal(ids, tokenizer.encode(some))
    (probabilities,) = session.run(None, {"ids": ids})
    np.testing.assert_allclose(probabilities, predict(model, ids), **TOLERANCE)


# ------------------------------------------------------------ layers in Sequential and graph models
def raw(model, x):
    """The model's own outputs (predict would turn logits into probabilities)."""
    return predict(model, x, from_logits=False)


def ids_model(layers, length=12, vocab=30):
    model = Sequential([nn.Embedding(vocab, 6), *layers])
    model.build((None, length))
    return model


def ids(count=64, length=12, vocab=30):
    return np.random.default_rng(2).integers(0, vocab, (count, length)).astype(np.int32)


SEQUENTIALS = {
    "lstm hard_sigmoid, sequences": lambda: ids_model([nn.LSTM(5, return_sequences=True,
                                                               recurrent_activation="hard_sigmoid"),
                                                       nn.LSTM(4), nn.Dense(3, activation="softmax")]),
    "gru reset_after": lambda: ids_model([nn.GRU(5), nn.Dense(1, activation="sigmoid")]),
    "gru reset_before, hard_sigmoid": lambda: ids_model([nn.GRU(5, reset_after=False,
                                                                recurrent_activation="hard_sigmoid",
                                                                return_sequences=True),
                                                         nn.Flatten(), nn.Dense(2, activation="tanh")]),
    "simple rnn": lambda: ids_model([nn.SimpleRNN(5, return_sequences=True), nn.SimpleRNN(3),
                                     nn.Activation("log_softmax")]),
    "conv and pooling, same": lambda: ids_model([
        nn.Conv1D(5, 4, strides=2, padding="same", activation="relu"), nn.MaxPooling1D(2, padding="same"),
        nn.Conv1D(4, 3, padding="same", dilation_rate=2), nn.ELU(0.5), nn.AveragePooling1D(2, 1, padding="same"),
        nn.SumPooling1D(3, 2, padding="same"), nn.BatchNormalization(), nn.GlobalSumPooling1D(),
        nn.Dense(2, activation="leaky_relu"), nn.Softmax()]),
    "conv and pooling, valid": lambda: ids_model([
        nn.Conv1D(5, 3, activation="elu"), nn.SumPooling1D(2), nn.AveragePooling1D(2), nn.ReLU(),
        nn.GlobalAveragePooling1D(), nn.Dropout(0.5), nn.Dense(4, activation="hard_sigmoid"),
        nn.BatchNormalization(), nn.Dense(1)]),
    "embedding bag": lambda: build_sequential([nn.EmbeddingBag(30, 4, mode="mean"), nn.Dense(2)], (None, 12)),
    "embedding bag, sum": lambda: build_sequential([nn.EmbeddingBag(30, 4, mode="sum"), nn.Activation("tanh")],
                                                   (None, 12)),
}


def build_sequential(layers, shape):
    model = Sequential(layers)
    model.build(shape)
    return model


@pytest.mark.parametrize("name", list(SEQUENTIALS))
def test_sequential_models_of_every_layer_score_the_same(name, tmp_path):
    minidl.manual_seed(3)
    model = perturbed(SEQUENTIALS[name](), scale=0.3)
    x = ids()
    (out,), _ = onnx_run(model, [x], tmp_path)
    np.testing.assert_allclose(out, raw(model, x), **TOLERANCE)


def test_images_through_conv2d_and_the_2d_poolings_score_the_same(tmp_path):
    minidl.manual_seed(4)
    model = perturbed(build_sequential([
        nn.Conv2D(4, 3, strides=2, padding="same", activation="relu"), nn.MaxPooling2D(2, padding="same"),
        nn.Conv2D(3, (2, 3), padding="same"), nn.AveragePooling2D(2, 1, padding="same"),
        nn.SumPooling2D(2), nn.BatchNormalization(), nn.Conv2D(3, 1), nn.MaxPooling2D(1),
        nn.GlobalMaxPooling2D()], (None, 11, 9, 2)), scale=0.3)
    images = np.random.default_rng(5).normal(size=(16, 11, 9, 2)).astype(np.float32)
    (out,), proto = onnx_run(model, [images], tmp_path)
    np.testing.assert_allclose(out, raw(model, images), **TOLERANCE)
    assert proto.graph.input[0].name == "input"
    sums = build_sequential([nn.SumPooling2D(3, 2, padding="same"), nn.GlobalAveragePooling2D()], (None, 5, 7, 2))
    (out,), _ = onnx_run(sums, [images[:, :5, :7]], tmp_path)
    np.testing.assert_allclose(out, raw(sums, images[:, :5, :7]), **TOLERANCE)


def test_a_graph_model_with_two_inputs_and_two_outputs_scores_the_same(tmp_path):
    minidl.manual_seed(6)
    model = GraphModel(
        layers=[nn.Embedding(30, 5, name="embedding"), nn.Conv1D(4, 3, padding="same", name="conv"),
                nn.GlobalMaxPooling1D(name="pool"), nn.LSTM(4, name="lstm"), nn.Dense(3, name="features"),
                nn.Concatenate(name="join"), nn.Dense(1, activation="sigmoid", name="output"),
                nn.Dense(2, activation="softmax", name="kind")],
        inbound={"embedding": ["ids"], "conv": ["embedding"], "pool": ["conv"], "lstm": ["embedding"],
                 "features": ["numbers"], "join": ["pool", "lstm", "features"], "output": ["join"],
                 "kind": ["join"]},
        inputs=["ids", "numbers"], outputs=["output", "kind"], input_shape=[(None, 12), (None, 7)],
        input_dtype=["int32", "float32"])
    perturbed(model, scale=0.3)
    x = [ids(), np.random.default_rng(7).normal(size=(64, 7)).astype(np.float32)]
    outputs, proto = onnx_run(model, x, tmp_path)
    with no_grad():  # predict takes models of one output
        expected_outputs = [output.numpy() for output in model(*map(minidl.tensor, x))]
    for got, expected in zip(outputs, expected_outputs):
        np.testing.assert_allclose(got, expected, **TOLERANCE)
    assert [item.name for item in proto.graph.output] == ["output", "kind"]


# ------------------------------------------------------------ layers with no ONNX form
class Doubler(nn.Module):
    def forward(self, x):
        return x * 2


def test_a_layer_with_no_onnx_form_is_an_error_naming_it(tmp_path):
    model = ids_model([nn.LSTM(3), Doubler(name="twice")])
    with pytest.raises(OnnxExportError, match=r"layer 'twice' \(Doubler\) has no ONNX form"):
        export(model, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()
    with pytest.raises(OnnxExportError, match="the activation .* has no ONNX form"):
        export(ids_model([nn.Flatten(), nn.Dense(2, activation=lambda x: x)]))


# ------------------------------------------------------------ the lecture's Keras models
DATA = Path(os.environ.get("MINIDL_DATA_DIR") or Path(__file__).resolve().parents[2] / "shared" / "data")
SEED = DATA / "keras-seed-models" / "original"


@pytest.mark.shared_data
@pytest.mark.skipif(not SEED.is_dir(), reason=f"shared data absent: needs {SEED}")
@pytest.mark.parametrize("stem, weights, lambdas", [("LSTM", True, False), ("1DConvLSTM", True, False),
                                                    ("1DConv", False, True)])
def test_the_lectures_keras_models_score_the_same(stem, weights, lambdas, urls, tmp_path):
    pytest.importorskip("h5py", reason='the Keras importer reads HDF5 with h5py (pip install -e ".[keras]")')
    from minidl.interop.keras import load_keras_model

    minidl.manual_seed(8)
    model = load_keras_model(SEED / f"deeplearning_{stem}.json", SEED / f"deeplearning_{stem}.h5" if weights else None,
                             lambdas={f"lambda_{i}": "sum" for i in range(1, 5)} if lambdas else None)
    if not weights:  # an untrained import: move its BatchNormalization statistics off 0 and 1 too
        perturbed(model, scale=0.05)
    x = CharTokenizer(max_len=75).encode(urls)
    (probabilities,), _ = onnx_run(model, [x], tmp_path, tokenizer=CharTokenizer(max_len=75))
    np.testing.assert_allclose(probabilities, predict(model, x), **TOLERANCE)


# ------------------------------------------------------------ the command line
def test_minidl_export_onnx_writes_a_model_that_scores_as_predict_does(urls, tmp_path, capsys):
    from minidl.cli import main
    from minidl.io import save

    model = perturbed(build_model("simple_lstm", **SIZES["simple_lstm"]))
    tokenizer = model.make_tokenizer()
    save(tmp_path / "m.mdl", model, extra={"tokenizer": tokenizer.get_config()})
    assert main(["export-onnx", "--model", str(tmp_path / "m.mdl"), "--output", str(tmp_path / "out" / "m.onnx")]) == 0
    out = capsys.readouterr().out
    assert "exported SimpleLSTM to" in out and "input ids (batch, 40)" in out
    session = ort.InferenceSession(str(tmp_path / "out" / "m.onnx"), providers=["CPUExecutionProvider"])
    ids = tokenizer.encode(urls[:100])
    np.testing.assert_allclose(session.run(None, {"ids": ids})[0], predict(model, ids), **TOLERANCE)
    properties = {p.key: p.value for p in onnx.load(str(tmp_path / "out" / "m.onnx")).metadata_props}
    assert json.loads(properties["minidl.tokenizer"]) == tokenizer.get_config()


@pytest.mark.parametrize("argv, status, message", [
    (["--model", "missing.mdl", "--output", "m.onnx"], 1, "--model missing.mdl: no such file"),
    (["--model", "notes.txt", "--output", "m.onnx"], 1, "not a minidl model file"),
    (["--model", "m.mdl", "--output", "folder/"], 2, "is a directory"),
])
def test_minidl_export_onnx_errors_are_one_line(tmp_path, capsys, monkeypatch, argv, status, message):
    from minidl.cli import main
    from minidl.io import save

    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "folder").mkdir()
    save(tmp_path / "m.mdl", build_model("conv_max", **SIZES["conv_max"]))
    assert main(["export-onnx", *argv]) == status
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
