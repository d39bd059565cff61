"""minidl against PyTorch on the three seed URL models, on 2 threads and on 1 in one run.

Two threads are what a user gets without flags on a two-core machine.

    python -m benchmarks.compare [--quick] [--threads 2,1] [--models conv_fully ...]
                                 [--no-memory] [--no-end-to-end] [--json out.json]
                                 [--markdown docs/benchmarks.md]
    python -m benchmarks.compare --profile conv_fully:train:256 [--profile-clock cpu]
    chrt -f 10 python -m benchmarks.compare ...   # on a shared machine: see benchmarks/README.md

Rows: a training step at batch 32 and 256 (forward, BCE + L2, backward, Adam) and
inference at batch 1 and 1024, for each model. Each case is (framework, thread count);
the cases of a row are interleaved (benchmarks.timing) and each sample runs after
`set_threads` gave both frameworks that case's count, outside the timed part. Columns,
per thread count: minidl's and PyTorch's median milliseconds, their ratio, and the
achieved GFLOP/s of each (products only, benchmarks.models.forward_flops) as a fraction
of the float32 matmul peak measured with NumPy on as many threads at the start of the
same run. Then the peak memory a training step at batch 256 adds, each framework in its
own fresh process (see benchmarks.timing.peak_rss_growth), on the first thread count;
then the end-to-end row (benchmarks.end_to_end): `minidl train`'s path from a CSV per
training sample, against a PyTorch loop and against minidl's own train b32 row.

`--profile MODEL:ROW:BATCH` runs cProfile over a few of minidl's steps instead (on the
first thread count) and prints the functions that take the most time.
"""
import argparse
import cProfile
import json
import os
import pstats
import shlex
import statistics
import sys
import tempfile
import time

from benchmarks import end_to_end, report, timing

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


def _set_case_threads(label):
    """interleaved's prepare: give both frameworks the case's thread count."""
    timing.set_threads(int(label[1]))


def run_rows(names, threads, repeats, peaks, default):
    """The model rows, each a dict with per thread count minidl's and PyTorch's timing."""
    print("\n".join(report.row_header(threads, default)))
    rows = []
    for name in names:
        for kind, size in ROWS:
            steps, flops = _steps(name, kind, size)
            cases = {(framework, count): step for count in threads for framework, step in steps.items()}
            measured = timing.interleaved(cases, repeats, prepare=_set_case_threads)
            row = {"model": name, "row": f"{kind} b{size}", "flops": flops, "by_threads": {}}
            for count in threads:
                cell = {}
                for framework in steps:
                    gflops = flops / measured[framework, count].median / 1e9
                    cell[framework] = dict(measured[framework, count].as_dict(), gflops=gflops,
                                           peak_fraction=gflops / peaks[count])
                cell["ratio"] = measured["minidl", count].median / measured["torch", count].median
                row["by_threads"][count] = cell
            rows.append(row)
            print(report.format_row(row, threads), flush=True)
    return rows


def run_memory(names, count):
    """Peak MiB a training step at MEMORY_BATCH adds, per model and framework, on `count` threads."""
    memory = {"threads": count, "batch": MEMORY_BATCH, "rows": []}
    print("\n" + "\n".join(report.memory_header(memory)))
    for name in names:
        measured = {framework: timing.measure_in_subprocess(
            "benchmarks.compare", ["--probe-memory", framework, name, str(MEMORY_BATCH), "--threads", count])
            for framework in ("minidl", "torch")}
        row = {"model": name, "minidl_mib": measured["minidl"]["mib"], "torch_mib": measured["torch"]["mib"]}
        row["ratio"] = row["minidl_mib"] / row["torch_mib"]
        memory["rows"].append(row)
        print(report.format_memory(row), flush=True)
    return memory


def _step_ms_per_sample(rows, name, count):
    """minidl's own training step per sample, from this run's train row at the end-to-end batch size."""
    label = f"train b{end_to_end.BATCH_SIZE}"
    row = next(row for row in rows if row["model"] == name and row["row"] == label)
    return row["by_threads"][count]["minidl"]["median_ms"] / end_to_end.BATCH_SIZE


