"""The source notebook's three URL classifiers, and conv_max, with every size a parameter.

Character ids (batch, max_len) in, the probability that the URL is malicious
(batch, 1) out (a final sigmoid, as in the source: `outputs_logits = False`). The
defaults are the source's (incertum/cyber-matrix-ai, "Featureless Deep Learning for
Detection of Malicious URLs", Keras 1):

    simple_lstm  Embedding(l2 1e-4, dropout 0.2) -> LSTM(32) -> Dropout(0.5) -> Dense(1, sigmoid)
    lstm_conv    Embedding(l2) -> Dropout(0.25) -> Conv1D(256, 5, same) -> ELU -> MaxPooling1D(4)
                 -> Dropout(0.5) -> LSTM(32) -> Dropout(0.5) -> Dense(1, sigmoid)
    conv_fully   Embedding(l2) -> Dropout(0.25) -> four branches, kernel 2, 3, 4, 5:
                 Conv1D(256, k, same) -> ELU -> sum over time -> Dropout(0.5); concatenate
                 -> [Dense(1024) -> ELU -> BatchNormalization -> Dropout(0.5)] x 2 -> Dense(1, sigmoid)
    conv_max     (not in the source) conv_fully with a max over time and no hidden layers:
                 Embedding(l2) -> Dropout(0.25) -> four branches, kernel 2, 3, 4, 5:
                 Conv1D(128, k, same) -> ELU -> max over time -> Dropout(0.5); concatenate
                 -> Dense(1, sigmoid)

all trained with Adam(lr=1e-4, beta_1=0.9, beta_2=0.999, epsilon=1e-8, decay=0) on binary
cross-entropy (`model.make_optimizer()`).

Keras 1's `Embedding(dropout=0.2)` (simple_lstm) drops whole rows of the embedding
matrix, one draw per batch: a dropped character reads as zeros everywhere in the batch,
the kept rows are scaled by 1 / (1 - rate). `embedding_dropout` reproduces exactly that
(see `_embed`), not dropout on the embedded sequence.

`max_vocab_len` defaults to the source's 100; the source's tokeniser gives ids 0..100
(`CharTokenizer().vocab_size` is 101), so pass `max_vocab_len=tokenizer.vocab_size` when
a form feed (id 100) may occur; the command line does.
"""
import numpy as np

from minidl import backend
from minidl.autograd import Tensor
from minidl.data.text import CharTokenizer
from minidl.nn import ELU, BatchNormalization, Dense, Dropout, Embedding, Module
from minidl.nn.conv import Conv1D
from minidl.nn.fusion import fusion_enabled
from minidl.nn.pool import GlobalAveragePooling1D, GlobalMaxPooling1D, GlobalSumPooling1D, MaxPooling1D
from minidl.nn.recurrent import LSTM
from minidl.nn.summary import print_layers_dims
from minidl.ops.conv import conv1d_elu_pool
from minidl.ops.dropout import dropout
from minidl.ops.embedding import embedding
from minidl.ops.shape import concatenate
from minidl.optim import Adam
from minidl.train.model import Model

#: The source's optimiser settings (Keras 1 Adam).
ADAM = {"lr": 1e-4, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-8, "decay": 0.0}


class URLClassifier(Model):
    """What every URL model shares: integer ids in, the probability that the URL is
    malicious out (batch, 1), the summaries, the source's optimiser and the tokeniser
    that makes its input from URLs (`make_tokenizer`)."""

    input_dtype = "int32"
    outputs_logits = False

    def make_optimizer(self, lr=ADAM["lr"]):
        """The source's optimiser: Adam(lr, beta_1=0.9, beta_2=0.999, epsilon=1e-8, decay=0)."""
        settings = dict(ADAM, lr=lr)
        return Adam(self.parameters(), **settings)

    def print_layers_dims(self, print_fn=print):
        """Print and return each layer's input and output shapes, as the source does."""
        return print_layers_dims(self, print_fn=print_fn)

    def compute_output_shape(self, input_shape):
        if not self.built:
            self.build(input_shape)
        return (input_shape[0], 1)


