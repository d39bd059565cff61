"""The three seed URL models in minidl and, layer for layer, in PyTorch; their training
and inference steps; and their FLOP counts.

The minidl models are minidl.models.url's (the source notebook's simple_lstm,
lstm_conv, conv_fully with its defaults: max_len 75, a 100-character vocabulary,
32-dimensional embeddings with L2 1e-4, Adam lr 1e-4, binary cross-entropy on a
sigmoid output). The PyTorch twins are built from the minidl model's own sizes, so the
two cannot drift apart, and `twin_models` asserts they have the same number of trainable
parameters. Where PyTorch differs in form, the twin follows Keras:

- channels-last: the convolutions run on (batch, channels, steps), with one transpose
  in and one out, the layout PyTorch's Conv1d wants;
- the LSTM: PyTorch keeps two bias vectors (input and recurrent), Keras one; the
  recurrent one is frozen at zero so the trainable parameters match (the forget-gate
  half of the input bias starts at 1, Keras' unit_forget_bias);
- batch normalisation: Keras' momentum 0.99 is PyTorch's 0.01, epsilon 1e-3;
- simple_lstm's embedding dropout is Keras 1's: whole rows of the embedding matrix,
  one draw per batch (see minidl.models.url);
- the L2 penalty on the embedding matrix is added to the loss in both.

PyTorch is a benchmark-only dependency: `pip install torch==2.13.0` (the CPU build).
"""
import warnings

import numpy as np
import torch
from torch import nn
from torch.nn import functional

import minidl
import minidl.functional as F
from minidl.models import url

MODEL_NAMES = ("simple_lstm", "lstm_conv", "conv_fully")

# PyTorch warns that 'same' padding with an even kernel (conv_fully's 2 and 4) copies
# the input into a padded one; that copy is part of what is timed, the warning is noise.
warnings.filterwarnings("ignore", message="Using padding='same' with even kernel", category=UserWarning)


# ------------------------------------------------------------------------ minidl
def minidl_model(name, seed=0):
    minidl.manual_seed(seed)
    return url.build_model(name)


