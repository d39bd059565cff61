"""One table of ops x shapes, gradchecked in float64, with forward values against plain
NumPy; then stability, modes and error messages of each family."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minidl
import minidl.functional as F
from minidl.autograd import gradcheck


def t64(array, requires_grad=True):
    return minidl.tensor(np.asarray(array, dtype=np.float64), requires_grad=requires_grad)


def away_from_zero(rng, shape, gap=0.1):
    x = rng.standard_normal(shape)
    return np.where(np.abs(x) < gap, np.sign(x + 1e-12) * gap + x, x)


def positive(rng, shape):
    return rng.uniform(0.5, 2.0, size=shape)


def _softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


# name, op on tensors, the same on NumPy arrays, input makers
UNARY = [
    ("neg", lambda a: -a, lambda a: -a, None),
    ("exp", F.exp, np.exp, None),
    ("log", F.log, np.log, positive),
    ("sqrt", F.sqrt, np.sqrt, positive),
    ("pow3", lambda a: a**3, lambda a: a**3, None),
    ("abs", F.abs, np.abs, away_from_zero),
    ("relu", F.relu, lambda a: np.maximum(a, 0), away_from_zero),
    ("elu", lambda a: F.elu(a, 0.7), lambda a: np.where(a > 0, a, 0.7 * np.expm1(a)), away_from_zero),
    ("leaky_relu", F.leaky_relu, lambda a: np.where(a > 0, a, 0.2 * a), away_from_zero),
    ("sigmoid", F.sigmoid, lambda a: 1 / (1 + np.exp(-a)), None),
    ("tanh", F.tanh, np.tanh, None),
    ("softmax", F.softmax, _softmax, None),
    ("softmax_axis0", lambda a: F.softmax(a, axis=0), lambda a: _softmax(a, 0), None),
    ("log_softmax", F.log_softmax, lambda a: np.log(_softmax(a)), None),
    ("sum", lambda a: a.sum(), lambda a: a.sum(), None),
    ("sum_axis", lambda a: a.sum(axis=-1, keepdims=True), lambda a: a.sum(-1, keepdims=True), None),
    ("mean_axis0", lambda a: a.mean(axis=0), lambda a: a.mean(0), None),
    ("max", lambda a: a.max(), lambda a: a.max(), None),
    ("max_axis", lambda a: a.max(axis=-1), lambda a: a.max(-1), None),
    ("logsumexp", F.logsumexp, lambda a: np.log(np.exp(a).sum(-1)), None),
    ("reshape", lambda a: a.reshape(-1), lambda a: a.reshape(-1), None),
    ("transpose", lambda a: a.transpose(), lambda a: a.T, None),
    ("slice", lambda a: a[..., 1:], lambda a: a[..., 1:], None),
    ("fancy_index", lambda a: a[np.array([0, 0, 1])], lambda a: a[np.array([0, 0, 1])], None),
    ("flatten", F.flatten, lambda a: a.reshape(a.shape[0], -1), None),
]
SHAPES = [(2, 3), (3, 2, 2)]


@pytest.mark.parametrize("name,op,reference,maker", UNARY, ids=[u[0] for u in UNARY])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_unary_ops(name, op, reference, maker, shape, rng):
    data = maker(rng, shape) if maker else rng.standard_normal(shape)
    x = t64(data)
    np.testing.assert_allclose(op(x).data, reference(data), rtol=1e-10, atol=1e-12)
    assert gradcheck(op, [x])


BINARY = [
    ("add", lambda a, b: a + b),
    ("sub", lambda a, b: a - b),
    ("mul", lambda a, b: a * b),
    ("div", lambda a, b: a / b),
    ("pow", lambda a, b: a**b),
    ("maximum", F.maximum),
]


@pytest.mark.parametrize("name,op", BINARY, ids=[b[0] for b in BINARY])
@pytest.mark.parametrize("shape_a,shape_b", [((2, 3), (2, 3)), ((2, 3), (3,)), ((4, 1, 3), (2, 1))], ids=str)
def test_binary_ops_with_broadcasting(name, op, shape_a, shape_b, rng):
    a = t64(positive(rng, shape_a))
    b = t64(positive(rng, shape_b) + (0.05 if name == "maximum" else 0))
    assert gradcheck(op, [a, b])


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(1, 4), min_size=1, max_size=3), st.sampled_from(["add", "mul", "exp", "sum", "mean", "max"]))
def test_elementwise_and_reductions_on_random_shapes(shape, name):
    rng = np.random.default_rng(len(shape))
    x = t64(rng.standard_normal(shape))
    y = t64(rng.standard_normal(shape[-1:]))
    ops = {
        "add": lambda a: a + y,
        "mul": lambda a: a * y,
        "exp": F.exp,
        "sum": lambda a: a.sum(axis=0),
        "mean": lambda a: a.mean(axis=-1, keepdims=True),
        "max": lambda a: a.max(axis=0),
    }
    assert gradcheck(ops[name], [x])


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 4), st.integers(1, 4), st.integers(1, 4), st.booleans())
def test_matmul_on_random_shapes(n, k, m, batched):
    rng = np.random.default_rng(n * 100 + k * 10 + m)
    a = t64(rng.standard_normal((2, n, k) if batched else (n, k)))
    b = t64(rng.standard_normal((k, m)))
    np.testing.assert_allclose((a @ b).data, a.data @ b.data)
    assert gradcheck(F.matmul, [a, b])


@pytest.mark.parametrize("shape_a,shape_b", [((3,), (3, 2)), ((2, 3), (3,)), ((3,), (3,)), ((2, 2, 3), (2, 3, 4))], ids=str)
def test_matmul_vectors_and_batches(shape_a, shape_b, rng):
    assert gradcheck(F.matmul, [t64(rng.standard_normal(shape_a)), t64(rng.standard_normal(shape_b))])


def test_matmul_shape_error_names_both_shapes():
    with pytest.raises(ValueError, match=r"matmul: shapes \(2, 3\) and \(4, 5\) do not fit"):
        minidl.tensor(np.ones((2, 3))) @ minidl.tensor(np.ones((4, 5)))


def test_linear_matches_numpy(rng):
    x, w, b = t64(rng.standard_normal((4, 3))), t64(rng.standard_normal((3, 2))), t64(rng.standard_normal(2))
    np.testing.assert_allclose(F.linear(x, w, b).data, x.data @ w.data + b.data)
    assert gradcheck(F.linear, [x, w, b])


def test_concatenate_and_stack(rng):
    a, b = t64(rng.standard_normal((2, 3))), t64(rng.standard_normal((2, 1)))
    assert F.concatenate([a, b], axis=1).shape == (2, 4)
    assert gradcheck(lambda a, b: F.concatenate([a, b, a], axis=-1), [a, b])
    assert gradcheck(lambda a: F.stack([a, a * 2], axis=1), [a])
    with pytest.raises(ValueError, match="differ outside axis"):
        F.concatenate([a, b], axis=0)


def test_cast_passes_the_gradient_back_in_the_inputs_dtype(rng):
    # Through float32 and back, on values and a step float32 holds exactly (sixteenths,
    # 1/64), so the finite differences see no rounding.
    x = t64(rng.integers(-64, 64, (3, 4)) / 16)
    assert gradcheck(lambda a: F.cast(F.cast(a, np.float32) * 3.0, np.float64) * a, [x], eps=1 / 64)
    single = minidl.tensor(rng.standard_normal((3, 4)).astype(np.float32), requires_grad=True)
    weight = rng.standard_normal((3, 4))
    (F.cast(single, np.float64) * weight).sum().backward()
    assert single.grad.dtype == np.float32
    np.testing.assert_allclose(single.grad, weight.astype(np.float32))
    assert not F.cast(single, np.int32).requires_grad  # integers are constants


def test_max_shares_gradient_between_ties():
    x = t64([[1.0, 3.0, 3.0]])
    x.max().backward()
    np.testing.assert_allclose(x.grad, [[0, 0.5, 0.5]])


def test_softmax_family_is_stable_for_huge_logits():
    x = t64([[1000.0, -1000.0, 0.0]])
    assert np.all(np.isfinite(F.softmax(x).data)) and np.all(np.isfinite(F.log_softmax(x).data))
    np.testing.assert_allclose(F.logsumexp(x).data, [1000.0])
    assert np.all(np.isfinite(F.sigmoid(t64([1000.0, -1000.0])).data))


# ------------------------------------------------------------------------ losses
def test_binary_cross_entropy_matches_formula_and_gradchecks(rng):
    p = t64(rng.uniform(0.1, 0.9, (5, 1)))
    t = np.array([[0], [1], [1], [0], [1]], dtype=np.float64)
    expected = -(t * np.log(p.data) + (1 - t) * np.log(1 - p.data)).mean()
    np.testing.assert_allclose(F.binary_cross_entropy(p, t).item(), expected)
    assert gradcheck(lambda p: F.binary_cross_entropy(p, t), [p])
    w = rng.uniform(0.5, 2, (5, 1))
    assert gradcheck(lambda p: F.binary_cross_entropy(p, t, weight=w, reduction="sum"), [p])


def test_binary_cross_entropy_never_takes_log_of_zero():
    loss = F.binary_cross_entropy(t64([0.0, 1.0]), np.array([1.0, 0.0]))
    assert np.isfinite(loss.item()) and loss.item() > 10


def test_bce_with_logits_is_stable_and_matches_probability_form(rng):
    x = t64(rng.standard_normal((6,)))
    t = (rng.random(6) > 0.5).astype(np.float64)
    np.testing.assert_allclose(
        F.binary_cross_entropy_with_logits(x, t).item(), F.binary_cross_entropy(F.sigmoid(x), t).item(), rtol=1e-6
    )
    assert gradcheck(lambda x: F.binary_cross_entropy_with_logits(x, t, reduction="none"), [x])
    huge = F.binary_cross_entropy_with_logits(t64([1000.0, -1000.0, 1000.0]), np.array([1.0, 0.0, 0.0]), reduction="none")
    np.testing.assert_allclose(huge.data, [0.0, 0.0, 1000.0])


def test_cross_entropy_with_integer_labels(rng):
    x = t64(rng.standard_normal((4, 3)))
    labels = np.array([0, 2, 1, 2])
    expected = -np.log(_softmax(x.data))[np.arange(4), labels].mean()
    np.testing.assert_allclose(F.cross_entropy(x, labels).item(), expected)
    assert gradcheck(lambda x: F.cross_entropy(x, labels), [x])
    assert np.isfinite(F.cross_entropy(t64([[1000.0, -1000.0]]), np.array([1])).item())
    with pytest.raises(TypeError, match="integers"):
        F.cross_entropy(x, labels.astype(float))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        F.cross_entropy(x, np.array([0, 1, 3, 0]))


def test_mse_and_l2_penalty(rng):
    p, w = t64(rng.standard_normal((3, 2))), t64(rng.standard_normal((2, 2)))
    t = rng.standard_normal((3, 2))
    np.testing.assert_allclose(F.mean_squared_error(p, t).item(), ((p.data - t) ** 2).mean())
    np.testing.assert_allclose(F.l2_penalty(w, 1e-4).item(), 1e-4 * (w.data**2).sum())
    assert gradcheck(lambda p: F.mean_squared_error(p, t), [p])
    assert gradcheck(lambda p: F.mean_squared_error(p, t, reduction="none"), [p])
    assert gradcheck(lambda w: F.l2_penalty(w, 0.5), [w])


def test_loss_shape_errors():
    with pytest.raises(ValueError, match="targets have shape"):
        F.binary_cross_entropy(t64([[0.5], [0.5]]), np.array([1.0, 0.0, 1.0]))
    with pytest.raises(ValueError, match="reduction"):
        F.binary_cross_entropy(t64([0.5]), np.array([1.0]), reduction="avg")


# ------------------------------------------------------------------- batch norm
def test_batch_norm_training_gradcheck_and_running_stats(rng):
    x = t64(rng.standard_normal((5, 3)) * 2 + 1)
    gamma, beta = t64(rng.uniform(0.5, 1.5, 3)), t64(rng.standard_normal(3))
    mean, var = np.zeros(3), np.ones(3)
    out = F.batch_norm(x, gamma, beta, mean, var, training=True, momentum=0.9)
    xhat = (x.data - x.data.mean(0)) / np.sqrt(x.data.var(0) + 1e-3)
    np.testing.assert_allclose(out.data, gamma.data * xhat + beta.data, rtol=1e-10)
    np.testing.assert_allclose(mean, 0.1 * x.data.mean(0))
    np.testing.assert_allclose(var, 0.9 + 0.1 * x.data.var(0))
    assert gradcheck(lambda x, g, b: F.batch_norm(x, g, b, np.zeros(3), np.ones(3), training=True), [x, gamma, beta])
    x3 = t64(rng.standard_normal((2, 4, 3)))
    assert gradcheck(lambda x, g, b: F.batch_norm(x, g, b, np.zeros(3), np.ones(3), training=True), [x3, gamma, beta])


def test_batch_norm_inference_uses_running_stats(rng):
    x = t64(rng.standard_normal((4, 2)))
    gamma, beta = t64([1.5, 0.5]), t64([0.1, -0.2])
    mean, var = np.array([0.3, -0.1]), np.array([2.0, 0.5])
    out = F.batch_norm(x, gamma, beta, mean, var, training=False)
    np.testing.assert_allclose(out.data, (x.data - mean) / np.sqrt(var + 1e-3) * gamma.data + beta.data)
    assert gradcheck(lambda x, g, b: F.batch_norm(x, g, b, mean, var), [x, gamma, beta])
    with pytest.raises(ValueError, match="gamma has shape"):
        F.batch_norm(x, t64([1.0]), beta, mean, var)


# ----------------------------------------------------------------------- dropout
def test_dropout_is_inverted_and_identity_when_not_training(rng):
    x = minidl.tensor(np.ones((200, 50)))
    out = F.dropout(x, 0.3)
    kept = out.data != 0
    assert abs(kept.mean() - 0.7) < 0.02
    np.testing.assert_allclose(out.data[kept], 1 / 0.7)
    assert F.dropout(x, 0.3, training=False) is x
    with pytest.raises(ValueError, match="rate"):
        F.dropout(x, 1.0)


def test_dropout_gradcheck_with_fixed_seed(rng):
    x = t64(rng.standard_normal((3, 4)))
    assert gradcheck(lambda x: F.dropout(x, 0.5, seed=7), [x])


# --------------------------------------------------------------------- embedding
def test_embedding_forward_backward_and_errors(rng):
    weight = t64(rng.standard_normal((6, 3)))
    ids = np.array([[0, 5, 5], [2, 0, 1]])
    np.testing.assert_array_equal(F.embedding(ids, weight).data, weight.data[ids])
    assert gradcheck(lambda w: F.embedding(ids, w), [weight])
    with pytest.raises(TypeError, match="indices must be integers"):
        F.embedding(ids.astype(np.float32), weight)
    with pytest.raises(ValueError, match="index 6 is out of the vocabulary of 6"):
        F.embedding(np.array([6]), weight)
