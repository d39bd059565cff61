"""URLNet (Le, Pham, Sahoo and Hoi 2018, "URLNet: Learning a URL Representation with
Deep Learning for Malicious URL Detection"; TensorFlow code Antimalweb/URLNet), its
character-and-word mode (emb_mode 5):

    character branch  Embedding(chars, emb_dim) -> per width k in 3, 4, 5, 6:
                      Conv1D(filters, k, valid) -> ReLU -> max over time; concatenate
                      -> Dropout -> Dense(branch_units)
    word branch       each word: its word embedding + the sum of its characters'
                      embeddings (a table of its own), so an unknown word still has a
                      vector -> the same convolutions and max over time -> Dropout
                      -> Dense(branch_units)
    head              concatenate the branches -> Dense(512, ReLU) -> Dense(256, ReLU)
                      -> Dense(128, ReLU) -> Dense(1, sigmoid)

The words are URLNet's (minidl.data.WordTokenizer: cut at special characters, each
special character a word, words seen fewer than min_count times in the training URLs and
words longer than max_word_len one unknown id). The input row packs the characters and
the words (minidl.models.packed; `model.make_tokenizer(train_urls)` fits the words, and
the model file keeps them).

Where this differs from the TensorFlow code: the paper's sizes are the defaults except
max_words (100, not 200: the (URLs, words, characters) ids are held in memory, and 99 %
of these data sets' URLs have fewer); initial weights are Keras' defaults (Glorot, zero
biases, U(-0.05, 0.05) embeddings) rather than U(-1, 1) and N(0, 0.1) with biases 0.1;
one sigmoid output instead of a two-way softmax (the same model for two classes); the
characters are string.printable's ids (the source's tokeniser) rather than a vocabulary
fitted to the data, and a word's characters carry no begin and end markers. The word
vocabulary has at most max_vocabulary words, so the model's size is known before the
words are counted. `wide=True` adds the linear n-gram logit of minidl.models.wide to
the output logit.
"""
from minidl.data.text import UNKNOWN_WORD_ID, CharTokenizer, WordTokenizer
from minidl.models.packed import PackedInput
from minidl.models.url import URLModel
from minidl.models.wide import NgramSettings
from minidl.nn import Activation, Dense, Dropout, Embedding, EmbeddingBag, Module
from minidl.nn.conv import Conv1D
from minidl.nn.pool import GlobalMaxPooling1D
from minidl.ops.shape import concatenate, reshape


class MaxOverTimeBranch(Module):
    """URLNet's convolutions over one sequence: per kernel width, Conv1D(filters, width,
    valid, ReLU) -> max over time; concatenated -> Dropout -> Dense(units):
    (batch, steps, channels) -> (batch, units)."""

    def __init__(self, filters, kernel_sizes, units, dropout=0.5, name=None):
        super().__init__(name)
        self.filters, self.kernel_sizes, self.units = int(filters), tuple(int(k) for k in kernel_sizes), int(units)
        self.dropout_rate = float(dropout)
        self.convs = [Conv1D(self.filters, k, activation="relu", name=f"{self.name}_conv_k{k}")
                      for k in self.kernel_sizes]
        self.pools = [GlobalMaxPooling1D(name=f"{self.name}_max_k{k}") for k in self.kernel_sizes]
        for conv, pool in zip(self.convs, self.pools):
            setattr(self, conv.name, conv)
            setattr(self, pool.name, pool)
        self.dropout = Dropout(self.dropout_rate, name=f"{self.name}_dropout")
        self.dense = Dense(self.units, name=f"{self.name}_dense")

    def build(self, input_shape):
        steps = input_shape[1]
        if steps is not None and steps < max(self.kernel_sizes):
            raise ValueError(f"{self.name}: {steps} steps are fewer than the widest kernel, {max(self.kernel_sizes)}")
        for conv in self.convs:
            conv.build(tuple(input_shape))
            conv.built = True
        self.dense.build((input_shape[0], self.filters * len(self.convs)))
        self.dense.built = self.built = True

    def forward(self, x):
        pooled = [pool(conv(x)) for conv, pool in zip(self.convs, self.pools)]
        return self.dense(self.dropout(concatenate(pooled, axis=-1)))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.units)

    def get_config(self):
        return {"name": self.name, "filters": self.filters, "kernel_sizes": list(self.kernel_sizes),
                "units": self.units, "dropout": self.dropout_rate}