class URLModel(URLClassifier):
    """What the source's URL models (and conv_max) share: character ids in, the
    embedding (with its L2 penalty, optional row dropout and optional pre-trained initial
    values)."""

    def __init__(self, max_len, emb_dim, max_vocab_len, l2, embedding_dropout, name):
        super().__init__(name)
        for what, value in (("max_len", max_len), ("emb_dim", emb_dim), ("max_vocab_len", max_vocab_len)):
            if int(value) < 1:
                raise ValueError(f"{type(self).__name__}: {what} must be a positive integer, got {value}")
        if not 0 <= embedding_dropout < 1:
            raise ValueError(f"{type(self).__name__}: embedding_dropout must be in [0, 1), got {embedding_dropout}")
        self.max_len, self.emb_dim, self.max_vocab_len = int(max_len), int(emb_dim), int(max_vocab_len)
        self.l2 = float(l2) if l2 else None
        self.embedding_dropout = float(embedding_dropout)
        self.embedding = Embedding(self.max_vocab_len, self.emb_dim, embeddings_regularizer=self.l2,
                                   input_length=self.max_len, name="embedding")

    @property
    def input_shape(self):
        return (None, self.max_len)

    def make_tokenizer(self, texts=None, truncating="pre"):
        """The source's tokeniser for this model's max_len; `texts` (the training URLs)
        are not needed: its vocabulary is string.printable."""
        return CharTokenizer(max_len=self.max_len, truncating=truncating)

    def _finish(self, embedding_init):
        """Create every weight now (the input shape is known) and load the initial
        embedding matrix, if any."""
        self.compute_output_shape(self.input_shape)
        self.built = True
        if embedding_init is not None:
            self.set_embedding(embedding_init)

    def set_embedding(self, matrix):
        """Copy `matrix` (max_vocab_len, emb_dim), e.g. CBOW-trained character vectors,
        into the embedding."""
        values = np.asarray(backend.to_numpy(matrix))
        expected = (self.max_vocab_len, self.emb_dim)
        if values.shape != expected:
            raise ValueError(f"{type(self).__name__}: the initial embedding has shape {values.shape}, "
                             f"the model needs {expected} (max_vocab_len, emb_dim)")
        weights = self.embedding.embeddings
        weights.data = backend.get_array_module(weights.data).asarray(values.astype(weights.dtype))

    def _check_ids(self, ids):
        shape = tuple(ids.shape)
        if len(shape) != 2 or shape[1] != self.max_len:
            raise ValueError(f"{type(self).__name__}: expects character ids of shape (batch, {self.max_len}), got {shape}")

    def _embed(self, ids):
        """ids (batch, max_len) -> (batch, max_len, emb_dim), dropping whole rows of the
        embedding matrix while training (Keras 1's Embedding(dropout=rate))."""
        self._check_ids(ids)
        if not (self.training and self.embedding_dropout > 0):
            return self.embedding(ids)
        weights = self.embedding.embeddings
        xp = backend.get_array_module(weights.data)
        rows = dropout(Tensor(xp.ones((self.max_vocab_len, 1), dtype=weights.dtype)), self.embedding_dropout)
        return embedding(ids, weights * rows)

    def build(self, input_shape):
        # Each layer builds from the shape its predecessor outputs.
        shape = self.embedding.compute_output_shape(tuple(input_shape))
        for layer in self.layers_after_embedding():
            if not layer.built:
                layer.build(shape)
                layer.built = True
            shape = layer.compute_output_shape(shape)
        self.built = True

    def _base_config(self):
        return {"name": self.name, "max_len": self.max_len, "emb_dim": self.emb_dim,
                "max_vocab_len": self.max_vocab_len, "l2": self.l2, "embedding_dropout": self.embedding_dropout}


