"""What Keras and PyTorch users reach for first: compile / fit / evaluate / predict /
summary on every Module, optimiser names, and an optimiser that cannot silently miss
layers built after it was made."""
import functools

import numpy as np
import pytest

import minidl
from minidl import nn, optim
from minidl.train import evaluate, fit, predict


def toy(n=128):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 3)).astype(np.float32)
    return x, (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.float32)


def mlp():
    return minidl.Sequential([nn.Dense(8, activation="relu"), nn.Dense(1, activation="sigmoid")])


def test_the_methods_are_the_train_functions():
    x, y = toy()
    minidl.manual_seed(0)
    methods = mlp().compile(optimizer="adam", loss="binary_crossentropy")
    history = methods.fit(x, y, epochs=3, batch_size=32, verbose=0)
    minidl.manual_seed(0)
    functions = mlp()
    expected = fit(functions, x, y, epochs=3, batch_size=32, optimizer="adam", loss="binary_crossentropy", verbose=0)
    assert dict(history) == dict(expected)
    assert methods.evaluate(x, y) == evaluate(functions, x, y)
    np.testing.assert_array_equal(methods.predict(x), predict(functions, x))


def test_compiled_metrics_choose_what_evaluate_returns():
    x, y = toy()
    model = mlp().compile(metrics=["acc", "auc"])
    model.fit(x, y, epochs=1, verbose=0)
    assert list(model.evaluate(x, y)) == ["loss", "accuracy", "roc_auc"]
    model.compile(metrics=["mystery"])
    with pytest.raises(ValueError, match="no metric 'mystery'"):
        model.evaluate(x, y)


def test_a_second_fit_continues_with_the_same_optimiser():
    x, y = toy()
    model = mlp().compile(optimizer="sgd")
    model.fit(x, y, epochs=1, batch_size=64, verbose=0)
    made = model._compiled["optimizer"]
    assert isinstance(made, optim.SGD) and made.iterations == 2
    model.fit(x, y, epochs=1, batch_size=64, verbose=0)
    assert model._compiled["optimizer"] is made and made.iterations == 4


def test_fit_takes_optimizer_names():
    x, y = toy()
    model = mlp()
    fit(model, x, y, epochs=1, optimizer="SGD", verbose=0)
    with pytest.raises(ValueError, match="unknown optimizer 'adagrad'; choose one of adam, sgd"):
        fit(mlp(), x, y, optimizer="adagrad", verbose=0)


def test_summary_method_prints_the_table(capsys):
    model = mlp()
    model.build((None, 3))
    text = model.summary()
    assert "Total params: 41" in text and text in capsys.readouterr().out


def test_an_optimiser_made_before_the_layers_were_built_says_so():
    model = minidl.Sequential([nn.Embedding(10, 4), nn.GlobalMaxPooling1D(), nn.Dense(1, activation="sigmoid")])
    adam = optim.Adam(model.parameters())  # the embedding only: Dense builds on the first call
    loss = model(np.array([[1, 2, 3]])).sum()
    loss.backward()
    with pytest.raises(ValueError, match=r"2 trainable parameters built after this optimiser was made "
                                         r"\(layer2.kernel, layer2.bias\)"):
        adam.step()
    built = optim.Adam(model.parameters())  # made after the first call: complete
    built.step()
    assert built.iterations == 1


def test_a_factory_builds_the_optimiser_after_the_model():
    x, y = toy()
    history = fit(mlp(), x, y, epochs=1, optimizer=functools.partial(optim.Adam, lr=1e-2), verbose=0)
    assert len(history["loss"]) == 1


def test_a_model_of_ones_own_subclasses_model_and_trains():
    class TwoLayers(minidl.Model):
        def __init__(self):
            super().__init__()
            self.hidden, self.out = nn.Dense(8, activation="tanh"), nn.Dense(1, activation="sigmoid")

        def forward(self, x):
            return self.out(self.hidden(x))

    x, y = toy()
    model = TwoLayers().compile(optimizer="adam", metrics=["accuracy"])
    history = model.fit(x, y, epochs=5, batch_size=32, verbose=0)
    assert history["loss"][-1] < history["loss"][0]
    assert set(model.evaluate(x, y)) == {"loss", "accuracy"} and model.predict(x[:3]).shape == (3, 1)
