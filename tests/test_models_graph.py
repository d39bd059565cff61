"""GraphModel (layers wired as a DAG, by name) and the Concatenate layer: a branched model
against the same computation written with the ops, save/load, summaries, gradients, and
the errors for a graph that cannot be built or an input of the wrong shape."""
import numpy as np
import pytest

import minidl
from minidl import nn
from minidl import functional as F
from minidl.io import load, save
from minidl.models import GraphModel
from minidl.nn import layer_rows
from minidl.train import outputs_logits


def branched(name="branched"):
    """ids -> embedding -> two conv branches (sum and max over time) -> concatenated -> Dense."""
    layers = [nn.Embedding(10, 4, name="emb"), nn.Conv1D(3, 2, padding="same", name="conv_a"),
              nn.Conv1D(3, 3, padding="same", name="conv_b"), nn.GlobalSumPooling1D(name="sum_a"),
              nn.GlobalMaxPooling1D(name="max_b"), nn.Concatenate(name="join"),
              nn.Dense(1, activation="sigmoid", name="out")]
    inbound = {"emb": ["ids"], "conv_a": ["emb"], "conv_b": ["emb"], "sum_a": ["conv_a"], "max_b": ["conv_b"],
               "join": ["sum_a", "max_b"], "out": ["join"]}
    return GraphModel(layers, inbound, ["ids"], ["out"], (None, 7), "int32", name=name)


def test_a_branched_graph_computes_what_its_layers_do(rng):
    model = branched()
    ids = rng.integers(0, 10, (3, 7))
    x = model.get_layer("emb")(ids)
    joined = F.concatenate([F.global_sum_pool1d(model.get_layer("conv_a")(x)),
                            F.global_max_pool1d(model.get_layer("conv_b")(x))], axis=-1)
    np.testing.assert_allclose(model(ids).numpy(), model.get_layer("out")(joined).numpy(), rtol=1e-6)
    assert model.layer_output_shape("join") == (None, 6)
    assert [name for name, _ in model.named_parameters()][:2] == ["emb.embeddings", "conv_a.kernel"]
    assert outputs_logits(model) is False


def test_it_saves_loads_and_summarises_like_any_model(rng, tmp_path):
    model = branched()
    ids = rng.integers(0, 10, (4, 7))
    save(tmp_path / "g.mdl", model)
    loaded, _, _ = load(tmp_path / "g.mdl")
    assert isinstance(loaded, GraphModel) and loaded.get_config() == model.get_config()
    np.testing.assert_array_equal(loaded(ids).numpy(), model.eval()(ids).numpy())
    rows = layer_rows(model)
    assert [(row.name, row.output_shape) for row in rows if row.name in ("join", "out")] == [
        ("join", (None, 6)), ("out", (None, 1))]
    assert rows[-2].input_shape == [(None, 3), (None, 3)]  # Concatenate was called with both branches


def test_gradients_reach_every_branch(rng):
    model = branched()
    model(rng.integers(0, 10, (2, 7))).sum().backward()
    assert all(p.grad is not None and np.any(p.grad != 0) for p in model.parameters())


def test_two_inputs(rng):
    model = GraphModel([nn.Dense(2, name="a"), nn.Dense(2, name="b"), nn.Concatenate(name="join")],
                       {"a": ["x"], "b": ["y"], "join": ["a", "b"]}, ["x", "y"], ["join"],
                       [(None, 3), (None, 5)], name="two")
    x, y = minidl.tensor(rng.standard_normal((4, 3)), dtype=np.float32), minidl.tensor(rng.standard_normal((4, 5)),
                                                                                        dtype=np.float32)
    assert model(x, y).shape == (4, 4)
    assert model.input_shape == [(None, 3), (None, 5)]
    with pytest.raises(ValueError, match=r"two: takes 2 inputs \(x, y\), got 1"):
        model(x)


@pytest.mark.parametrize("inbound, message", [
    ({"emb": ["ids"], "dense": ["nowhere"]}, r"layer 'dense' reads \['nowhere'\], which are neither inputs"),
    ({"emb": ["dense"], "dense": ["ids"]}, r"layer 'emb' reads \['dense'\]"),  # a layer read before it runs
    ({"emb": ["ids"]}, "layer 'dense' reads nothing"),
    ({"emb": ["ids"], "dense": ["emb"], "ghost": ["emb"]}, r"inbound entries for no layer \['ghost'\]"),
])
def test_a_graph_that_cannot_run_is_refused(inbound, message):
    with pytest.raises(ValueError, match=message):
        GraphModel([nn.Embedding(5, 2, name="emb"), nn.Dense(1, name="dense")], inbound, ["ids"], ["dense"],
                   (None, 3), "int32")


def test_layer_names_that_would_clash_are_refused():
    with pytest.raises(ValueError, match="a layer may not be called 'training'"):
        GraphModel([nn.Dense(1, name="training")], {"training": ["x"]}, ["x"], ["training"], (None, 3))


def test_an_input_of_the_wrong_shape_is_named(rng):
    with pytest.raises(ValueError, match=r"branched: input 'ids' must have shape \(batch, 7\), got \(2, 9\)"):
        branched()(rng.integers(0, 10, (2, 9)))


def test_concatenate_layer_shapes_and_errors():
    layer = nn.Concatenate(axis=1, name="cat")
    assert layer.compute_output_shape([(None, 2, 3), (None, 4, 3)]) == (None, 6, 3)
    with pytest.raises(ValueError, match="cat: inputs of shapes .* differ outside axis 1"):
        layer.compute_output_shape([(None, 2, 3), (None, 4, 5)])
    with pytest.raises(ValueError, match="cat: Concatenate needs at least two inputs"):
        layer(minidl.tensor(np.ones((2, 3))))
