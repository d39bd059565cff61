"""The URL models: Keras' parameter counts, shapes, summaries, gradients, configs."""
import numpy as np
import pytest

import minidl
from minidl.models import ConvFully, ConvMax, LSTMConv, SimpleLSTM, build_model
from minidl.nn import print_layers_dims, summary
from minidl.nn import layer_from_config, serialize


# Keras' parameter counts, by hand, for the layers the models use.
def keras_lstm(units, input_dim):
    return 4 * (input_dim * units + units * units + units)  # kernel, recurrent_kernel, bias per gate


def keras_conv1d(filters, kernel_size, channels):
    return kernel_size * channels * filters + filters


def keras_dense(units, input_dim):
    return input_dim * units + units


def keras_batch_norm(units):
    return 4 * units  # gamma, beta trainable; moving mean and variance not


def counts(model):
    """(Keras' total, trainable, non-trainable) as the summary prints them."""
    text = summary(model, print_fn=None)
    values = {}
    for line in text.splitlines():
        for key in ("Total", "Trainable", "Non-trainable"):
            if line.startswith(f"{key} params:"):
                values[key] = int(line.split(":")[1].replace(",", ""))
    return values["Total"], values["Trainable"], values["Non-trainable"]


def test_simple_lstm_has_keras_parameter_count():
    model = SimpleLSTM()
    expected = 100 * 32 + keras_lstm(32, 32) + keras_dense(1, 32)
    assert expected == 11_553
    assert model.count_params() == expected
    assert counts(model) == (expected, expected, 0)


def test_lstm_conv_has_keras_parameter_count():
    model = LSTMConv()
    expected = 100 * 32 + keras_conv1d(256, 5, 32) + keras_lstm(32, 256) + keras_dense(1, 32)
    assert expected == 81_441
    assert model.count_params() == expected
    assert counts(model) == (expected, expected, 0)


def test_conv_fully_has_keras_parameter_count_with_batch_norm_statistics():
    model = ConvFully()
    branches = sum(keras_conv1d(256, k, 32) for k in (2, 3, 4, 5))
    hidden = keras_dense(1024, 4 * 256) + keras_batch_norm(1024) + keras_dense(1024, 1024) + keras_batch_norm(1024)
    keras_total = 100 * 32 + branches + hidden + keras_dense(1, 1024)
    assert keras_total == 2_227_329
    assert counts(model) == (keras_total, keras_total - 4096, 4096)
    # count_params counts parameters, not the moving statistics (buffers)
    assert model.count_params() == keras_total - 4096


def test_conv_max_has_keras_parameter_count():
    model = ConvMax()
    expected = 100 * 32 + sum(keras_conv1d(128, k, 32) for k in (2, 3, 4, 5)) + keras_dense(1, 4 * 128)
    assert expected == 61_569
    assert model.count_params() == expected
    assert counts(model) == (expected, expected, 0)


@pytest.mark.parametrize("arch, sizes, expected", [
    ("simple_lstm", {"max_len": 20, "emb_dim": 8, "max_vocab_len": 101, "lstm_output_size": 16},
     101 * 8 + keras_lstm(16, 8) + keras_dense(1, 16)),
    ("lstm_conv", {"max_len": 20, "emb_dim": 8, "max_vocab_len": 50, "lstm_output_size": 4, "filters": 12,
                   "kernel_size": 3, "pool_size": 2},
     50 * 8 + keras_conv1d(12, 3, 8) + keras_lstm(4, 12) + keras_dense(1, 4)),
    ("conv_fully", {"max_len": 20, "emb_dim": 8, "max_vocab_len": 50, "filters": 6, "kernel_sizes": (3, 7),
                    "hidden_units": (10,)},
     50 * 8 + keras_conv1d(6, 3, 8) + keras_conv1d(6, 7, 8) + keras_dense(10, 12) + keras_batch_norm(10)
     + keras_dense(1, 10)),
    ("conv_max", {"max_len": 20, "emb_dim": 8, "max_vocab_len": 50, "filters": 6, "kernel_sizes": (3, 7),
                  "hidden_units": (10,), "pooling": "average"},
     50 * 8 + keras_conv1d(6, 3, 8) + keras_conv1d(6, 7, 8) + keras_dense(10, 12) + keras_batch_norm(10)
     + keras_dense(1, 10)),
])
def test_every_size_is_a_parameter(arch, sizes, expected):
    model = build_model(arch, **sizes)
    assert counts(model)[0] == expected


