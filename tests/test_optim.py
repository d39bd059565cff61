"""Optimisers against their update rules written out by hand (Keras' formulas)."""
import numpy as np
import pytest

import minidl
from minidl import optim


def param(values):
    return minidl.tensor(np.asarray(values, dtype=np.float64), requires_grad=True)


def test_sgd_plain_momentum_and_nesterov():
    grads = [np.array([1.0, -2.0]), np.array([0.5, 0.5]), np.array([-1.0, 3.0])]
    for momentum, nesterov in ((0.0, False), (0.9, False), (0.9, True)):
        p = param([1.0, 1.0])
        opt = optim.SGD([p], lr=0.1, momentum=momentum, nesterov=nesterov)
        w, v = np.array([1.0, 1.0]), np.zeros(2)
        for g in grads:
            p.grad = g.copy()
            opt.step()
            v = momentum * v - 0.1 * g
            w = w + (momentum * v - 0.1 * g if nesterov else v)
        np.testing.assert_allclose(p.data, w)


def test_adam_matches_keras_formula_with_decay():
    rng = np.random.default_rng(0)
    p = param(rng.standard_normal(3))
    opt = optim.Adam([p], lr=0.01, decay=0.1)
    w, m, v = p.data.copy(), np.zeros(3), np.zeros(3)
    for t in range(1, 6):
        g = rng.standard_normal(3)
        p.grad = g.copy()
        opt.step()
        lr = 0.01 / (1 + 0.1 * (t - 1))
        lr_t = lr * np.sqrt(1 - 0.999**t) / (1 - 0.9**t)
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        w = w - lr_t * m / (np.sqrt(v) + 1e-8)
        np.testing.assert_allclose(p.data, w, rtol=1e-12)
    assert opt.iterations == 5


def test_adam_state_round_trip_resumes_exactly():
    rng = np.random.default_rng(1)
    grads = [rng.standard_normal(2) for _ in range(4)]
    a, b = param([0.5, -0.5]), param([0.5, -0.5])
    opt_a = optim.Adam([a], lr=0.1)
    for g in grads[:2]:
        a.grad = g
        opt_a.step()
    opt_b = optim.Adam([b], lr=0.1)
    b.data = a.data.copy()
    opt_b.load_state_dict(opt_a.state_dict())
    for g in grads[2:]:
        a.grad, b.grad = g, g
        opt_a.step(), opt_b.step()
    np.testing.assert_array_equal(a.data, b.data)


def test_slots_are_the_state_and_an_entry_filled_in_is_kept():
    a, b = param([0.5, -0.5]), param([1.0])
    opt = optim.Adam([a, b], lr=0.1)
    a.grad = np.array([1.0, 2.0])
    opt.step()
    m = opt.slots("m")
    assert m[1] is None and m is opt.slots("m")  # b has had no update: no moment yet
    np.testing.assert_allclose(m[0], 0.1 * a.grad)
    m[1] = np.array([3.0])  # as another rank's moments are filled in
    assert opt.state_dict()["m.1"].tolist() == [3.0]


def test_adam_trains_a_small_regression():
    minidl.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 3)).astype(np.float32)
    y = x @ np.array([[1.0], [-2.0], [0.5]], dtype=np.float32) + 0.3
    layer = minidl.nn.Dense(1)
    layer.build((None, 3))
    opt = optim.Adam(layer.parameters(), lr=0.05)
    for _ in range(300):
        loss = minidl.functional.mean_squared_error(layer(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 1e-3


def test_parameters_without_grad_are_skipped_and_bad_settings_rejected():
    p, q = param([1.0]), param([2.0])
    opt = optim.Adam([p, q])
    p.grad = np.array([1.0])
    opt.step()
    assert q.data[0] == 2.0 and p.data[0] != 1.0
    with pytest.raises(ValueError, match="lr must be positive"):
        optim.SGD([p], lr=0)
    with pytest.raises(ValueError, match="no trainable parameters"):
        optim.Adam([])
    with pytest.raises(ValueError, match="beta_1"):
        optim.Adam([p], beta_1=1.0)