class SimpleLSTM(URLModel):
    """Embedding -> LSTM -> Dropout -> Dense(1, sigmoid): the source's `simple_lstm`."""

    def __init__(self, max_len=75, emb_dim=32, max_vocab_len=100, lstm_output_size=32, l2=1e-4,
                 embedding_dropout=0.2, dropout=0.5, embedding_init=None, name="simple_lstm"):
        super().__init__(max_len, emb_dim, max_vocab_len, l2, embedding_dropout, name)
        self.lstm_output_size, self.dropout_rate = int(lstm_output_size), float(dropout)
        self.lstm = LSTM(self.lstm_output_size, name="lstm")
        self.dropout = Dropout(self.dropout_rate, name="dropout")
        self.output = Dense(1, activation="sigmoid", name="output")
        self._finish(embedding_init)

    def layers_after_embedding(self):
        return [self.lstm, self.dropout, self.output]

    def forward(self, ids):
        x = self._embed(ids)
        return self.output(self.dropout(self.lstm(x)))

    def get_config(self):
        return dict(self._base_config(), lstm_output_size=self.lstm_output_size, dropout=self.dropout_rate)


class LSTMConv(URLModel):
    """Embedding -> Dropout -> Conv1D(same) -> ELU -> MaxPooling1D -> Dropout -> LSTM ->
    Dropout -> Dense(1, sigmoid): the source's `lstm_conv`."""

    def __init__(self, max_len=75, emb_dim=32, max_vocab_len=100, lstm_output_size=32, filters=256,
                 kernel_size=5, pool_size=4, l2=1e-4, embedding_dropout=0.0, input_dropout=0.25,
                 conv_dropout=0.5, dropout=0.5, embedding_init=None, name="lstm_conv"):
        super().__init__(max_len, emb_dim, max_vocab_len, l2, embedding_dropout, name)
        self.lstm_output_size, self.filters = int(lstm_output_size), int(filters)
        self.kernel_size, self.pool_size = int(kernel_size), int(pool_size)
        self.input_dropout_rate, self.conv_dropout_rate, self.dropout_rate = (
            float(input_dropout), float(conv_dropout), float(dropout))
        if self.max_len < self.pool_size:
            raise ValueError(f"LSTMConv: max_len {self.max_len} is shorter than the pool size {self.pool_size}")
        self.input_dropout = Dropout(self.input_dropout_rate, name="embedding_dropout")
        self.conv = Conv1D(self.filters, self.kernel_size, padding="same", name="conv1d")
        self.elu = ELU(name="elu")
        self.pool = MaxPooling1D(self.pool_size, name="max_pooling1d")
        self.conv_dropout = Dropout(self.conv_dropout_rate, name="conv_dropout")
        self.lstm = LSTM(self.lstm_output_size, name="lstm")
        self.dropout = Dropout(self.dropout_rate, name="dropout")
        self.output = Dense(1, activation="sigmoid", name="output")
        self._finish(embedding_init)

    def layers_after_embedding(self):
        return [self.input_dropout, self.conv, self.elu, self.pool, self.conv_dropout, self.lstm,
                self.dropout, self.output]

    def forward(self, ids):
        x = self._embed(ids)
        if not fusion_enabled():
            for layer in self.layers_after_embedding():
                x = layer(x)
            return x
        x = self.input_dropout(x)
        # conv1d -> ELU -> MaxPooling1D as one fused op (kernels' conv1d_elu_pool).
        x = conv1d_elu_pool(x, self.conv.kernel, self.conv.bias, pooling="max", pool_size=self.pool_size,
                            alpha=self.elu.alpha)
        return self.output(self.dropout(self.lstm(self.conv_dropout(x))))

    def get_config(self):
        return dict(self._base_config(), lstm_output_size=self.lstm_output_size, filters=self.filters,
                    kernel_size=self.kernel_size, pool_size=self.pool_size, input_dropout=self.input_dropout_rate,
                    conv_dropout=self.conv_dropout_rate, dropout=self.dropout_rate)