class URLNet(PackedInput, NgramSettings, URLModel):
    """URLNet's character and word branches (see the module): packed characters and
    words (batch, max_len + max_words * (1 + max_word_len)) -> the probability (batch, 1)."""

    def __init__(self, max_len=200, emb_dim=32, max_vocab_len=101, max_words=100, max_word_len=20,
                 max_vocabulary=20000, min_count=2, filters=256, kernel_sizes=(3, 4, 5, 6), branch_units=512,
                 hidden_units=(512, 256, 128), dropout=0.5, l2=None, embedding_dropout=0.0, wide=False,
                 ngram_range=(1, 5), buckets=2**18, max_ngrams=800, lowercase=True, weighting="binary",
                 normalize=True, wide_l2=1e-6, embedding_init=None, name="urlnet"):
        super().__init__(max_len, emb_dim, max_vocab_len, l2, embedding_dropout, name)
        self.max_words, self.max_word_len = int(max_words), int(max_word_len)
        self.max_vocabulary, self.min_count = int(max_vocabulary), int(min_count)
        self.filters, self.kernel_sizes = int(filters), tuple(int(k) for k in kernel_sizes)
        self.branch_units, self.hidden_units = int(branch_units), tuple(int(u) for u in hidden_units)
        self.dropout_rate, self.wide_enabled = float(dropout), bool(wide)
        self._set_ngrams(ngram_range, buckets, max_ngrams, lowercase, weighting, normalize, wide_l2)
        self.char_branch = MaxOverTimeBranch(self.filters, self.kernel_sizes, self.branch_units, self.dropout_rate,
                                             name="char_branch")
        # rows for padding, the unknown word and up to max_vocabulary words
        self.word_embedding = Embedding(self.max_vocabulary + UNKNOWN_WORD_ID + 1, self.emb_dim, name="word_embedding")
        self.word_chars = EmbeddingBag(CharTokenizer().vocab_size, self.emb_dim, mode="sum", name="word_char_embedding")
        self.word_branch = MaxOverTimeBranch(self.filters, self.kernel_sizes, self.branch_units, self.dropout_rate,
                                             name="word_branch")
        self.hidden = [Dense(units, activation="relu", name=f"hidden{i + 1}")
                       for i, units in enumerate(self.hidden_units)]
        for layer in self.hidden:
            setattr(self, layer.name, layer)
        self.logit = Dense(1, name="logit")
        self.wide = self.hashed_linear(use_bias=False, name="wide") if wide else None
        self.output = Activation("sigmoid", name="output")
        self._finish(embedding_init)

    def input_parts(self):
        parts = [("chars", self.max_len), ("words", self.max_words * (1 + self.max_word_len))]
        return parts + ([("ngrams", 2 * self.max_ngrams)] if self.wide_enabled else [])

    def tokenizers(self, texts, truncating):
        if texts is None:
            raise ValueError("URLNet.make_tokenizer: needs the training URLs, to count their words")
        parts = {"chars": CharTokenizer(max_len=self.max_len, truncating=truncating),
                 "words": WordTokenizer.fit(texts, min_count=self.min_count, max_vocabulary=self.max_vocabulary,
                                            max_words=self.max_words, max_word_len=self.max_word_len)}
        return dict(parts, ngrams=self.ngram_hasher()) if self.wide_enabled else parts

    def build(self, input_shape):
        batch = input_shape[0]
        self.char_branch.build((batch, self.max_len, self.emb_dim))
        self.word_branch.build((batch, self.max_words, self.emb_dim))
        shape = (batch, 2 * self.branch_units)
        for layer in self.hidden + [self.logit]:
            layer.build(shape)
            layer.built = True
            shape = layer.compute_output_shape(shape)
        self.built = True

    def _embed_words(self, words):
        """(batch, max_words * (1 + max_word_len)) word ids and characters -> (batch,
        max_words, emb_dim): each word's embedding plus the sum of its characters'."""
        batch = words.shape[0]
        word_ids = words[:, :self.max_words]
        chars = words[:, self.max_words:].reshape(batch * self.max_words, self.max_word_len)
        char_sums = self.word_chars(chars, mask=chars > 0)
        return self.word_embedding(word_ids) + reshape(char_sums, (batch, self.max_words, self.emb_dim))

    def forward(self, x):
        parts = self.split_input(x)
        branches = [self.char_branch(self._embed(parts["chars"])), self.word_branch(self._embed_words(parts["words"]))]
        h = concatenate(branches, axis=-1)
        for layer in self.hidden:
            h = layer(h)
        logit = self.logit(h)
        if self.wide is not None:
            logit = logit + self.wide(parts["ngrams"])
        return self.output(logit)

    def get_config(self):
        return dict(self._base_config(), **self._ngram_config(), max_words=self.max_words,
                    max_word_len=self.max_word_len, max_vocabulary=self.max_vocabulary, min_count=self.min_count,
                    filters=self.filters, kernel_sizes=list(self.kernel_sizes), branch_units=self.branch_units,
                    hidden_units=list(self.hidden_units), dropout=self.dropout_rate, wide=self.wide_enabled)
