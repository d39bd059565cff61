"""minidl against PyTorch on the three seed URL models, on the same threads.

    python -m benchmarks.compare [--quick] [--json out.json] [--threads 2] [--blas-threads N]
                                 [--models conv_fully ...] [--no-memory]
    python -m benchmarks.compare --profile conv_fully:train:256 [--profile-clock cpu]

Rows: a training step at batch 32 and 256 (forward, BCE + L2, backward, Adam) and
inference at batch 1 and 1024, for each model. Columns: minidl's and PyTorch's median
milliseconds (interleaved, see benchmarks.timing), their ratio, and the achieved
GFLOP/s of each (products only, benchmarks.models.forward_flops) as a fraction of the
float32 matmul peak measured with NumPy at the start of the same run. Then the peak
memory a training step at batch 256 adds, each framework in its own fresh process (see
benchmarks.timing.peak_rss_growth).

`--profile MODEL:ROW:BATCH` runs cProfile over a few of minidl's steps instead and
prints the functions that take the most time.
"""
import argparse
import cProfile
import json
import pstats
import sys
import time

from benchmarks import timing

#: benchmarks.models.MODEL_NAMES, repeated here because that module needs PyTorch to
#: import, and --help must answer without it.
MODEL_NAMES = ("simple_lstm", "lstm_conv", "conv_fully")
ROWS = (("train", 32), ("train", 256), ("infer", 1), ("infer", 1024))
MEMORY_BATCH = 256


def _models():
    """benchmarks.models, imported when a run starts (it needs PyTorch)."""
    try:
        from benchmarks import models
    except ImportError as error:
        raise SystemExit(f"python -m benchmarks.compare needs PyTorch: pip install torch==2.13.0 ({error})") from None
    return models


def _steps(name, kind, size):
    """{framework: callable} for one row, and the row's FLOPs per call."""
    models = _models()
    ours, theirs = models.twin_models(name)
    ids, labels = models.batch(ours, size)
    if kind == "train":
        cases = {"minidl": models.minidl_train_step(ours, ids, labels),
                 "torch": models.torch_train_step(theirs, ids, labels)}
        return cases, models.training_flops(ours) * size
    cases = {"minidl": models.minidl_inference(ours, ids), "torch": models.torch_inference(theirs, ids)}
    return cases, models.forward_flops(ours) * size


def run_rows(names, repeats, peak):
    rows = []
    for name in names:
        for kind, size in ROWS:
            cases, flops = _steps(name, kind, size)
            timings = timing.interleaved(cases, repeats)
            row = {"model": name, "row": f"{kind} b{size}", "flops": flops}
            for framework, measured in timings.items():
                gflops = flops / measured.median / 1e9
                row[framework] = dict(measured.as_dict(), gflops=gflops, peak_fraction=gflops / peak)
            row["ratio"] = timings["minidl"].median / timings["torch"].median
            rows.append(row)
            print(_format_row(row), flush=True)
    return rows


HEADER = (f"{'model':<12} {'row':<11} {'minidl ms':>10} {'torch ms':>10} {'ratio':>6}   "
          f"{'minidl GFLOP/s':>15} {'torch GFLOP/s':>15}")


def _format_row(row):
    ours, theirs = row["minidl"], row["torch"]
    return (f"{row['model']:<12} {row['row']:<11} {ours['median_ms']:>10.3f} {theirs['median_ms']:>10.3f} "
            f"{row['ratio']:>6.2f}   {ours['gflops']:>7.1f} ({ours['peak_fraction']:>4.0%}) "
            f"{theirs['gflops']:>7.1f} ({theirs['peak_fraction']:>4.0%})")


def run_memory(names, thread_arguments):
    """Peak MiB a training step at MEMORY_BATCH adds, per model and framework."""
    results = []
    print(f"\npeak memory of a training step at batch {MEMORY_BATCH} (MiB over the resident size before it)")
    print(f"{'model':<12} {'minidl':>8} {'torch':>8} {'ratio':>6}")
    for name in names:
        measured = {framework: timing.measure_in_subprocess(
            "benchmarks.compare", ["--probe-memory", framework, name, str(MEMORY_BATCH), *thread_arguments])
            for framework in ("minidl", "torch")}
        row = {"model": name, "batch": MEMORY_BATCH, "minidl_mib": measured["minidl"]["mib"],
               "torch_mib": measured["torch"]["mib"]}
        row["ratio"] = row["minidl_mib"] / row["torch_mib"]
        results.append(row)
        print(f"{name:<12} {row['minidl_mib']:>8.1f} {row['torch_mib']:>8.1f} {row['ratio']:>6.2f}", flush=True)
    return results


def probe_memory(framework, name, size):
    """(In a fresh process) the peak growth of one framework's training step."""
    models = _models()
    ours, theirs = models.twin_models(name)
    ids, labels = models.batch(ours, size)
    step = (models.minidl_train_step(ours, ids, labels) if framework == "minidl"
            else models.torch_train_step(theirs, ids, labels))
    print(json.dumps({"mib": timing.peak_rss_growth(step)}))


def profile(spec, clock="wall", steps=5, top=25):
    """cProfile of minidl's step; clock "cpu" counts the process's CPU time (every
    thread's), which a loaded machine disturbs less than the wall clock but which
    also counts threads spinning while they wait."""
    name, kind, size = spec.split(":")
    cases, _ = _steps(name, kind, int(size))
    step = cases["minidl"]
    step()
    profiler = cProfile.Profile(time.process_time) if clock == "cpu" else cProfile.Profile()
    profiler.enable()
    for _ in range(steps):
        step()
    profiler.disable()
    print(f"cProfile ({clock} clock) of {steps} minidl steps of {spec}, by own time:")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(top)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.compare", description=__doc__.splitlines()[0])
    timing.add_run_options(parser)
    parser.add_argument("--models", nargs="+", choices=MODEL_NAMES, default=list(MODEL_NAMES))
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurement")
    parser.add_argument("--profile", metavar="MODEL:ROW:BATCH", help="cProfile minidl on one row instead")
    parser.add_argument("--profile-clock", choices=("wall", "cpu"), default="wall", help="the profile's clock")
    parser.add_argument("--probe-memory", nargs=3, metavar=("FRAMEWORK", "MODEL", "BATCH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    timing.set_threads(args.threads, args.blas_threads)
    if args.probe_memory:
        framework, name, size = args.probe_memory
        return probe_memory(framework, name, int(size))
    if args.profile:
        return profile(args.profile, args.profile_clock)

    environment = timing.environment()
    peak = timing.matmul_peak_gflops(args.threads)
    print(json.dumps(environment))
    print(f"float32 matmul peak (NumPy, 2048^3, {args.threads} threads, best of 5): {peak:.1f} GFLOP/s\n")
    print(HEADER)
    rows = run_rows(args.models, timing.repeats(args), peak)
    thread_arguments = ["--threads", str(args.threads)]
    if args.blas_threads is not None:
        thread_arguments += ["--blas-threads", str(args.blas_threads)]
    memory = [] if args.no_memory else run_memory(args.models, thread_arguments)
    timing.write_json(args.json, {"environment": environment, "matmul_peak_gflops": peak, "rows": rows,
                                  "memory": memory})
    return 0


if __name__ == "__main__":
    sys.exit(main())
