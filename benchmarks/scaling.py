"""Data-parallel scaling: training samples/s of the three URL models on 1 and 2 MPI ranks.

    python -m benchmarks.scaling [--quick] [--rounds 3] [--models simple_lstm ...] [--data-on root|every]
                                 [--json scaling.json]

Needs the `mpi` extra (pip install -e ".[mpi]"). Each measurement is a fresh job,
`mpiexec -n R python -m benchmarks.scaling --worker ARCH ...`, with one thread per rank
(NUMBA_NUM_THREADS, OMP_NUM_THREADS, OPENBLAS_NUM_THREADS = 1, from
minidl.distributed.LAUNCH_ENVIRONMENT), so R ranks use R cores. Every rank builds the
model with its default (the source's) sizes on random character ids (batch, 75) and 0/1
labels; one rank trains plainly, two ranks run `fit(..., distributed="auto")`.

Weak scaling, as Horovod measures it: the batch per rank stays 32, so two ranks take
steps of 64 samples and half as many steps per epoch. samples/s is the whole job's:
samples of the timed epochs over the wall time between two barriers, after a warm-up
fit (Numba compilation, first-call costs). Efficiency = samples/s on R ranks /
(R x samples/s on one). The worker also times the step's gradient exchange alone
(`exchange ms`: ProcessGroup.average_gradients and share_updates on gradients of the
model's shapes, without the optimiser's step between them), to show what
communication costs next to computing.
With `--data-on root` (the default, as `minidl train` does) the data is on rank 0 alone,
which sends each rank its samples every epoch; `--data-on every` gives every rank a copy.

What two ranks can reach on the machine is measured too, first without minidl: a
one-thread matmul loop alone and as two processes at once, which also counts the
share of its time each process lost in stalls (a product taking over 3 times the
median: the process was off its core); then two independent one-rank jobs of each
model run at the same time, with no communication at all. Their
summed samples/s over twice one job's alone is the `ceiling` column: the efficiency
left once two processes share the cores, the memory bus and the caches (and the
machine's other users). Then a 2-rank job whose ranks meet at a barrier once a step,
as the gradient exchange makes them, but exchange nothing and each update every
parameter, as replicas do: the `lock step` column. What it loses against the ceiling
is the cost of running in step (the ranks' slowest phases coincide, and each waits
for the slower at every step, so a stall of either rank stalls both); `eff./lock` is
the real job's share of it, above 100 % where splitting the update among the ranks
saves more than the exchange costs. `--rounds N` repeats everything N times,
interleaved, and prints medians and every round's efficiency: on a machine whose
cores come and go the spread says more than one figure. Run it without `chrt -f` (it warns): under
SCHED_FIFO the kernel's real-time throttling (sched_rt_runtime_us 950000 of each
1000000) holds a process off its core 50 ms every second, 5 % of each rank's time at
moments of its own, and in lock step each rank's stalls stop the other too; the stall
column of the machine line shows it (about 5 % under chrt, under 0.5 % without). Each
job records the 1-minute load average before and after it (`os.getloadavg`); the table
prints the range.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.timing import scheduler

ARCHS = ("simple_lstm", "lstm_conv", "conv_fully")
REPO = Path(__file__).resolve().parent.parent
MAX_LEN, VOCAB = 75, 101


# ------------------------------------------------------------------ one job
def lock_step_only(group, params, share, flags=()):
    """In place of ProcessGroup.average_gradients for the `lock step` column: the ranks
    meet once a step, as the exchange makes them, but exchange nothing (each keeps its
    own gradients; the flags stay local)."""
    with group.watchdog.waiting("a barrier"):
        group.comm.Barrier()
    return tuple(bool(flag) for flag in flags)


def worker(arch, samples, epochs, batch_size, repeats, data_on="root", exchange="gradients"):
    """Run inside every rank of a job; rank 0 prints one JSON line. exchange "none":
    the ranks only meet once a step (`lock_step_only`)."""
    import minidl
    from minidl.distributed import ProcessGroup, resolve_group
    from minidl.models import build_model
    from minidl.train import fit

    if exchange == "none":
        ProcessGroup.average_gradients = lock_step_only
    group = resolve_group("auto")
    rank, size = (0, 1) if group is None else (group.rank, group.size)
    rng = np.random.default_rng(0)
    x = rng.integers(1, VOCAB, (samples, MAX_LEN)).astype(np.int32)
    y = rng.integers(0, 2, samples).astype(np.float32)
    minidl.manual_seed(0)
    model = build_model(arch, max_vocab_len=VOCAB)

    def barrier():
        if group is not None:
            group.comm.Barrier()

    holds_data = rank == 0 or data_on == "every"

    def train(count):
        fit(model, x[:count] if holds_data else None, y[:count] if holds_data else None, epochs=1,
            batch_size=batch_size, optimizer=model.make_optimizer(), verbose=0, distributed="auto")

    train(2 * batch_size * size)  # warm-up: two steps
    seconds = []
    for _ in range(repeats):
        barrier()
        start = time.perf_counter()
        for _ in range(epochs):
            train(samples)
        barrier()
        seconds.append(time.perf_counter() - start)
    elapsed = statistics.median(seconds)

    params = model.trainable_parameters()
    gradients = sum(p.size for p in params)
    exchange_ms = None
    if group is not None:  # the step's exchanges alone (fit's two flags; no update), on gradients of the model's shapes
        for p in params:
            p.grad = np.ones(p.shape, p.dtype)
        barrier()
        start = time.perf_counter()
        for _ in range(20):
            group.average_gradients(params, 1.0 / size, (False, False))
            group.share_updates()
        exchange_ms = (time.perf_counter() - start) / 20 * 1e3
        group.end_training()
    steps = epochs * -(-samples // (batch_size * size))
    if rank == 0:
        print(json.dumps({"arch": arch, "ranks": size, "parameters": int(gradients),
                          "samples_per_s": epochs * samples / elapsed, "step_ms": elapsed / steps * 1e3,
                          "exchange_ms": exchange_ms, "seconds": seconds}), flush=True)


# ---------------------------------------------------------- the machine
PROBE = """
import time, numpy as np
a = np.random.default_rng(0).standard_normal((512, 512)).astype(np.float32)
out = np.empty_like(a)
times, start = [], time.perf_counter()
while time.perf_counter() - start < 5:
    began = time.perf_counter()
    np.matmul(a, a, out=out)
    times.append(time.perf_counter() - began)