#: A conv branch's reduction over time, by name.
POOLINGS = {"sum": GlobalSumPooling1D, "max": GlobalMaxPooling1D, "average": GlobalAveragePooling1D}


class ConvBranch(Module):
    """One of conv_fully's parallel branches: Conv1D(filters, kernel_size, same) -> ELU
    -> a reduction over time -> Dropout: (batch, steps, channels) -> (batch, filters).
    The reduction is the source's sum (Lambda(K.sum(x, axis=1))), or max or average."""

    def __init__(self, filters, kernel_size, dropout=0.5, pooling="sum", name=None):
        super().__init__(name)
        if pooling not in POOLINGS:
            raise ValueError(f"ConvBranch: pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
        self.filters, self.kernel_size, self.dropout_rate = int(filters), int(kernel_size), float(dropout)
        self.pooling = pooling
        self.conv = Conv1D(self.filters, self.kernel_size, padding="same", name=f"conv1d_k{self.kernel_size}")
        self.elu = ELU(name=f"elu_k{self.kernel_size}")
        self.reduce = POOLINGS[pooling](name=f"{pooling}_k{self.kernel_size}")
        self.dropout = Dropout(self.dropout_rate, name=f"dropout_k{self.kernel_size}")

    def build(self, input_shape):
        self.conv.build(tuple(input_shape))
        self.conv.built = True
        self.built = True

    def forward(self, x):
        if not fusion_enabled():
            return self.dropout(self.reduce(self.elu(self.conv(x))))
        # The three layers as one fused op (kernels' conv1d_elu_pool): the same values,
        # without the (batch, steps, filters) pre-activation.
        out = conv1d_elu_pool(x, self.conv.kernel, self.conv.bias, pooling=self.pooling, alpha=self.elu.alpha)
        return self.dropout(out)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.filters)

    def get_config(self):
        return {"name": self.name, "filters": self.filters, "kernel_size": self.kernel_size,
                "dropout": self.dropout_rate, "pooling": self.pooling}


class DenseBlock(Module):
    """conv_fully's hidden block: Dense(units) -> ELU -> BatchNormalization -> Dropout."""

    def __init__(self, units, dropout=0.5, name=None):
        super().__init__(name)
        self.units, self.dropout_rate = int(units), float(dropout)
        self.dense = Dense(self.units, name=f"{self.name}_dense")
        self.elu = ELU(name=f"{self.name}_elu")
        self.norm = BatchNormalization(name=f"{self.name}_batch_normalization")
        self.dropout = Dropout(self.dropout_rate, name=f"{self.name}_dropout")

    def build(self, input_shape):
        self.dense.build(tuple(input_shape))
        self.norm.build(self.dense.compute_output_shape(tuple(input_shape)))
        self.dense.built = self.norm.built = self.built = True

    def forward(self, x):
        return self.dropout(self.norm(self.elu(self.dense(x))))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        return {"name": self.name, "units": self.units, "dropout": self.dropout_rate}


