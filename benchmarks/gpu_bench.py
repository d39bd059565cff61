"""minidl on CuPy against PyTorch on CUDA: the three seed URL models (their default
sizes), a training step at batch 256 and inference at batch 1024, on generated data.

    python -m benchmarks.gpu_bench [--repeats 7] [--json out.json] [--models conv_fully ...]
    python -m benchmarks.gpu_bench --dry-run

Columns: each framework's median milliseconds per call (interleaved samples, see
benchmarks.timing) with the quartiles in the JSON, and minidl / PyTorch. Every timed
call ends by waiting for the GPU, so a sample is the work done, not the work queued.
The target of issue 5 is a ratio at or below 1.5 for each model's training step.

The model pairs and both frameworks' steps are benchmarks.models', with the batch and
the PyTorch model put on the GPU.

`--dry-run` runs anywhere, on the CPU: it imports everything and builds each model pair
with tiny sizes, with one forward pass each and no timing. Without PyTorch it builds the
minidl models alone and says so.
"""
import argparse
import json
import sys

import numpy as np

import minidl
from minidl.models import url

MODEL_NAMES = ("simple_lstm", "lstm_conv", "conv_fully")
ROWS = (("train", 256), ("infer", 1024))
TRAIN_RATIO_TARGET = 1.5
TINY = {
    "simple_lstm": dict(max_len=8, emb_dim=4, max_vocab_len=12, lstm_output_size=3),
    "lstm_conv": dict(max_len=8, emb_dim=4, max_vocab_len=12, lstm_output_size=3, filters=5, kernel_size=3, pool_size=2),
    "conv_fully": dict(max_len=8, emb_dim=4, max_vocab_len=12, filters=5, kernel_sizes=(2, 3), hidden_units=(6,)),
}


def _torch_or_none():
    try:
        import torch
    except ImportError:
        return None
    return torch


# --------------------------------------------------------------------- the cases
def _synced(step, synchronize):
    def call():
        step()
        synchronize()
    return call


def gpu_cases(name, kind, size):
    """{framework: synchronised zero-argument callable} for one row, on the GPU."""
    import cupy
    import torch

    from benchmarks import models

    with minidl.device("cuda"):
        ours, theirs = models.twin_models(name)
        ids, labels = models.batch(ours, size)
        ours_step = (models.minidl_train_step(ours, ids, labels) if kind == "train"
                     else models.minidl_inference(ours, ids))
    theirs = theirs.cuda()
    theirs_step = (models.torch_train_step(theirs, ids, labels, device="cuda") if kind == "train"
                   else models.torch_inference(theirs, ids, device="cuda"))
    return {"minidl": _synced(ours_step, cupy.cuda.get_current_stream().synchronize),
            "torch": _synced(theirs_step, torch.cuda.synchronize)}


# ----------------------------------------------------------------------- running
def environment():
    import cupy
    import torch

    properties = cupy.cuda.runtime.getDeviceProperties(0)
    return {"gpu": properties["name"].decode() if isinstance(properties["name"], bytes) else properties["name"],
            "cupy": cupy.__version__, "cuda_runtime": cupy.cuda.runtime.runtimeGetVersion(),
            "torch": torch.__version__, "torch_cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(), "numpy": np.__version__, "python": sys.version.split()[0]}


def run(names, repeats):
    from benchmarks import timing

    rows = []
    print(HEADER, flush=True)
    for name in names:
        for kind, size in ROWS:
            timings = timing.interleaved(gpu_cases(name, kind, size), repeats)
            row = {"model": name, "row": f"{kind} b{size}",
                   "minidl": timings["minidl"].as_dict(), "torch": timings["torch"].as_dict(),
                   "ratio": timings["minidl"].median / timings["torch"].median}
            if kind == "train":
                row["meets_target"] = row["ratio"] <= TRAIN_RATIO_TARGET
            rows.append(row)
            print(format_row(row), flush=True)
    return rows


HEADER = f"{'model':<12} {'row':<11} {'minidl ms':>10} {'torch ms':>10} {'ratio':>6}"


def format_row(row):
    mark = {True: "  (target met)", False: f"  (target {TRAIN_RATIO_TARGET})"}.get(row.get("meets_target"), "")
    return (f"{row['model']:<12} {row['row']:<11} {row['minidl']['median_ms']:>10.3f} "
            f"{row['torch']['median_ms']:>10.3f} {row['ratio']:>6.2f}{mark}")


def dry_run(names):
    """Build every model pair on the CPU with tiny sizes and run one forward pass."""
    torch = _torch_or_none()
    rng = np.random.default_rng(0)
    with minidl.device("cpu"):
        for name in names:
            minidl.manual_seed(0)
            ours = url.build_model(name, **TINY[name])
            ids = rng.integers(1, ours.max_vocab_len, size=(2, ours.max_len)).astype(np.int32)
            ours.eval()
            with minidl.no_grad():
                shapes = [tuple(ours(minidl.tensor(ids)).shape)]
            if torch is not None:
                from benchmarks import models

                theirs = models.torch_model(ours).eval()
                with torch.inference_mode():
                    shapes.append(tuple(theirs(torch.as_tensor(ids.astype(np.int64))).shape))
            print(f"built {name}: output shapes {shapes}")
    if torch is None:
        print("PyTorch is not installed: only the minidl models were built")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed samples per case (default 7)")
    parser.add_argument("--models", nargs="+", choices=MODEL_NAMES, default=list(MODEL_NAMES))
    parser.add_argument("--json", help="write the environment and the rows to this file")
    parser.add_argument("--dry-run", action="store_true", help="build the models on the CPU, time nothing")
    args = parser.parse_args(argv)
    if args.dry_run:
        dry_run(args.models)
        return 0
    report = {"environment": environment(), "rows": run(args.models, args.repeats),
              "train_ratio_target": TRAIN_RATIO_TARGET}
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(report, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