times = np.array(times)
typical = np.median(times)
stalled = (times[times > 3 * typical] - typical).sum() / times.sum()
print(2 * 512**3 * len(times) / times.sum() / 1e9, stalled)
"""


def matmul_probe(at_once):
    """(GFLOP/s, share of the time stalled) of each of `at_once` processes running a
    one-thread float32 512 x 512 matmul loop for 5 s at the same time: what the cores
    give two compute-bound processes, with no minidl and no MPI involved. A product
    that takes over 3 times the median is a stall (the process was not running: the
    machine gave its core to something else); the share is the time lost in them."""
    from minidl.distributed import LAUNCH_ENVIRONMENT

    env = {**os.environ, **LAUNCH_ENVIRONMENT}
    probes = [subprocess.Popen([sys.executable, "-c", PROBE], env=env, stdout=subprocess.PIPE, text=True)
              for _ in range(at_once)]
    return [tuple(map(float, probe.communicate()[0].split())) for probe in probes]


# --------------------------------------------------------------- the driver
def start_job(arch, ranks, options, exchange="gradients"):
    """A fresh `mpiexec -n ranks` job of the worker, started."""
    from minidl.distributed import launch_command

    argv, env = launch_command(ranks, [sys.executable, "-m", "benchmarks.scaling", "--worker", arch,
                                       "--samples", str(options.samples), "--epochs", str(options.epochs),
                                       "--batch-size", str(options.batch_size), "--repeats", str(options.repeats),
                                       "--data-on", options.data_on, "--exchange", exchange])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return subprocess.Popen(argv, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish_job(job, arch, ranks, options):
    """The job's JSON line (samples/s and the rest)."""
    out, err = job.communicate(timeout=options.timeout)
    if job.returncode != 0:
        raise RuntimeError(f"{arch} on {ranks} ranks failed:\n{err[-2000:]}")
    return json.loads([line for line in out.splitlines() if line.startswith("{")][-1])


def run_jobs(arch, ranks, options, at_once=1, exchange="gradients"):
    """`at_once` jobs of `ranks` ranks started together; their JSON, each with the
    1-minute load average before and after."""
    load_before = os.getloadavg()[0]
    jobs = [start_job(arch, ranks, options, exchange) for _ in range(at_once)]
    results = [finish_job(job, arch, ranks, options) for job in jobs]
    for result in results:
        result.update(load_before=load_before, load_after=os.getloadavg()[0], at_once=at_once)
    return results


def measure_round(options):
    """One round: the matmul probe, then each model's 1-rank, 2-rank and 2 x 1-rank jobs."""
    load = os.getloadavg()[0]
    (alone, alone_stalled), pair = matmul_probe(1)[0], matmul_probe(2)
    probe = {"load_before": load, "alone": alone, "two": [rate for rate, _ in pair],
             "ceiling": sum(rate for rate, _ in pair) / (2 * alone),
             "stalled": [alone_stalled, *(share for _, share in pair)]}
    print(f"the machine (load {load:.1f}): a one-thread 512 x 512 float32 matmul loop runs at {alone:.1f} GFLOP/s "
          f"alone, {' + '.join(f'{rate:.1f}' for rate, _ in pair)} GFLOP/s as two processes at once: "
          f"{probe['ceiling']:.0%} of twice one; time lost in stalls {percents(probe['stalled'], 1)} %",
          file=sys.stderr, flush=True)
    models = {}
    for arch in options.models:
        (one,), (two,), both = run_jobs(arch, 1, options), run_jobs(arch, 2, options), run_jobs(arch, 1, options, 2)
        (lock,) = run_jobs(arch, 2, options, exchange="none")
        alone_rate = one["samples_per_s"]
        models[arch] = {"one": one, "two": two, "pair": both, "lock": lock,
                        "efficiency": two["samples_per_s"] / (2 * alone_rate),
                        "ceiling": sum(job["samples_per_s"] for job in both) / (2 * alone_rate),
                        "lock_step": lock["samples_per_s"] / (2 * alone_rate)}
        print(f"measured {arch}: efficiency {models[arch]['efficiency']:.0%}, ceiling {models[arch]['ceiling']:.0%}, "
              f"lock step {models[arch]['lock_step']:.0%}", file=sys.stderr, flush=True)
    return {"probe": probe, "models": models}


