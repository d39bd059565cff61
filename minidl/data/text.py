"""Characters -> integer ids, and Keras' `pad_sequences`.

The flagship URL models read raw characters, as in the source notebook:

    url_int_tokens = [[printable.index(x) + 1 for x in url if x in printable] for url in urls]
    X = sequence.pad_sequences(url_int_tokens, maxlen=max_len)

`CharTokenizer()` reproduces that exactly (id = index in `string.printable` + 1, 0 is
padding, other characters dropped) and counts what it drops. `CharTokenizer.fit(texts)`
builds the same kind of tokeniser from a data set's own alphabet (DGA domains, botnet
letter strings), optionally with an out-of-vocabulary id.

Encoding is vectorised: all texts are joined, decoded to code points with NumPy and
mapped through one lookup table, so a few hundred thousand URLs take well under a second.
"""
import string

import numpy as np

PAD_ID = 0
OOV_ID = 1  # only when the tokeniser has an out-of-vocabulary id (Keras' convention)

_PAD_MODES = ("pre", "post")


# ----------------------------------------------------------------------- pad_sequences
def pad_sequences(sequences, maxlen=None, dtype="int32", padding="pre", truncating="pre", value=0):
    """Pad or cut sequences to one length, with Keras' semantics.

    sequences: a list of sequences (lists or arrays), each of items of one shape
    (scalars, or arrays of the same `sample_shape`). Returns an array of shape
    (len(sequences), maxlen, *sample_shape). maxlen defaults to the longest sequence.
    truncating="pre" drops items from the start (the defaults keep the *last* maxlen
    items), "post" from the end; padding="pre" puts `value` before the items, "post"
    after. An empty sequence becomes a row of `value`.

    >>> pad_sequences([[1, 2, 3], [4]], maxlen=2)
    array([[2, 3],
           [0, 4]], dtype=int32)
    >>> pad_sequences([[1, 2, 3], [4]], maxlen=4, padding="post")
    array([[1, 2, 3, 0],
           [4, 0, 0, 0]], dtype=int32)
    """
    if isinstance(sequences, (str, bytes)) or not hasattr(sequences, "__len__"):
        raise ValueError(f"pad_sequences: `sequences` must be a list of sequences, got {type(sequences).__name__}")
    arrays = []
    for position, sequence in enumerate(sequences):
        if not hasattr(sequence, "__len__"):
            raise ValueError(
                f"pad_sequences: `sequences` must be a list of sequences; item {position} is "
                f"{type(sequence).__name__} {sequence!r}"
            )
        arrays.append(np.asarray(sequence))
    lengths = np.array([len(array) for array in arrays], dtype=np.int64)
    non_empty = [array for array in arrays if len(array)]
    sample_shape = non_empty[0].shape[1:] if non_empty else ()
    for position, array in enumerate(arrays):
        if len(array) and array.shape[1:] != sample_shape:
            raise ValueError(
                f"pad_sequences: item {position} has items of shape {array.shape[1:]}, "
                f"the first non-empty sequence has {sample_shape}"
            )
    values = np.concatenate(non_empty) if non_empty else np.zeros((0, *sample_shape))
    return pad_ragged(values, lengths, maxlen, dtype, padding, truncating, value)