SMALL = {
    "simple_lstm": {"max_len": 6, "emb_dim": 3, "max_vocab_len": 7, "lstm_output_size": 2},
    "lstm_conv": {"max_len": 6, "emb_dim": 3, "max_vocab_len": 7, "lstm_output_size": 2, "filters": 2,
                  "kernel_size": 3, "pool_size": 2},
    "conv_fully": {"max_len": 6, "emb_dim": 3, "max_vocab_len": 7, "filters": 2, "hidden_units": (3, 3)},
    "conv_max": {"max_len": 6, "emb_dim": 3, "max_vocab_len": 7, "filters": 2, "kernel_sizes": (2, 3)},
}
NO_DROPOUT = {
    "simple_lstm": {"embedding_dropout": 0.0, "dropout": 0.0},
    "lstm_conv": {"input_dropout": 0.0, "conv_dropout": 0.0, "dropout": 0.0},
    "conv_fully": {"input_dropout": 0.0, "branch_dropout": 0.0, "hidden_dropout": 0.0},
    "conv_max": {"input_dropout": 0.0, "branch_dropout": 0.0},
}


def ids(batch, max_len=6, vocab=7, seed=0):
    return np.random.default_rng(seed).integers(0, vocab, size=(batch, max_len)).astype(np.int32)


@pytest.mark.parametrize("arch", list(SMALL))
def test_output_is_one_probability_per_url(arch):
    model = build_model(arch, **SMALL[arch])
    for training in (True, False):
        model.train(training)
        out = model(ids(4)).numpy()
        assert out.shape == (4, 1)
        assert np.all((out > 0) & (out < 1))


@pytest.mark.parametrize("arch", list(SMALL))
def test_wrong_input_length_is_a_clear_error(arch):
    model = build_model(arch, **SMALL[arch])
    with pytest.raises(ValueError, match=r"expects character ids of shape \(batch, 6\), got \(2, 5\)"):
        model(ids(2, max_len=5))


@pytest.fixture
def float64():
    previous = minidl.default_dtype()
    minidl.set_default_dtype(np.float64)
    yield
    minidl.set_default_dtype(previous)


@pytest.mark.parametrize("arch", list(SMALL))
def test_gradcheck_end_to_end(arch, float64):
    # training mode, so batch normalisation uses the batch statistics; dropout off
    model = build_model(arch, **SMALL[arch], **NO_DROPOUT[arch]).train()
    batch = ids(3)
    assert minidl.gradcheck(lambda *weights: model(batch), model.parameters())


def test_embedding_dropout_drops_whole_rows_of_the_matrix():
    model = SimpleLSTM(max_len=30, emb_dim=4, max_vocab_len=5, lstm_output_size=2, embedding_dropout=0.5)
    batch = ids(8, max_len=30, vocab=5)
    table = model.embedding.embeddings.numpy()
    embedded = model._embed(batch).numpy()
    for v in range(5):
        rows = embedded[batch == v]
        dropped, kept = np.allclose(rows, 0), np.allclose(rows, table[v] / 0.5)
        assert dropped or kept  # every occurrence of a character agrees
    model.eval()
    np.testing.assert_array_equal(model._embed(batch).numpy(), table[batch])


def test_embedding_init_sets_the_matrix_and_checks_its_shape():
    matrix = np.arange(7 * 3, dtype=np.float64).reshape(7, 3)
    model = SimpleLSTM(**SMALL["simple_lstm"], embedding_init=matrix)
    np.testing.assert_allclose(model.embedding.embeddings.numpy(), matrix)
    with pytest.raises(ValueError, match=r"initial embedding has shape \(7, 4\), the model needs \(7, 3\)"):
        SimpleLSTM(**SMALL["simple_lstm"], embedding_init=np.zeros((7, 4)))


def test_make_optimizer_is_the_sources_adam():
    optimizer = SimpleLSTM(**SMALL["simple_lstm"]).make_optimizer()
    assert (optimizer.lr, optimizer.beta_1, optimizer.beta_2, optimizer.epsilon, optimizer.decay) == (
        1e-4, 0.9, 0.999, 1e-8, 0.0)


def test_l2_penalty_covers_only_the_embedding():
    model = LSTMConv(**SMALL["lstm_conv"])
    weights = model.embedding.embeddings.numpy()
    assert model.regularization_loss().item() == pytest.approx(1e-4 * (weights ** 2).sum(), rel=1e-5)


def test_unknown_architecture_names_the_choices():
    with pytest.raises(ValueError, match="unknown architecture 'cnn': choose one of simple_lstm, lstm_conv, conv_fully, conv_max"):
        build_model("cnn")


@pytest.mark.parametrize("arch", list(SMALL))
def test_config_round_trip_rebuilds_the_same_model(arch):
    model = build_model(arch, **SMALL[arch]).eval()
    clone = layer_from_config(serialize(model)).eval()
    assert type(clone) is type(model) and clone.get_config() == model.get_config()
    clone.load_state_dict(model.state_dict())
    np.testing.assert_array_equal(clone(ids(3)).numpy(), model(ids(3)).numpy())


