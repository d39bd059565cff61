"""conv1d / conv2d against a plain loop written here, gradchecked with bias over strides,
paddings (even and odd kernels) and dilations on both kernel targets; their error
messages; and the Conv1D / Conv2D layers (shapes, Keras parameter counts, gradients)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minidl
import minidl.ops.conv as C
from minidl import kernels
from minidl.autograd import gradcheck
from minidl.nn.conv import Conv1D, Conv2D
from minidl.nn.module import layer_from_config, serialize

TARGETS = ["numpy", "numba"]


def same_pads(size, window, stride, dilation):
    """TensorFlow's 'same': out = ceil(size / stride), the odd padding element at the end."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (window - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def loop_conv(x, kernel, stride, padding, dilation):
    """The convolution one output element at a time, over any number of spatial axes."""
    spatial = x.ndim - 2
    window = kernel.shape[:spatial]
    pads = [same_pads(x.shape[1 + a], window[a], stride[a], dilation[a]) if padding == "same" else (0, 0)
            for a in range(spatial)]
    x_pad = np.pad(x, [(0, 0)] + pads + [(0, 0)])
    out_shape = tuple((x_pad.shape[1 + a] - (window[a] - 1) * dilation[a] - 1) // stride[a] + 1 for a in range(spatial))
    y = np.zeros((x.shape[0],) + out_shape + (kernel.shape[-1],))
    for n in range(x.shape[0]):
        for out in np.ndindex(*out_shape):
            for tap in np.ndindex(*window):
                at = tuple(o * s + t * d for o, s, t, d in zip(out, stride, tap, dilation))
                y[(n,) + out] += x_pad[(n,) + at] @ kernel[tap]
    return y


def t64(array, requires_grad=True):
    return minidl.tensor(np.asarray(array, dtype=np.float64), requires_grad=requires_grad)


# length, kernel size, stride, padding, dilation
CONV1D = [
    (7, 3, 1, "valid", 1),
    (7, 3, 2, "same", 1),
    (8, 2, 1, "same", 1),
    (8, 4, 3, "same", 1),
    (9, 3, 1, "same", 2),
    (9, 2, 2, "valid", 3),
    (5, 1, 1, "valid", 1),
    (4, 6, 1, "same", 1),
]
# (h, w), (kh, kw), stride, padding, dilation
CONV2D = [
    ((5, 6), (2, 3), (1, 2), "same", (1, 1)),
    ((6, 5), (3, 3), (2, 2), "valid", (1, 1)),
    ((6, 6), (3, 2), (1, 1), "same", (2, 1)),
    ((4, 5), (2, 2), (2, 1), "same", (1, 2)),
]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("length, k, stride, padding, dilation", CONV1D)
def test_conv1d_matches_loop_and_gradchecks(length, k, stride, padding, dilation, target, rng):
    x, kernel, bias = rng.standard_normal((2, length, 3)), rng.standard_normal((k, 3, 2)), rng.standard_normal(2)
    expected = loop_conv(x, kernel, (stride,), padding, (dilation,)) + bias
    with kernels.use(target):
        def conv(x, kernel, bias):
            return C.conv1d(x, kernel, bias, stride=stride, padding=padding, dilation=dilation)

        out = conv(t64(x, False), t64(kernel, False), t64(bias, False))
        np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-12)
        assert gradcheck(conv, [t64(x), t64(kernel), t64(bias)])


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("size, window, stride, padding, dilation", CONV2D)
def test_conv2d_matches_loop_and_gradchecks(size, window, stride, padding, dilation, target, rng):
    x, kernel, bias = rng.standard_normal((2,) + size + (2,)), rng.standard_normal(window + (2, 3)), rng.standard_normal(3)
    expected = loop_conv(x, kernel, stride, padding, dilation) + bias
    with kernels.use(target):
        def conv(x, kernel, bias):
            return C.conv2d(x, kernel, bias, stride=stride, padding=padding, dilation=dilation)

        out = conv(t64(x, False), t64(kernel, False), t64(bias, False))
        np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-12)
        assert gradcheck(conv, [t64(x), t64(kernel), t64(bias)])


def test_conv_without_bias_and_int_geometry_for_conv2d(rng):
    x, kernel = rng.standard_normal((1, 5, 5, 2)), rng.standard_normal((3, 3, 2, 2))
    out = C.conv2d(t64(x, False), t64(kernel, False), stride=2, padding="same", dilation=1)
    np.testing.assert_allclose(out.data, loop_conv(x, kernel, (2, 2), "same", (1, 1)), rtol=1e-12)
    assert gradcheck(lambda x, k: C.conv2d(x, k, stride=2, padding="same"), [t64(x), t64(kernel)])


