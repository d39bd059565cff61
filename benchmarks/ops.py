"""Per-op micro-benchmarks: minidl on its Numba kernels, minidl on its NumPy reference
kernels, and PyTorch, forward + backward, on the shapes of the seed URL models.

    python -m benchmarks.ops [--quick] [--json out.json] [--threads 2] [--no-compile]

Each row times one op's forward and its backward against a fixed random output
gradient, the three versions interleaved (benchmarks.timing). The layouts are each
library's own: minidl's channels-last (batch, steps, channels), PyTorch's Conv1d and
max-pooling channels-first, so neither pays for a transpose it would not do in a model.

Then the first-call compile time of each Numba kernel family, measured in fresh
processes: once with an empty Numba cache (what a first run on a machine pays) and once
more with the cache that run left (what every later run pays).
"""
import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

import minidl
from minidl import kernels
from minidl.ops.activation import elu
from minidl.ops.conv import conv1d
from minidl.ops.dropout import dropout
from minidl.ops.embedding import embedding
from minidl.ops.math import linear
from minidl.nn.recurrent import LSTM
from minidl.ops.pool import max_pool1d

from benchmarks import timing

TARGETS = ("numba", "numpy")
BATCHES = (32, 256)
STEPS, EMB, FILTERS, UNITS, VOCAB, HIDDEN = 75, 32, 256, 32, 100, 1024


def _arrays(rng, *shapes):
    return [rng.standard_normal(shape, dtype=np.float32) for shape in shapes]


def _minidl_case(forward, inputs, grad):
    """forward(*Tensors) + backward with `grad`, on whichever kernel target is in force."""
    tensors = [minidl.tensor(a, requires_grad=a.dtype.kind == "f") for a in inputs]

    def run():
        for t in tensors:
            t.grad = None
        forward(*tensors).backward(minidl.tensor(grad))

    return run


def _torch():
    """PyTorch, imported when a run starts, so --help answers without it."""
    try:
        import torch
    except ImportError:
        raise SystemExit("python -m benchmarks.ops needs PyTorch: pip install torch==2.13.0") from None
    return torch


def _torch_case(forward, inputs, grad):
    torch = _torch()
    tensors = [torch.from_numpy(a).requires_grad_(a.dtype.kind == "f") for a in inputs]
    grad = torch.from_numpy(grad)

    def run():
        for t in tensors:
            t.grad = None
        forward(*tensors).backward(grad)

    return run


class OpCase:
    """One op in both libraries: the forwards, their inputs and output gradients."""

    def __init__(self, ours, theirs, our_inputs, their_inputs, our_grad, their_grad=None):
        self.ours, self.theirs = ours, theirs
        self.our_inputs, self.their_inputs = our_inputs, their_inputs
        self.our_grad = our_grad
        self.their_grad = our_grad if their_grad is None else their_grad


def _channels_first(array):
    return np.ascontiguousarray(np.swapaxes(array, 1, -1))


