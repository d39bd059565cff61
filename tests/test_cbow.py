"""CBOW character embeddings: context windows, learning, determinism, PCA and the plot."""
import sys

import numpy as np
import pytest

from minidl.data.text import CharTokenizer
from minidl.models.cbow import CBOW, character_labels, context_windows, pca_2d, plot_embedding, train_cbow


def test_context_windows_pads_the_edges_and_never_crosses_sequences():
    contexts, centres = context_windows([[1, 2, 3], [4, 5]], window=1)
    np.testing.assert_array_equal(centres, [1, 2, 3, 4, 5])
    np.testing.assert_array_equal(contexts, [[0, 2], [1, 3], [2, 0], [0, 5], [4, 0]])


def test_context_windows_skips_padding_and_contextless_centres():
    padded = np.array([[0, 0, 7, 8], [0, 0, 0, 9]])  # the second row is one character
    contexts, centres = context_windows(padded, window=2)
    np.testing.assert_array_equal(centres, [7, 8])
    np.testing.assert_array_equal(contexts, [[0, 0, 8, 0], [0, 7, 0, 0]])


def test_context_windows_rejects_a_zero_window():
    with pytest.raises(ValueError, match="window must be >= 1"):
        context_windows([[1, 2]], window=0)


def test_cbow_forward_shape_and_mean_over_present_context():
    model = CBOW(vocab_size=6, dim=3)
    logits = model(np.array([[1, 2, 0, 0], [3, 3, 3, 3]]))
    assert logits.shape == (2, 6)
    # a context of (1, 2, pad, pad) is the mean of rows 1 and 2 only
    table = model.embeddings
    expected = (table[1] + table[2]) / 2 @ model.output.kernel.numpy() + model.output.bias.numpy()
    np.testing.assert_allclose(logits.numpy()[0], expected, rtol=1e-5, atol=1e-6)


def _markov_corpus(rng, n=300, length=12):
    """Characters 1..8 follow a cycle (each is usually followed by the next); wherever
    character 3 would appear it is 3 or 9 at random, so 3 and 9 share every context
    while the other characters' contexts differ."""
    sequences = []
    for _ in range(n):
        state, row = int(rng.integers(1, 9)), []
        for _ in range(length):
            row.append(state if state != 3 else int(rng.choice([3, 9])))
            state = state % 8 + 1 if rng.random() < 0.9 else int(rng.integers(1, 9))
        sequences.append(row)
    return sequences


def _cosine(u, v):
    return float(u @ v / (np.linalg.norm(u) * np.linalg.norm(v)))


def test_characters_in_identical_contexts_end_up_closest():
    sequences = _markov_corpus(np.random.default_rng(0))
    table = train_cbow(sequences, vocab_size=10, dim=8, window=2, epochs=12, batch_size=128, lr=2e-2, seed=3)
    assert table.shape == (10, 8)
    twin = _cosine(table[3], table[9])
    others = [_cosine(table[3], table[c]) for c in (1, 2, 4, 5, 6, 7, 8)]
    assert twin > max(others) + 0.1, (twin, others)


def test_train_cbow_is_deterministic_with_its_seed():
    sequences = _markov_corpus(np.random.default_rng(1), n=40)
    first = train_cbow(sequences, vocab_size=10, dim=4, epochs=1, seed=7)
    again = train_cbow(sequences, vocab_size=10, dim=4, epochs=1, seed=7)
    other = train_cbow(sequences, vocab_size=10, dim=4, epochs=1, seed=8)
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)


def test_train_cbow_subsamples_pairs_and_checks_ids():
    sequences = _markov_corpus(np.random.default_rng(2), n=20)
    assert train_cbow(sequences, vocab_size=10, dim=2, epochs=1, max_pairs=50).shape == (10, 2)
    with pytest.raises(ValueError, match="id 9 is outside the vocabulary of 9"):
        train_cbow(sequences, vocab_size=9, dim=2)
    with pytest.raises(ValueError, match="no character with a context"):
        train_cbow([[1], []], vocab_size=3, dim=2)


def test_pca_2d_matches_the_covariance_eigenvectors():
    rng = np.random.default_rng(0)
    points = rng.standard_normal((50, 4)) * np.array([5.0, 2.0, 0.5, 0.1])
    projected = pca_2d(points)
    centred = points - points.mean(axis=0)
    values, vectors = np.linalg.eigh(np.cov(centred.T))
    expected = centred @ vectors[:, ::-1][:, :2]
    np.testing.assert_allclose(np.abs(projected), np.abs(expected), atol=1e-9)
    assert projected[:, 0].var() > projected[:, 1].var()
    with pytest.raises(ValueError, match="at least 2 rows and 2 columns"):
        pca_2d(np.ones((5, 1)))


def test_plot_embedding_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    tokenizer = CharTokenizer()
    table = np.random.default_rng(0).standard_normal((tokenizer.vocab_size, 4))
    labels = character_labels(tokenizer)
    assert labels[0] == "<pad>" and labels[tokenizer.encode(["a"])[0, -1]] == "a"
    path = plot_embedding(table, labels, tmp_path / "chars.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_embedding_without_matplotlib_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r'pip install -e "\.\[plot\]"'):
        plot_embedding(np.eye(3), ["a", "b", "c"], tmp_path / "x.png")
