"""Max, average and sum pooling (1D, 2D, global) against a plain loop written here,
gradchecked over strides and paddings on both kernel targets; ties go to the first
maximum; error messages; and the pooling layers."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minidl
import minidl.ops.pool as P
from minidl import kernels
from minidl.autograd import gradcheck
from minidl.nn import pool as layers
from minidl.nn.module import layer_from_config, serialize

TARGETS = ["numpy", "numba"]


def loop_pool(x, reduce, pool, stride, padding):
    """Each window's real elements gathered one by one (padding is never an element),
    then reduced: np.max, np.sum or np.mean. Works for any number of spatial axes."""
    spatial = x.ndim - 2
    sizes = x.shape[1:-1]
    if padding == "same":
        outs = [-(-n // s) for n, s in zip(sizes, stride)]
        before = [max((o - 1) * s + p - n, 0) // 2 for o, s, p, n in zip(outs, stride, pool, sizes)]
    else:
        outs = [(n - p) // s + 1 for n, p, s in zip(sizes, pool, stride)]
        before = [0] * spatial
    y = np.zeros((x.shape[0],) + tuple(outs) + (x.shape[-1],))
    for out in np.ndindex(*outs):
        starts = [o * s - b for o, s, b in zip(out, stride, before)]
        ranges = tuple(slice(max(start, 0), min(start + p, n)) for start, p, n in zip(starts, pool, sizes))
        window = x[(slice(None),) + ranges].reshape(x.shape[0], -1, x.shape[-1])
        y[(slice(None),) + out] = reduce(window, axis=1)
    return y


def t64(array, requires_grad=True):
    return minidl.tensor(np.asarray(array, dtype=np.float64), requires_grad=requires_grad)


def distinct(rng, shape):
    """Values at least 0.05 apart, so no window has a tie and finite differences never
    swap a maximum."""
    return rng.permutation(np.arange(np.prod(shape))).reshape(shape) * 0.05 - 1.0


OPS_1D = {"max": (P.max_pool1d, np.max), "avg": (P.avg_pool1d, np.mean), "sum": (P.sum_pool1d, np.sum)}
OPS_2D = {"max": (P.max_pool2d, np.max), "avg": (P.avg_pool2d, np.mean), "sum": (P.sum_pool2d, np.sum)}
# length, pool_size, strides, padding
POOL1D = [(8, 2, None, "valid"), (7, 3, 2, "same"), (8, 2, 1, "same"), (7, 4, 3, "same"), (9, 3, 2, "valid")]
# (h, w), pool_size, strides, padding
POOL2D = [((4, 6), 2, None, "valid"), ((5, 6), (2, 3), (2, 2), "same"), ((5, 5), 3, 1, "same"), ((6, 4), (3, 2), (2, 1), "valid")]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("kind", list(OPS_1D))
@pytest.mark.parametrize("length, pool_size, strides, padding", POOL1D)
def test_pool1d_matches_loop_and_gradchecks(length, pool_size, strides, padding, kind, target, rng):
    op, reduce = OPS_1D[kind]
    x = distinct(rng, (2, length, 3))
    stride = pool_size if strides is None else strides
    expected = loop_pool(x, reduce, (pool_size,), (stride,), padding)
    with kernels.use(target):
        out = op(t64(x, False), pool_size, strides, padding)
        np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-12)
        assert gradcheck(lambda x: op(x, pool_size, strides, padding), [t64(x)])


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("kind", list(OPS_2D))
@pytest.mark.parametrize("size, pool_size, strides, padding", POOL2D)
def test_pool2d_matches_loop_and_gradchecks(size, pool_size, strides, padding, kind, target, rng):
    op, reduce = OPS_2D[kind]
    x = distinct(rng, (2,) + size + (2,))
    pool = (pool_size, pool_size) if isinstance(pool_size, int) else pool_size
    stride = pool if strides is None else ((strides, strides) if isinstance(strides, int) else strides)
    expected = loop_pool(x, reduce, pool, stride, padding)
    with kernels.use(target):
        out = op(t64(x, False), pool_size, strides, padding)
        np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-12)
        assert gradcheck(lambda x: op(x, pool_size, strides, padding), [t64(x)])


# Global max pooling is one max-pooling window (the pool kernels); global sum and average
# pooling are the sum and mean reductions, with no kernel target to vary.
GLOBAL_MAX = [(P.global_max_pool1d, (2, 5, 3), (1,)), (P.global_max_pool2d, (2, 3, 4, 2), (1, 2))]
GLOBAL_REDUCTIONS = [
    (P.global_avg_pool1d, (2, 5, 3), (1,), np.mean),
    (P.global_sum_pool1d, (2, 5, 3), (1,), np.sum),
    (P.global_avg_pool2d, (2, 3, 4, 2), (1, 2), np.mean),
    (P.global_sum_pool2d, (2, 3, 4, 2), (1, 2), np.sum),
]


def assert_global_pooling(op, shape, axes, reduce, rng):
    x = distinct(rng, shape)
    np.testing.assert_allclose(op(t64(x, False)).data, reduce(x, axis=axes), rtol=1e-12)
    assert gradcheck(op, [t64(x)])


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("op, shape, axes", GLOBAL_MAX)
def test_global_max_pooling(op, shape, axes, target, rng):
    with kernels.use(target):
        assert_global_pooling(op, shape, axes, np.max, rng)


@pytest.mark.parametrize("op, shape, axes, reduce", GLOBAL_REDUCTIONS)
def test_global_sum_and_average_pooling(op, shape, axes, reduce, rng):
    assert_global_pooling(op, shape, axes, reduce, rng)


@pytest.mark.parametrize("target", TARGETS)
def test_max_pool_gradient_goes_to_the_first_maximum(target):
    x = t64([[[1.0], [3.0], [3.0], [2.0], [2.0], [0.0]]])
    with kernels.use(target):
        P.max_pool1d(x, 3, 1, "same").sum().backward()
        # windows over positions -1..1, 0..2, 1..3, 2..4, 3..5, 4..6 win at 1, 1, 1, 2, 3, 4
        np.testing.assert_array_equal(x.grad.ravel(), [0, 3, 1, 1, 1, 0])
        x.grad = None
        P.global_max_pool1d(x).sum().backward()
        np.testing.assert_array_equal(x.grad.ravel(), [0, 1, 0, 0, 0, 0])


def test_average_pooling_does_not_count_the_padding():
    x = t64(np.arange(1.0, 6.0).reshape(1, 5, 1), False)
    # 'same' with pool 2 pads one zero at the end: the last window holds x[4] alone
    np.testing.assert_allclose(P.avg_pool1d(x, 2, 1, "same").data.ravel(), [1.5, 2.5, 3.5, 4.5, 5.0])
    np.testing.assert_allclose(P.sum_pool1d(x, 2, 1, "same").data.ravel(), [3, 5, 7, 9, 5])


def test_float32_stays_float32(rng):
    x = minidl.tensor(rng.standard_normal((2, 6, 3)).astype(np.float32), requires_grad=True)
    for op in (P.max_pool1d, P.avg_pool1d, P.global_max_pool1d):
        out = op(x)
        x.grad = None
        out.sum().backward()
        assert out.dtype == np.float32 and x.grad.dtype == np.float32


@settings(max_examples=15, deadline=None)
@given(batch=st.integers(1, 3), length=st.integers(1, 10), channels=st.integers(1, 3), pool=st.integers(1, 4),
       strides=st.one_of(st.none(), st.integers(1, 3)), padding=st.sampled_from(["valid", "same"]),
       seed=st.integers(0, 2**16))
def test_max_pool1d_any_shape(batch, length, channels, pool, strides, padding, seed):
    x = distinct(np.random.default_rng(seed), (batch, length, channels))
    if padding == "valid" and pool > length:
        with pytest.raises(ValueError, match="is larger than the input length"):
            P.max_pool1d(x, pool, strides, padding)
        return
    x = t64(x)
    out = P.max_pool1d(x, pool, strides, padding)
    stride = pool if strides is None else strides
    np.testing.assert_array_equal(out.data, loop_pool(x.data, np.max, (pool,), (stride,), padding))
    out.sum().backward()
    # each window hands its whole gradient to exactly one input element
    assert x.grad.sum() == out.size and set(np.unique(x.grad)) <= set(range(pool + 1))


@pytest.mark.parametrize("call, message", [
    (lambda: P.max_pool1d(np.ones((2, 5)), 2), r"max_pool1d: input must be \(batch, length, channels\), got shape \(2, 5\)"),
    (lambda: P.avg_pool2d(np.ones((2, 5, 3)), 2), r"avg_pool2d: input must be \(batch, height, width, channels\)"),
    (lambda: P.max_pool1d(np.ones((2, 3, 1)), 4), "max_pool1d: the pool of size 4 is larger than the input length 3 with padding 'valid'"),
    (lambda: P.sum_pool2d(np.ones((1, 4, 2, 1)), (2, 3)), "sum_pool2d: the pool of size 3 is larger than the input width 2"),
    (lambda: P.max_pool1d(np.ones((2, 5, 1)), 2, padding="causal"), "max_pool1d: padding must be 'valid' or 'same', got 'causal'"),
    (lambda: P.max_pool1d(np.ones((2, 5, 1)), 0), "max_pool1d: pool_size must be a positive int, got 0"),
    (lambda: P.avg_pool2d(np.ones((1, 4, 4, 1)), 2, strides=(1, 0)), r"avg_pool2d: strides must be a positive int or 2 of them, got \(1, 0\)"),
    (lambda: P.global_max_pool2d(np.ones((2, 5, 1))), r"global_max_pool2d: input must be \(batch, height, width, channels\)"),
    (lambda: P.global_avg_pool1d(np.ones((2, 5))), r"global_avg_pool1d: input must be \(batch, length, channels\)"),
])
def test_pool_errors_speak_the_users_language(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# ------------------------------------------------------------------------ layers
@pytest.fixture
def float64():
    minidl.set_default_dtype(np.float64)
    yield
    minidl.set_default_dtype(np.float32)


LAYERS = [
    (lambda: layers.MaxPooling1D(), (None, 7, 3), (None, 3, 3)),
    (lambda: layers.MaxPooling1D(3, strides=1, padding="same"), (None, 7, 3), (None, 7, 3)),
    (lambda: layers.AveragePooling1D(2, padding="same"), (None, 7, 3), (None, 4, 3)),
    (lambda: layers.SumPooling1D(3, strides=2), (None, 7, 3), (None, 3, 3)),
    (lambda: layers.MaxPooling2D(), (None, 5, 4, 2), (None, 2, 2, 2)),
    (lambda: layers.AveragePooling2D((2, 3), padding="same"), (None, 5, 4, 2), (None, 3, 2, 2)),
    (lambda: layers.SumPooling2D(2, strides=1), (None, 5, 4, 2), (None, 4, 3, 2)),
    (lambda: layers.GlobalMaxPooling1D(), (None, 7, 3), (None, 3)),
    (lambda: layers.GlobalAveragePooling1D(), (None, 7, 3), (None, 3)),
    (lambda: layers.GlobalSumPooling1D(), (None, 7, 3), (None, 3)),
    (lambda: layers.GlobalMaxPooling2D(), (None, 5, 4, 2), (None, 2)),
    (lambda: layers.GlobalAveragePooling2D(), (None, 5, 4, 2), (None, 2)),
    (lambda: layers.GlobalSumPooling2D(), (None, 5, 4, 2), (None, 2)),
]


@pytest.mark.parametrize("make, input_shape, output_shape", LAYERS)
def test_pooling_layers(make, input_shape, output_shape, rng, float64):
    layer = make()
    assert layer.compute_output_shape(input_shape) == output_shape
    x = t64(distinct(rng, (2,) + input_shape[1:]))
    assert layer(x).shape == (2,) + output_shape[1:] and layer.count_params() == 0
    assert gradcheck(lambda x: layer(x), [x])
    rebuilt = layer_from_config(serialize(layer))
    assert type(rebuilt) is type(layer) and rebuilt.get_config() == layer.get_config()


def test_pooling_layer_config_and_errors():
    layer = layers.MaxPooling1D(3, name="pool")
    assert layer.get_config() == {"name": "pool", "pool_size": (3,), "strides": (3,), "padding": "valid"}
    assert layers.AveragePooling2D((2, 3), strides=1).get_config()["strides"] == (1, 1)
    with pytest.raises(ValueError, match="MaxPooling2D: pool_size must be a positive int or 2 of them"):
        layers.MaxPooling2D((2, 2, 2))
    with pytest.raises(ValueError, match="AveragePooling1D: padding must be 'valid' or 'same', got 'full'"):
        layers.AveragePooling1D(padding="full")
