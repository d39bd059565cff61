"""The numba_cuda kernels (minidl/kernels/numba_cuda/) executed without a GPU, in Numba's
CUDA simulator: every kernel against its reference twin, forward and backward, float32
and float64; the ops that reach them through their gradient checks on the cudasim
target; one training step of the URL models built from these families against the
Numba CPU target. The recurrent kernels are tests/test_cuda_recurrent.py's.

tests/conftest.py turns the simulator on (NUMBA_ENABLE_CUDASIM=1) unless the variable
was set; with it off (a GPU run, NUMBA_ENABLE_CUDASIM=0) these tests are skipped, and
tests/test_gpu.py runs the same kernel table on CuPy arrays instead. By hand:

    NUMBA_ENABLE_CUDASIM=1 MINIDL_KERNELS=cudasim python -m pytest tests/test_cuda_kernels.py

The simulator runs each CUDA thread as a Python thread, idle ones in a block's tail
included, so the arrays are tiny; the kernel table still gives most kernels more
threads than one block of the real THREADS_PER_BLOCK, with a partial last block.
"""
import importlib
import os

import numpy as np
import pytest

import minidl
from minidl import backend, kernels
from minidl import functional as F
from minidl.ops import conv, pool
from minidl.sparse import IndexedSlices

# tests/test_gpu.py imports this file's kernel table, on machines without numba-cuda
# too (benchmarks/gpu_check.sh's dry run): numba.cuda is imported only by the tests.
pytestmark = pytest.mark.skipif(
    os.environ.get("NUMBA_ENABLE_CUDASIM") != "1",
    reason="the CUDA simulator is off (NUMBA_ENABLE_CUDASIM != 1): tests/test_gpu.py runs these kernels on a GPU")


def launch_module():
    return importlib.import_module("minidl.kernels.numba_cuda.launch")


