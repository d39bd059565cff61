"""The engine on a CUDA GPU: every op's forward and backward on CuPy against the CPU,
gradient checks in float64 on the GPU, the Numba CUDA kernels (minidl/kernels/numba_cuda)
on CuPy arrays against their reference twins,
random numbers per seed, save/load across devices, and a few training steps of each URL
model matching the CPU run.

Tests marked `gpu` are skipped, with the reason, where CuPy or a GPU is missing, or
where Numba's CUDA simulator is on (tests/conftest.py turns it on unless told
otherwise); run them with `NUMBA_ENABLE_CUDASIM=0 python -m pytest -m gpu` or
`bash benchmarks/gpu_check.sh`. Without a GPU, tests/test_cuda_kernels.py runs the same
kernel table in the simulator. The unmarked tests at the
end run everywhere: they hold the op table to minidl.functional and run it on the CPU,
so a case that cannot run is caught before it reaches a GPU.
"""
import os
from typing import Callable, NamedTuple

import numpy as np
import pytest

import minidl
from minidl import backend, kernels
from minidl import functional as F
from minidl.ops import conv, pool, recurrent

from test_cuda_kernels import assert_twins_agree
from test_cuda_kernels import kernel_calls as simulated_kernel_calls


def _why_no_gpu():
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        return "NUMBA_ENABLE_CUDASIM=1 runs the CUDA kernels in the simulator, on NumPy arrays only: set it to 0"
    try:
        backend.cupy_module()
    except RuntimeError as error:
        return str(error)
    return None


NO_GPU = _why_no_gpu()


def gpu_test(test):
    """Mark `test` gpu and skip it, saying why, where CuPy or a GPU is missing."""
    return pytest.mark.gpu(pytest.mark.skipif(NO_GPU is not None, reason=f"needs CuPy and a CUDA GPU: {NO_GPU}")(test))


# --------------------------------------------------------------------- the op table
class Case(NamedTuple):
    """One op applied to inputs of `shapes` drawn as `kind`; `call(on, *tensors)` runs
    it, with `on(array)` putting a constant (ids, labels, targets) on the inputs' device."""

    name: str
    op: Callable
    shapes: tuple
    kind: str
    call: Callable


def draw(shape, kind, rng):
    """float64 values away from the ops' kinks: 'any' N(0, 1); 'positive' in [0.5, 2];
    'probability' in [0.1, 0.9]; 'nonzero' |x| in [0.2, 2] (relu, abs at 0); 'distinct'
    a shuffled grid with no ties (max, max pooling)."""
    if kind == "positive":
        return rng.uniform(0.5, 2.0, shape)
    if kind == "probability":
        return rng.uniform(0.1, 0.9, shape)
    if kind == "nonzero":
        return rng.choice([-1.0, 1.0], shape) * rng.uniform(0.2, 2.0, shape)
    if kind == "distinct":
        size = int(np.prod(shape))
        return (rng.permutation(size) / size * 4 - 2).reshape(shape)
    return rng.standard_normal(shape)


IDS = np.array([[1, 4, 4], [0, 2, 4]])
LABELS = np.array([2, 0, 1, 2])
TARGETS = np.array([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])


def _batch_norm(on, x, gamma, beta):
    running_mean, running_var = on(np.zeros(3)).data, on(np.ones(3)).data
    return F.batch_norm(x, gamma, beta, running_mean, running_var, training=True)


