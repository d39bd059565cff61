"""Characters -> integer ids, and Keras' `pad_sequences`; hashed character n-grams,
URLNet's words, and several tokenisations of one URL side by side.

The flagship URL models read raw characters, as in the source notebook:

    url_int_tokens = [[printable.index(x) + 1 for x in url if x in printable] for url in urls]
    X = sequence.pad_sequences(url_int_tokens, maxlen=max_len)

`CharTokenizer()` reproduces that exactly (id = index in `string.printable` + 1, 0 is
padding, other characters dropped) and counts what it drops. `CharTokenizer.fit(texts)`
builds the same kind of tokeniser from a data set's own alphabet (DGA domains, botnet
letter strings), optionally with an out-of-vocabulary id.

Encoding is vectorised: all texts are joined, decoded to code points with NumPy and
mapped through one lookup table, so a few hundred thousand URLs take well under a second.

Beyond single characters (for the wide and URLNet models, minidl.models.wide and
minidl.models.urlnet):

    NgramHasher     every distinct character n-gram of a URL (n from 1 to 5 by default)
                    hashed into a fixed number of buckets (FNV-1a, stable across runs and
                    machines), with its count: a hashed bag of n-grams, as fastText and
                    Vowpal Wabbit read text
    WordTokenizer   URLNet's words (Le et al. 2018): the URL cut at special characters,
                    each special character a word of its own, rare words one unknown id;
                    with each word's characters for the character-in-word embedding
    URLEncoder      several of these side by side in one int32 row per URL, the input
                    of a model that reads the URL more than one way

A tokeniser's settings are JSON (`get_config`), saved in the model file;
`tokenizer_from_config` rebuilds any of them.
"""
import re
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
class Tokenizer:
    """What every tokeniser shares: its settings are JSON (`get_config`), `from_config`
    makes the same tokeniser again, and two tokenisers with the same settings are equal."""

    def get_config(self):
        raise NotImplementedError

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __eq__(self, other):
        return type(other) is type(self) and self.get_config() == other.get_config()


class CharTokenizer(Tokenizer):
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


# ---------------------------------------------------------------- hashed n-grams
#: FNV-1a, 32 bits (Fowler, Noll, Vo): offset basis and prime.
FNV_OFFSET, FNV_PRIME = 2166136261, 16777619


def fnv1a(codes):
    """FNV-1a of each row of `codes` (m, n) code points, one code point per step (for
    ASCII text this is FNV-1a of its bytes): (m,) uint32. Stable, unlike Python's salted
    `hash`; fnv1a([[97]]) is FNV-1a("a") = 0xe40c292c."""
    codes = np.asarray(codes, dtype=np.uint32)
    hashes = np.full(codes.shape[0], FNV_OFFSET, dtype=np.uint32)
    for column in range(codes.shape[1]):
        hashes = (hashes ^ codes[:, column]) * np.uint32(FNV_PRIME)  # wraps modulo 2^32, as FNV does
    return hashes


