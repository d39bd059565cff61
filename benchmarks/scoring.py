"""Streaming batch scoring: `minidl predict --file` on a generated URL log, in URLs per
second and peak memory, on one process and under `mpiexec -n 2`.

    python -m benchmarks.scoring [--lines 100000 1000000] [--ranks 1 2] [--arch simple_lstm] [--json scoring.json]

Needs the `mpi` extra for more than one rank. The log is generated once per length into
a temporary folder (`--folder` keeps it): URLs drawn from a seeded generator, half of
them benign-looking, half phishing-looking, 30 to 120 characters. The model is `--arch`
with its default (the source's) sizes and the command line's tokeniser, untrained: the
time to score does not depend on the weights. Each measurement is a fresh job,
`[mpiexec -n R] python -m benchmarks.scoring --worker ...`, one thread per rank (the
variables of minidl.distributed.LAUNCH_ENVIRONMENT); in it every rank runs
`minidl.cli.main(["predict", "--model", ..., "--file", LOG])` with its stdout in a file
and reports its wall time (model loading included) and its peak resident memory
(`getrusage`'s ru_maxrss, which includes the interpreter, NumPy, Numba and the model).
The table gives the job's URLs per second and the largest rank's peak; the scores of
every job are checked equal to the first one's, line for line.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
WORDS = ("news", "shop", "maps", "blog", "docs", "mail", "wiki", "home", "team", "code", "cloud", "store")
TLDS = ("com", "org", "net", "io", "de", "co.uk", "xyz", "tk", "ru", "info")


def write_log(path, lines, seed=0):
    """`lines` generated URLs, one per line, written 100,000 at a time."""
    rng = np.random.default_rng(seed)
    with open(path, "w", encoding="utf-8") as stream:
        for start in range(0, lines, 100_000):
            rows = []
            for _ in range(min(100_000, lines - start)):
                host = f"{rng.choice(WORDS)}{rng.integers(0, 10**rng.integers(1, 7))}.{rng.choice(TLDS)}"
                if rng.random() < 0.5:
                    path_part = "/".join(rng.choice(WORDS, rng.integers(1, 5)))
                    rows.append(f"{host}/{path_part}/index.html")
                else:
                    token = "".join(rng.choice(list("abcdef0123456789"), rng.integers(8, 40)))
                    rows.append(f"{host}/login/verify.php?session={token}&id={rng.integers(0, 10**9)}")
            stream.write("\n".join(rows) + "\n")


def write_model(path, arch):
    """An untrained `arch` with default sizes and the command line's tokeniser settings."""
    import minidl
    from minidl.data import CharTokenizer
    from minidl.io import save
    from minidl.models import build_model

    minidl.manual_seed(0)
    tokenizer = CharTokenizer()
    save(path, build_model(arch, max_vocab_len=tokenizer.vocab_size), extra={"tokenizer": tokenizer.get_config()})


# ------------------------------------------------------------------ one job
def worker(model, log, out):
    """Run inside every rank: score the log with the command line, print one JSON line."""
    from minidl.cli import main
    from minidl.distributed import launch_rank

    rank = launch_rank()
    start = time.perf_counter()
    with open(f"{out}.rank{rank}", "w", encoding="utf-8") as stream:
        saved, sys.stdout = sys.stdout, stream
        try:
            status = main(["predict", "--model", str(model), "--file", str(log)])
        finally:
            sys.stdout = saved
    seconds = time.perf_counter() - start
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps({"rank": rank, "status": status, "seconds": seconds, "peak_mib": peak_mib}), flush=True)


def run_job(model, log, lines, ranks, out, timeout):
    """One job's measurements: URLs/s of the whole job, the largest rank's peak memory."""
    from minidl.distributed import LAUNCH_ENVIRONMENT, launch_command

    argv = [sys.executable, "-m", "benchmarks.scoring", "--worker", str(model), str(log), str(out)]
    env = {**os.environ, **LAUNCH_ENVIRONMENT}
    if ranks > 1:
        argv, env = launch_command(ranks, argv)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    done = subprocess.run(argv, env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    reports = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or len(reports) != ranks or any(report["status"] for report in reports):
        raise RuntimeError(f"scoring on {ranks} ranks failed:\n{done.stderr[-2000:]}")
    seconds = max(report["seconds"] for report in reports)
    return {"lines": lines, "ranks": ranks, "urls_per_s": lines / seconds, "seconds": seconds,
            "peak_mib": max(report["peak_mib"] for report in reports),
            "peak_mib_per_rank": [report["peak_mib"] for report in sorted(reports, key=lambda r: r["rank"])],
            "reported": done.stderr.strip().splitlines()[-1], "load_average": os.getloadavg()}


def table(rows):
    lines = [f"{'lines':>10}{'ranks':>7}{'URLs/s':>10}{'seconds':>10}{'peak MiB (largest rank)':>26}"
             f"{'load avg (1 min)':>18}"]
    lines += [f"{row['lines']:>10,}{row['ranks']:>7}{row['urls_per_s']:>10,.0f}{row['seconds']:>10.1f}"
              f"{row['peak_mib']:>26.0f}{row['load_average'][0]:>18.2f}" for row in rows]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, nargs="+", default=[100_000, 1_000_000], help="log lengths")
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2], help="processes per job (default 1 2)")
    parser.add_argument("--arch", default="simple_lstm", help="the model (default simple_lstm)")
    parser.add_argument("--folder", help="keep the logs, the model and the outputs here")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds allowed per job")
    parser.add_argument("--json", help="also write the measurements here")
    parser.add_argument("--worker", nargs=3, metavar=("MODEL", "LOG", "OUT"), help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.worker:
        worker(*options.worker)
        return 0
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(options.folder or scratch)
        folder.mkdir(parents=True, exist_ok=True)
        model = folder / f"{options.arch}.mdl"
        write_model(model, options.arch)
        rows = []
        for lines in options.lines:
            log = folder / f"urls-{lines}.txt"
            if not log.is_file():
                write_log(log, lines)
            reference = None
            for ranks in options.ranks:
                out = folder / f"scores-{lines}-{ranks}.tsv"
                rows.append(run_job(model, log, lines, ranks, out, options.timeout))
                scores = Path(f"{out}.rank0").read_bytes()
                reference = reference or scores
                if scores != reference:
                    raise RuntimeError(f"{ranks} ranks scored {log} differently from {options.ranks[0]}")
                print(f"measured {lines:,} lines on {ranks} rank(s): {rows[-1]['reported']}", file=sys.stderr,
                      flush=True)
    print(f"minidl predict --file, {options.arch} (default sizes), one thread per rank")
    print(table(rows))
    if options.json:
        Path(options.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