CASES = [
    Case("add", F.add, ((3, 4), (4,)), "any", lambda on, a, b: F.add(a, b)),
    Case("sub", F.sub, ((3, 4), (3, 1)), "any", lambda on, a, b: F.sub(a, b)),
    Case("mul", F.mul, ((3, 4), (3, 4)), "any", lambda on, a, b: F.mul(a, b)),
    Case("div", F.div, ((3, 4), (4,)), "positive", lambda on, a, b: F.div(a, b)),
    Case("neg", F.neg, ((3, 4),), "any", lambda on, a: F.neg(a)),
    Case("power", F.power, ((3, 4),), "positive", lambda on, a: F.power(a, 3.0)),
    Case("power_of_tensors", F.power, ((3, 4), (3, 4)), "positive", lambda on, a, p: F.power(a, p)),
    Case("sqrt", F.sqrt, ((3, 4),), "positive", lambda on, a: F.sqrt(a)),
    Case("exp", F.exp, ((3, 4),), "any", lambda on, a: F.exp(a)),
    Case("log", F.log, ((3, 4),), "positive", lambda on, a: F.log(a)),
    Case("abs", F.abs, ((3, 4),), "nonzero", lambda on, a: F.abs(a)),
    Case("maximum", F.maximum, ((3, 4), (3, 4)), "distinct", lambda on, a, b: F.maximum(a, b * 0.9)),
    Case("cast", F.cast, ((3, 4),), "any", lambda on, a: F.cast(a, np.float64) * 2.0),
    Case("matmul", F.matmul, ((2, 3, 4), (4, 5)), "any", lambda on, a, b: F.matmul(a, b)),
    Case("linear", F.linear, ((3, 4), (4, 5), (5,)), "any", lambda on, x, k, b: F.linear(x, k, b)),
    Case("relu", F.relu, ((3, 4),), "nonzero", lambda on, a: F.relu(a)),
    Case("elu", F.elu, ((3, 4),), "nonzero", lambda on, a: F.elu(a, 0.7)),
    Case("leaky_relu", F.leaky_relu, ((3, 4),), "nonzero", lambda on, a: F.leaky_relu(a)),
    Case("sigmoid", F.sigmoid, ((3, 4),), "any", lambda on, a: F.sigmoid(a * 5)),
    Case("hard_sigmoid", F.hard_sigmoid, ((3, 4),), "any", lambda on, a: F.hard_sigmoid(a * 3)),
    Case("tanh", F.tanh, ((3, 4),), "any", lambda on, a: F.tanh(a)),
    Case("softmax", F.softmax, ((3, 4),), "any", lambda on, a: F.softmax(a, axis=-1)),
    Case("log_softmax", F.log_softmax, ((3, 4),), "any", lambda on, a: F.log_softmax(a, axis=0)),
    Case("sum", F.sum, ((2, 3, 4),), "any", lambda on, a: F.sum(a, axis=1)),
    Case("mean", F.mean, ((2, 3, 4),), "any", lambda on, a: F.mean(a, axis=(0, 2), keepdims=True)),
    Case("max", F.max, ((2, 3, 4),), "distinct", lambda on, a: F.max(a, axis=-1)),
    Case("logsumexp", F.logsumexp, ((2, 3, 4),), "any", lambda on, a: F.logsumexp(a, axis=1)),
    Case("reshape", F.reshape, ((2, 3, 4),), "any", lambda on, a: F.reshape(a, (4, -1))),
    Case("transpose", F.transpose, ((2, 3, 4),), "any", lambda on, a: F.transpose(a, (2, 0, 1))),
    Case("flatten", F.flatten, ((2, 3, 4),), "any", lambda on, a: F.flatten(a)),
    Case("getitem", F.getitem, ((4, 5),), "any", lambda on, a: F.getitem(a, (slice(1, None), slice(None, None, 2)))),
    Case("getitem_repeated_rows", F.getitem, ((4, 5),), "any", lambda on, a: F.getitem(a, on(np.array([0, 2, 0])).data)),
    Case("concatenate", F.concatenate, ((2, 3), (2, 4)), "any", lambda on, a, b: F.concatenate([a, b], axis=1)),
    Case("stack", F.stack, ((2, 3), (2, 3)), "any", lambda on, a, b: F.stack([a, b], axis=1)),
    Case("dropout", F.dropout, ((6, 7),), "any", lambda on, a: F.dropout(a, 0.4, seed=7)),
    Case("embedding", F.embedding, ((5, 3),), "any", lambda on, w: F.embedding(on(IDS), w)),
    Case("embedding_bag", F.embedding_bag, ((5, 3),), "any",
         lambda on, w: F.embedding_bag(on(IDS), w, mask=on(np.array([[1, 1, 0], [1, 0, 1]])), mode="mean")),
    Case("batch_norm", F.batch_norm, ((4, 2, 3), (3,), (3,)), "any", _batch_norm),
    Case("binary_cross_entropy", F.binary_cross_entropy, ((2, 3),), "probability",
         lambda on, p: F.binary_cross_entropy(p, on(TARGETS))),
    Case("binary_cross_entropy_with_logits", F.binary_cross_entropy_with_logits, ((2, 3),), "any",
         lambda on, x: F.binary_cross_entropy_with_logits(x, on(TARGETS), reduction="sum")),
    Case("cross_entropy", F.cross_entropy, ((4, 3),), "any", lambda on, x: F.cross_entropy(x, on(LABELS))),
    Case("mean_squared_error", F.mean_squared_error, ((2, 3), (2, 3)), "any",
         lambda on, p, t: F.mean_squared_error(p, t.detach())),
    Case("l2_penalty", F.l2_penalty, ((3, 4),), "any", lambda on, w: F.l2_penalty(w, 0.01)),
    Case("conv1d_same", conv.conv1d, ((2, 7, 3), (3, 3, 4), (4,)), "any",
         lambda on, x, k, b: conv.conv1d(x, k, b, padding="same")),
    Case("conv1d_strided_dilated", conv.conv1d, ((2, 9, 3), (2, 3, 2)), "any",
         lambda on, x, k: conv.conv1d(x, k, stride=2, dilation=2)),
    Case("conv2d", conv.conv2d, ((2, 5, 6, 2), (2, 3, 2, 3), (3,)), "any",
         lambda on, x, k, b: conv.conv2d(x, k, b, stride=(2, 1), padding="same")),
    Case("conv1d_elu_pool_sum", F.conv1d_elu_pool, ((2, 7, 3), (2, 3, 4), (4,)), "any",
         lambda on, x, k, b: F.conv1d_elu_pool(x, k, b, pooling="sum")),
    Case("conv1d_elu_pool_max_windows", F.conv1d_elu_pool, ((2, 9, 3), (5, 3, 4), (4,)), "distinct",
         lambda on, x, k, b: F.conv1d_elu_pool(x, k, b, pooling="max", pool_size=4)),
    Case("max_pool1d", pool.max_pool1d, ((2, 9, 3),), "distinct", lambda on, x: pool.max_pool1d(x, 3, strides=2)),
    Case("max_pool2d", pool.max_pool2d, ((2, 5, 5, 2),), "distinct", lambda on, x: pool.max_pool2d(x, 2, padding="same")),
    Case("sum_pool1d", pool.sum_pool1d, ((2, 8, 3),), "any", lambda on, x: pool.sum_pool1d(x, 4)),
    Case("sum_pool2d", pool.sum_pool2d, ((2, 4, 6, 2),), "any", lambda on, x: pool.sum_pool2d(x, (2, 3))),
    Case("avg_pool1d", pool.avg_pool1d, ((2, 7, 3),), "any", lambda on, x: pool.avg_pool1d(x, 3, strides=2, padding="same")),
    Case("avg_pool2d", pool.avg_pool2d, ((2, 5, 5, 2),), "any", lambda on, x: pool.avg_pool2d(x, 2, padding="same")),
    Case("global_max_pool1d", pool.global_max_pool1d, ((2, 6, 3),), "distinct", lambda on, x: pool.global_max_pool1d(x)),
    Case("global_max_pool2d", pool.global_max_pool2d, ((2, 3, 4, 2),), "distinct", lambda on, x: pool.global_max_pool2d(x)),
    Case("global_sum_pool1d", pool.global_sum_pool1d, ((2, 6, 3),), "any", lambda on, x: pool.global_sum_pool1d(x)),
    Case("global_sum_pool2d", pool.global_sum_pool2d, ((2, 3, 4, 2),), "any", lambda on, x: pool.global_sum_pool2d(x)),
    Case("global_avg_pool1d", pool.global_avg_pool1d, ((2, 6, 3),), "any", lambda on, x: pool.global_avg_pool1d(x)),
    Case("global_avg_pool2d", pool.global_avg_pool2d, ((2, 3, 4, 2),), "any", lambda on, x: pool.global_avg_pool2d(x)),
    Case("rnn_sequence", recurrent.rnn_sequence, ((2, 5, 3), (2, 4), (3, 4), (4, 4), (4,)), "any",
         lambda on, x, h0, k, u, b: recurrent.rnn_sequence(x, h0, k, u * 0.5, b)),
    Case("rnn_cell", recurrent.rnn_cell, ((2, 3), (2, 4), (3, 4), (4, 4), (4,)), "any",
         lambda on, x, h, k, u, b: recurrent.rnn_cell(x, h, k, u, b)),
    Case("lstm_sequence", recurrent.lstm_sequence, ((2, 5, 3), (2, 4), (2, 4), (3, 16), (4, 16), (16,)), "any",
         lambda on, x, h0, c0, k, u, b: recurrent.lstm_sequence(x, h0, c0, k, u * 0.5, b)),
    Case("lstm_sequence_hard_sigmoid", recurrent.lstm_sequence, ((2, 5, 3), (3, 16), (4, 16), (16,)), "any",
         lambda on, x, k, u, b: recurrent.lstm_sequence(x, None, None, k, u * 0.5, b, recurrent_activation="hard_sigmoid")),
    Case("lstm_cell", recurrent.lstm_cell, ((2, 3), (2, 4), (2, 4), (3, 16), (4, 16), (16,)), "any",
         lambda on, x, h, c, k, u, b: F.add(*recurrent.lstm_cell(x, h, c, k, u, b))),
    Case("gru_sequence", recurrent.gru_sequence, ((2, 5, 3), (2, 4), (3, 12), (4, 12), (2, 12)), "any",
         lambda on, x, h0, k, u, b: recurrent.gru_sequence(x, h0, k, u * 0.5, b)),
    Case("gru_sequence_reset_before", recurrent.gru_sequence, ((2, 5, 3), (3, 12), (4, 12), (12,)), "any",
         lambda on, x, k, u, b: recurrent.gru_sequence(x, None, k, u * 0.5, b, reset_after=False)),
    Case("gru_sequence_hard_sigmoid", recurrent.gru_sequence, ((2, 5, 3), (3, 12), (4, 12), (2, 12)), "any",
         lambda on, x, k, u, b: recurrent.gru_sequence(x, None, k, u * 0.5, b, recurrent_activation="hard_sigmoid")),
    Case("gru_cell", recurrent.gru_cell, ((2, 3), (2, 4), (3, 12), (4, 12), (2, 12)), "any",
         lambda on, x, h, k, u, b: recurrent.gru_cell(x, h, k, u, b)),
]
CASES_BY_NAME = {case.name: case for case in CASES}