def run_end_to_end(names, threads, repeats, rows, default, csv_rows):
    """The end-to-end row per model: ms per training sample of minidl's path from a
    generated CSV and of a PyTorch loop over the same arrays, interleaved as the rows are."""
    with tempfile.TemporaryDirectory() as folder:
        path = end_to_end.write_url_csv(os.path.join(folder, "urls.csv"), csv_rows)
        train, validation, tokenizer, _ = end_to_end.load_and_split(path)
        record = {"csv_rows": csv_rows, "epochs": end_to_end.EPOCHS, "batch_size": end_to_end.BATCH_SIZE,
                  "train_samples": len(train[1]), "rows": []}
        print("\n" + "\n".join(report.end_to_end_header(record, threads, default)))
        samples = len(train[1]) * end_to_end.EPOCHS
        for name in names:
            phases = {count: [] for count in threads}
            cases = {}
            for count in threads:
                cases["minidl", count] = end_to_end.minidl_run(path, name, phases=phases[count])
                cases["torch", count] = end_to_end.torch_run(name, train, validation, tokenizer.vocab_size)
            measured = timing.interleaved(cases, repeats, warmup=1, prepare=_set_case_threads)
            row = {"model": name, "by_threads": {}}
            for count in threads:
                timed = phases[count][1:]  # the first call was the warm-up
                cell = {framework: dict(measured[framework, count].as_dict(),
                                        ms_per_sample=measured[framework, count].median * 1e3 / samples)
                        for framework in ("minidl", "torch")}
                cell["minidl"]["phases_ms"] = {phase: 1e3 * statistics.median(call[phase] for call in timed)
                                               for phase in timed[0]}
                cell["vs_torch"] = cell["minidl"]["ms_per_sample"] / cell["torch"]["ms_per_sample"]
                cell["step_ms_per_sample"] = _step_ms_per_sample(rows, name, count)
                cell["vs_step"] = cell["minidl"]["ms_per_sample"] / cell["step_ms_per_sample"]
                row["by_threads"][count] = cell
            record["rows"].append(row)
            print(report.format_end_to_end(row, threads), flush=True)
    return record


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


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m benchmarks.compare", description=__doc__.splitlines()[0])
    timing.add_run_options(parser)
    parser.add_argument("--threads", type=timing.thread_counts, default=(2, 1), metavar="LIST",
                        help="the thread counts to measure, interleaved, each given to both frameworks "
                             "(default 2,1: the default a user gets on two cores, and one)")
    parser.add_argument("--models", nargs="+", choices=MODEL_NAMES, default=list(MODEL_NAMES))
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurement")
    parser.add_argument("--no-end-to-end", action="store_true", help="skip the end-to-end row")
    parser.add_argument("--end-to-end-rows", type=int, default=end_to_end.ROWS, metavar="N",
                        help=f"URLs in the end-to-end row's generated CSV (default {end_to_end.ROWS})")
    parser.add_argument("--markdown", metavar="PATH",
                        help="write the tables as Markdown: between the markers of PATH when it has them "
                             "(docs/benchmarks.md), else as the whole file")
    parser.add_argument("--profile", metavar="MODEL:ROW:BATCH", help="cProfile minidl on one row instead")
    parser.add_argument("--profile-clock", choices=("wall", "cpu"), default="wall", help="the profile's clock")
    parser.add_argument("--probe-memory", nargs=3, metavar=("FRAMEWORK", "MODEL", "BATCH"), help=argparse.SUPPRESS)
    return parser


def command_line(argv):
    """The command that produced this run, `chrt -f N` included when it runs under SCHED_FIFO."""
    policy = timing.scheduler()
    prefix = f"chrt -f {policy.split()[-1]} " if policy.startswith("SCHED_FIFO") else ""
    return prefix + "python -m benchmarks.compare " + shlex.join(argv)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    threads = [str(count) for count in args.threads]
    if args.probe_memory:
        timing.set_threads(args.threads[0])
        framework, name, size = args.probe_memory
        return probe_memory(framework, name, int(size))
    if args.profile:
        timing.set_threads(args.threads[0])
        return profile(args.profile, args.profile_clock)

    _models()  # without PyTorch, say so now rather than after the matmul peak
    from minidl.kernels.parallelism import idle_cores

    # What a user gets without flags: the cores idle now (minidl looks when it starts).
    default = str(idle_cores()[0])
    environment = timing.environment()
    settings = timing.thread_settings(args.threads)
    peaks = {count: timing.matmul_peak_gflops(int(count)) for count in threads}
    print(json.dumps(environment))
    print("threads per setting:", json.dumps(settings))
    for count in threads:
        print(f"float32 matmul peak (NumPy, 2048^3, {report.thread_label(count, None)}, best of 5): "
              f"{peaks[count]:.1f} GFLOP/s")
    print()
    repeats = timing.repeats(args)
    record = {"command": command_line(argv), "environment": environment, "threads": threads,
              "default_threads": default, "thread_settings": settings, "matmul_peak_gflops": peaks, "repeats": repeats}
    record["rows"] = run_rows(args.models, threads, repeats, peaks, default)
    record["memory"] = None if args.no_memory else run_memory(args.models, threads[0])
    record["end_to_end"] = (None if args.no_end_to_end else
                            run_end_to_end(args.models, threads, repeats, record["rows"], default, args.end_to_end_rows))
    print("\n" + "\n".join(report.bar_summary(record)))
    timing.write_json(args.json, record)
    if args.markdown:
        report.write_markdown(args.markdown, report.markdown(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