def pad_ragged(values, lengths, maxlen=None, dtype="int32", padding="pre", truncating="pre", value=0):
    """`pad_sequences` on sequences stored end to end: `values` (sum(lengths), ...) holds
    sequence i at rows [offset_i, offset_i + lengths[i]). Vectorised (no Python loop
    over sequences), which is what makes tokenising a whole data set fast."""
    for name, mode in (("padding", padding), ("truncating", truncating)):
        if mode not in _PAD_MODES:
            raise ValueError(f'pad_sequences: {name} must be "pre" or "post", got {mode!r}')
    dtype = np.dtype(dtype)
    # Keras refuses a string padding value for a numeric array rather than casting it.
    if isinstance(value, str) and dtype != object and dtype.kind != "U":
        raise ValueError(
            f"pad_sequences: dtype {dtype} cannot hold the padding value {value!r}; "
            f"use dtype=object or a string dtype"
        )
    lengths = np.asarray(lengths, dtype=np.int64)
    if maxlen is None:
        maxlen = int(lengths.max()) if lengths.size else 0
    elif maxlen < 0:
        raise ValueError(f"pad_sequences: maxlen must be >= 0, got {maxlen}")
    sample_shape = values.shape[1:]
    out = np.full((len(lengths), maxlen, *sample_shape), value, dtype=dtype)

    kept = np.minimum(lengths, maxlen)
    offsets = np.cumsum(lengths) - lengths
    source_start = offsets + (lengths - kept if truncating == "pre" else 0)
    target_start = maxlen - kept if padding == "pre" else np.zeros_like(kept)
    rows = np.repeat(np.arange(len(lengths)), kept)
    # position of every kept item inside its own (kept) sequence: 0, 1, ..., kept_i - 1
    within = np.arange(int(kept.sum())) - np.repeat(np.cumsum(kept) - kept, kept)
    out[rows, target_start[rows] + within] = values[source_start[rows] + within]
    return out


