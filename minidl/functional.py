"""Every differentiable op under its lowercase name: `import minidl.functional as F`."""
from minidl.ops.activation import elu, hard_sigmoid, leaky_relu, log_softmax, relu, sigmoid, softmax, tanh
from minidl.ops.dropout import dropout
from minidl.ops.embedding import embedding, embedding_bag
from minidl.ops.loss import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    l2_penalty,
    mean_squared_error,
)
from minidl.ops.math import abs, add, cast, div, exp, linear, log, matmul, maximum, mul, neg, power, sqrt, sub
from minidl.ops.norm import batch_norm
from minidl.ops.reduce import logsumexp, max, mean, sum
from minidl.ops.shape import concatenate, flatten, getitem, reshape, stack, transpose
from minidl.ops.conv import conv1d, conv1d_elu_pool, conv2d
from minidl.ops.pool import (
    avg_pool1d,
    avg_pool2d,
    global_avg_pool1d,
    global_avg_pool2d,
    global_max_pool1d,
    global_max_pool2d,
    global_sum_pool1d,
    global_sum_pool2d,
    max_pool1d,
    max_pool2d,
    sum_pool1d,
    sum_pool2d,
)
from minidl.ops.recurrent import gru_cell, gru_sequence, lstm_cell, lstm_sequence, rnn_cell, rnn_sequence
