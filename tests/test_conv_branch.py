"""The fused convolution branch, conv1d('same') + bias + ELU + a sum, maximum or average
over windows of time: its Numba kernel against the NumPy twin (both backward strategies
of the maximum, even and odd widths, float32 and float64, on two threads in CI), the op
against the four ops it fuses, float64 gradchecks on both targets, and its errors."""
import numba
import numpy as np
import pytest

import minidl
import minidl.functional as F
from minidl import kernels
from minidl.kernels import own_kernel, reference_kernel
from minidl.kernels.numba_cpu import conv as numba_conv
from minidl.kernels.numba_cpu import threads

pytestmark = pytest.mark.threads  # CI runs this file again on two threads (see conftest.py)

DTYPES = [np.float32, np.float64]
POOLINGS = ["sum", "average", "max"]


def tolerance(dtype):
    return {"rtol": 1e-4, "atol": 1e-4} if dtype == np.float32 else {"rtol": 1e-10, "atol": 1e-10}


def case(rng, dtype, batch=5, steps=9, channels=3, size=4, filters=6):
    x = rng.standard_normal((batch, steps, channels)).astype(dtype)
    kernel = (0.5 * rng.standard_normal((size, channels, filters))).astype(dtype)
    bias = rng.standard_normal(filters).astype(dtype)
    return x, kernel, bias


@pytest.fixture(params=["dense", "sparse"])
def max_backward(request, monkeypatch):
    """Both backward strategies of the maximum: two products per block, or the walk over
    the maxima alone."""
    monkeypatch.setattr(numba_conv, "SPARSE_MAX_WINDOW", 1 if request.param == "sparse" else 10**9)
    return request.param


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of two samples and every call split into parts, so block edges, partial
    last blocks and per-part sums are all exercised on small arrays."""
    monkeypatch.setattr(numba_conv, "BLOCK_ROWS", 18)
    monkeypatch.setattr(threads, "PRODUCT_GRAIN", 1)


def assert_kernels_match(x, kernel, bias, pooling, window, rng):
    dtype, steps, filters = x.dtype, x.shape[1], kernel.shape[2]
    forward = own_kernel("numba", "conv", "conv1d_elu_pool_forward")
    backward = own_kernel("numba", "conv", "conv1d_elu_pool_backward")
    expected = reference_kernel("conv", "conv1d_elu_pool_forward")(x, kernel, bias, 0.7, pooling, window, True)
    got = forward(x, kernel, bias, 0.7, pooling, window, True)
    assert got[0].dtype == dtype and got[0].shape == (x.shape[0], steps // window, filters)
    np.testing.assert_allclose(got[0], expected[0], **tolerance(dtype))
    if pooling == "max":
        np.testing.assert_array_equal(got[1], expected[1])
    else:  # elu'(z), zero past the last complete window
        assert got[1].dtype == dtype and got[1].shape == x.shape[:2] + (filters,)
        np.testing.assert_allclose(got[1], expected[1], **tolerance(dtype))
        assert not got[1][:, (steps // window) * window:].any()
    grad = rng.standard_normal(expected[0].shape).astype(dtype)
    expected_grads = reference_kernel("conv", "conv1d_elu_pool_backward")(
        grad, x, kernel, 0.7, pooling, window, *expected)
    got_grads = backward(grad, x, kernel, 0.7, pooling, window, *got)
    for g, e, name in zip(got_grads, expected_grads, ("x", "kernel", "bias"), strict=True):
        assert g.dtype == dtype and g.shape == e.shape, name
        np.testing.assert_allclose(g, e, **tolerance(dtype), err_msg=name)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pooling", POOLINGS)
@pytest.mark.parametrize("size", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("window", [9, 4, 2])
def test_numba_kernels_match_reference(pooling, size, window, dtype, rng, max_backward, small_blocks):
    assert_kernels_match(*case(rng, dtype, size=size), pooling, window, rng)


@pytest.mark.parametrize("pooling", POOLINGS)
@pytest.mark.parametrize("size", [2, 3])
@pytest.mark.parametrize("window", [9, 2])
def test_one_sample_splits_the_filters(pooling, size, window, rng, small_blocks, monkeypatch):
    """At batch 1 the forward's threads take ranges of filters (three each here, on
    CI's two-thread run)."""
    monkeypatch.setattr(numba_conv, "MIN_FILTERS", 3)
    x, kernel, bias = case(rng, np.float32, batch=1, size=size)
    parts = numba_conv._forward_parts(x, kernel)
    assert parts == (1, min(2, numba.get_num_threads()))
    assert_kernels_match(x, kernel, bias, pooling, window, rng)


@pytest.mark.parametrize("target", ["numpy", "numba"])
@pytest.mark.parametrize("pooling", POOLINGS)
def test_forward_without_save_keeps_nothing(target, pooling, rng):
    x, kernel, bias = case(rng, np.float32)
    name = "conv1d_elu_pool_forward"
    forward = own_kernel("numba", "conv", name) if target == "numba" else reference_kernel("conv", name)
    y, saved = forward(x, kernel, bias, 1.0, pooling, 3, False)
    assert saved is None
    np.testing.assert_array_equal(y, forward(x, kernel, bias, 1.0, pooling, 3, True)[0])


