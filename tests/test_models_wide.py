"""The models that read a URL more than one way (minidl.models.wide and .urlnet):
parameter counts, Keras-like summaries, float64 gradient checks end to end, their
tokenisers, configs and model files, and that the n-gram tables train row by row."""

import numpy as np
import pytest

import minidl
from minidl import io
from minidl.models import NgramLinear, URLNet, WideConvMax, build_model
from minidl.nn import summary
from minidl.nn import layer_from_config, serialize
from minidl.sparse import IndexedSlices
from minidl.train import fit, predict

from test_cli import synthetic_urls
from test_models_url import float64  # noqa: F401 - the fixture

SMALL = {
    "ngram_linear": {"buckets": 20, "max_ngrams": 6},
    "wide_conv_max": {"max_len": 6, "emb_dim": 3, "max_vocab_len": 7, "filters": 2, "kernel_sizes": (2, 3),
                      "buckets": 20, "max_ngrams": 6, "ngram_dim": 2},
    "urlnet": {"max_len": 8, "emb_dim": 3, "max_vocab_len": 7, "max_words": 6, "max_word_len": 3,
               "max_vocabulary": 10, "filters": 2, "kernel_sizes": (3, 4), "branch_units": 3, "hidden_units": (4,),
               "wide": True, "buckets": 20, "max_ngrams": 4},
}
NO_DROPOUT = {"ngram_linear": {}, "wide_conv_max": {"input_dropout": 0.0, "branch_dropout": 0.0, "ngram_dropout": 0.0},
              "urlnet": {"dropout": 0.0}}


def conv(k, c_in, filters):
    return k * c_in * filters + filters


def dense(units, inputs):
    return inputs * units + units


def packed_ids(model, batch=3, seed=0):
    """Random ids for every part of `model`'s input, no padding (so no two windows of
    a max over time tie), and n-gram counts 1..3."""
    rng = np.random.default_rng(seed)
    parts = []
    for name, width in model.input_parts():
        if name == "ngrams":
            half = width // 2
            parts += [rng.integers(1, model.buckets + 1, (batch, half)), rng.integers(1, 4, (batch, half))]
        elif name == "words":
            parts += [rng.integers(1, model.max_vocabulary + 2, (batch, model.max_words)),
                      rng.integers(1, 101, (batch, width - model.max_words))]
        else:
            parts.append(rng.integers(1, model.max_vocab_len, (batch, width)))
    return np.concatenate(parts, axis=1).astype(np.int32)


def test_parameter_counts_follow_every_size():
    assert build_model("ngram_linear", **SMALL["ngram_linear"]).count_params() == 21 + 1
    assert build_model("wide_conv_max", **SMALL["wide_conv_max"]).count_params() == (
        7 * 3 + conv(2, 3, 2) + conv(3, 3, 2) + 21 * 2 + dense(1, 2 * 2 + 2) + 21)
    branch = conv(3, 3, 2) + conv(4, 3, 2) + dense(3, 2 * 2)
    assert build_model("urlnet", **SMALL["urlnet"]).count_params() == (
        7 * 3 + branch + 12 * 3 + 101 * 3 + branch + dense(4, 6) + dense(1, 4) + 21)


def test_the_default_urlnet_has_the_papers_sizes():
    model = URLNet(max_vocabulary=1000)
    text = summary(model, print_fn=None)
    for width in (3, 4, 5, 6):
        assert f"char_branch_conv_k{width} (Conv1D)" in text and f"word_branch_conv_k{width} (Conv1D)" in text
    assert f"(None, {200 - 6 + 1}, 256)" in text and "(None, 512)" in text and "(None, 128)" in text
    assert model.input_shape == (None, 200 + 100 * 21)


def test_summary_of_wide_conv_max_lists_both_parts():
    text = summary(WideConvMax(), print_fn=None)
    lines = [line.split() for line in text.splitlines()]
    assert ["input", "(InputLayer)", "(None,", "1800)", "0"] in lines
    assert ["wide_weights", "(EmbeddingBag)", "(None,", "1)", "262,145", "input"] in lines
    assert ["conv1d_k5", "(Conv1D)", "(None,", "200,", "128)", "20,608", "embedding_dropout"] in lines
    assert "Total params: 323,746" in text  # conv_max's 61,601 and 2^18 + 1 linear weights


@pytest.mark.parametrize("arch", list(SMALL))
def test_gradcheck_end_to_end(arch, float64):
    model = build_model(arch, **SMALL[arch], **NO_DROPOUT[arch]).train()
    batch = packed_ids(model)
    for parameter in model.parameters():  # away from the zero start of the linear weights
        parameter.data = parameter.data + np.random.default_rng(1).uniform(-0.3, 0.3, parameter.shape)
    assert minidl.gradcheck(lambda *weights: model(batch), model.parameters())