class ConvFully(URLModel):
    """Embedding -> Dropout -> parallel ConvBranch per kernel size, concatenated ->
    DenseBlock per hidden size -> Dense(1, sigmoid): the source's `conv_fully`."""

    def __init__(self, max_len=75, emb_dim=32, max_vocab_len=100, filters=256, kernel_sizes=(2, 3, 4, 5),
                 hidden_units=(1024, 1024), l2=1e-4, embedding_dropout=0.0, input_dropout=0.25,
                 branch_dropout=0.5, hidden_dropout=0.5, pooling="sum", embedding_init=None, name="conv_fully"):
        super().__init__(max_len, emb_dim, max_vocab_len, l2, embedding_dropout, name)
        self.filters = int(filters)
        self.kernel_sizes = tuple(int(k) for k in kernel_sizes)
        self.hidden_units = tuple(int(u) for u in hidden_units)
        if not self.kernel_sizes:
            raise ValueError("ConvFully: needs at least one kernel size")
        self.input_dropout_rate, self.branch_dropout_rate, self.hidden_dropout_rate = (
            float(input_dropout), float(branch_dropout), float(hidden_dropout))
        self.input_dropout = Dropout(self.input_dropout_rate, name="embedding_dropout")
        self.pooling = pooling
        self.branches = [ConvBranch(self.filters, k, self.branch_dropout_rate, pooling, name=f"branch_k{k}")
                         for k in self.kernel_sizes]
        for branch in self.branches:
            setattr(self, branch.name, branch)
        self.hidden = [DenseBlock(units, self.hidden_dropout_rate, name=f"hidden{i + 1}")
                       for i, units in enumerate(self.hidden_units)]
        for block in self.hidden:
            setattr(self, block.name, block)
        self.output = Dense(1, activation="sigmoid", name="output")
        self._finish(embedding_init)

    def build(self, input_shape):
        shape = self.embedding.compute_output_shape(tuple(input_shape))
        for branch in self.branches:
            branch.build(shape)
        shape = (shape[0], self.filters * len(self.branches))
        for layer in self.hidden + [self.output]:
            layer.build(shape)
            layer.built = True
            shape = layer.compute_output_shape(shape)
        self.built = True

    def forward(self, ids):
        x = self.input_dropout(self._embed(ids))
        x = concatenate([branch(x) for branch in self.branches], axis=-1)
        for block in self.hidden:
            x = block(x)
        return self.output(x)

    def get_config(self):
        return dict(self._base_config(), filters=self.filters, kernel_sizes=list(self.kernel_sizes),
                    hidden_units=list(self.hidden_units), input_dropout=self.input_dropout_rate,
                    branch_dropout=self.branch_dropout_rate, hidden_dropout=self.hidden_dropout_rate,
                    pooling=self.pooling)


class ConvMax(ConvFully):
    """conv_fully's branches with a global max over time instead of the sum, and no
    hidden block: Embedding -> Dropout -> per kernel size 2, 3, 4, 5: Conv1D(128, k,
    same) -> ELU -> max over time -> Dropout; concatenate -> Dense(1, sigmoid).

    Not in the source. Each filter answers "does this character n-gram pattern occur
    anywhere in the URL"; with 61,569 parameters against conv_fully's 2.2 M it can read
    longer URLs (max_len 100-200) in less time. It scores best of the four on ISCX-2016
    and level with lstm_conv on phishing40k; against the TF-IDF baseline see
    docs/url_quality.md."""

    def __init__(self, max_len=75, emb_dim=32, max_vocab_len=100, filters=128, kernel_sizes=(2, 3, 4, 5),
                 hidden_units=(), l2=1e-4, embedding_dropout=0.0, input_dropout=0.25, branch_dropout=0.5,
                 hidden_dropout=0.5, pooling="max", embedding_init=None, name="conv_max"):
        super().__init__(max_len, emb_dim, max_vocab_len, filters, kernel_sizes, hidden_units, l2,
                         embedding_dropout, input_dropout, branch_dropout, hidden_dropout, pooling,
                         embedding_init, name)


#: The command line's --arch names.
ARCHITECTURES = {"simple_lstm": SimpleLSTM, "lstm_conv": LSTMConv, "conv_fully": ConvFully, "conv_max": ConvMax}


#: The source notebook's function names, and conv_max's.
simple_lstm, lstm_conv, conv_fully, conv_max = SimpleLSTM, LSTMConv, ConvFully, ConvMax


def build_model(arch, **sizes):
    """The URL model named `arch` (simple_lstm, lstm_conv, conv_fully, conv_max) with `sizes`."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}: choose one of {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[arch](**sizes)
