"""The wide part of a URL model (Wide & Deep, Cheng et al. 2016): the URL's hashed
character n-grams, read by a linear model, and the two models built on it.

    ngram_linear    logistic regression over the hashed n-grams, trained end to end:
                    logit = b + sum over the URL's distinct n-grams j of x_j * theta[bucket_j],
                    x_j = 1 (weighting "binary", the default; "sublinear" 1 + log(count_j)
                    as the baseline's TfidfVectorizer(sublinear_tf=True) without its idf,
                    or "count"), the URL's vector scaled to unit length, theta one weight
                    per bucket (an EmbeddingBag of dimension 1) -> sigmoid
    wide_conv_max   conv_max's branches (the deep part: Embedding -> Dropout -> Conv1D(k,
                    same) -> ELU -> max over time -> Dropout, k = 2..5, concatenated) ->
                    Dense(1), plus the wide part's linear logit, -> sigmoid; with
                    ngram_dim > 0 also the mean of ngram_dim-dimensional n-gram vectors
                    (-> Dropout) beside the branches, as the exploration in
                    docs/url_quality.md did

The input row packs the characters and the n-grams (minidl.models.packed,
`model.make_tokenizer()`): NgramHasher's bucket ids and counts. The linear weights start
at zero, as a logistic regression's do, with Keras' dense l2 (`wide_l2`): the table has
one column, so its dense penalty costs 2^18 numbers a step; the n-gram vectors of the
deep bag (2^18 x ngram_dim) get row-sparse gradients and no L2, only dropout.
"""
import numpy as np

from minidl import backend
from minidl.data.text import CharTokenizer, NgramHasher
from minidl.models.packed import PackedInput
from minidl.models.url import ADAM, ConvBranch, URLClassifier, URLModel
from minidl.nn import Activation, Dense, Dropout, EmbeddingBag, Module
from minidl.ops.shape import concatenate
from minidl.optim import Adam

#: Adam's learning rate for the linear n-gram weights.
WIDE_LR = 1e-2

#: How each distinct n-gram of a URL is weighted before the URL's vector is (optionally)
#: scaled to unit length: by 1, by its count, or by 1 + log(count) (sublinear tf).
WEIGHTINGS = ("binary", "count", "sublinear")


def ngram_weights(ngrams, max_ngrams, weighting, normalize, dtype):
    """(ids (batch, max_ngrams), mask, weights) from NgramHasher's packed ids and counts."""
    xp = backend.get_array_module(ngrams)
    ids, counts = ngrams[:, :max_ngrams], ngrams[:, max_ngrams:].astype(dtype)
    mask = ids > 0
    if weighting == "binary":
        weights = mask.astype(dtype)
    elif weighting == "count":
        weights = counts
    else:
        weights = xp.where(mask, 1 + xp.log(xp.maximum(counts, 1)), 0).astype(dtype)
    if normalize:
        norms = xp.sqrt((weights * weights).sum(axis=1, keepdims=True))
        weights = weights / xp.maximum(norms, np.finfo(dtype).tiny)
    return ids, mask, weights


class HashedLinear(Module):
    """The linear model over a URL's hashed n-grams: (batch, 2 * max_ngrams) NgramHasher
    ids and counts -> the logit (batch, 1) = [bias +] sum_j x_j theta[bucket_j]."""

    def __init__(self, buckets=2**18, max_ngrams=800, weighting="sublinear", normalize=True, l2=None,
                 use_bias=True, name=None):
        super().__init__(name)
        if weighting not in WEIGHTINGS:
            raise ValueError(f"HashedLinear: weighting must be one of {', '.join(WEIGHTINGS)}, got {weighting!r}")
        self.buckets, self.max_ngrams = int(buckets), int(max_ngrams)
        self.weighting, self.normalize, self.use_bias = weighting, bool(normalize), bool(use_bias)
        self.l2 = float(l2) if l2 else None
        self.weights = EmbeddingBag(self.buckets + 1, 1, mode="sum", embeddings_initializer="zeros",
                                    embeddings_regularizer=self.l2, name=f"{self.name}_weights")
        if self.use_bias:
            self.add_weight("bias", (1,), "zeros")
        self.built = True

    def forward(self, ngrams):
        ids, mask, weights = ngram_weights(ngrams, self.max_ngrams, self.weighting, self.normalize,
                                           self.weights.embeddings.dtype)
        logit = self.weights(ids, mask=mask, per_sample_weights=weights)
        return logit + self.bias if self.use_bias else logit

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 1)

    def get_config(self):
        return {"name": self.name, "buckets": self.buckets, "max_ngrams": self.max_ngrams,
                "weighting": self.weighting, "normalize": self.normalize, "l2": self.l2, "use_bias": self.use_bias}


