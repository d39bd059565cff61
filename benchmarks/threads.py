"""The default thread count against fixed ones: what minidl's first dispatch chooses
(minidl.kernels.parallelism: the cores other processes leave idle, looked at for 0.1 s)
on an idle machine and beside one CPU-bound process, and whether two `minidl train`
runs started back to back get the same count.

    python -m benchmarks.threads                    # about two minutes on 2 cores
    python -m benchmarks.threads --steps 5 --rounds 1 --json runs/threads.json

Each case is a fresh process (the count is chosen once per process), timing training
steps of conv_fully and simple_lstm (the seed's sizes, batch 64) after a warm-up; cases
alternate round by round so a slow spell lands on each alike. The bars (issue 31): idle,
the default within noise of every core; busy, the default within 1.2x of the better of
one and all threads; back to back, the same count twice.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

MODELS = ("conv_fully", "simple_lstm")
BATCH = 64


def worker(model_name, threads, steps):
    """Time `steps` training steps in this process; print one JSON line."""
    import numpy as np

    import minidl
    import minidl.functional as F
    from minidl.kernels.parallelism import describe_threads
    from minidl.models import url

    if threads != "default":
        minidl.set_num_threads(int(threads))
    minidl.manual_seed(0)
    model = url.build_model(model_name)
    rng = np.random.default_rng(0)
    ids = minidl.tensor(rng.integers(1, model.max_vocab_len, size=(BATCH, model.max_len)).astype(np.int32))
    labels = minidl.tensor(rng.integers(0, 2, size=(BATCH, 1)).astype(np.float32))
    optimizer = model.make_optimizer()

    def step():
        model.zero_grad()
        loss = model.regularized(F.binary_cross_entropy(model(ids), labels))
        loss.backward()
        optimizer.step()

    for _ in range(2):  # compiles and warms up
        step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    print(json.dumps({"model": model_name, "asked": threads, "threads": minidl.get_num_threads(),
                      "why": describe_threads(), "ms": 1e3 * statistics.median(times)}))


def measure(model_name, threads, steps):
    out = subprocess.run([sys.executable, "-m", "benchmarks.threads", "--worker", model_name, threads,
                          "--steps", str(steps)], capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def cases(settings, steps, rounds):
    """{(model, setting): [results]}, the settings alternating round by round."""
    results = {}
    for round_number in range(rounds):
        for model_name in MODELS:
            order = settings[round_number % len(settings):] + settings[:round_number % len(settings)]
            for setting in order:
                results.setdefault((model_name, setting), []).append(measure(model_name, setting, steps))
    return results


def summary(results):
    """{(model, setting): (median ms, the thread counts chosen)}."""
    return {key: (statistics.median(r["ms"] for r in runs), sorted({r["threads"] for r in runs}))
            for key, runs in results.items()}


def spinner():
    """One CPU-bound process beside the measurements."""
    return subprocess.Popen([sys.executable, "-c", "while True:\n    pass"])


def back_to_back(limit):
    """The thread lines of two `minidl train` runs started one after the other."""
    lines = []
    for _ in range(2):
        out = subprocess.run([sys.executable, "-m", "minidl.cli", "train", "--epochs", "1", "--limit", str(limit),
                              "--verbose", "0"], capture_output=True, text=True, check=True).stdout
        lines.append(next(line for line in out.splitlines() if " thread" in line and "cores idle" in line))
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", nargs=2, metavar=("MODEL", "THREADS"), help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=15, help="timed steps per process (default 15)")
    parser.add_argument("--rounds", type=int, default=3, help="processes per case (default 3)")
    parser.add_argument("--limit", type=int, default=2000, help="URLs of the back-to-back train runs (default 2000)")
    parser.add_argument("--json", help="also write the numbers to this file")
    args = parser.parse_args(argv)
    if args.worker:
        return worker(*args.worker, args.steps)
    cores = str(len(os.sched_getaffinity(0)))
    print(f"load average at start: {os.getloadavg()[0]:.2f}; {cores} cores; batch {BATCH}, median ms per step")
    idle = summary(cases(["default", cores], args.steps, args.rounds))
    competitor = spinner()
    try:
        time.sleep(1.0)
        busy = summary(cases(["default", "1", cores], args.steps, args.rounds))
    finally:
        competitor.kill()
    time.sleep(1.0)
    runs = back_to_back(args.limit)
    record = {"idle": {}, "busy": {}, "back_to_back": runs}
    print(f"\n{'model':<12} {'machine':<22} {'default':>16} {'1 thread':>9} {'all cores':>10} {'ratio':>6}  bar")
    for model_name in MODELS:
        ms, chosen = idle[(model_name, "default")]
        all_ms = idle[(model_name, cores)][0]
        ratio = ms / all_ms
        record["idle"][model_name] = {"default_ms": ms, "default_threads": chosen, "all_cores_ms": all_ms}
        print(f"{model_name:<12} {'idle':<22} {ms:>9.1f} ({','.join(map(str, chosen))} th) {'':>9} {all_ms:>10.1f} "
              f"{ratio:>6.2f}  default / all cores, within noise")
        ms, chosen = busy[(model_name, "default")]
        one, every = busy[(model_name, "1")][0], busy[(model_name, cores)][0]
        ratio = ms / min(one, every)
        record["busy"][model_name] = {"default_ms": ms, "default_threads": chosen, "one_ms": one, "all_cores_ms": every}
        print(f"{model_name:<12} {'one CPU-bound process':<22} {ms:>9.1f} ({','.join(map(str, chosen))} th) "
              f"{one:>9.1f} {every:>10.1f} {ratio:>6.2f}  default / best, at most 1.2 "
              f"{'(holds)' if ratio <= 1.2 else '(MISSED)'}")
    same = runs[0].split(":")[0] == runs[1].split(":")[0]
    print(f"\nback to back: {runs[0]!r} then {runs[1]!r}: {'the same count' if same else 'DIFFERENT counts'}")
    if args.json:
        with open(args.json, "w") as out:
            json.dump(record, out, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
