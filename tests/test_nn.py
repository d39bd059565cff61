"""Module machinery and the core layers: building, parameters, modes, state, config,
regularisation, and a gradcheck through every layer."""
import numpy as np
import pytest

import minidl
from minidl import nn
from minidl.autograd import gradcheck
from minidl.nn.module import layer_from_config, serialize


@pytest.fixture
def float64():
    minidl.set_default_dtype(np.float64)
    yield
    minidl.set_default_dtype(np.float32)


def x64(rng, shape):
    return minidl.tensor(rng.standard_normal(shape), requires_grad=True, dtype=np.float64)


def layer_gradcheck(layer, x):
    """Check the gradient of the layer's output w.r.t. the input and every parameter."""
    params = layer.parameters()
    if x.requires_grad:
        return gradcheck(lambda x, *p: layer(x), [x] + params)
    return gradcheck(lambda *p: layer(x), params)


def test_dense_builds_lazily_with_keras_initialisers(rng):
    layer = nn.Dense(5)
    assert not layer.built and layer.parameters() == []
    out = layer(minidl.tensor(rng.standard_normal((2, 3)).astype(np.float32)))
    assert out.shape == (2, 5) and out.dtype == np.float32
    assert [n for n, _ in layer.named_parameters()] == ["kernel", "bias"]
    limit = np.sqrt(6 / (3 + 5))
    assert np.all(np.abs(layer.kernel.data) <= limit) and np.all(layer.bias.data == 0)
    assert layer.count_params() == 3 * 5 + 5


@pytest.mark.parametrize("activation", [None, "relu", "elu", "sigmoid", "tanh", "softmax"])
def test_dense_gradcheck(activation, rng, float64):
    layer = nn.Dense(3, activation=activation)
    layer.build((None, 4))
    assert layer_gradcheck(layer, x64(rng, (2, 4)))


def test_dense_rejects_wrong_feature_count(rng):
    layer = nn.Dense(2)
    layer(minidl.tensor(np.ones((1, 3), np.float32)))
    with pytest.raises(ValueError, match="input has 4 features, the layer expects 3"):
        layer(minidl.tensor(np.ones((1, 4), np.float32)))


def test_unknown_activation_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown activation 'relu6'"):
        nn.Dense(2, activation="relu6")


def test_embedding_layer(rng, float64):
    layer = nn.Embedding(10, 4)
    assert layer.embeddings.shape == (10, 4) and np.all(np.abs(layer.embeddings.data) <= 0.05)
    ids = np.array([[1, 2, 9], [0, 0, 3]])
    assert layer(ids).shape == (2, 3, 4)
    assert layer.compute_output_shape((None, 3)) == (None, 3, 4)
    assert layer_gradcheck(layer, minidl.tensor(ids))


def test_activation_and_shape_layers(rng, float64):
    x = x64(rng, (2, 3, 2)) + 0.0
    for layer in (nn.ReLU(), nn.ELU(0.5), nn.Activation("tanh"), nn.Softmax(), nn.Flatten()):
        assert gradcheck(lambda x: layer(x), [x64(rng, (2, 3, 2))])
    assert nn.Flatten()(x).shape == (2, 6)
    assert nn.Flatten().compute_output_shape((None, 3, 2)) == (None, 6)


def test_dropout_layer_modes(rng):
    layer = nn.Dropout(0.5)
    x = minidl.tensor(np.ones((100, 10), np.float32))
    assert (layer(x).data == 0).any()
    layer.eval()
    assert layer(x) is x
    with pytest.raises(ValueError, match="rate"):
        nn.Dropout(1.5)


def test_batch_normalization_layer(rng, float64):
    layer = nn.BatchNormalization(momentum=0.5)
    x = x64(rng, (6, 3))
    layer(x)
    np.testing.assert_allclose(layer.moving_mean, 0.5 * x.data.mean(0))
    assert [n for n, _ in layer.named_buffers()] == ["moving_mean", "moving_variance"]
    assert layer_gradcheck(layer, x)
    layer.eval()
    before = layer.moving_mean.copy()
    assert layer_gradcheck(layer, x)
    np.testing.assert_array_equal(layer.moving_mean, before)


def test_sequential_builds_from_shape_and_counts_parameters():
    model = minidl.Sequential([nn.Embedding(100, 32), nn.Flatten(), nn.Dense(16, activation="relu"), nn.Dense(1, activation="sigmoid")])
    model.build((None, 75))
    assert model.count_params() == 100 * 32 + (75 * 32 * 16 + 16) + (16 + 1)
    shapes = [shape for _, shape in model.output_shapes((None, 75))]
    assert shapes == [(None, 75, 32), (None, 2400), (None, 16), (None, 1)]
    out = model(np.zeros((3, 75), dtype=np.int64))
    assert out.shape == (3, 1)


