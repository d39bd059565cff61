"""Scoring in ONNX Runtime against minidl's own predict: URLs per second of the exported
conv_max and simple_lstm on the same URLs, on one and two threads.

    python -m benchmarks.onnx_scoring [--urls 100000] [--threads 1 2] [--arch conv_max simple_lstm]
                                      [--batch-size 1024] [--repeats 3] [--json onnx_scoring.json]

Needs the `onnx` extra. The URLs are the embedded sample's (minidl.data.sample),
resampled and mutated with a seeded generator until there are --urls of them: each is a
sample URL with a few characters replaced, inserted or deleted and, for half of them, a
generated path or query appended, so that the set is not 6,152 URLs repeated. The
models are untrained, at their default (the source's) sizes: the time to score does not
depend on the weights. Both sides score the same token ids (the tokeniser runs once,
outside the timing: it is the same Python code in front of either), in batches of
--batch-size, minidl with `predict` and ONNX Runtime with `InferenceSession.run` on the
file `minidl.interop.onnx.export` wrote. The threads: minidl's `set_num_threads(n)`
(Numba's pool; BLAS stays on one thread) and ONNX Runtime's intra_op_num_threads=n
(inter-op 1). Each figure is the best of --repeats runs after one warm-up batch (Numba's
compilation and ONNX Runtime's first run are not timed). Every run's scores are checked
against minidl's to 1e-5. The ratio is ONNX Runtime's URLs per second over minidl's.
"""
import argparse
import json
import os
import tempfile
import time

import numpy as np

ARCHS = ("conv_max", "simple_lstm")
ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789-._/?=&"
PATH_WORDS = ("login", "account", "verify", "update", "secure", "index.php", "images", "docs", "api", "v2",
              "signin", "news", "static", "cart", "search")


def mutated_urls(count, seed=0):
    """`count` URLs: the embedded sample's, resampled and mutated (see the module)."""
    from minidl.data import load_dataset

    sample, _, _ = load_dataset("url-bahnsen-phishing-sample")
    rng = np.random.default_rng(seed)
    urls = []
    for url in rng.choice(sample, count):
        chars = list(url)
        for _ in range(rng.integers(1, 4)):
            position = int(rng.integers(0, len(chars) + 1))
            action = rng.integers(0, 3)
            if action == 0 and position < len(chars):
                chars[position] = ALPHABET[rng.integers(len(ALPHABET))]
            elif action == 1:
                chars.insert(position, ALPHABET[rng.integers(len(ALPHABET))])
            elif position < len(chars) and len(chars) > 1:
                del chars[position]
        if rng.random() < 0.5:
            words = "/".join(rng.choice(PATH_WORDS, rng.integers(1, 4)))
            chars += list(f"/{words}?id={rng.integers(0, 10**6)}")
        urls.append("".join(chars))
    return urls


def best_rate(score, count, repeats):
    """(URLs per second of the fastest of `repeats` runs, the last run's scores)."""
    best, scores = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        scores = score()
        best = min(best, time.perf_counter() - start)
    return count / best, scores


def measure(arch, urls, threads, batch_size, repeats, folder):
    """[{arch, threads, minidl, onnxruntime, ratio}] for one architecture."""
    import onnxruntime

    import minidl
    from minidl.data import CharTokenizer
    from minidl.interop.onnx import export
    from minidl.kernels import set_num_threads
    from minidl.models import build_model
    from minidl.train import predict

    minidl.manual_seed(0)
    tokenizer = CharTokenizer()
    model = build_model(arch, max_vocab_len=tokenizer.vocab_size).eval()
    ids = tokenizer.encode(urls)
    path = os.path.join(folder, f"{arch}.onnx")
    export(model, path, tokenizer=tokenizer)
    rows = []
    for count in threads:
        set_num_threads(count)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = count, 1
        session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])

        def run_minidl():
            return predict(model, ids, batch_size=batch_size)

        def run_onnx():
            return np.concatenate([session.run(None, {"ids": ids[start:start + batch_size]})[0]
                                   for start in range(0, len(ids), batch_size)])

        predict(model, ids[:batch_size], batch_size=batch_size)  # warm-up: Numba's compilation
        session.run(None, {"ids": ids[:batch_size]})
        minidl_rate, expected = best_rate(run_minidl, len(ids), repeats)
        onnx_rate, scores = best_rate(run_onnx, len(ids), repeats)
        difference = float(np.abs(scores - expected).max())
        if difference > 1e-5:
            raise SystemExit(f"{arch}: ONNX Runtime's scores differ from minidl's by {difference:.2e}")
        rows.append({"arch": arch, "threads": count, "urls": len(ids), "minidl": minidl_rate,
                     "onnxruntime": onnx_rate, "ratio": onnx_rate / minidl_rate, "max_difference": difference})
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--urls", type=int, default=100_000)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--arch", nargs="+", default=list(ARCHS), choices=ARCHS)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args(argv)
    urls = mutated_urls(args.urls)
    rows = []
    print(f"{args.urls:,} URLs, batches of {args.batch_size}, best of {args.repeats}")
    print(f"{'model':<12} {'threads':>7} {'minidl URLs/s':>14} {'ORT URLs/s':>12} {'ORT/minidl':>10}")
    with tempfile.TemporaryDirectory() as folder:
        for arch in args.arch:
            for row in measure(arch, urls, args.threads, args.batch_size, args.repeats, folder):
                rows.append(row)
                print(f"{arch:<12} {row['threads']:>7} {row['minidl']:>14,.0f} {row['onnxruntime']:>12,.0f} "
                      f"{row['ratio']:>10.2f}", flush=True)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as stream:
            json.dump(rows, stream, indent=1)


if __name__ == "__main__":
    main()