class NgramHasher(Tokenizer):
    """Each URL's distinct character n-grams, hashed into `buckets` buckets, with counts.

    `encode(texts)` gives an int32 array (n, 2 * max_ngrams): first the bucket ids
    1..buckets of the URL's distinct n-grams in the order they first occur (0 pads), then
    how often each occurs in the URL (0 under padding). A URL with more than max_ngrams
    distinct n-grams keeps the first ones (its host and the start of its path). The
    bucket of an n-gram is FNV-1a(n-gram) mod buckets + 1 (minidl.data.text.fnv1a), so
    the ids mean the same on every machine and in every run. lowercase=True reads the URL
    in lower case first, as scikit-learn's TfidfVectorizer does.

    >>> NgramHasher(ngram_range=(1, 2), buckets=1000, max_ngrams=4).encode(["aab"])
    array([[221, 328, 947,  78,   2,   1,   1,   1]], dtype=int32)
    """

    def __init__(self, ngram_range=(1, 5), buckets=2**18, max_ngrams=800, lowercase=True):
        low, high = (int(n) for n in ngram_range)
        if not 1 <= low <= high:
            raise ValueError(f"NgramHasher: ngram_range must be (low, high) with 1 <= low <= high, got {ngram_range}")
        if not 1 <= int(buckets) < 2**31 - 1:
            raise ValueError(f"NgramHasher: buckets must be in 1..2^31 - 2, got {buckets}")
        if int(max_ngrams) < 1:
            raise ValueError(f"NgramHasher: max_ngrams must be a positive integer, got {max_ngrams}")
        self.ngram_range = (low, high)
        self.buckets, self.max_ngrams, self.lowercase = int(buckets), int(max_ngrams), bool(lowercase)

    @property
    def vocab_size(self):
        """Rows of the embedding the ids index: the buckets and the padding id 0."""
        return self.buckets + 1

    @property
    def width(self):
        return 2 * self.max_ngrams

    def encode(self, texts, chunk=4096):
        """texts (n strings) -> int32 (n, 2 * max_ngrams): bucket ids, then counts. Texts
        are hashed `chunk` at a time, which bounds the memory a large data set needs."""
        texts = _checked_texts(texts, "NgramHasher.encode")
        parts = [self._encode_chunk(texts[start:start + chunk]) for start in range(0, len(texts), chunk)]
        return np.concatenate(parts) if parts else np.zeros((0, self.width), dtype=np.int32)

    def _encode_chunk(self, texts):
        if self.lowercase:
            texts = [text.lower() for text in texts]
        codes, lengths = _code_points(texts)
        text_of = np.repeat(np.arange(len(texts)), lengths)
        end_of_text = np.cumsum(lengths)[text_of]
        texts_ids, first_seen, buckets = [], [], []
        low, high = self.ngram_range
        for n in range(low, high + 1):
            starts = np.flatnonzero(np.arange(codes.size) + n <= end_of_text)  # windows inside one text
            texts_ids.append(text_of[starts])
            # where the n-gram starts, then its n: the order in which the URL's n-grams are met
            first_seen.append(starts * (high + 1) + n)
            buckets.append(fnv1a(codes[starts[:, None] + np.arange(n)]) % np.uint32(self.buckets) + 1)
        texts_ids, first_seen = np.concatenate(texts_ids), np.concatenate(first_seen)
        buckets = np.concatenate(buckets).astype(np.int64)
        order = np.argsort(first_seen, kind="stable")
        keys = texts_ids[order] * (self.buckets + 1) + buckets[order]
        distinct, first, counts = np.unique(keys, return_index=True, return_counts=True)
        in_order = np.argsort(first, kind="stable")  # each text's n-grams by first occurrence, texts in order
        distinct, counts = distinct[in_order], counts[in_order]
        per_text = np.bincount(distinct // (self.buckets + 1), minlength=len(texts))
        ids = pad_ragged(distinct % (self.buckets + 1), per_text, self.max_ngrams, "int32", "post", "post")
        return np.concatenate([ids, pad_ragged(counts, per_text, self.max_ngrams, "int32", "post", "post")], axis=1)

    def get_config(self):
        return {"ngram_range": list(self.ngram_range), "buckets": self.buckets, "max_ngrams": self.max_ngrams,
                "lowercase": self.lowercase}

    def __repr__(self):
        return (f"NgramHasher(ngram_range={self.ngram_range}, buckets={self.buckets}, "
                f"max_ngrams={self.max_ngrams}, lowercase={self.lowercase})")


# ------------------------------------------------------------------ URLNet's words
#: URLNet's words: TensorFlow's VocabularyProcessor tokeniser (runs of capitals, a
#: capitalised word before a capital, runs of word characters, ' and -); every other
#: character is a word of its own (URLNet's delimit_mode 1).
WORD_PATTERN = re.compile(r"[A-Z]{2,}(?![a-z])|[A-Z][a-z]+(?=[A-Z])|['\w\-]+|[^'\w\-]")
UNKNOWN_WORD_ID = 1


def url_words(text):
    """URLNet's words of one URL: 'PayPal.com/x' -> ['Pay', 'Pal', '.', 'com', '/', 'x']."""
    return WORD_PATTERN.findall(text)


class WordTokenizer(Tokenizer):
    """URLNet's word input: word ids and each word's characters.

    `encode(texts)` gives an int32 array (n, max_words * (1 + max_word_len)): first the
    ids of the URL's first max_words words (0 pads, 1 is an unknown word: one not in the
    vocabulary, or longer than max_word_len characters, as in URLNet; the vocabulary's
    words are 2, 3, ...), then for each of those words its first max_word_len characters
    as `CharTokenizer()` ids (string.printable, 0 pads), word after word.
    `WordTokenizer.fit(texts)` takes the words seen at least `min_count` times.
    """

    def __init__(self, vocabulary=(), max_words=100, max_word_len=20):
        if int(max_words) < 1 or int(max_word_len) < 1:
            raise ValueError(f"WordTokenizer: max_words and max_word_len must be positive, "
                             f"got {max_words}, {max_word_len}")
        self.vocabulary = list(vocabulary)
        if len(set(self.vocabulary)) != len(self.vocabulary):
            raise ValueError("WordTokenizer: the vocabulary repeats words")
        self.max_words, self.max_word_len = int(max_words), int(max_word_len)
        self._ids = {word: i + UNKNOWN_WORD_ID + 1 for i, word in enumerate(self.vocabulary)}
        self._characters = CharTokenizer(max_len=self.max_word_len, padding="post", truncating="post")

    @classmethod
    def fit(cls, texts, min_count=2, max_vocabulary=None, max_words=100, max_word_len=20):
        """The words of `texts` seen at least `min_count` times (the most frequent
        `max_vocabulary` of them, if given), most frequent first, ties in string order."""
        if min_count < 1:
            raise ValueError(f"WordTokenizer.fit: min_count must be >= 1, got {min_count}")
        counts = {}
        for text in _checked_texts(texts, "WordTokenizer.fit"):
            for word in url_words(text):
                counts[word] = counts.get(word, 0) + 1
        kept = sorted((word for word, count in counts.items() if count >= min_count and len(word) <= max_word_len),
                      key=lambda word: (-counts[word], word))
        return cls(kept[:max_vocabulary], max_words=max_words, max_word_len=max_word_len)

    @property
    def vocab_size(self):
        """Rows of the word embedding: padding, the unknown word and the vocabulary."""
        return len(self.vocabulary) + UNKNOWN_WORD_ID + 1

    @property
    def char_vocab_size(self):
        return self._characters.vocab_size

    @property
    def width(self):
        return self.max_words * (1 + self.max_word_len)

    def encode(self, texts):
        """texts (n strings) -> int32 (n, max_words * (1 + max_word_len))."""
        texts = _checked_texts(texts, "WordTokenizer.encode")
        words = [url_words(text)[:self.max_words] for text in texts]
        counts = np.fromiter((len(w) for w in words), dtype=np.int64, count=len(words))
        flat = [word for url in words for word in url]
        ids = np.fromiter((self._ids.get(word, UNKNOWN_WORD_ID) if len(word) <= self.max_word_len else UNKNOWN_WORD_ID
                           for word in flat), dtype=np.int64, count=len(flat))
        word_ids = pad_ragged(ids, counts, self.max_words, "int32", "post", "post")
        characters = pad_ragged(self._characters.encode(flat) if flat else np.zeros((0, self.max_word_len)), counts,
                                self.max_words, "int32", "post", "post")
        return np.concatenate([word_ids, characters.reshape(len(texts), -1)], axis=1)

    def get_config(self):
        return {"vocabulary": self.vocabulary, "max_words": self.max_words, "max_word_len": self.max_word_len}

    def __repr__(self):
        return (f"WordTokenizer(vocab_size={self.vocab_size}, max_words={self.max_words}, "
                f"max_word_len={self.max_word_len})")


# ------------------------------------------------------------- several at once
class URLEncoder(Tokenizer):
    """Several tokenisations of each URL side by side: `encode(texts)` concatenates the
    parts' int32 arrays along the columns, in order, so a model that reads the URL more
    than one way still takes one array (and fit, predict, save and the command line need
    nothing new). `layout()` gives (name, first column, width) of each part; the model
    slices its input the same way.

    >>> encoder = URLEncoder({"chars": CharTokenizer(max_len=4), "ngrams": NgramHasher(max_ngrams=3)})
    >>> encoder.layout()
    [('chars', 0, 4), ('ngrams', 4, 6)]
    """

    def __init__(self, parts):
        if not parts:
            raise ValueError("URLEncoder: needs at least one tokeniser")
        self.parts = dict(parts)

    def layout(self):
        layout, start = [], 0
        for name, part in self.parts.items():
            layout.append((name, start, _width(part)))
            start += _width(part)
        return layout

    @property
    def width(self):
        return sum(_width(part) for part in self.parts.values())

    def encode(self, texts):
        texts = _checked_texts(texts, "URLEncoder.encode")
        return np.concatenate([part.encode(texts) for part in self.parts.values()], axis=1)

    def get_config(self):
        return {"class_name": "URLEncoder",
                "parts": [[name, type(part).__name__, part.get_config()] for name, part in self.parts.items()]}

    @classmethod
    def from_config(cls, config):
        return cls({name: TOKENIZERS[class_name].from_config(settings)
                    for name, class_name, settings in config["parts"]})

    def __repr__(self):
        return "URLEncoder(" + ", ".join(f"{name}={part!r}" for name, part in self.parts.items()) + ")"


def _width(tokenizer):
    """Columns a tokeniser's encode gives (a CharTokenizer's is its max_len)."""
    return tokenizer.max_len if isinstance(tokenizer, CharTokenizer) else tokenizer.width


#: Tokeniser classes by name, for the configs saved in model files.
TOKENIZERS = {cls.__name__: cls for cls in (CharTokenizer, NgramHasher, WordTokenizer, URLEncoder)}


def tokenizer_from_config(config):
    """The tokeniser a model file's settings describe: a URLEncoder (its config names its
    class) or a CharTokenizer (the models that read characters only; its config names
    no class, as in files written before there were others)."""
    config = dict(config)
    class_name = config.pop("class_name", "CharTokenizer")
    if class_name not in TOKENIZERS:
        raise ValueError(f"unknown tokeniser {class_name!r} in the model file (known: {', '.join(TOKENIZERS)})")
    return TOKENIZERS[class_name].from_config(config)