class NgramSettings:
    """The n-gram settings the wide models share: their tokeniser and their linear part."""

    def _set_ngrams(self, ngram_range, buckets, max_ngrams, lowercase, weighting, normalize, wide_l2):
        self.ngram_range = tuple(int(n) for n in ngram_range)
        self.buckets, self.max_ngrams, self.lowercase = int(buckets), int(max_ngrams), bool(lowercase)
        self.weighting, self.normalize = weighting, bool(normalize)
        self.wide_l2 = float(wide_l2) if wide_l2 else None

    def ngram_hasher(self):
        return NgramHasher(self.ngram_range, self.buckets, self.max_ngrams, self.lowercase)

    def hashed_linear(self, use_bias, name):
        return HashedLinear(self.buckets, self.max_ngrams, self.weighting, self.normalize, self.wide_l2, use_bias,
                            name=name)

    def make_optimizer(self, lr=ADAM["lr"], wide_lr=WIDE_LR):
        """The source's Adam at `lr`, with the linear n-gram weights (the `wide` part) at
        `wide_lr`: a linear model over 2^18 weights learns in a few epochs at 1e-2, the
        convolutions beside it at 1e-3 (docs/url_quality.md)."""
        wide = {id(p) for p in self.wide.parameters()} if self.wide is not None else set()
        groups = [{"params": [p for p in self.parameters() if id(p) not in wide]},
                  {"params": [p for p in self.parameters() if id(p) in wide], "lr": wide_lr}]
        return Adam([group for group in groups if group["params"]], **dict(ADAM, lr=lr))

    def _ngram_config(self):
        return {"ngram_range": list(self.ngram_range), "buckets": self.buckets, "max_ngrams": self.max_ngrams,
                "lowercase": self.lowercase, "weighting": self.weighting, "normalize": self.normalize,
                "wide_l2": self.wide_l2}


class NgramLinear(PackedInput, NgramSettings, URLClassifier):
    """Logistic regression over the URL's hashed character n-grams (see the module):
    NgramHasher ids and counts (batch, 2 * max_ngrams) -> HashedLinear -> sigmoid."""

    def __init__(self, ngram_range=(1, 5), buckets=2**18, max_ngrams=800, lowercase=True, weighting="binary",
                 normalize=True, wide_l2=1e-6, name="ngram_linear"):
        super().__init__(name)
        self._set_ngrams(ngram_range, buckets, max_ngrams, lowercase, weighting, normalize, wide_l2)
        self.linear = self.hashed_linear(use_bias=True, name="hashed_linear")
        self.output = Activation("sigmoid", name="output")
        self.built = True

    def input_parts(self):
        return [("ngrams", 2 * self.max_ngrams)]

    def tokenizers(self, texts, truncating):
        return {"ngrams": self.ngram_hasher()}

    def forward(self, x):
        return self.output(self.linear(self.split_input(x)["ngrams"]))

    def make_optimizer(self, lr=WIDE_LR):
        """The source's Adam, at lr 1e-2 by default: a linear model over 2^18 weights
        learns at this rate in a few epochs (docs/url_quality.md)."""
        return URLClassifier.make_optimizer(self, lr)

    def get_config(self):
        return dict(self._ngram_config(), name=self.name)