# Checked with finite differences on the GPU: one or more of every family and every op
# that runs a CuPy kernel of ours.
GRADCHECKED = ("mul", "div", "power_of_tensors", "matmul", "relu", "elu", "sigmoid", "softmax", "logsumexp", "max",
               "getitem_repeated_rows", "dropout", "embedding", "embedding_bag", "batch_norm", "cross_entropy",
               "binary_cross_entropy_with_logits", "conv1d_same", "conv2d", "max_pool1d", "max_pool2d",
               "avg_pool1d", "sum_pool2d", "rnn_sequence", "lstm_sequence", "gru_sequence",
               "gru_sequence_reset_before", "lstm_sequence_hard_sigmoid", "gru_sequence_hard_sigmoid")


def run_case(case, device, dtype=np.float32, seed=0):
    """(output, gradients of the inputs) of `case` on `device`, as NumPy arrays; the
    output is weighted by a fixed random array before the backward, so no error cancels."""
    rng = np.random.default_rng(seed)
    values = [draw(shape, case.kind, rng) for shape in case.shapes]
    with minidl.device(device):
        inputs = [minidl.tensor(v, dtype=dtype, requires_grad=True) for v in values]
        out = case.call(lambda array: minidl.tensor(array, dtype=None if array.dtype.kind in "iu" else dtype), *inputs)
        weight = minidl.tensor(rng.standard_normal(out.shape), dtype=out.dtype)
    (out * weight).sum().backward()
    return out.numpy(), [t.grad if t.grad is None else backend.to_numpy(t.grad) for t in inputs]