def batch(model, size, seed=0):
    """Random character ids (size, max_len) and 0/1 labels (size, 1)."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, model.max_vocab_len, size=(size, model.max_len)).astype(np.int32)
    labels = rng.integers(0, 2, size=(size, 1)).astype(np.float32)
    return ids, labels


def minidl_train_step(model, ids, labels):
    """A closure running one training step: forward, BCE + L2, backward, Adam."""
    optimizer = model.make_optimizer()
    ids_tensor, labels_tensor = minidl.tensor(ids), minidl.tensor(labels)

    def step():
        model.train()
        model.zero_grad()
        loss = model.regularized(F.binary_cross_entropy(model(ids_tensor), labels_tensor))
        loss.backward()
        optimizer.step()

    return step


def minidl_inference(model, ids):
    ids_tensor = minidl.tensor(ids)

    def infer():
        model.eval()
        with minidl.no_grad():
            return model(ids_tensor)

    return infer


# ----------------------------------------------------------------------- PyTorch
def torch_model(model, seed=0):
    """The PyTorch twin of the minidl URL model `model`."""
    torch.manual_seed(seed)
    twins = {url.SimpleLSTM: TorchSimpleLSTM, url.LSTMConv: TorchLSTMConv, url.ConvFully: TorchConvFully}
    return twins[type(model)](model)


def twin_models(name, seed=0):
    """(minidl model, PyTorch model) for `name`: equal trainable parameter counts, and
    the same weights giving the same outputs."""
    ours = minidl_model(name, seed)
    theirs = torch_model(ours, seed)
    counts = (ours.count_params(), sum(p.numel() for p in theirs.parameters() if p.requires_grad))
    assert counts[0] == counts[1], f"{name}: minidl has {counts[0]} trainable parameters, PyTorch {counts[1]}"
    check_same_outputs(ours, theirs)
    return ours, theirs


def torch_train_step(model, ids, labels, device="cpu"):
    """minidl_train_step's twin, with the batch on `device` (the model's)."""
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-4, eps=1e-8)
    ids_tensor = torch.as_tensor(ids.astype(np.int64), device=device)
    labels_tensor = torch.as_tensor(labels, device=device)

    def step():
        model.train()
        optimizer.zero_grad(set_to_none=True)
        loss = functional.binary_cross_entropy(model(ids_tensor), labels_tensor) + model.penalty()
        loss.backward()
        optimizer.step()

    return step


def torch_inference(model, ids, device="cpu"):
    ids_tensor = torch.as_tensor(ids.astype(np.int64), device=device)

    def infer():
        model.eval()
        with torch.inference_mode():
            return model(ids_tensor)

    return infer


def keras_lstm(input_size, units):
    """nn.LSTM with Keras' trainable parameters: one bias (the recurrent one frozen at
    zero), forget-gate bias 1."""
    lstm = nn.LSTM(input_size, units, batch_first=True)
    with torch.no_grad():
        lstm.bias_hh_l0.zero_()
        lstm.bias_ih_l0.zero_()
        lstm.bias_ih_l0[units:2 * units] = 1.0  # gate order i, f, g, o: the forget gate
    lstm.bias_hh_l0.requires_grad_(False)
    return lstm


class TorchURLModel(nn.Module):
    """The embedding (with Keras 1's row dropout) and its L2 penalty."""

    def __init__(self, ours):
        super().__init__()
        self.embedding = nn.Embedding(ours.max_vocab_len, ours.emb_dim)
        self.l2 = ours.l2 or 0.0
        self.embedding_dropout = ours.embedding_dropout

    def embed(self, ids):
        weight = self.embedding.weight
        if self.training and self.embedding_dropout > 0:
            rows = torch.ones(weight.shape[0], 1, device=weight.device)
            weight = weight * functional.dropout(rows, self.embedding_dropout, True)
        return functional.embedding(ids, weight)

    def penalty(self):
        return self.l2 * self.embedding.weight.pow(2).sum()


class TorchSimpleLSTM(TorchURLModel):
    def __init__(self, ours):
        super().__init__(ours)
        self.lstm = keras_lstm(ours.emb_dim, ours.lstm_output_size)
        self.dropout = ours.dropout_rate
        self.output = nn.Linear(ours.lstm_output_size, 1)

    def forward(self, ids):
        _, (h, _) = self.lstm(self.embed(ids))
        x = functional.dropout(h[-1], self.dropout, self.training)
        return torch.sigmoid(self.output(x))


class TorchLSTMConv(TorchURLModel):
    def __init__(self, ours):
        super().__init__(ours)
        self.conv = nn.Conv1d(ours.emb_dim, ours.filters, ours.kernel_size, padding="same")
        self.pool = ours.pool_size
        self.lstm = keras_lstm(ours.filters, ours.lstm_output_size)
        self.rates = (ours.input_dropout_rate, ours.conv_dropout_rate, ours.dropout_rate)
        self.output = nn.Linear(ours.lstm_output_size, 1)

    def forward(self, ids):
        input_rate, conv_rate, rate = self.rates
        x = functional.dropout(self.embed(ids), input_rate, self.training).transpose(1, 2)
        x = functional.max_pool1d(functional.elu(self.conv(x)), self.pool)
        x = functional.dropout(x.transpose(1, 2), conv_rate, self.training)
        _, (h, _) = self.lstm(x)
        return torch.sigmoid(self.output(functional.dropout(h[-1], rate, self.training)))


class TorchConvFully(TorchURLModel):
    """Submodules carry the minidl model's names (branch_k2.conv, hidden1.dense, ...),
    so `copy_weights` can pair every tensor by name."""

    def __init__(self, ours):
        super().__init__(ours)
        self.branches = []
        for branch in ours.branches:
            holder = nn.Module()
            holder.conv = nn.Conv1d(ours.emb_dim, ours.filters, branch.kernel_size, padding="same")
            self.add_module(branch.name, holder)
            self.branches.append(holder)
        self.hidden = []
        width = ours.filters * len(ours.kernel_sizes)
        for block in ours.hidden:
            holder = nn.Module()
            holder.dense = nn.Linear(width, block.units)
            holder.norm = nn.BatchNorm1d(block.units, eps=1e-3, momentum=0.01)
            self.add_module(block.name, holder)
            self.hidden.append(holder)
            width = block.units
        self.output = nn.Linear(width, 1)
        self.rates = (ours.input_dropout_rate, ours.branch_dropout_rate, ours.hidden_dropout_rate)

    def forward(self, ids):
        input_rate, branch_rate, hidden_rate = self.rates
        x = functional.dropout(self.embed(ids), input_rate, self.training).transpose(1, 2)
        x = torch.cat([functional.dropout(functional.elu(branch.conv(x)).sum(dim=2), branch_rate, self.training)
                       for branch in self.branches], dim=1)
        for block in self.hidden:
            x = functional.dropout(block.norm(functional.elu(block.dense(x))), hidden_rate, self.training)
        return torch.sigmoid(self.output(x))


# ------------------------------------------------------------------ same model
#: minidl's weight name -> PyTorch's, and how the array is laid out there.
_KERAS_TO_TORCH = {
    "embeddings": ("weight", lambda a: a),
    "gamma": ("weight", lambda a: a),
    "beta": ("bias", lambda a: a),
    "moving_mean": ("running_mean", lambda a: a),
    "moving_variance": ("running_var", lambda a: a),
    "bias": ("bias", lambda a: a),
    # Dense (in, out) -> (out, in); Conv1D (k, in, out) -> (out, in, k)
    "kernel": ("weight", lambda a: a.T),
}
_KERAS_TO_TORCH_LSTM = {
    "kernel": ("weight_ih_l0", lambda a: a.T),
    "recurrent_kernel": ("weight_hh_l0", lambda a: a.T),
    "bias": ("bias_ih_l0", lambda a: a),
}


def copy_weights(ours, theirs):
    """Load the minidl model's weights (and batch-norm statistics) into its twin."""
    state = theirs.state_dict()
    for name, array in ours.state_dict().items():
        prefix, _, leaf = name.rpartition(".")
        table = _KERAS_TO_TORCH_LSTM if isinstance(theirs.get_submodule(prefix), nn.LSTM) else _KERAS_TO_TORCH
        torch_leaf, layout = table[leaf]
        target = state[f"{prefix}.{torch_leaf}"]
        target.copy_(torch.from_numpy(np.ascontiguousarray(layout(array))).reshape(target.shape))


def check_same_outputs(ours, theirs, size=4, tolerance=1e-4):
    """Both models, with the same weights, give the same inference outputs."""
    copy_weights(ours, theirs)
    ids, _ = batch(ours, size, seed=1)
    expected = minidl_inference(ours, ids)().data
    actual = torch_inference(theirs, ids)().numpy()
    difference = float(np.abs(expected - actual).max())
    assert difference < tolerance, f"{type(ours).__name__}: minidl and PyTorch outputs differ by {difference}"
    return difference


# ------------------------------------------------------------------------- FLOPs
def forward_flops(model):
    """Floating-point operations of one sample's forward pass, counting the products
    only (2 per multiply-add: convolutions, LSTM gates, dense layers); the elementwise
    work, a few percent of it, is left out as it is in the matmul peak it is held to."""
    def lstm(steps, inputs, units):
        return steps * 2 * (inputs + units) * 4 * units

    if isinstance(model, url.SimpleLSTM):
        return lstm(model.max_len, model.emb_dim, model.lstm_output_size) + 2 * model.lstm_output_size
    if isinstance(model, url.LSTMConv):
        conv = model.max_len * 2 * model.kernel_size * model.emb_dim * model.filters
        steps = model.max_len // model.pool_size
        return conv + lstm(steps, model.filters, model.lstm_output_size) + 2 * model.lstm_output_size
    if isinstance(model, url.ConvFully):
        convs = sum(model.max_len * 2 * k * model.emb_dim * model.filters for k in model.kernel_sizes)
        sizes = (model.filters * len(model.kernel_sizes),) + model.hidden_units + (1,)
        return convs + sum(2 * a * b for a, b in zip(sizes[:-1], sizes[1:]))
    raise TypeError(f"no FLOP count for {type(model).__name__}")


def training_flops(model):
    """One sample's training step: the forward products, then two as large in backward
    (the gradient of each product's input and of its weights; every layer needs both,
    since even the first convolution's input, the embedding, is trained)."""
    return 3 * forward_flops(model)