def test_train_eval_propagate_to_children():
    model = minidl.Sequential([nn.Dense(2), nn.Dropout(0.5)])
    model.eval()
    assert all(not m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())


def test_state_dict_round_trip_and_validation(rng):
    model = minidl.Sequential([nn.Dense(4), nn.BatchNormalization(), nn.Dense(1)])
    model.build((None, 3))
    state = model.state_dict()
    assert list(state) == ["layer0.kernel", "layer0.bias", "layer1.gamma", "layer1.beta", "layer2.kernel",
                           "layer2.bias", "layer1.moving_mean", "layer1.moving_variance"]
    other = minidl.Sequential([nn.Dense(4), nn.BatchNormalization(), nn.Dense(1)])
    other.build((None, 3))
    state["layer1.moving_mean"] = np.full(4, 0.25)
    other.load_state_dict(state)
    x = minidl.tensor(rng.standard_normal((2, 3)).astype(np.float32))
    model.load_state_dict(state)
    model.eval(), other.eval()
    np.testing.assert_allclose(model(x).data, other(x).data)
    np.testing.assert_allclose(other.layer1.moving_mean, 0.25)
    bad = dict(state)
    bad["layer0.kernel"] = np.zeros((5, 4))
    with pytest.raises(ValueError, match=r"layer0.kernel has shape \(5, 4\), the model expects \(3, 4\)"):
        other.load_state_dict(bad)
    del bad["layer0.kernel"]
    with pytest.raises(ValueError, match="missing"):
        other.load_state_dict(bad)


def test_config_round_trip_rebuilds_the_same_architecture():
    model = minidl.Sequential([nn.Embedding(20, 4, embeddings_regularizer=1e-4), nn.Flatten(), nn.Dropout(0.25),
                           nn.Dense(8, activation="elu", kernel_regularizer=1e-3), nn.ELU(0.5),
                           nn.BatchNormalization(), nn.Dense(1, activation="sigmoid")])
    rebuilt = layer_from_config(serialize(model))
    model.build((None, 5)), rebuilt.build((None, 5))
    assert [type(l).__name__ for l in rebuilt.layers] == [type(l).__name__ for l in model.layers]
    assert rebuilt.count_params() == model.count_params()
    assert serialize(rebuilt)["config"]["layers"] == serialize(model)["config"]["layers"]


def test_regularization_loss_sums_l2_terms(rng):
    model = minidl.Sequential([nn.Embedding(5, 2, embeddings_regularizer=0.1), nn.Flatten(), nn.Dense(1, kernel_regularizer=0.01)])
    model.build((None, 3))
    expected = 0.1 * (model.layer0.embeddings.data.astype(np.float64) ** 2).sum() + 0.01 * (model.layer2.kernel.data.astype(np.float64) ** 2).sum()
    np.testing.assert_allclose(model.regularization_loss().item(), expected, rtol=1e-5)
    assert minidl.Sequential([nn.Dense(1)]).regularization_loss() is None
    data_loss = minidl.tensor(np.float32(0.5))
    np.testing.assert_allclose(model.regularized(data_loss).item(), 0.5 + expected, rtol=1e-5)
    assert minidl.Sequential([nn.Dense(1)]).regularized(data_loss) is data_loss


def test_zero_grad_and_parameter_sharing():
    shared = nn.Dense(2)
    model = minidl.Sequential([shared, shared])
    model.build((None, 2))
    assert len(model.parameters()) == 2
    model(minidl.tensor(np.ones((1, 2), np.float32))).sum().backward()
    assert shared.kernel.grad is not None
    model.zero_grad()
    assert shared.kernel.grad is None


def test_module_requires_super_init():
    class Broken(nn.Module):
        def __init__(self):
            self.x = 1

    with pytest.raises(RuntimeError, match="super"):
        Broken()


def test_default_layer_names_are_keras_names(monkeypatch):
    monkeypatch.setattr(nn.Module, "_name_counts", {})
    names = [layer.name for layer in (nn.Conv1D(2, 3), nn.GlobalMaxPooling1D(), nn.SimpleRNN(2), nn.LSTM(2),
                                      nn.BatchNormalization(), nn.Conv1D(2, 3))]
    assert names == ["conv1d", "global_max_pooling1d", "simple_rnn", "lstm", "batch_normalization", "conv1d_1"]