def assert_close(got, expected, what, rtol=2e-4, atol=2e-5):
    scale = max(1.0, float(np.max(np.abs(expected)))) if np.size(expected) else 1.0
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol * scale, err_msg=what)


# -------------------------------------------------------------- ops: GPU against CPU
@gpu_test
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_op_forward_and_backward_on_the_gpu_match_the_cpu(case):
    # On the CPU the Numba kernels, whose dropout draws the same stream as the GPU's.
    with kernels.use("numba"):
        expected_out, expected_grads = run_case(case, "cpu")
    out, grads = run_case(case, "cuda")
    assert out.dtype == expected_out.dtype
    assert_close(out, expected_out, f"{case.name}: forward")
    for i, (grad, expected) in enumerate(zip(grads, expected_grads)):
        assert (grad is None) == (expected is None), f"{case.name}: input {i} gradient present on one device only"
        if grad is not None:
            assert_close(grad, expected, f"{case.name}: gradient of input {i}")


@gpu_test
@pytest.mark.parametrize("name", GRADCHECKED)
def test_gradcheck_in_float64_on_the_gpu(name):
    case = CASES_BY_NAME[name]
    rng = np.random.default_rng(1)
    with minidl.device("cuda"):
        inputs = [minidl.tensor(draw(shape, case.kind, rng), dtype=np.float64, requires_grad=True)
                  for shape in case.shapes]
        on = lambda array: minidl.tensor(array, dtype=None if array.dtype.kind in "iu" else np.float64)  # noqa: E731
        assert all(t.device == "cuda" for t in inputs)
        assert minidl.gradcheck(lambda *tensors: case.call(on, *tensors), inputs)