def _float(rng, shape, dtype, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(dtype)


def _distinct(rng, shape, dtype=np.float64):
    """Values with no ties (max pooling and the branch's max pick one winner)."""
    size = int(np.prod(shape))
    return (rng.permutation(size) / size * 4 - 2).reshape(shape).astype(dtype)


def draw(shape, kind, rng):
    """float64 inputs for a gradient check, away from the kinks: 'any' N(0, 1);
    'nonzero' |x| in [0.2, 2] (relu, elu at 0); 'distinct' no ties (max)."""
    if kind == "nonzero":
        return rng.choice([-1.0, 1.0], shape) * rng.uniform(0.2, 2.0, shape)
    if kind == "distinct":
        return _distinct(rng, shape)
    return rng.standard_normal(shape)


# ---------------------------------------------------------- kernels vs reference
def kernel_calls(dtype, rng):
    """(label, family, name, arguments) for every non-recurrent kernel CUDA_KERNELS
    declares, at sizes that take each branch: NaN and both signs in the activations;
    repeated, unused and out-of-order ids, and an empty bag, in the embeddings; every
    optimiser form; stride, asymmetric padding and dilation in the convolutions; sum,
    average and max (global and in windows, a tail of steps past the last window,
    an even kernel) in the fused branch; overlapping windows and padding in pooling.
    Each kernel must return what its reference twin returns on copies of the same
    arrays, and leave the arrays it updates in place (the optimisers') as the twin does.
    tests/test_gpu.py runs the same table on CuPy arrays."""
    x = _float(rng, (3, 7, 11), dtype)  # 231 elements: a block of 128 and a partial one
    x[0, 0, 0] = np.nan
    g = _float(rng, x.shape, dtype)
    elu_out = kernels.reference_kernel("activation", "elu_forward")(x, 0.7)
    ids = rng.integers(0, 7, (4, 9))  # id 8 of the 9 never appears: a zero row
    bag_ids, bag_offsets = rng.integers(0, 9, 13), np.array([0, 4, 4, 9])  # the second bag is empty
    bag_weights = rng.uniform(0.5, 2.0, 13).astype(dtype)
    image, weights = _float(rng, (2, 5, 6, 3), dtype), _float(rng, (2, 3, 3, 4), dtype)
    conv_geometry = ((2, 1), ((1, 0), (1, 1)), (1, 2))  # stride, asymmetric padding, dilation
    conv_out = kernels.reference_kernel("conv", "conv2d_forward")(image, weights, *conv_geometry)
    distinct = _distinct(rng, (2, 5, 7, 3), dtype)
    pool_geometry = ((2, 3), (1, 2), ((1, 0), (1, 2)))  # overlapping rows, padding on three sides
    pooled, argmax = kernels.reference_kernel("pool", "max_pool2d_forward")(distinct, *pool_geometry)
    pool_grad = _float(rng, pooled.shape, dtype)
    calls = [
        ("relu_forward_transposed", "activation", "relu_forward", (x.transpose(2, 0, 1),)),
        ("relu_backward", "activation", "relu_backward", (g, x)),
        ("elu_forward", "activation", "elu_forward", (x, 0.7)),
        ("elu_backward", "activation", "elu_backward", (g, x, elu_out, 0.7)),
        ("dropout_backward", "dropout", "dropout_backward", (g, rng.random(x.shape) > 0.3, 0.3)),
        ("embedding_forward", "embedding", "embedding_forward", (ids, _float(rng, (9, 5), dtype))),
        ("embedding_backward", "embedding", "embedding_backward", (_float(rng, (4, 9, 5), dtype), ids, 9)),
        ("embedding_bag_forward", "embedding", "embedding_bag_forward",
         (bag_ids, bag_offsets, _float(rng, (9, 5), dtype), bag_weights)),
        ("embedding_bag_backward", "embedding", "embedding_bag_backward",
         (_float(rng, (4, 5), dtype), bag_ids, bag_offsets, bag_weights)),
        ("conv2d_forward", "conv", "conv2d_forward", (image, weights) + conv_geometry),
        ("conv2d_backward", "conv", "conv2d_backward", (_float(rng, conv_out.shape, dtype), image, weights)
         + conv_geometry),
        ("max_pool2d_forward", "pool", "max_pool2d_forward", (distinct,) + pool_geometry),
        ("max_pool2d_backward", "pool", "max_pool2d_backward", (pool_grad, argmax, distinct.shape) + pool_geometry),
        ("sum_pool2d_forward", "pool", "sum_pool2d_forward", (distinct,) + pool_geometry),
        ("sum_pool2d_backward", "pool", "sum_pool2d_backward", (pool_grad, distinct.shape) + pool_geometry),
    ]
    branch_x = _float(rng, (3, 10, 3), dtype)
    for pooling, window, size in [("sum", 10, 3), ("average", 3, 4), ("max", 10, 3), ("max", 3, 4)]:
        kernel, bias = _float(rng, (size, 3, 5), dtype, 0.5), _float(rng, (5,), dtype, 0.5)
        forward = (branch_x, kernel, bias, 0.7, pooling, window)
        y, saved = kernels.reference_kernel("conv", "conv1d_elu_pool_forward")(*forward, True)
        label = f"{pooling}_window{window}_k{size}"
        calls += [(f"conv1d_elu_pool_forward_{label}", "conv", "conv1d_elu_pool_forward", forward + (True,)),
                  (f"conv1d_elu_pool_forward_{label}_unsaved", "conv", "conv1d_elu_pool_forward", forward + (False,)),
                  (f"conv1d_elu_pool_backward_{label}", "conv", "conv1d_elu_pool_backward",
                   (_float(rng, y.shape, dtype), branch_x, kernel, 0.7, pooling, window, y, saved))]
    param, grad, rows = _float(rng, (9, 5), dtype), _float(rng, (9, 5), dtype), np.array([6, 0, 2, 5])
    m, v = _float(rng, (9, 5), dtype, 0.1), np.abs(_float(rng, (9, 5), dtype, 0.1))
    adam = (0.01, 0.9, 0.999, 1e-7)
    calls += [("adam_update", "optim", "adam_update", (param, grad, m, v) + adam),
              ("adam_update_rows", "optim", "adam_update_rows", (param, rows, grad[rows], m, v) + adam),
              ("sgd_update_nesterov", "optim", "sgd_update", (param, grad, m, 0.1, 0.9, True)),
              ("sgd_update_momentum", "optim", "sgd_update", (param, grad, m, 0.1, 0.9, False)),
              ("sgd_update_plain", "optim", "sgd_update", (param, grad, None, 0.1, 0.0, False)),
              ("sgd_update_rows_plain", "optim", "sgd_update_rows", (param, rows, grad[rows], None, 0.1, 0.0, False)),
              ("sgd_update_rows_nesterov", "optim", "sgd_update_rows", (param, rows, grad[rows], m, 0.1, 0.9, True))]
    return calls


def as_tuple(value):
    return value if isinstance(value, tuple) else (value,)


def tolerance(dtype):
    return 2e-5 if dtype == np.float32 else 1e-10


def assert_twins_agree(kernel, family, name, host_args, dtype, to_device=lambda a: a, to_host=lambda a: a):
    """kernel(*args) against the reference on its own copies; to_device/to_host move
    the arrays (CuPy in tests/test_gpu.py). Returns the kernel's outputs, on the host."""
    args = [to_device(a.copy(order="K")) if isinstance(a, np.ndarray) else a for a in host_args]
    twin_args = [a.copy(order="K") if isinstance(a, np.ndarray) else a for a in host_args]
    updated = [a for a, host in zip(args, host_args) if isinstance(host, np.ndarray)]  # what an in-place kernel changes
    got = [None if a is None else to_host(a) for a in list(as_tuple(kernel(*args))) + updated]
    expected = list(as_tuple(kernels.reference_kernel(family, name)(*twin_args)))
    expected += [a for a in twin_args if isinstance(a, np.ndarray)]
    assert len(got) == len(expected), f"{family}.{name}: {len(got)} outputs, the reference {len(expected)}"
    for i, (a, b) in enumerate(zip(got, expected)):
        if a is None and b is None:  # a state the kernel was told not to keep
            continue
        assert a.dtype == b.dtype and a.shape == b.shape, f"{family}.{name}: output {i} {a.dtype}{a.shape} vs {b.dtype}{b.shape}"
        scale = max(1.0, float(np.nanmax(np.abs(b)))) if b.size and b.dtype.kind == "f" else 1.0
        np.testing.assert_allclose(a, b, rtol=tolerance(dtype), atol=tolerance(dtype) * scale,
                                   err_msg=f"{family}.{name}: output {i}")
    return got


CALL_LABELS = [label for label, *_ in kernel_calls(np.float64, np.random.default_rng(2))]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("label", CALL_LABELS)
def test_cuda_kernel_matches_its_reference_twin(label, dtype):
    calls = {call[0]: call[1:] for call in kernel_calls(dtype, np.random.default_rng(2))}
    family, name, host_args = calls[label]
    assert_twins_agree(kernels.own_kernel("cudasim", family, name), family, name, host_args, dtype)


def test_the_table_covers_every_declared_kernel_but_the_recurrent_ones():
    declared = {(family, name) for family, names in kernels.CUDA_KERNELS.items() for name in names}
    covered = {(family, name) for _, family, name, _ in kernel_calls(np.float64, np.random.default_rng(2))}
    covered |= {("dropout", "dropout_forward")}  # held to the Numba twin below: the same stream, unlike the reference's
    assert covered == {pair for pair in declared if pair[0] != "recurrent"}
    assert len(set(CALL_LABELS)) == len(CALL_LABELS)


def test_the_kernel_table_spans_several_blocks():
    # The elementwise kernels get more threads than one block of the real size, and end in a partial block.
    blocks = launch_module().THREADS_PER_BLOCK
    assert blocks == 128
    x = kernel_calls(np.float32, np.random.default_rng(2))[0][3][0]
    assert x.size > blocks and x.size % blocks != 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_dropout_masks_equal_the_numba_masks_and_repeat_per_seed(dtype):
    x = np.random.default_rng(4).standard_normal((13, 17)).astype(dtype)
    x[0, 0] = np.nan
    forward = kernels.own_kernel("cudasim", "dropout", "dropout_forward")
    y, keep = forward(x, 0.3, 2**64 - 5)  # a seed past int64: the counter wraps mod 2^64
    cpu_y, cpu_keep = kernels.own_kernel("numba", "dropout", "dropout_forward")(x, 0.3, 2**64 - 5)
    np.testing.assert_array_equal(keep, cpu_keep)
    np.testing.assert_array_equal(y, cpu_y)
    y_again, keep_again = forward(x, 0.3, 2**64 - 5)
    np.testing.assert_array_equal(keep_again, keep)
    _, other = forward(x, 0.3, 7)
    assert (other != keep).mean() > 0.2
    assert y.dtype == x.dtype and keep.dtype == np.bool_


def test_embedding_gradient_sums_in_position_order_like_the_reference():
    rng = np.random.default_rng(3)
    ids = rng.integers(0, 3, size=(6, 7))  # every row is hit many times
    grad = rng.standard_normal((6, 7, 4)).astype(np.float32)
    got = kernels.own_kernel("cudasim", "embedding", "embedding_backward")(grad, ids, 4)
    # The same additions in the same order as NumPy's add.at: equal bit for bit.
    np.testing.assert_array_equal(got, kernels.reference_kernel("embedding", "embedding_backward")(grad, ids, 4))


# ------------------------------------------------------ ops: gradient checks on cudasim
@pytest.fixture
def small_blocks(monkeypatch):
    """32 threads a block: the kernels never depend on the block size, and the simulator
    runs a block's idle threads too, so the many tiny launches of a gradient check or a
    training step pay for 32 threads each instead of 128."""
    monkeypatch.setattr(launch_module(), "THREADS_PER_BLOCK", 32)


IDS = np.array([[1, 4, 4], [0, 2, 4]])  # a repeated id, an unused one

# (name, input shapes, how drawn, op on the inputs): one or
# more for every kernel family here, each branch of the fused convolution included.
GRADCHECKS = [
    ("relu", ((2, 5),), "nonzero", lambda x: F.relu(x)),
    ("elu", ((2, 5),), "nonzero", lambda x: F.elu(x, 0.7)),
    ("dropout", ((3, 5),), "any", lambda x: F.dropout(x, 0.4, seed=7)),
    ("embedding", ((5, 2),), "any", lambda w: F.embedding(minidl.tensor(IDS), w)),
    ("embedding_bag", ((5, 2),), "any",
     lambda w: F.embedding_bag(minidl.tensor(IDS), w, mask=minidl.tensor(np.array([[1, 1, 0], [1, 0, 1]])), mode="mean")),
    ("conv1d_strided_dilated", ((1, 7, 2), (2, 2, 2)), "any", lambda x, k: conv.conv1d(x, k, stride=2, dilation=2)),
    ("conv2d_same", ((1, 3, 4, 1), (2, 2, 1, 2), (2,)), "any",
     lambda x, k, b: conv.conv2d(x, k, b, stride=(2, 1), padding="same")),
    ("conv1d_elu_pool_sum", ((1, 5, 2), (2, 2, 2), (2,)), "any", lambda x, k, b: F.conv1d_elu_pool(x, k, b)),
    ("conv1d_elu_pool_average_windows", ((1, 7, 2), (3, 2, 2), (2,)), "any",
     lambda x, k, b: F.conv1d_elu_pool(x, k, b, pooling="average", pool_size=3)),
    ("conv1d_elu_pool_max_windows", ((1, 7, 2), (3, 2, 2), (2,)), "distinct",
     lambda x, k, b: F.conv1d_elu_pool(x, k, b, pooling="max", pool_size=3)),
    ("max_pool2d_same", ((1, 3, 5, 1),), "distinct", lambda x: pool.max_pool2d(x, 2, padding="same")),
    ("avg_pool1d_same", ((1, 5, 2),), "any", lambda x: pool.avg_pool1d(x, 3, strides=2, padding="same")),
    ("sum_pool2d", ((1, 3, 4, 1),), "any", lambda x: pool.sum_pool2d(x, (2, 3))),
]


@pytest.mark.parametrize("name, shapes, kind, op", GRADCHECKS, ids=[case[0] for case in GRADCHECKS])
def test_gradcheck_on_the_cudasim_target(name, shapes, kind, op, small_blocks):
    rng = np.random.default_rng(1)
    inputs = [minidl.tensor(draw(shape, kind, rng), dtype=np.float64, requires_grad=True) for shape in shapes]
    with kernels.use("cudasim"):
        assert kernels.target_for(inputs[0].data) == "cudasim"
        assert minidl.gradcheck(op, inputs)


# ------------------------------------------------- URL models: one step, CPU vs cudasim
MODELS = {
    "conv_fully": dict(max_len=8, emb_dim=3, max_vocab_len=9, filters=3, kernel_sizes=(2, 3), hidden_units=(4,)),
    "conv_max": dict(max_len=8, emb_dim=3, max_vocab_len=9, filters=3, kernel_sizes=(2, 3)),
    "urlnet": dict(max_len=8, emb_dim=3, max_vocab_len=7, max_words=4, max_word_len=4, max_vocabulary=10, filters=2,
                   kernel_sizes=(3, 4), branch_units=3, hidden_units=(4,), wide=True, buckets=20, max_ngrams=4),
}


def urlnet_batch(model, rng, batch=3):
    """Ids for each part of urlnet's packed input: characters; word ids, then each
    word's characters; n-gram buckets, then their counts (1 to 3)."""
    parts = []
    for name, width in model.input_parts():
        if name == "ngrams":
            parts += [rng.integers(1, model.buckets + 1, (batch, width // 2)), rng.integers(1, 4, (batch, width // 2))]
        elif name == "words":
            parts += [rng.integers(1, model.max_vocabulary + 2, (batch, model.max_words)),
                      rng.integers(1, model.max_vocab_len, (batch, width - model.max_words))]
        else:
            parts.append(rng.integers(1, model.max_vocab_len, (batch, width)))
    return np.concatenate(parts, axis=1).astype(np.int32)


def one_training_step(name, target):
    """Loss, gradients and weights after one step on one batch, with the kernels of
    `target`: SGD with momentum for the convolutional models (so the velocity's kernel
    runs), the model's own Adam for urlnet (its embedding bags give row gradients, so
    the rows forms run). Dropout stays on: the Numba and CUDA kernels draw the same
    mask for a seed."""
    minidl.manual_seed(0)
    model = minidl.models.build_model(name, **MODELS[name])
    if name == "urlnet":
        ids = urlnet_batch(model, np.random.default_rng(5))
        optimizer = model.make_optimizer(lr=0.01)
    else:
        ids = np.random.default_rng(5).integers(1, 9, size=(3, 8)).astype(np.int32)
        optimizer = minidl.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    labels = minidl.tensor(np.array([[1.0], [0.0], [1.0]]))
    with kernels.use(target):
        model.train()
        loss = model.regularized(F.binary_cross_entropy(model(minidl.tensor(ids)), labels))
        loss.backward()
        grads = {n: backend.to_numpy(p.grad.to_dense() if isinstance(p.grad, IndexedSlices) else p.grad)
                 for n, p in model.named_parameters() if p.grad is not None}
        optimizer.step()
    return loss.item(), grads, model.state_dict()


@pytest.mark.parametrize("name", list(MODELS))
def test_one_training_step_on_cudasim_matches_the_numba_cpu_target(name, small_blocks):
    loss, grads, state = one_training_step(name, "cudasim")
    cpu_loss, cpu_grads, cpu_state = one_training_step(name, "numba")
    np.testing.assert_allclose(loss, cpu_loss, rtol=1e-5)
    assert grads.keys() == cpu_grads.keys() and grads
    for parameter, grad in grads.items():
        np.testing.assert_allclose(grad, cpu_grads[parameter], rtol=1e-4, atol=1e-6, err_msg=f"{name}: d {parameter}")
    for key, value in state.items():
        np.testing.assert_allclose(value, cpu_state[key], rtol=1e-4, atol=1e-6, err_msg=f"{name}: {key} after the step")
