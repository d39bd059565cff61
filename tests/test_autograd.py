"""The engine itself: tensors, the graph walk, broadcasting, accumulation, no_grad,
gradcheck's own reliability, and clear errors."""
import numpy as np
import pytest

import minidl
from minidl.autograd import Function, GradcheckError, gradcheck
from minidl.autograd.graph import topological_order, unbroadcast


def t64(shape, rng, requires_grad=True):
    return minidl.tensor(rng.standard_normal(shape), requires_grad=requires_grad, dtype=np.float64)


def test_tensor_basics():
    a = minidl.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert a.dtype == np.float32 and a.shape == (2, 2) and not a.requires_grad
    assert minidl.tensor([1, 2]).dtype.kind == "i"
    assert minidl.tensor(np.zeros(2)).dtype == np.float64  # arrays keep their dtype
    assert minidl.tensor([1.0], dtype="float64").dtype == np.float64
    assert a.numpy().tolist() == [[1, 2], [3, 4]]
    assert minidl.tensor([[5.0]]).item() == 5.0
    with pytest.raises(ValueError, match="one-element"):
        a.item()
    with pytest.raises(TypeError, match="floating"):
        minidl.tensor([1, 2], requires_grad=True)


def test_operators_and_gradients(rng):
    a, b = t64((3, 4), rng), t64((3, 4), rng)
    out = ((a + b) * a - b / (a * a + 1) + (-a) ** 2).sum()
    out.backward()
    x, y = a.data, b.data
    expected_a = 2 * x + y + y * 2 * x / (x * x + 1) ** 2 + 2 * x
    np.testing.assert_allclose(a.grad, expected_a, rtol=1e-10)
    np.testing.assert_allclose(b.grad, x - 1 / (x * x + 1), rtol=1e-10)


def test_reflected_operators_with_scalars_and_arrays(rng):
    a = t64((2, 3), rng)
    out = 2.0 - a
    out = 1.0 / (out * out + 3.0) + np.ones((2, 3)) * a
    assert isinstance(out, minidl.Tensor)
    assert gradcheck(lambda a: 1.0 / ((2.0 - a) ** 2 + 3.0) + np.ones((2, 3)) * a, [a])


def test_scalar_keeps_float32():
    a = minidl.tensor([1.0, 2.0], requires_grad=True)
    assert (a * 2.5 + 1).dtype == np.float32


@pytest.mark.parametrize("shape_a,shape_b", [((3, 4), (4,)), ((2, 3, 4), (3, 1)), ((1, 4), (5, 1)), ((), (2, 2))])
def test_broadcasting_gradients_reduce_to_input_shape(shape_a, shape_b, rng):
    a, b = t64(shape_a, rng), t64(shape_b, rng)
    for fn in (lambda a, b: a + b, lambda a, b: a * b, lambda a, b: a - b, lambda a, b: a / (b * b + 1)):
        assert gradcheck(fn, [a, b])
        a.grad = b.grad = None
        fn(a, b).sum().backward()
        assert a.grad.shape == a.shape and b.grad.shape == b.shape


def test_reused_tensor_accumulates_within_one_graph(rng):
    a = t64((3,), rng)
    (a * a * a + a).sum().backward()
    np.testing.assert_allclose(a.grad, 3 * a.data**2 + 1)


def test_gradients_accumulate_across_backward_calls_until_zeroed(rng):
    a = t64((3,), rng)
    (a * 2).sum().backward()
    (a * 3).sum().backward()
    np.testing.assert_allclose(a.grad, np.full(3, 5.0))
    a.zero_grad()
    (a * 3).sum().backward()
    np.testing.assert_allclose(a.grad, np.full(3, 3.0))


def test_backward_needs_gradient_for_non_scalar(rng):
    a = t64((2, 2), rng)
    with pytest.raises(ValueError, match="needs a gradient"):
        (a * 2).backward()
    (a * 2).backward(np.ones((2, 2)))
    np.testing.assert_allclose(a.grad, 2 * np.ones((2, 2)))
    with pytest.raises(ValueError, match="gradient of shape"):
        (a * 2).backward(np.ones(3))


def test_backward_without_grad_is_an_error():
    with pytest.raises(RuntimeError, match="does not require grad"):
        minidl.tensor([1.0]).sum().backward()


def test_no_grad_builds_no_graph(rng):
    a = t64((2,), rng)
    with minidl.no_grad():
        out = a * 2
    assert not out.requires_grad and out._node is None
    assert (a * 2).requires_grad


def test_detach_and_comparisons(rng):
    a = t64((3,), rng)
    d = a.detach()
    assert not d.requires_grad and d.data is a.data
    mask = a > 0
    assert mask.dtype == np.bool_ and not mask.requires_grad


def test_deep_graph_needs_no_recursion():
    x = minidl.tensor([1.0], requires_grad=True, dtype=np.float64)
    y = x
    for _ in range(5000):
        y = y * 1.0001
    y.sum().backward()
    np.testing.assert_allclose(x.grad, [1.0001**5000])


def test_topological_order_puts_every_tensor_before_its_inputs(rng):
    a = t64((2,), rng)
    b = a * 2
    c = b + a
    d = c * b
    order = topological_order(d)
    position = {id(t): i for i, t in enumerate(order)}
    for t in order:
        if t._node is not None:
            for parent in (p for p in t._node.inputs if p.requires_grad):
                assert position[id(t)] < position[id(parent)]


def test_unbroadcast_names_the_op_on_a_wrong_shape():
    with pytest.raises(ValueError, match="Bad.backward"):
        unbroadcast(np.ones((2, 3)), (4,), "Bad")


class _WrongSquare(Function):
    """x^2 with a deliberately wrong derivative (x instead of 2x)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save(x)
        return x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved
        return (grad * x,)


class _WrongShape(Function):
    @staticmethod
    def forward(ctx, x):
        return x.sum(axis=0)

    @staticmethod
    def backward(ctx, grad):
        return (grad,)


def test_gradcheck_catches_a_wrong_backward(rng):
    a = t64((3,), rng)
    with pytest.raises(GradcheckError, match=r"input 0 .* index \(\d+,\): analytic .* numeric"):
        gradcheck(lambda x: _WrongSquare.apply(x), [a])


def test_graph_walk_rejects_a_backward_of_the_wrong_shape(rng):
    a = t64((3, 2), rng)
    with pytest.raises(ValueError, match="_WrongShape.backward returned gradient of shape"):
        _WrongShape.apply(a).sum().backward()


def test_gradcheck_requires_float64():
    a = minidl.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(TypeError, match="float64"):
        gradcheck(lambda x: x * 2, [a])


def test_gradcheck_leaves_existing_grads_alone(rng):
    a = t64((2,), rng)
    a.grad = np.array([7.0, 7.0])
    gradcheck(lambda x: x * x, [a])
    np.testing.assert_array_equal(a.grad, [7.0, 7.0])


def test_manual_seed_makes_random_choices_repeat():
    minidl.manual_seed(5)
    first = minidl.nn.Dense(4)(minidl.tensor(np.ones((1, 3), np.float32)))
    drop1 = minidl.functional.dropout(minidl.tensor(np.ones((4, 4), np.float32)), 0.5)
    minidl.manual_seed(5)
    second = minidl.nn.Dense(4)(minidl.tensor(np.ones((1, 3), np.float32)))
    drop2 = minidl.functional.dropout(minidl.tensor(np.ones((4, 4), np.float32)), 0.5)
    np.testing.assert_array_equal(first.data, second.data)
    np.testing.assert_array_equal(drop1.data, drop2.data)