@pytest.mark.parametrize("arch", list(SMALL))
def test_tokenizer_config_and_model_file_round_trip(arch, tmp_path):
    urls = [url for url, _ in synthetic_urls(40)]
    characters = {"max_vocab_len": 101} if "max_vocab_len" in SMALL[arch] else {}  # string.printable's ids
    model = build_model(arch, **dict(SMALL[arch], **characters)).eval()
    tokenizer = model.make_tokenizer(urls, truncating="post")
    x = tokenizer.encode(urls)
    assert x.shape == (40, model.input_shape[1]) and x.dtype == np.int32
    clone = layer_from_config(serialize(model)).eval()
    clone.load_state_dict(model.state_dict())
    np.testing.assert_array_equal(clone(x).numpy(), model(x).numpy())
    io.save(tmp_path / "model.mdl", model, extra={"tokenizer": tokenizer.get_config()})
    loaded, extra, _ = io.load(tmp_path / "model.mdl")
    again = minidl.data.tokenizer_from_config(extra["tokenizer"]).encode(urls)
    np.testing.assert_array_equal(again, x)
    np.testing.assert_array_equal(loaded(again).numpy(), model(x).numpy())


@pytest.mark.parametrize("arch", list(SMALL))
def test_a_packed_input_of_the_wrong_width_is_a_clear_error(arch):
    model = build_model(arch, **SMALL[arch])
    width = model.input_shape[1]
    with pytest.raises(ValueError, match=rf"expects packed ids of shape \(batch, {width}\)"):
        model(np.zeros((2, width + 1), dtype=np.int32))


def test_urlnet_counts_its_words_on_the_training_urls_only():
    model = URLNet(**SMALL["urlnet"])
    with pytest.raises(ValueError, match="needs the training URLs"):
        model.make_tokenizer()
    tokenizer = model.make_tokenizer(["a.com/x", "b.com/x"])
    assert tokenizer.parts["words"].vocabulary == [".", "/", "com", "x"]


def test_the_deep_ngram_table_trains_row_by_row_and_the_linear_one_densely():
    """The 2^18 x dim table of n-gram vectors gets an IndexedSlices gradient; the linear
    weights, penalised by a dense L2, get a dense one (2^18 numbers)."""
    model = WideConvMax(max_len=20, emb_dim=4, filters=3, max_ngrams=40, ngram_dim=8)
    urls = [url for url, _ in synthetic_urls(16)]
    x = model.make_tokenizer(urls, truncating="post").encode(urls)
    model.regularized(model(x).sum()).backward()
    assert isinstance(model.ngram_bag.embeddings.grad, IndexedSlices)
    assert len(model.ngram_bag.embeddings.grad.indices) <= 16 * 40
    assert isinstance(model.wide.weights.embeddings.grad, np.ndarray)


def test_the_wide_part_learns_at_its_own_rate():
    model = WideConvMax(**SMALL["wide_conv_max"])
    optimizer = model.make_optimizer(1e-3, wide_lr=1e-2)
    wide = {id(p) for p in model.wide.parameters()}
    rates = {optimizer.lr * scale for p, scale in zip(optimizer.params, optimizer.lr_scales) if id(p) in wide}
    others = {optimizer.lr * scale for p, scale in zip(optimizer.params, optimizer.lr_scales) if id(p) not in wide}
    assert rates == {1e-2} and others == {1e-3}
    assert NgramLinear().make_optimizer().lr == 1e-2


def test_ngram_linear_learns_the_synthetic_urls():
    minidl.manual_seed(0)
    rows = synthetic_urls(300)
    urls, labels = [url for url, _ in rows], np.array([label for _, label in rows])
    model = NgramLinear(buckets=2**12, max_ngrams=200)
    x = model.make_tokenizer(urls).encode(urls)
    fit(model, x[:200], labels[:200], epochs=3, batch_size=32, optimizer=model.make_optimizer(),
        verbose=0)
    accuracy = ((predict(model, x[200:]).reshape(-1) > 0.5) == labels[200:]).mean()
    assert accuracy == 1.0


def test_an_ensemble_is_the_mean_of_its_members_and_saves_as_one_model(tmp_path):
    from minidl.models import MeanEnsemble

    urls = [url for url, _ in synthetic_urls(20)]
    linear, wide = (build_model(arch, **dict(SMALL[arch], max_vocab_len=101) if arch == "wide_conv_max"
                                else SMALL[arch]).eval() for arch in ("ngram_linear", "wide_conv_max"))
    tokenizers = [linear.make_tokenizer(urls), wide.make_tokenizer(urls)]
    ensemble = MeanEnsemble([linear, wide]).eval()
    tokenizer = ensemble.make_tokenizer_from(tokenizers)
    expected = (linear(tokenizers[0].encode(urls)).numpy() + wide(tokenizers[1].encode(urls)).numpy()) / 2
    np.testing.assert_allclose(ensemble(tokenizer.encode(urls)).numpy(), expected, rtol=1e-6)
    io.save(tmp_path / "ensemble.mdl", ensemble, extra={"tokenizer": tokenizer.get_config()})
    loaded, extra, _ = io.load(tmp_path / "ensemble.mdl")
    again = minidl.data.tokenizer_from_config(extra["tokenizer"]).encode(urls)
    np.testing.assert_allclose(loaded(again).numpy(), expected, rtol=1e-6)
    with pytest.raises(ValueError, match="the tokenisers give the parts"):
        ensemble.make_tokenizer_from(tokenizers[::-1])
    with pytest.raises(ValueError, match="two or more members"):
        MeanEnsemble([linear])