# ------------------------------------------------------------------------ tokeniser
class CharTokenizer:
    """Characters -> ids, padded or cut to `max_len` (the URL models' input).

    id 0 is padding; with oov=False (the source's scheme) the character
    `vocabulary[i]` gets id i + 1 and other characters are dropped; with oov=True, id 1
    stands for any character outside the vocabulary and `vocabulary[i]` gets id i + 2.
    Either way the characters outside the vocabulary are counted (`encode(...,
    return_unknown=True)`). padding/truncating follow `pad_sequences` ("pre" keeps the
    last max_len characters, as the source does).

    The default is exactly the source's tokeniser: `string.printable`, no OOV id,
    max_len 75. Its ids run 0..100, so `vocab_size` is 101; the source's
    Embedding(input_dim=100) has no row for id 100 (the form feed '\\x0c', which no URL
    in its data contains).
    """

    def __init__(self, max_len=75, vocabulary=string.printable, oov=False, padding="pre", truncating="pre"):
        if not isinstance(vocabulary, str) or not vocabulary:
            raise ValueError("CharTokenizer: vocabulary must be a non-empty string of characters")
        repeated = sorted({char for char in vocabulary if vocabulary.count(char) > 1})
        if repeated:
            raise ValueError(f"CharTokenizer: vocabulary repeats the characters {repeated!r}")
        if not isinstance(max_len, (int, np.integer)) or max_len < 1:
            raise ValueError(f"CharTokenizer: max_len must be a positive integer, got {max_len!r}")
        for name, mode in (("padding", padding), ("truncating", truncating)):
            if mode not in _PAD_MODES:
                raise ValueError(f'CharTokenizer: {name} must be "pre" or "post", got {mode!r}')
        self.max_len = int(max_len)
        self.vocabulary = vocabulary
        self.oov = bool(oov)
        self.padding = padding
        self.truncating = truncating
        first_id = OOV_ID + 1 if self.oov else PAD_ID + 1
        codes = np.array([ord(char) for char in vocabulary], dtype=np.int64)
        # code point -> id; -1 marks a character outside the vocabulary
        self._table = np.full(int(codes.max()) + 1, -1, dtype=np.int64)
        self._table[codes] = np.arange(first_id, first_id + len(codes))

    @classmethod
    def fit(cls, texts, max_len=75, oov=True, min_count=1, padding="pre", truncating="pre"):
        """A tokeniser whose vocabulary is the characters seen at least `min_count` times
        in `texts`, in code-point order (so the same data gives the same ids)."""
        if min_count < 1:
            raise ValueError(f"CharTokenizer.fit: min_count must be >= 1, got {min_count}")
        codes, _ = _code_points(_checked_texts(texts, "CharTokenizer.fit"))
        counts = np.bincount(codes)
        alphabet = "".join(chr(code) for code in np.flatnonzero(counts >= min_count))
        if not alphabet:
            raise ValueError(f"CharTokenizer.fit: no character occurs {min_count} or more times in the texts")
        return cls(max_len=max_len, vocabulary=alphabet, oov=oov, padding=padding, truncating=truncating)

    @property
    def vocab_size(self):
        """Number of distinct ids (padding and OOV included): the Embedding's input_dim."""
        return len(self.vocabulary) + (2 if self.oov else 1)

    def tokenize(self, texts):
        """Unpadded ids: (list of int64 arrays, unknown) where unknown[i] counts the
        characters of texts[i] outside the vocabulary (dropped, or mapped to OOV)."""
        ids, lengths, unknown = self._ids(texts, "CharTokenizer.tokenize")
        return np.split(ids, np.cumsum(lengths)[:-1]) if len(lengths) else [], unknown

    def encode(self, texts, return_unknown=False):
        """texts (n strings) -> int32 array (n, max_len); with return_unknown, also the
        int64 array (n,) of characters outside the vocabulary in each text.

        With the source's tokeniser 'g' is string.printable.index('g') + 1 = 17 and a
        short text is padded with zeros in front:

        >>> CharTokenizer(max_len=8).encode(["google", "a.b"])
        array([[ 0,  0, 17, 25, 25, 17, 22, 15],
               [ 0,  0,  0,  0,  0, 11, 76, 12]], dtype=int32)
        """
        ids, lengths, unknown = self._ids(texts, "CharTokenizer.encode")
        padded = pad_ragged(ids, lengths, self.max_len, "int32", self.padding, self.truncating, PAD_ID)
        return (padded, unknown) if return_unknown else padded

    def decode(self, ids):
        """Ids (one sequence) -> the text they stand for; padding skipped, OOV as '\\ufffd'."""
        ids = np.asarray(ids).ravel()
        first_id = OOV_ID + 1 if self.oov else PAD_ID + 1
        bad = ids[(ids < 0) | (ids >= self.vocab_size)]
        if bad.size:
            raise ValueError(f"CharTokenizer.decode: id {int(bad[0])} is outside 0..{self.vocab_size - 1}")
        return "".join(
            "\ufffd" if self.oov and i == OOV_ID else self.vocabulary[i - first_id]
            for i in ids.tolist()
            if i != PAD_ID
        )

    def get_config(self):
        """Plain data (JSON-safe) that `from_config` turns back into the same tokeniser."""
        return {
            "max_len": self.max_len,
            "vocabulary": self.vocabulary,
            "oov": self.oov,
            "padding": self.padding,
            "truncating": self.truncating,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __eq__(self, other):
        return isinstance(other, CharTokenizer) and self.get_config() == other.get_config()

    def __repr__(self):
        return f"CharTokenizer(max_len={self.max_len}, vocab_size={self.vocab_size}, oov={self.oov})"

    def _ids(self, texts, where):
        """Flat ids of the kept characters, kept count per text, unknown count per text."""
        codes, lengths = _code_points(_checked_texts(texts, where))
        table_ids = self._table[np.minimum(codes, len(self._table) - 1)]
        known = (codes < len(self._table)) & (table_ids >= 0)
        unknown = _count_per_text(~known, lengths)
        if self.oov:
            return np.where(known, table_ids, OOV_ID), lengths, unknown
        return table_ids[known], lengths - unknown, unknown


def _checked_texts(texts, where):
    if isinstance(texts, (str, bytes)):
        raise TypeError(f"{where}: expects a list of strings, got a single {type(texts).__name__}")
    texts = list(texts)
    for position, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"{where}: item {position} is {type(text).__name__}, expected str")
    return texts


def _code_points(texts):
    """All texts' code points end to end (int64) and each text's length."""
    lengths = np.fromiter((len(text) for text in texts), dtype=np.int64, count=len(texts))
    # surrogatepass: a lone surrogate (an undecodable byte kept by a loader) is still one
    # code point, so lengths and code points stay aligned.
    joined = "".join(texts).encode("utf-32-le", "surrogatepass")
    return np.frombuffer(joined, dtype="<u4").astype(np.int64), lengths


def _count_per_text(mask, lengths):
    """Number of True entries of `mask` inside each text's slice."""
    totals = np.concatenate([[0], np.cumsum(mask, dtype=np.int64)])
    ends = np.cumsum(lengths)
    return totals[ends] - totals[ends - lengths]