# ------------------------------------------------ Numba CUDA kernels vs reference
def _float(rng, shape, dtype, scale=1.0):
    return rng.standard_normal(shape).astype(dtype) * dtype(scale)


def kernel_calls(dtype, rng):
    """(family, name, host arguments) for every CUDA kernel of ours: the table of
    tests/test_cuda_kernels.py (which the simulator runs in CI) and the recurrent
    kernels' calls below. Each kernel must return what its reference twin returns on
    the same arrays, and leave the arrays it updates in place (the optimisers'
    parameters and slots) as the twin does."""
    calls = [(family, name, args) for _, family, name, args in simulated_kernel_calls(dtype, rng)]
    return calls + recurrent_kernel_calls(dtype, rng)


def recurrent_kernel_calls(dtype, rng):
    steps, batch, units = 5, 3, 4
    h0, c0 = _float(rng, (batch, units), dtype, 0.5), _float(rng, (batch, units), dtype, 0.5)
    grad_hs = _float(rng, (steps, batch, units), dtype)
    calls = []
    recurrent = kernels.reference_kernel
    rnn_kernel = _float(rng, (units, units), dtype, 0.5)
    projected = _float(rng, (steps, batch, units), dtype)
    hs = recurrent("recurrent", "rnn_forward")(projected, h0, rnn_kernel)
    calls += [("recurrent", "rnn_forward", (projected, h0, rnn_kernel)),
              ("recurrent", "rnn_backward", (grad_hs, hs, h0, rnn_kernel))]
    features = 3
    lstm_x = _float(rng, (batch, steps, features), dtype)
    lstm_weights = (_float(rng, (features, 4 * units), dtype, 0.5), _float(rng, (units, 4 * units), dtype, 0.5),
                    _float(rng, (4 * units,), dtype, 0.5))
    for activation in ("sigmoid", "hard_sigmoid"):
        lstm_args = (lstm_x, h0, c0) + lstm_weights + (activation,)
        hs, cs, gates = recurrent("recurrent", "lstm_forward")(*lstm_args)
        calls += [("recurrent", "lstm_forward", lstm_args + (True, True)),
                  ("recurrent", "lstm_forward", lstm_args + (False, False)),
                  ("recurrent", "lstm_backward", (grad_hs, lstm_x, hs, cs, gates, h0, c0) + lstm_weights[:2]
                   + (activation,)),
                  ("recurrent", "lstm_backward", (grad_hs[-1:], lstm_x, hs, cs, gates, h0, c0) + lstm_weights[:2]
                   + (activation,))]
    gru_kernel = _float(rng, (units, 3 * units), dtype, 0.5)
    projected = _float(rng, (steps, batch, 3 * units), dtype)
    for reset_after in (True, False):
        bias = _float(rng, (3 * units,), dtype, 0.3 if reset_after else 0.0)
        for activation in ("sigmoid", "hard_sigmoid"):
            hs, gates = recurrent("recurrent", "gru_forward")(projected, h0, gru_kernel, bias, reset_after, activation)
            calls += [("recurrent", "gru_forward", (projected, h0, gru_kernel, bias, reset_after, activation)),
                      ("recurrent", "gru_backward", (grad_hs, hs, gates, h0, gru_kernel, reset_after, activation))]
    return calls