class WideConvMax(PackedInput, NgramSettings, URLModel):
    """conv_max's branches plus the wide part (see the module): packed characters and
    n-grams (batch, max_len + 2 * max_ngrams) -> the probability (batch, 1)."""

    def __init__(self, max_len=200, emb_dim=32, max_vocab_len=101, filters=128, kernel_sizes=(2, 3, 4, 5),
                 l2=1e-4, embedding_dropout=0.0, input_dropout=0.25, branch_dropout=0.5, pooling="max",
                 ngram_range=(1, 5), buckets=2**18, max_ngrams=800, lowercase=True, weighting="binary",
                 normalize=True, wide_l2=1e-6, ngram_dim=0, ngram_dropout=0.5, embedding_init=None,
                 name="wide_conv_max"):
        super().__init__(max_len, emb_dim, max_vocab_len, l2, embedding_dropout, name)
        self._set_ngrams(ngram_range, buckets, max_ngrams, lowercase, weighting, normalize, wide_l2)
        self.filters, self.kernel_sizes = int(filters), tuple(int(k) for k in kernel_sizes)
        if not self.kernel_sizes:
            raise ValueError("WideConvMax: needs at least one kernel size")
        self.input_dropout_rate, self.branch_dropout_rate = float(input_dropout), float(branch_dropout)
        self.pooling, self.ngram_dim, self.ngram_dropout_rate = pooling, int(ngram_dim), float(ngram_dropout)
        self.input_dropout = Dropout(self.input_dropout_rate, name="embedding_dropout")
        self.branches = [ConvBranch(self.filters, k, self.branch_dropout_rate, pooling, name=f"branch_k{k}")
                         for k in self.kernel_sizes]
        for branch in self.branches:
            setattr(self, branch.name, branch)
        if self.ngram_dim:
            self.ngram_bag = EmbeddingBag(self.buckets + 1, self.ngram_dim, mode="mean", name="ngram_bag")
            self.ngram_dropout = Dropout(self.ngram_dropout_rate, name="ngram_dropout")
        self.logit = Dense(1, name="logit")
        self.wide = self.hashed_linear(use_bias=False, name="wide")
        self.output = Activation("sigmoid", name="output")
        self._finish(embedding_init)

    def input_parts(self):
        return [("chars", self.max_len), ("ngrams", 2 * self.max_ngrams)]

    def tokenizers(self, texts, truncating):
        return {"chars": CharTokenizer(max_len=self.max_len, truncating=truncating), "ngrams": self.ngram_hasher()}

    def build(self, input_shape):
        shape = self.embedding.compute_output_shape((input_shape[0], self.max_len))
        for branch in self.branches:
            branch.build(shape)
        self.logit.build((input_shape[0], self.filters * len(self.branches) + self.ngram_dim))
        self.logit.built = self.built = True

    def forward(self, x):
        parts = self.split_input(x)
        chars = self.input_dropout(self._embed(parts["chars"]))
        features = [branch(chars) for branch in self.branches]
        if self.ngram_dim:
            ids, mask, _ = ngram_weights(parts["ngrams"], self.max_ngrams, "binary", False,
                                         self.embedding.embeddings.dtype)
            features.append(self.ngram_dropout(self.ngram_bag(ids, mask=mask)))
        return self.output(self.logit(concatenate(features, axis=-1)) + self.wide(parts["ngrams"]))

    def get_config(self):
        return dict(self._base_config(), **self._ngram_config(), filters=self.filters,
                    kernel_sizes=list(self.kernel_sizes), input_dropout=self.input_dropout_rate,
                    branch_dropout=self.branch_dropout_rate, pooling=self.pooling, ngram_dim=self.ngram_dim,
                    ngram_dropout=self.ngram_dropout_rate)