def test_same_padding_puts_the_odd_element_at_the_end():
    # kernel [1, 1] with 'same': y[i] = x[i] + x[i + 1], and the last output sees x[3] only
    x = t64(np.arange(1.0, 5.0).reshape(1, 4, 1), False)
    out = C.conv1d(x, t64(np.ones((2, 1, 1)), False), padding="same")
    np.testing.assert_array_equal(out.data.ravel(), [3.0, 5.0, 7.0, 4.0])


def test_float32_stays_float32(rng):
    x = minidl.tensor(rng.standard_normal((2, 6, 3)).astype(np.float32))
    kernel = minidl.tensor(rng.standard_normal((3, 3, 4)).astype(np.float32), requires_grad=True)
    out = C.conv1d(x, kernel, padding="same")
    out.sum().backward()
    assert out.dtype == np.float32 and kernel.grad.dtype == np.float32


@settings(max_examples=15, deadline=None)
@given(batch=st.integers(1, 3), length=st.integers(1, 10), c_in=st.integers(1, 3), c_out=st.integers(1, 3),
       k=st.integers(1, 4), stride=st.integers(1, 3), dilation=st.integers(1, 2),
       padding=st.sampled_from(["valid", "same"]), seed=st.integers(0, 2**16))
def test_conv1d_any_shape_matches_loop(batch, length, c_in, c_out, k, stride, dilation, padding, seed):
    rng = np.random.default_rng(seed)
    x, kernel = rng.standard_normal((batch, length, c_in)), rng.standard_normal((k, c_in, c_out))
    if padding == "valid" and (k - 1) * dilation + 1 > length:
        with pytest.raises(ValueError, match="is larger than the input length"):
            C.conv1d(x, kernel, stride=stride, padding=padding, dilation=dilation)
        return
    out = C.conv1d(t64(x, False), t64(kernel, False), stride=stride, padding=padding, dilation=dilation)
    expected = loop_conv(x, kernel, (stride,), padding, (dilation,))
    assert out.shape == expected.shape
    np.testing.assert_allclose(out.data, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("call, error, message", [
    (lambda: C.conv1d(np.ones((2, 5, 16)), np.ones((3, 32, 4))), ValueError,
     "conv1d: input has 16 channels, kernel expects 32"),
    (lambda: C.conv1d(np.ones((5, 16)), np.ones((3, 16, 4))), ValueError,
     r"conv1d: input must be \(batch, length, channels\), got shape \(5, 16\)"),
    (lambda: C.conv1d(np.ones((2, 5, 16)), np.ones((16, 4))), ValueError,
     r"conv1d: kernel must be \(kernel_length, in_channels, filters\)"),
    (lambda: C.conv2d(np.ones((2, 5, 16)), np.ones((3, 3, 16, 4))), ValueError,
     r"conv2d: input must be \(batch, height, width, channels\)"),
    (lambda: C.conv1d(np.ones((2, 3, 1)), np.ones((5, 1, 1))), ValueError,
     "conv1d: the kernel of size 5 is larger than the input length 3 with padding 'valid'"),
    (lambda: C.conv1d(np.ones((2, 4, 1)), np.ones((3, 1, 1)), dilation=2), ValueError,
     r"kernel of size 3 \(spanning 5 with dilation 2\) is larger than the input length 4"),
    (lambda: C.conv2d(np.ones((1, 5, 2, 1)), np.ones((2, 3, 1, 1))), ValueError,
     "conv2d: the kernel of size 3 is larger than the input width 2"),
    (lambda: C.conv1d(np.ones((2, 5, 1)), np.ones((3, 1, 1)), padding="full"), ValueError,
     "conv1d: padding must be 'valid' or 'same', got 'full'"),
    (lambda: C.conv1d(np.ones((2, 5, 1)), np.ones((3, 1, 1)), stride=0), ValueError,
     "conv1d: stride must be a positive int, got 0"),
    (lambda: C.conv2d(np.ones((1, 5, 5, 1)), np.ones((3, 3, 1, 1)), dilation=(1, 2, 3)), ValueError,
     r"conv2d: dilation must be a positive int or 2 of them, got \(1, 2, 3\)"),
    (lambda: C.conv1d(np.ones((2, 5, 1)), np.ones((3, 1, 4)), bias=np.ones(3)), ValueError,
     r"conv1d: bias must have shape \(4,\) for 4 filters, got \(3,\)"),
    (lambda: C.conv1d(np.ones((2, 5, 1), np.float32), np.ones((3, 1, 4))), TypeError,
     "conv1d: input is float32 but kernel is float64"),
])
def test_conv_errors_speak_the_users_language(call, error, message):
    with pytest.raises(error, match=message):
        call()


# ------------------------------------------------------------------------ layers
@pytest.fixture
def float64():
    minidl.set_default_dtype(np.float64)
    yield
    minidl.set_default_dtype(np.float32)


def test_conv1d_layer_matches_keras_shapes_and_parameter_count(rng):
    layer = Conv1D(256, 3)
    out = layer(minidl.tensor(rng.standard_normal((2, 10, 32)).astype(np.float32)))
    assert out.shape == (2, 8, 256) and layer.compute_output_shape((None, 10, 32)) == (None, 8, 256)
    assert [name for name, _ in layer.named_parameters()] == ["kernel", "bias"]
    assert layer.kernel.shape == (3, 32, 256) and layer.count_params() == 3 * 32 * 256 + 256
    limit = np.sqrt(6 / (3 * 32 + 3 * 256))  # Keras' glorot fans include the receptive field
    assert np.abs(layer.kernel.data).max() <= limit and np.all(layer.bias.data == 0)


@pytest.mark.parametrize("layer, input_shape, output_shape, params", [
    (lambda: Conv1D(4, 2, padding="same", strides=2), (None, 7, 3), (None, 4, 4), 2 * 3 * 4 + 4),
    (lambda: Conv1D(4, 3, dilation_rate=2, use_bias=False), (None, 9, 3), (None, 5, 4), 3 * 3 * 4),
    (lambda: Conv1D(2, 3), (None, None, 3), (None, None, 2), 3 * 3 * 2 + 2),
    (lambda: Conv2D(8, (3, 2)), (None, 6, 5, 3), (None, 4, 4, 8), 3 * 2 * 3 * 8 + 8),
    (lambda: Conv2D(2, 3, strides=(2, 1), padding="same"), (None, 5, 4, 1), (None, 3, 4, 2), 9 * 2 + 2),
])
def test_conv_layer_shapes(layer, input_shape, output_shape, params, rng):
    layer = layer()
    assert layer.compute_output_shape(input_shape) == output_shape
    concrete = tuple(5 if n is None else n for n in input_shape)
    out = layer(minidl.tensor(rng.standard_normal((2,) + concrete[1:]).astype(np.float32)))
    expected = layer.compute_output_shape((2,) + concrete[1:])
    assert out.shape == expected and layer.count_params() == params


@pytest.mark.parametrize("layer, shape", [
    (lambda: Conv1D(2, 3, padding="same", activation="tanh"), (2, 5, 3)),
    (lambda: Conv1D(2, 2, strides=2, dilation_rate=1), (2, 6, 2)),
    (lambda: Conv2D(2, (2, 3), padding="same", activation="tanh"), (2, 4, 4, 2)),
])
def test_conv_layer_gradcheck(layer, shape, rng, float64):
    layer = layer()
    x = t64(rng.standard_normal(shape))
    layer.build(shape)
    layer.bias.data = rng.standard_normal(layer.bias.shape)  # a zero bias would hide a wrong bias gradient
    assert gradcheck(lambda x, *params: layer(x), [x] + layer.parameters())


def test_conv_layer_config_round_trip():
    layer = Conv2D(4, (3, 2), strides=2, padding="same", dilation_rate=(1, 2), activation="relu",
                      use_bias=False, kernel_initializer="he_uniform", kernel_regularizer=1e-4)
    rebuilt = layer_from_config(serialize(layer))
    assert type(rebuilt) is Conv2D and rebuilt.get_config() == layer.get_config()
    assert layer.get_config()["kernel_size"] == (3, 2) and layer.get_config()["strides"] == (2, 2)


def test_conv_layer_errors(rng):
    with pytest.raises(ValueError, match="Conv1D: filters must be a positive int, got 0"):
        Conv1D(0, 3)
    with pytest.raises(ValueError, match="Conv1D: padding must be 'valid' or 'same', got 'causal'"):
        Conv1D(2, 3, padding="causal")
    with pytest.raises(ValueError, match=r"input must be \(batch, height, width, channels\)"):
        Conv2D(2, 3)(minidl.tensor(np.ones((2, 5, 3), np.float32)))
    layer = Conv1D(2, 3)
    layer(minidl.tensor(np.ones((1, 5, 3), np.float32)))
    with pytest.raises(ValueError, match="conv1d: input has 4 channels, kernel expects 3"):
        layer(minidl.tensor(np.ones((1, 5, 4), np.float32)))
