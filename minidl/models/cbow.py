"""Character embeddings pre-trained with word2vec's CBOW, and their 2D picture.

The source notebook "embeds characters that occur in the same context close-by": word2vec's
continuous bag of words (Mikolov et al. 2013) with every character a word. Each character
of a URL is predicted from the mean of the vectors of the `window` characters on either
side of it. The vocabulary is tiny (about 100 symbols), so the prediction is a full
softmax over it rather than negative sampling: exact, and cheap at this size.

    contexts (n, 2*window) ids -> embedding (n, 2*window, dim) -> masked mean (n, dim)
        -> Dense(vocab) logits (n, vocab) -> softmax cross-entropy with the centre ids

Positions beyond a URL's ends hold the padding id and are left out of the mean, as
word2vec uses fewer context words at a sentence's edges. The trained input embeddings
(vocab, dim) can initialise the URL models' Embedding (`embedding_init=`).
`pca_2d` projects them on their two principal axes (NumPy SVD) and `plot_embedding`
draws the characters there (matplotlib, an optional extra).
"""
import numpy as np

from minidl import backend
from minidl.autograd import Tensor
from minidl.data.text import PAD_ID
from minidl.nn import Dense, Embedding, Module
from minidl.ops.loss import cross_entropy
from minidl.ops.reduce import sum as reduce_sum
from minidl.optim import Adam
from minidl.train.progress import ProgressBar


class CBOW(Module):
    """Predict a character from its context: ids (batch, 2*window) -> logits (batch, vocab)."""

    def __init__(self, vocab_size, dim=32, pad_id=PAD_ID, name=None):
        super().__init__(name)
        if int(vocab_size) < 2 or int(dim) < 1:
            raise ValueError(f"CBOW: needs vocab_size >= 2 and dim >= 1, got {vocab_size} and {dim}")
        self.vocab_size, self.dim, self.pad_id = int(vocab_size), int(dim), int(pad_id)
        self.embedding = Embedding(self.vocab_size, self.dim)
        self.output = Dense(self.vocab_size)
        self.output.build((None, self.dim))
        self.built = True

    def forward(self, contexts):
        ids = contexts.data if isinstance(contexts, Tensor) else contexts
        xp = backend.get_array_module(self.embedding.embeddings.data)
        present = xp.asarray(ids != self.pad_id, dtype=self.embedding.embeddings.dtype)
        # the mean over the context characters that exist (at least one, see context_windows)
        weights = present / present.sum(axis=1, keepdims=True)
        vectors = self.embedding(ids)
        mean = reduce_sum(vectors * weights[:, :, None], axis=1)
        return self.output(mean)

    @property
    def embeddings(self):
        """The trained character vectors (vocab_size, dim), as a NumPy copy."""
        return backend.to_numpy(self.embedding.embeddings.data).copy()

    def get_config(self):
        return {"name": self.name, "vocab_size": self.vocab_size, "dim": self.dim, "pad_id": self.pad_id}


def context_windows(sequences, window, pad_id=PAD_ID):
    """Every (context, centre) pair of the sequences: contexts (n, 2*window) int64, the
    `window` ids before then after each centre (pad_id beyond a sequence's ends), and
    centres (n,) int64. sequences: id arrays (a list, or the rows of a 2D array; pad_id
    entries are skipped). Centres whose context is all padding (one-character
    sequences) carry no signal and are left out."""
    if int(window) < 1:
        raise ValueError(f"context_windows: window must be >= 1, got {window}")
    window = int(window)
    rows = [np.asarray(s, dtype=np.int64).ravel() for s in sequences]
    rows = [row[row != pad_id] for row in rows]
    if not rows:
        return np.zeros((0, 2 * window), np.int64), np.zeros(0, np.int64)
    # sequences end to end with `window` padding ids between them, so no context
    # reaches into a neighbouring sequence
    gap = np.full(window, pad_id, dtype=np.int64)
    flat = np.concatenate([gap] + [part for row in rows for part in (row, gap)])
    centres = np.flatnonzero(flat != pad_id)
    offsets = np.concatenate([np.arange(-window, 0), np.arange(1, window + 1)])
    contexts = flat[centres[:, None] + offsets[None, :]]
    informative = (contexts != pad_id).any(axis=1)
    return contexts[informative], flat[centres[informative]]