@pytest.mark.parametrize("arch", list(SMALL))
def test_save_load_round_trip(arch, tmp_path):
    io = pytest.importorskip("minidl.io")
    model = build_model(arch, **SMALL[arch]).eval()
    io.save(tmp_path / "model.minidl", model)
    loaded = io.load(tmp_path / "model.minidl")
    loaded = getattr(loaded, "model", loaded).eval()
    np.testing.assert_array_equal(loaded(ids(3)).numpy(), model(ids(3)).numpy())


def test_summary_table_reads_like_keras():
    text = summary(SimpleLSTM(), print_fn=None)
    lines = text.splitlines()
    assert lines[0] == 'Model: "simple_lstm"'
    assert lines[2].split() == ["Layer", "(type)", "Output", "Shape", "Param", "#"]
    rows = [line.split() for line in lines if line and line[0] not in "_=" and "(" in line][1:]
    assert rows == [
        ["input", "(InputLayer)", "(None,", "75)", "0"],
        ["embedding", "(Embedding)", "(None,", "75,", "32)", "3,200"],
        ["lstm", "(LSTM)", "(None,", "32)", "8,320"],
        ["dropout", "(Dropout)", "(None,", "32)", "0"],
        ["output", "(Dense)", "(None,", "1)", "33"],
    ]
    assert "Total params: 11,553" in text and "Non-trainable params: 0" in text


def test_summary_of_conv_fully_lists_the_branches_in_order():
    text = summary(ConvFully(), print_fn=None)
    for kernel in (2, 3, 4, 5):
        assert f"conv1d_k{kernel} (Conv1D)" in text
        assert f"sum_k{kernel} (GlobalSumPooling1D)" in text
    assert text.index("conv1d_k2") < text.index("conv1d_k5") < text.index("hidden1_dense")
    assert "(None, 75, 256)" in text and "(None, 256)" in text and "(None, 1024)" in text
    assert "Non-trainable params: 4,096" in text


def test_conv_max_keeps_the_strongest_position_of_each_filter():
    model = ConvMax(**SMALL["conv_max"], **NO_DROPOUT["conv_max"]).eval()
    batch = ids(3)
    embedded = model._embed(batch)
    branch = model.branches[0]
    # the branch output is the per-filter maximum over the time axis of ELU(conv)
    np.testing.assert_allclose(branch(embedded).numpy(), branch.elu(branch.conv(embedded)).numpy().max(axis=1),
                               rtol=1e-6)
    text = summary(model, print_fn=None)
    assert "max_k2 (GlobalMaxPooling1D)" in text and "hidden1" not in text


def test_unknown_pooling_names_the_choices():
    with pytest.raises(ValueError, match="pooling must be one of sum, max, average, got 'median'"):
        ConvFully(**SMALL["conv_fully"], pooling="median")


def test_print_layers_dims_like_the_source():
    model = LSTMConv()
    text = model.print_layers_dims(print_fn=None)
    assert "embedding (Embedding)\nInput Shape: (None, 75) Output Shape: (None, 75, 32)" in text
    assert "max_pooling1d (MaxPooling1D)\nInput Shape: (None, 75, 256) Output Shape: (None, 18, 256)" in text
    assert "lstm (LSTM)\nInput Shape: (None, 18, 256) Output Shape: (None, 32)" in text
    assert text == print_layers_dims(model, print_fn=None)


def test_summary_of_a_sequential_needs_an_input_shape():
    model = minidl.Sequential([minidl.nn.Dense(3)])
    with pytest.raises(ValueError, match="pass input_shape"):
        summary(model, print_fn=None)
    assert "dense" in summary(model, input_shape=(None, 4), print_fn=None)


@pytest.mark.shared_data
def test_short_real_training_run_reaches_78_percent(shared_data):
    """3,000 phishing-40k URLs, host split 75/25, a narrow conv_fully for 3 epochs (about
    5 s with one BLAS and Numba thread): at least 78 % test accuracy (0.82 and 0.85 for
    two sampling seeds when written)."""
    from minidl.data import CharTokenizer, load_url_csv, split_by_host
    from minidl.train import evaluate, fit

    urls, labels, _ = load_url_csv(shared_data("url-bahnsen-phishing40k/urls.csv"))
    keep = np.random.default_rng(0).choice(len(urls), 3000, replace=False)
    urls_train, urls_test, y_train, y_test = split_by_host([urls[i] for i in keep], labels[keep], seed=33)
    tokenizer = CharTokenizer()
    minidl.manual_seed(0)
    model = ConvFully(max_vocab_len=tokenizer.vocab_size, filters=16, hidden_units=(32, 32))
    fit(model, tokenizer.encode(urls_train), y_train, epochs=3, batch_size=32, optimizer=model.make_optimizer(5e-3),
        verbose=0)
    assert evaluate(model, tokenizer.encode(urls_test), y_test)["accuracy"] >= 0.78