@gpu_test
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_cuda_kernels_match_their_reference_twins_on_cupy_arrays(dtype):
    cupy = backend.cupy_module()

    def to_host(array):
        assert backend.is_cupy_array(array), "an output left the GPU"
        return cupy.asnumpy(array)

    for family, name, host_args in kernel_calls(dtype, np.random.default_rng(2)):
        cuda = kernels.own_kernel("cuda", family, name)  # a LookupError where the CUDA twin is missing
        # the reference runs on NumPy copies of the same arrays
        assert_twins_agree(cuda, family, name, host_args, dtype, to_device=cupy.asarray, to_host=to_host)


@gpu_test
def test_embedding_gradient_is_deterministic_and_matches_sequential_sums():
    cupy = backend.cupy_module()
    rng = np.random.default_rng(3)
    ids = rng.integers(0, 5, size=(64, 50))  # every row is hit hundreds of times
    grad = rng.standard_normal((64, 50, 8)).astype(np.float32)
    backward = kernels.own_kernel("cuda", "embedding", "embedding_backward")
    first = backward(cupy.asarray(grad), cupy.asarray(ids), 6)
    again = backward(cupy.asarray(grad), cupy.asarray(ids), 6)
    np.testing.assert_array_equal(cupy.asnumpy(first), cupy.asnumpy(again))
    # Sums in position order, as NumPy's add.at: equal bit for bit.
    np.testing.assert_array_equal(cupy.asnumpy(first), kernels.reference_kernel("embedding", "embedding_backward")(grad, ids, 6))


# --------------------------------------------------------------------- randomness
@gpu_test
def test_dropout_masks_repeat_per_seed_and_equal_the_numba_masks():
    cupy = backend.cupy_module()
    x = np.random.default_rng(4).standard_normal((50, 60)).astype(np.float32)
    forward = kernels.own_kernel("cuda", "dropout", "dropout_forward")
    y, keep = forward(cupy.asarray(x), 0.3, 12345)
    y_again, keep_again = forward(cupy.asarray(x), 0.3, 12345)
    _, keep_other = forward(cupy.asarray(x), 0.3, 12346)
    np.testing.assert_array_equal(cupy.asnumpy(keep), cupy.asnumpy(keep_again))
    np.testing.assert_array_equal(cupy.asnumpy(y), cupy.asnumpy(y_again))
    assert (cupy.asnumpy(keep) != cupy.asnumpy(keep_other)).mean() > 0.2
    assert abs(float(keep.mean()) - 0.7) < 0.02
    cpu_y, cpu_keep = kernels.own_kernel("numba", "dropout", "dropout_forward")(x, 0.3, 12345)
    np.testing.assert_array_equal(cupy.asnumpy(keep), cpu_keep)
    np.testing.assert_array_equal(cupy.asnumpy(y), cpu_y)


@gpu_test
def test_the_device_generator_repeats_per_seed():
    minidl.manual_seed(11)
    first = backend.to_numpy(backend.generator("cuda").random(5))
    minidl.manual_seed(11)
    again = backend.to_numpy(backend.generator("cuda").random(5))
    minidl.manual_seed(12)
    other = backend.to_numpy(backend.generator("cuda").random(5))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


@gpu_test
def test_initial_weights_are_the_same_on_both_devices():
    def initial(device):
        minidl.manual_seed(5)
        with minidl.device(device):
            layer = minidl.nn.Dense(4)
            layer.build((None, 3))
        return layer.kernel.numpy()

    np.testing.assert_array_equal(initial("cuda"), initial("cpu"))