def train_cbow(sequences, vocab_size, dim=32, window=2, epochs=5, batch_size=512, lr=1e-2,
               seed=0, max_pairs=None, pad_id=PAD_ID, verbose=False):
    """Train CBOW character embeddings; returns the matrix (vocab_size, dim) as NumPy.

    sequences: id arrays (e.g. `CharTokenizer().tokenize(urls)[0]`); ids in
    0..vocab_size-1. Adam(lr) on the mean softmax cross-entropy, `epochs` passes over the
    (context, centre) pairs in a shuffled order; max_pairs keeps a random subset of the
    pairs for a quick run. `seed` seeds minidl's stream (the initial weights) and the
    shuffling, so the same call gives the same matrix. verbose shows a progress bar per
    epoch with the running mean loss, as `fit` does (on stderr).
    """
    for name, value in (("dim", dim), ("epochs", epochs), ("batch_size", batch_size)):
        if int(value) < 1:
            raise ValueError(f"train_cbow: {name} must be >= 1, got {value}")
    contexts, centres = context_windows(sequences, window, pad_id)
    if len(centres) == 0:
        raise ValueError("train_cbow: the sequences hold no character with a context (are they all empty?)")
    top = int(max(contexts.max(), centres.max()))
    if top >= vocab_size:
        raise ValueError(f"train_cbow: id {top} is outside the vocabulary of {vocab_size}")
    shuffler = np.random.default_rng(seed)
    if max_pairs is not None and len(centres) > int(max_pairs):
        keep = shuffler.choice(len(centres), int(max_pairs), replace=False)
        contexts, centres = contexts[keep], centres[keep]

    backend.manual_seed(seed)
    model = CBOW(vocab_size, dim, pad_id)
    optimizer = Adam(model.parameters(), lr=lr)
    xp = backend.array_module_for()
    for epoch in range(int(epochs)):
        order = shuffler.permutation(len(centres))
        bar = ProgressBar(len(order), epoch + 1, epochs) if verbose else None
        total, done = 0.0, 0
        for start in range(0, len(order), int(batch_size)):
            batch = order[start:start + int(batch_size)]
            logits = model(xp.asarray(contexts[batch]))
            loss = cross_entropy(logits, xp.asarray(centres[batch]))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.item()) * len(batch)
            done += len(batch)
            if bar is not None:
                bar.update(done, {"loss": total / done})
        if bar is not None:
            bar.finish({"loss": total / done})
    return model.embeddings


def pca_2d(matrix):
    """Rows of `matrix` (n, d) projected on their two principal axes -> (n, 2).

    Centre the rows, take the SVD X = U S V^T; the projection is X V[:, :2] = U[:, :2] S[:2].
    Each axis' sign is fixed so its largest-magnitude loading is positive, so the
    picture does not flip between runs."""
    x = np.asarray(matrix, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 2:
        raise ValueError(f"pca_2d: needs a matrix of at least 2 rows and 2 columns, got shape {x.shape}")
    centred = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    axes = vt[:2]
    signs = np.sign(axes[np.arange(2), np.abs(axes).argmax(axis=1)])
    return centred @ (axes * signs[:, None]).T


def plot_embedding(matrix, labels, path, title="Character embeddings (PCA)"):
    """Scatter the rows of `matrix` on their first two principal axes, each point
    labelled with labels[i], and write a PNG to `path`. Needs matplotlib."""
    try:
        # a Figure without pyplot: no global backend state, no display needed
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError('plots need matplotlib: install it with `pip install -e ".[plot]"`') from error
    if len(labels) != len(matrix):
        raise ValueError(f"plot_embedding: {len(labels)} labels for {len(matrix)} rows")
    points = pca_2d(matrix)
    figure = Figure(figsize=(8, 8))
    axes = figure.subplots()
    axes.scatter(points[:, 0], points[:, 1], s=8, alpha=0.4)
    for (x, y), label in zip(points, labels):
        axes.annotate(label, (x, y), fontsize=9, ha="center", va="center")
    axes.set_title(title)
    axes.set_xlabel("principal axis 1")
    axes.set_ylabel("principal axis 2")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    return path


def character_labels(tokenizer):
    """A printable label for each id of `tokenizer` (for plot_embedding): the character,
    its escape for whitespace and control characters, '<pad>' and '<oov>'."""
    labels = []
    for i in range(tokenizer.vocab_size):
        if i == PAD_ID:
            labels.append("<pad>")
        elif tokenizer.oov and i == 1:
            labels.append("<oov>")
        else:
            char = tokenizer.decode([i])
            labels.append("<space>" if char == " " else char if char.isprintable() else repr(char)[1:-1])
    return labels
