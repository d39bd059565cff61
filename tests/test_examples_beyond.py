"""Beyond URLs: the toy sets, the MLP, CNN and recurrent-classifier builders, and the four
examples (MLP playground, digits CNN, botnet, DGA) on small slices, each held to a real
accuracy threshold. Tests that read ../shared/data skip when it is absent."""
import contextlib
import importlib.util
import os
from pathlib import Path

import numba
import numpy as np
import pytest

import minidl
from minidl import optim
from minidl.data.toy import TOY_SETS, make_toy, spiral
from minidl.models.botnet import behaviour_classifier, held_out_subclass_split, subclass_of
from minidl.models.dga import dga_lstm, domain_name
from minidl.models.image import as_images, conv2d_classifier, first_layer_filters
from minidl.models.mlp import decision_surface, mlp
from minidl.models.sequence import recurrent_classifier
from minidl.train import evaluate, fit

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("MINIDL_DATA_DIR") or REPO.parent / "shared" / "data")


def _has_data(*names):
    return all((DATA_DIR / name).is_dir() for name in names)


def needs_data(*names):
    return pytest.mark.skipif(not _has_data(*names),
                              reason=f"the shared data ({', '.join(names)}) is absent from {DATA_DIR}")


def _example(name):
    """Import examples/<name>.py as a module (examples are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", REPO / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """These models multiply small matrices: on the shared 2-core machine BLAS and Numba
    threads only add synchronisation (an order of magnitude slower under load)."""
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        # Numba's compiled matrix products call SciPy's BLAS, a library of its own: load
        # it first so that the limit reaches it too.
        import scipy.linalg  # noqa: F401
        from threadpoolctl import threadpool_limits
    except ImportError:  # without them the tests still pass, only slower
        blas_limit = contextlib.nullcontext()
    else:
        blas_limit = threadpool_limits(1)
    with blas_limit:
        yield
    numba.set_num_threads(threads)


def _adam(lr):
    return lambda parameters: optim.Adam(parameters, lr=lr)


# ------------------------------------------------------------------- toy data
@pytest.mark.parametrize("name", sorted(TOY_SETS))
def test_toy_sets_are_seeded_balanced_and_in_the_unit_square(name):
    x, y = make_toy(name, n=201, seed=3)
    again, labels_again = make_toy(name, n=201, seed=3)
    other, _ = make_toy(name, n=201, seed=4)
    assert x.shape == (201, 2) and x.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_array_equal(x, again)
    np.testing.assert_array_equal(y, labels_again)
    assert not np.array_equal(x, other)
    assert sorted(np.bincount(y).tolist()) == [100, 101]
    assert np.abs(x).max() < 1.3


def test_spiral_takes_more_classes_and_rejects_bad_arguments():
    _, y = spiral(n=300, classes=3)
    assert np.bincount(y).tolist() == [100, 100, 100]
    with pytest.raises(ValueError, match="unknown toy data set 'moon'"):
        make_toy("moon")
    with pytest.raises(ValueError, match="noise must be >= 0"):
        make_toy("xor", noise=-0.1)


@pytest.mark.parametrize("name", ["xor", "circles", "moons"])
def test_a_small_mlp_separates_each_toy_set(name):
    x, y = make_toy(name, n=240, seed=0)
    model = mlp(depth=2, width=16, activation="tanh")
    fit(model, x, y, epochs=60, batch_size=32, optimizer=_adam(0.03), verbose=0)
    assert evaluate(model, x, y)["accuracy"] >= 0.95


def test_mlp_builder_options_and_decision_surface():
    model = mlp(depth=0, classes=3)
    assert [type(layer).__name__ for layer in model.layers] == ["Dense"]
    assert model.layers[-1].activation_name == "softmax"
    xx, yy, probabilities = decision_surface(model, np.array([[0, 0], [1, 2]], dtype=np.float32), resolution=5)
    assert xx.shape == yy.shape == (5, 5) and probabilities.shape == (5, 5, 3)
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1, rtol=1e-5)
    binary = mlp(depth=1, width=4, activation="relu")
    _, _, p = decision_surface(binary, np.zeros((3, 2)), resolution=4)
    assert p.shape == (4, 4)
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        mlp(activation="swish")
    with pytest.raises(ValueError, match=r"needs 2D points of shape \(n, 2\)"):
        decision_surface(binary, np.zeros((3, 3)))


def test_mlp_playground_writes_a_boundary_every_n_epochs(tmp_path):
    playground = _example("mlp_playground")
    result = playground.main(["--dataset", "xor", "--points", "200", "--depth", "2", "--width", "16",
                              "--activation", "tanh", "--lr", "0.03", "--epochs", "40", "--every", "20",
                              "--out", str(tmp_path)])
    assert result["test_accuracy"] >= 0.9
    assert sorted(path.name for path in tmp_path.glob("*.png")) == [
        "boundary_epoch0020.png", "boundary_epoch0040.png", "history.png"]


# --------------------------------------------------------------------- images
def test_conv2d_classifier_shapes_and_filters():
    model = conv2d_classifier(input_shape=(8, 8, 1), classes=10, filters=(4, 8), dense_units=0)
    assert model.compute_output_shape((None, 8, 8, 1)) == (None, 10)
    assert first_layer_filters(model).shape == (4, 3, 3, 1)
    with pytest.raises(ValueError, match="too small"):
        conv2d_classifier(input_shape=(3, 3, 1), filters=(4, 8))
    with pytest.raises(ValueError, match="expected rows of 64 pixels"):
        as_images(np.zeros((2, 63)), 8, 8)


def test_digits_cnn_learns_the_digits(tmp_path):
    pytest.importorskip("sklearn")
    digits_cnn = _example("digits_cnn")
    result = digits_cnn.main(["--epochs", "6", "--filters", "8", "16", "--dense-units", "32", "--lr", "3e-3",
                              "--verbose", "0", "--out", str(tmp_path)])
    assert result["test_accuracy"] >= 0.9
    assert {path.name for path in tmp_path.glob("*.png")} == {"history.png", "confusion_matrix.png", "filters.png"}


# ------------------------------------------------------------ recurrent models
def _letter_sequences(n, rng):
    """Botnet-like strings: label 1 repeats one short motif (a periodic C&C channel),
    label 0 draws its letters at random; ids 1..8, lengths 12..20, padded in front."""
    ids = np.zeros((n, 20), dtype=np.int32)
    labels = rng.integers(0, 2, n)
    for row in range(n):
        length = int(rng.integers(12, 21))
        if labels[row]:
            motif = rng.integers(1, 9, 3)
            sequence = np.resize(motif, length)
        else:
            sequence = rng.integers(1, 9, length)
        ids[row, 20 - length:] = sequence
    return ids, labels


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_behaviour_classifier_tells_periodic_from_random_letters(cell, rng):
    x, y = _letter_sequences(1000, rng)
    model = behaviour_classifier(9, cell=cell, embedding_dim=8, units=32, dropout=0.0)
    fit(model, x[:800], y[:800], epochs=10, batch_size=32, optimizer=_adam(1e-2), verbose=0)
    assert evaluate(model, x[800:], y[800:])["accuracy"] >= 0.9


def test_dga_family_head_tells_alphabets_apart(rng):
    """Three 'families' drawing their characters from three disjoint alphabets; the
    softmax head must name the family."""
    families = rng.integers(0, 3, 600)
    x = np.zeros((600, 10), dtype=np.int32)
    for row, family in enumerate(families):
        x[row, 2:] = rng.integers(1 + 4 * family, 5 + 4 * family, 8)
    model = dga_lstm(13, classes=3, embedding_dim=8, units=16)
    assert model.layers[-1].units == 3 and model.layers[-1].activation_name == "softmax"
    fit(model, x[:480], families[:480], epochs=6, batch_size=32, optimizer=_adam(1e-2), verbose=0)
    scores = evaluate(model, x[480:], families[480:])
    assert scores["accuracy"] >= 0.95
    assert min(scores["recall_per_class"]) >= 0.9


def test_woodbridge_sizes_and_builder_errors():
    model = dga_lstm(40)
    # Embedding 40 x 128, LSTM 4 * (128 * 128 + 128 * 128 + 128), Dense 128 + 1
    assert model.count_params() == 40 * 128 + 4 * (2 * 128 * 128 + 128) + 129
    assert model.layers[2].rate == 0.5
    with pytest.raises(ValueError, match="unknown cell 'rnn'"):
        recurrent_classifier(10, cell="rnn")


def test_domain_name_and_subclass_of():
    assert domain_name("WWW.Example.COM.") == "www.example"
    assert domain_name("example.com", keep_tld=True) == "example.com"
    assert domain_name("localhost") == "localhost"
    assert subclass_of("From-Botnet-TCP-HTTP-CC.Cridex-1") == "From-Botnet-TCP-HTTP-CC.Cridex"
    assert subclass_of("From-Botnet-TCP-Unknown--12") == "From-Botnet-TCP-Unknown"
    assert subclass_of("Normal-Jist") == "Normal-Jist"


def test_held_out_subclass_split_keeps_each_subclass_on_one_side(rng):
    subclasses = np.array([f"b{i % 7}" for i in range(140)] + [f"n{i % 5}" for i in range(60)])
    labels = np.array([1] * 140 + [0] * 60)
    seen, held = held_out_subclass_split(labels, subclasses, test_size=0.3, seed=1)
    assert len(seen) + len(held) == 200 and not set(seen) & set(held)
    assert not set(subclasses[seen]) & set(subclasses[held])
    assert set(labels[held]) == {0, 1}
    assert 0.15 <= len(held) / 200 <= 0.45
    with pytest.raises(ValueError, match="class 0 has a single subclass"):
        held_out_subclass_split(np.array([0, 0, 1, 1]), np.array(["a", "a", "b", "c"]))


# ---------------------------------------------------------- on the shared data
@needs_data("botnet-ctu13-deepseq")
def test_botnet_example_on_ctu13(tmp_path):
    botnet = _example("botnet")
    results = botnet.main(["--datasets", "ctu13", "--cells", "gru", "--epochs", "2", "--units", "32",
                           "--percentile", "90", "--data-dir", str(DATA_DIR), "--out", str(tmp_path), "--verbose", "0"])
    ctu13 = results["ctu13"]
    assert ctu13["length_cap"] > 10 and ctu13["class_weight"] == "balanced"
    assert set(ctu13["vocabulary"]) >= set("*+,.0abcdrsuvwxyzABCDRSUVWXYZ")
    seen_test = ctu13["models"]["gru"]["test"]
    assert seen_test["accuracy"] >= 0.85 and seen_test["roc_auc"] >= 0.9
    # The subclasses never seen in training are harder (as Torres et al. found), but
    # the model still ranks them better than chance.
    assert ctu13["models"]["gru"]["held_out"]["roc_auc"] >= 0.6
    assert (tmp_path / "roc_ctu13_gru_held_out.png").is_file()


@needs_data("dga-andrewaeva", "dga-chrmor-sample", "domains-alexa100k")
def test_dga_example_on_a_small_sample(tmp_path):
    dga = _example("dga")
    results = dga.main(["--sample", "3000", "--epochs", "3", "--units", "32", "--embedding-dim", "32",
                        "--lr", "1e-2", "--data-dir", str(DATA_DIR), "--out", str(tmp_path), "--verbose", "0"])
    assert results["binary"]["roc_auc"] >= 0.9
    # 12 classes, half of the rows legitimate: well above both the majority class and chance
    assert results["family"]["accuracy"] >= 0.65 and results["family"]["macro_recall"] >= 0.4
    assert results["cross"]["roc_auc"] >= 0.7
    assert len(results["family"]["per_family"]) == 12  # 11 andrewaeva families + legit
    assert (tmp_path / "confusion_matrix.png").is_file()