# ------------------------------------------------------------ state across devices
@gpu_test
def test_a_model_trained_on_the_gpu_loads_on_the_cpu(tmp_path):
    io = pytest.importorskip("minidl.io", reason="minidl.io (save/load) is not in this checkout")
    with minidl.device("cuda"):
        model = minidl.Sequential([minidl.nn.Dense(3), minidl.nn.BatchNormalization(), minidl.nn.Dense(1)])
        model.build((None, 4))
        x = minidl.tensor(np.random.default_rng(6).standard_normal((8, 4)).astype(np.float32))
    optimizer = minidl.optim.Adam(model.parameters())
    model.train()
    model(x).sum().backward()
    optimizer.step()
    io.save(tmp_path / "trained.mdl", model, optimizer=optimizer, input_shape=(None, 4))
    with minidl.device("cpu"):
        loaded = io.load(tmp_path / "trained.mdl").model
    assert all(p.device == "cpu" for p in loaded.parameters())
    for name, value in loaded.state_dict().items():
        np.testing.assert_array_equal(value, model.state_dict()[name], err_msg=name)
    model.eval()
    np.testing.assert_allclose(loaded(x.cpu()).numpy(), model(x).numpy(), rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------- the URL models
SMALL = {
    "simple_lstm": dict(max_len=20, emb_dim=8, max_vocab_len=30, lstm_output_size=8),
    "lstm_conv": dict(max_len=20, emb_dim=8, max_vocab_len=30, lstm_output_size=8, filters=16, kernel_size=5, pool_size=4),
    "conv_fully": dict(max_len=20, emb_dim=8, max_vocab_len=30, filters=16, kernel_sizes=(2, 3, 4, 5), hidden_units=(32, 32)),
    "conv_max": dict(max_len=20, emb_dim=8, max_vocab_len=30, filters=16, kernel_sizes=(2, 3, 4, 5)),
}


def train_url_model(name, device, steps=3):
    """Losses, first-step gradients and final weights of `steps` SGD steps (momentum,
    so the optimiser's state lives on the device too) on one generated batch. SGD and
    not Adam: Adam scales every update to about lr, so weights would agree to lr alone."""
    url = pytest.importorskip("minidl.models.url", reason="minidl.models.url is not in this checkout")
    rng = np.random.default_rng(7)
    ids = rng.integers(1, 30, size=(16, 20)).astype(np.int32)
    labels = rng.integers(0, 2, size=(16, 1)).astype(np.float32)
    minidl.manual_seed(0)
    with minidl.device(device):
        model = url.build_model(name, **SMALL[name])
        ids_tensor, labels_tensor = minidl.tensor(ids), minidl.tensor(labels)
    optimizer = minidl.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    losses, first_grads = [], None
    for _ in range(steps):
        model.train()
        model.zero_grad()
        loss = model.regularized(F.binary_cross_entropy(model(ids_tensor), labels_tensor))
        loss.backward()
        if first_grads is None:
            first_grads = {n: backend.to_numpy(p.grad) for n, p in model.named_parameters() if p.grad is not None}
        optimizer.step()
        losses.append(loss.item())
    return np.array(losses), first_grads, model.state_dict()


@gpu_test
@pytest.mark.parametrize("name", list(SMALL))
def test_url_model_training_steps_on_the_gpu_match_the_cpu(name):
    # Dropout stays on: the Numba and CuPy kernels draw the same mask for a seed.
    with kernels.use("numba"):
        cpu_losses, cpu_grads, cpu_state = train_url_model(name, "cpu")
    losses, grads, state = train_url_model(name, "cuda")
    assert_close(losses, cpu_losses, f"{name}: losses", rtol=1e-4, atol=1e-6)
    assert grads.keys() == cpu_grads.keys()
    for parameter, grad in grads.items():
        assert_close(grad, cpu_grads[parameter], f"{name}: first-step gradient of {parameter}", rtol=1e-3, atol=1e-5)
    for key, value in state.items():
        assert_close(value, cpu_state[key], f"{name}: {key} after training", rtol=1e-3, atol=1e-4)


# -------------------------------------------- the table itself, on every machine
def test_the_op_table_covers_every_functional_op():
    public = {name for name in dir(F) if not name.startswith("_") and callable(getattr(F, name))}
    covered = {case.op.__name__ for case in CASES}
    assert public - covered == set(), "ops in minidl.functional with no GPU case in tests/test_gpu.py"
    assert len(CASES_BY_NAME) == len(CASES), "two cases share a name"
    assert set(GRADCHECKED) <= set(CASES_BY_NAME)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_every_op_case_runs_on_the_cpu(case):
    out, grads = run_case(case, "cpu")
    assert np.all(np.isfinite(out)), case.name
    assert any(g is not None for g in grads), f"{case.name}: no input got a gradient"


def test_every_cuda_kernel_has_a_valid_call_in_the_kernel_table():
    calls = kernel_calls(np.float64, np.random.default_rng(2))
    for family, name, args in calls:
        kernels.reference_kernel(family, name)(*args)  # the arguments suit the twin
    # dropout_forward is held to the Numba twin instead: the same stream, unlike the reference's.
    declared = {(family, name) for family, names in kernels.CUDA_KERNELS.items() for name in names}
    assert {(family, name) for family, name, _ in calls} | {("dropout", "dropout_forward")} == declared