def op_cases(batch, rng):
    """{op name: OpCase} on the URL models' shapes at `batch`."""
    x_emb, x_conv = _arrays(rng, (batch, STEPS, EMB), (batch, STEPS, FILTERS))
    kernel, bias = _arrays(rng, (5, EMB, FILTERS), (FILTERS,))
    ids = rng.integers(0, VOCAB, size=(batch, STEPS))
    table = _arrays(rng, (VOCAB, EMB))[0]
    x_dense, w_dense, b_dense = _arrays(rng, (batch, HIDDEN), (HIDDEN, HIDDEN), (HIDDEN,))
    grad_conv, grad_pool, grad_lstm, grad_dense = _arrays(
        rng, (batch, STEPS, FILTERS), (batch, STEPS // 4, FILTERS), (batch, UNITS), (batch, HIDDEN))
    lstm_ours = LSTM(UNITS)
    lstm_ours.build((None, STEPS, EMB))
    torch = _torch()
    lstm_theirs = torch.nn.LSTM(EMB, UNITS, batch_first=True)
    functional = torch.nn.functional
    return {
        "conv1d k5 same": OpCase(
            lambda x, k, b: conv1d(x, k, b, padding="same"),
            lambda x, k, b: functional.conv1d(x, k, b, padding="same"),
            [x_emb, kernel, bias], [_channels_first(x_emb), np.ascontiguousarray(kernel.transpose(2, 1, 0)), bias],
            grad_conv, _channels_first(grad_conv)),
        "lstm 32, 75 steps": OpCase(lambda x: lstm_ours(x), lambda x: lstm_theirs(x)[1][0][-1],
                                    [x_emb], [x_emb], grad_lstm),
        "max_pool1d 4": OpCase(lambda x: max_pool1d(x, 4), lambda x: functional.max_pool1d(x, 4),
                               [x_conv], [_channels_first(x_conv)], grad_pool, _channels_first(grad_pool)),
        "elu": OpCase(elu, functional.elu, [x_conv], [x_conv], grad_conv),
        "dropout 0.5": OpCase(lambda x: dropout(x, 0.5), lambda x: functional.dropout(x, 0.5, True),
                              [x_conv], [x_conv], grad_conv),
        "embedding": OpCase(lambda w: embedding(ids, w), lambda w: functional.embedding(torch.from_numpy(ids), w),
                            [table], [table], x_emb),
        "dense 1024x1024": OpCase(linear, functional.linear, [x_dense, w_dense, b_dense],
                                  [x_dense, np.ascontiguousarray(w_dense.T), b_dense], grad_dense),
    }


def _on_target(target, run):
    def timed():
        with kernels.use(target):
            run()

    return timed


def run_ops(repeats):
    rows = []
    print(f"{'op':<22} {'batch':>5} {'numba ms':>9} {'numpy ms':>9} {'torch ms':>9} "
          f"{'numba/torch':>11} {'numba/numpy':>11}")
    for batch in BATCHES:
        rng = np.random.default_rng(batch)
        for name, case in op_cases(batch, rng).items():
            run = _minidl_case(case.ours, case.our_inputs, case.our_grad)
            cases = {target: _on_target(target, run) for target in TARGETS}
            cases["torch"] = _torch_case(case.theirs, case.their_inputs, case.their_grad)
            measured = timing.interleaved(cases, repeats)
            row = {"op": name, "batch": batch, **{k: v.as_dict() for k, v in measured.items()}}
            row["numba_over_torch"] = measured["numba"].median / measured["torch"].median
            row["numba_over_numpy"] = measured["numba"].median / measured["numpy"].median
            rows.append(row)
            print(f"{name:<22} {batch:>5} {row['numba']['median_ms']:>9.3f} {row['numpy']['median_ms']:>9.3f} "
                  f"{row['torch']['median_ms']:>9.3f} {row['numba_over_torch']:>11.2f} {row['numba_over_numpy']:>11.2f}",
                  flush=True)
    return rows


# --------------------------------------------------------------- compile time
#: One small forward + backward per kernel family, on the Numba target.
FAMILIES = ("activation", "dropout", "embedding", "conv", "pool", "recurrent")


def _family_call(family):
    rng = np.random.default_rng(0)
    x = minidl.tensor(rng.standard_normal((2, 8, 4), dtype=np.float32), requires_grad=True)
    if family == "activation":
        return lambda: (elu(x) + minidl.functional.relu(x)).sum().backward()
    if family == "dropout":
        return lambda: dropout(x, 0.5).sum().backward()
    if family == "embedding":
        table = minidl.tensor(rng.standard_normal((5, 4), dtype=np.float32), requires_grad=True)
        return lambda: embedding(np.array([[0, 1, 1]]), table).sum().backward()
    if family == "conv":
        kernel = minidl.tensor(rng.standard_normal((3, 4, 6), dtype=np.float32), requires_grad=True)
        return lambda: conv1d(x, kernel, padding="same").sum().backward()
    if family == "pool":
        return lambda: max_pool1d(x, 2).sum().backward()
    layer = LSTM(3)
    return lambda: layer(x).sum().backward()


def probe_compile():
    """(In a fresh process) seconds of the first and the second call of each family."""
    from numba import njit

    njit(lambda a: a + 1)(1)  # Numba's own start-up, so the first family does not pay it
    result = {}
    with kernels.use("numba"):
        for family in FAMILIES:
            call = _family_call(family)
            seconds = []
            for _ in range(2):
                start = time.perf_counter()
                call()
                seconds.append(time.perf_counter() - start)
            result[family] = seconds[0] - seconds[1]
    print(json.dumps(result))


def run_compile():
    print("\nfirst-call Numba compile time per kernel family, seconds (first call minus second)")
    print(f"{'family':<12} {'empty cache':>12} {'warm cache':>11}")
    with tempfile.TemporaryDirectory() as cache:
        os.environ["NUMBA_CACHE_DIR"] = cache
        try:
            cold = timing.measure_in_subprocess("benchmarks.ops", ["--probe-compile"])
            warm = timing.measure_in_subprocess("benchmarks.ops", ["--probe-compile"])
        finally:
            del os.environ["NUMBA_CACHE_DIR"]
    for family in FAMILIES:
        print(f"{family:<12} {cold[family]:>12.2f} {warm[family]:>11.2f}")
    print(f"{'total':<12} {sum(cold.values()):>12.2f} {sum(warm.values()):>11.2f}")
    return {"empty_cache_s": cold, "warm_cache_s": warm}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ops", description=__doc__.splitlines()[0])
    timing.add_run_options(parser)
    parser.add_argument("--threads", type=int, default=2, help="threads for minidl and PyTorch (default 2)")
    parser.add_argument("--no-compile", action="store_true", help="skip the compile-time measurement")
    parser.add_argument("--probe-compile", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    timing.set_threads(args.threads)
    if args.probe_compile:
        return probe_compile()
    environment = dict(timing.environment(), threads=timing.thread_settings([args.threads]))
    print(json.dumps(environment))
    rows = run_ops(timing.repeats(args))
    compile_times = None if args.no_compile else run_compile()
    timing.write_json(args.json, {"environment": environment, "rows": rows, "compile": compile_times})
    return 0


if __name__ == "__main__":
    sys.exit(main())