def percents(values, decimals=0):
    return "/".join(f"{100 * value:.{decimals}f}" for value in values)


def table(rounds, archs):
    """Medians over the rounds, the efficiency of every round, the range of the load."""
    median = statistics.median
    lines = [f"{'model':<12}{'params':>10}{'1 rank/s':>10}{'2 ranks/s':>11}{'efficiency':>12}{'per round %':>20}"
             f"{'ceiling':>9}{'lock step':>11}{'per round %':>20}{'eff./lock':>11}{'step ms (1)':>13}"
             f"{'step ms (2)':>13}{'exchange ms':>13}"
             f"{'load':>11}"]
    for arch in archs:
        runs = [one_round["models"][arch] for one_round in rounds]
        loads = [job["load_before"] for run in runs for job in (run["one"], run["two"], run["pair"][0], run["lock"])]
        load_range = f"{min(loads):.1f}-{max(loads):.1f}"
        lines.append(
            f"{arch:<12}{runs[0]['one']['parameters']:>10,}{median(r['one']['samples_per_s'] for r in runs):>10.0f}"
            f"{median(r['two']['samples_per_s'] for r in runs):>11.0f}{median(r['efficiency'] for r in runs):>12.0%}"
            f"{percents(r['efficiency'] for r in runs):>20}{median(r['ceiling'] for r in runs):>9.0%}"
            f"{median(r['lock_step'] for r in runs):>11.0%}{percents(r['lock_step'] for r in runs):>20}"
            f"{median(r['efficiency'] / r['lock_step'] for r in runs):>11.0%}"
            f"{median(r['one']['step_ms'] for r in runs):>13.1f}{median(r['two']['step_ms'] for r in runs):>13.1f}"
            f"{median(r['two']['exchange_ms'] for r in runs):>13.2f}{load_range:>11}")
    probes = [one_round["probe"] for one_round in rounds]
    lines.append(f"the machine: two one-thread matmul loops at once ran at {percents(p['ceiling'] for p in probes)} % "
                 f"of twice one alone (per round; load {min(p['load_before'] for p in probes):.1f}-"
                 f"{max(p['load_before'] for p in probes):.1f}); time lost in stalls (product over 3 x the median), "
                 f"alone / each of two: {', '.join(percents(p['stalled'], 1) for p in probes)} %")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", choices=ARCHS, default=list(ARCHS))
    parser.add_argument("--samples", type=int, default=1024, help="samples per epoch (default 1024)")
    parser.add_argument("--epochs", type=int, default=1, help="timed epochs per repetition (default 1)")
    parser.add_argument("--batch-size", type=int, default=32, help="samples per rank and step (default 32)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repetitions, median taken (default 3)")
    parser.add_argument("--quick", action="store_true", help="512 samples, 2 repetitions")
    parser.add_argument("--timeout", type=float, default=900, help="seconds allowed per job")
    parser.add_argument("--rounds", type=int, default=1,
                        help="measure everything this many times, interleaved, and take medians (default 1)")
    parser.add_argument("--data-on", choices=("root", "every"), default="root",
                        help="the data on rank 0 alone, as minidl train (default), or on every rank")
    parser.add_argument("--json", help="also write the measurements here")
    parser.add_argument("--worker", choices=ARCHS, help=argparse.SUPPRESS)
    parser.add_argument("--exchange", choices=("gradients", "none"), default="gradients", help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.worker:
        worker(options.worker, options.samples, options.epochs, options.batch_size, options.repeats,
               options.data_on, options.exchange)
        return 0
    if options.quick:
        options.samples, options.repeats = 512, 2
    policy = scheduler()
    if not policy.startswith("SCHED_OTHER"):
        print(f"warning: running under {policy}; the kernel holds real-time processes off their core for "
              "50 ms of every second once they have used the rest (sched_rt_runtime_us), and a stall of one rank "
              "stalls the other in lock step: run this without chrt -f", file=sys.stderr, flush=True)
    rounds = [measure_round(options) for _ in range(options.rounds)]
    print(f"weak scaling, {options.batch_size} samples per rank and step, {options.samples} samples per epoch, "
          f"one thread per rank, data on {'rank 0' if options.data_on == 'root' else 'every rank'}; "
          f"{os.cpu_count()} cores; medians of {options.rounds} round(s); load: the 1-minute load average before "
          "the jobs")
    print(table(rounds, options.models))
    if options.json:
        Path(options.json).write_text(json.dumps(rounds, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