@pytest.mark.parametrize("target", ["numpy", "numba"])
@pytest.mark.parametrize("pooling", POOLINGS)
@pytest.mark.parametrize("pool_size", [None, 3])
@pytest.mark.parametrize("size", [2, 5])
def test_op_equals_the_four_ops_it_fuses(target, pooling, pool_size, size, rng):
    x, kernel, bias = (minidl.tensor(a) for a in case(rng, np.float64, steps=10, size=size))
    composed = F.elu(F.conv1d(x, kernel, bias, padding="same"), 0.5)
    if pool_size is None:
        reduce = {"sum": F.global_sum_pool1d, "max": F.global_max_pool1d, "average": F.global_avg_pool1d}[pooling]
        expected = reduce(composed)
    else:
        reduce = {"sum": F.sum_pool1d, "max": F.max_pool1d, "average": F.avg_pool1d}[pooling]
        expected = reduce(composed, pool_size)
    with kernels.use(target):
        got = F.conv1d_elu_pool(x, kernel, bias, pooling=pooling, pool_size=pool_size, alpha=0.5)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("target", ["numpy", "numba"])
@pytest.mark.parametrize("pooling", POOLINGS)
@pytest.mark.parametrize("pool_size", [None, 3])
def test_op_gradcheck(target, pooling, pool_size, rng):
    # Random normal inputs: no ties for the maximum (ELU with alpha 1 is smooth at 0).
    x, kernel, bias = case(rng, np.float64, batch=2, steps=7, size=3, filters=3)
    tensors = [minidl.tensor(a, requires_grad=True) for a in (x, kernel, bias)]
    with kernels.use(target):
        assert minidl.gradcheck(lambda x, k, b: F.conv1d_elu_pool(x, k, b, pooling=pooling, pool_size=pool_size),
                                tensors)


def test_op_under_no_grad_keeps_nothing_and_gives_the_same_values(rng):
    x, kernel, bias = (minidl.tensor(a, requires_grad=True) for a in case(rng, np.float32))
    with_graph = F.conv1d_elu_pool(x, kernel, bias, pooling="max")
    assert with_graph._node is not None and with_graph._node.name == "ConvELUPool1D"
    with minidl.no_grad():
        plain = F.conv1d_elu_pool(x, kernel, bias, pooling="max")
    assert plain._node is None and not plain.requires_grad
    np.testing.assert_array_equal(plain.numpy(), with_graph.numpy())


def test_op_names_what_is_wrong(rng):
    x, kernel, bias = case(rng, np.float32)
    with pytest.raises(ValueError, match=r"conv1d_elu_pool: input must be \(batch, length, channels\)"):
        F.conv1d_elu_pool(x[0], kernel, bias)
    with pytest.raises(ValueError, match="conv1d_elu_pool: input has 3 channels, kernel expects 2"):
        F.conv1d_elu_pool(x, kernel[:, :2], bias)
    with pytest.raises(ValueError, match=r"conv1d_elu_pool: bias must have shape \(6,\) for 6 filters"):
        F.conv1d_elu_pool(x, kernel, bias[:2])
    with pytest.raises(ValueError, match="conv1d_elu_pool: pooling must be one of sum, max, average, got 'min'"):
        F.conv1d_elu_pool(x, kernel, bias, pooling="min")
    with pytest.raises(ValueError, match="the pool of size 10 is longer than the input length 9"):
        F.conv1d_elu_pool(x, kernel, bias, pool_size=10)
    with pytest.raises(TypeError, match="must share one dtype"):
        F.conv1d_elu_pool(x.astype(np.float64), kernel, bias)


@pytest.mark.parametrize("arch", ["conv_fully", "conv_max", "lstm_conv"])
def test_url_models_run_their_branches_fused_with_the_layers_values_and_gradients(arch, rng):
    """The fused op in a model's training step gives what its layers give one by one
    (minidl.nn.fusion.layer_by_layer), dropout draws included."""
    from minidl.models.url import build_model
    from minidl.nn.fusion import layer_by_layer

    minidl.set_default_dtype(np.float64)
    try:
        minidl.manual_seed(3)
        model = build_model(arch, max_len=12, filters=4, **({"hidden_units": (5,)} if arch == "conv_fully" else {}))
        ids = rng.integers(1, 100, size=(3, 12)).astype(np.int32)

        def step(fused):
            minidl.manual_seed(7)
            model.zero_grad()
            if fused:
                out = model(ids)
            else:
                with layer_by_layer():
                    out = model(ids)
            out.sum().backward()
            return out.numpy(), [p.grad.copy() for p in model.parameters()]

        fused_out, fused_grads = step(True)
        plain_out, plain_grads = step(False)
    finally:
        minidl.set_default_dtype(np.float32)
    np.testing.assert_allclose(fused_out, plain_out, rtol=1e-10, atol=1e-12)
    for fused, plain in zip(fused_grads, plain_grads, strict=True):
        np.testing.assert_allclose(fused, plain, rtol=1e-9, atol=1e-12)
