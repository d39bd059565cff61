"""The malicious-URL pipeline of the 2017 notebook "Featureless Deep Learning for Detection
of Malicious URLs" (incertum/cyber-matrix-ai), step by step, with minidl.

    python examples/seed_walkthrough.py                  # about 2 minutes on 2 busy cores
    python examples/seed_walkthrough.py --quick          # tiny sizes: a smoke run in seconds
    python examples/seed_walkthrough.py --data url-incertum-mega --limit 20000

(from the repository root after `pip install -e .`, or with PYTHONPATH=.)

It prints as it goes, as the notebook does:
  0. terminology: batch size, iterations, epoch (1000 samples at batch 500: 2 iterations);
  1. tokenise: each character -> its index in string.printable + 1;
  2. crop or pad every URL to 75 ids;
  3. the labels (0 benign, 1 malicious) and a split that keeps each host on one side;
  4. CBOW character embeddings (word2vec with characters as words) and their 2D plot;
  5. the three architectures (simple_lstm, lstm_conv, conv_fully), layer by layer:
     `Input Shape: (None, 75) Output Shape: (None, 75, 32)`;
  6. training, 7. evaluation on the held-out hosts, 8. saving, 9. loading,
  10. predicting new URLs;
  11. the notebook's own trained Keras 2.1.2 models (`deeplearning_*.json` / `.h5` of
      incertum/cyber-matrix-ai, when a shared-data folder holds them), imported with
      `minidl import-keras`, scoring the same URLs as the notebook does.

Data (--data): a registered data set name (found in $MINIDL_DATA_DIR, ~/.cache/minidl or
../shared/data next to the repository; downloaded and verified when it is published),
a CSV path with `url,isMalicious` columns, or `generated` (made-up URLs, for a run with no
data at all). The default is url-bahnsen-phishing-sample, the labelled sample that ships
inside minidl (so a fresh clone runs with no data folder), cut to --limit URLs; the
full phishing set it was drawn from is `--data url-bahnsen-phishing40k`. The notebook's own data, url_data_mega_deep_learning.csv (194,798 URLs) from
incertum/cyber-matrix-ai, is registered as url-incertum-mega: `--data url-incertum-mega`
downloads it into $MINIDL_DATA_DIR (default ~/.cache/minidl) and checks its git blob id.

Outputs under --out (default runs/walkthrough/): cbow_embedding.png (with matplotlib),
and one model file per architecture that the command line reads:
`minidl predict --model runs/walkthrough/conv_fully.mdl github.com/numpy/numpy`.

The notebook trains with Adam(lr=1e-4) for 5 epochs on 146,000 URLs, about 23,000
steps. A walkthrough on a few thousand URLs takes a hundred or so steps, so it trains
with lr 1e-3 (--lr) and starts the embeddings from the CBOW vectors of step 4, as the
notebook describes (--no-cbow-init starts them at random, as its notebook's code does).

It runs on one thread (--threads 1): these models multiply small matrices, and on a small
machine shared with other work, Numba's and BLAS' extra threads wait on each other far
longer than they compute (5-9x slower measured on a loaded 2-core machine). Raise
--threads on an idle machine with more cores.
"""
import argparse
import contextlib
import importlib.util
import math
import os
import string
import time
from pathlib import Path

import numba
import numpy as np

import minidl
from minidl import cli
from minidl.data import (
    DATASETS,
    CharTokenizer,
    fetch,
    get_dataset,
    load_url_csv,
    normalize_url,
    pad_sequences,
    split_by_host,
)
from minidl.models import (
    build_model,
    character_labels,
    pca_2d,
    plot_embedding,
    train_cbow,
)
from minidl.nn import print_layers_dims
from minidl.train import evaluate, fit, predict

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
SEED_MODELS = Path("keras-seed-models") / "original"  # under the shared data folder
DEFAULT_DATA = "url-bahnsen-phishing-sample"  # inside the package: a fresh clone has it
FULL_DATA = "url-incertum-mega"
#: Where the notebook's trained models are published (step 11 imports them when they are here).
NOTEBOOK_MODELS = ("github.com/incertum/cyber-matrix-ai, commit 72f42fbf, folder "
                  "Malicious-URL-Detection-Deep-Learning/data/ (deeplearning_LSTM.json/.h5, "
                  "deeplearning_1DConvLSTM.json/.h5, deeplearning_1DConv.json)")

#: The notebook's two new URLs, then a few of our own (written as typed: the scheme and
#: 'www.' are removed before scoring, as they were from the training data).
NEW_URLS = (
    "naureen.net/etisalat.ae/index2.php",
    "sixt.com/php/reservation?language=en_US",
    "https://www.github.com/numpy/numpy",
    "http://paypal.com.account-verify.example/signin/update.php?cmd=login",
    "https://en.wikipedia.org/wiki/Deep_learning",
)

#: Model sizes: the notebook's, and tiny ones for --quick (a smoke run).
SIZES = {
    "notebook": {
        "simple_lstm": {"lstm_output_size": 32},
        "lstm_conv": {"lstm_output_size": 32, "filters": 256},
        "conv_fully": {"filters": 256, "hidden_units": (1024, 1024)},
    },
    "quick": {
        "simple_lstm": {"lstm_output_size": 8},
        "lstm_conv": {"lstm_output_size": 8, "filters": 8},
        "conv_fully": {"filters": 8, "hidden_units": (16, 16)},
    },
}


def heading(text):
    print(f"\n=== {text} " + "=" * max(3, 76 - len(text)))


# ------------------------------------------------------------------------- data
def generated_urls(n, seed):
    """`n` made-up URLs, half benign-looking and half phishing-looking, and their 0/1
    labels: only so that the pipeline runs where no real data is at hand."""
    rng = np.random.default_rng(seed)
    words = ["news", "shop", "blog", "docs", "maps", "mail", "video", "cloud", "photo", "music", "sport", "travel"]
    brands = ["paypal", "apple", "amazon", "bank", "microsoft", "netflix"]
    urls, labels = [], []
    for i in range(n):
        word, other = rng.choice(words, 2, replace=False)
        if i % 2 == 0:
            urls.append(f"{word}{other}.{rng.choice(['com', 'org', 'net'])}/{other}/{rng.integers(1, 999)}.html")
        else:
            token = "".join(rng.choice(list(string.ascii_lowercase + string.digits), rng.integers(6, 16)))
            tld = rng.choice(["xyz", "top", "info"])
            host = f"{rng.choice(brands)}.{rng.choice(['com', 'co'])}-{word}-{token}.{tld}"
            urls.append(f"{host}/{rng.choice(['login', 'verify', 'signin'])}.php?id={token}")
        labels.append(i % 2)
    return urls, np.array(labels, dtype=np.int64)


def load_urls(spec, limit, seed):
    """(urls, labels, description) for --data, a seeded random subset of `limit` rows."""
    if spec == "generated":
        urls, labels = generated_urls(limit, seed)
        return urls, labels, f"{limit} generated URLs (made up: the numbers below say nothing about real URLs)"
    path, columns = Path(spec).expanduser(), ("url", "isMalicious")
    if not path.is_file():
        if spec not in DATASETS:
            raise SystemExit(f"--data {spec}: no such file and no registered data set of that name "
                             f"(known: {', '.join(sorted(DATASETS))}; or --data generated)")
        shared = os.environ.get("MINIDL_SHARED_DATA_DIR") or (SHARED_DATA if SHARED_DATA.is_dir() else None)
        try:
            path = fetch(spec, shared_dir=shared)
        except FileNotFoundError as error:
            raise SystemExit(f"{error}\n(or run with --data {DEFAULT_DATA}, the sample inside minidl, with "
                             f"--data generated, or with --data {FULL_DATA} to download the notebook's data)") from None
        columns = (DATASETS[spec].text_column, DATASETS[spec].label_column)
    urls, labels, _ = load_url_csv(path, *columns)
    urls = [normalize_url(url) for url in urls]
    if limit < len(urls):
        keep = np.sort(np.random.default_rng(seed).choice(len(urls), limit, replace=False))
        urls, labels = [urls[i] for i in keep], labels[keep]
    return urls, labels, f"{path} ({len(urls)} URLs kept)"


# ------------------------------------------------------------------------ steps
def iterations_per_epoch(samples, batch_size):
    return math.ceil(samples / batch_size)


def step_terminology():
    heading("Step 0: batch size, iterations, epoch")
    print("batch size: the URLs in one forward/backward pass; epoch: one pass over all the")
    print("training URLs; iterations: the passes one epoch takes, ceil(samples / batch size).")
    print(f"The notebook's example: 1000 samples at batch size 500 -> {iterations_per_epoch(1000, 500)} "
          "iterations per epoch.")


def step_tokenise(tokenizer, urls):
    heading("Step 1: tokenise (each character -> string.printable.index(c) + 1)")
    test_url = "https://www.google.com/search?q=URL"
    print(f"the notebook's URL   {test_url}")
    print(f"its ids             {[string.printable.index(c) + 1 for c in test_url if c in string.printable]}")
    print(f"CharTokenizer       {tokenizer.tokenize([test_url])[0][0].tolist()}")
    sample = urls[0]
    print(f"a URL of the data   {sample}")
    print(f"its ids             {tokenizer.tokenize([sample])[0][0].tolist()}")
    print(f"vocabulary: {len(string.printable)} printable characters + padding id 0 = {tokenizer.vocab_size} ids; "
          "other characters are dropped")


def step_pad(tokenizer, urls):
    heading(f"Step 2: crop or pad every URL to {tokenizer.max_len} ids")
    short, long = min(urls, key=len), max(urls, key=len)
    google = [17, 25, 25, 17, 22, 15]
    print(f"pad_sequences([{google}], maxlen=8) -> {pad_sequences([google], maxlen=8)[0]} (zeros in front)")
    print(f"shortest URL ({len(short)} chars) {short!r} ->\n{tokenizer.encode([short])[0]}")
    kept = tokenizer.decode(tokenizer.encode([long])[0])
    print(f"longest URL ({len(long)} chars) keeps its last {tokenizer.max_len}: {kept!r}")
    x = tokenizer.encode(urls)
    print(f"X: {x.shape} {x.dtype}; {np.mean([len(u) > tokenizer.max_len for u in urls]):.0%} of the URLs were cropped")
    return x


def step_labels(urls, x, labels, seed):
    heading("Step 3: labels, and a split by host")
    print(f"y: {labels.shape}, {int(labels.sum())} malicious (1) and {int((labels == 0).sum())} benign (0)")
    print("The notebook splits 75/25 at random. Pages of one host on both sides would let a model pass")
    print("by remembering host names, so here every host is wholly in train or in test (split_by_host).")
    urls_train, urls_test, x_train, x_test, y_train, y_test = split_by_host(urls, x, labels, test_size=0.25, seed=seed)
    print(f"train: {len(y_train)} URLs ({y_train.mean():.0%} malicious); test: {len(y_test)} URLs "
          f"({y_test.mean():.0%} malicious), no host in both")
    return urls_train, x_train, x_test, y_train, y_test


def nearest_characters(matrix, labels, characters, count=4):
    """For each character, the `count` others whose vectors are closest in cosine."""
    unit = matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
    lines = []
    for char in characters:
        row = labels.index(char)
        similarity = unit @ unit[row]
        similarity[[row, 0]] = -np.inf  # itself and the padding id
        lines.append(f"  {char!r}: " + " ".join(repr(labels[i]) for i in np.argsort(-similarity)[:count]))
    return "\n".join(lines)


def step_cbow(tokenizer, urls_train, dim, epochs, max_pairs, seed, out):
    heading("Step 4: CBOW character embeddings (word2vec, each character a word)")
    print("Each character is predicted from the mean vector of the 2 characters on either side;")
    print(f"the {tokenizer.vocab_size} x {dim} matrix learnt on the way is the embedding.")
    sequences, _ = tokenizer.tokenize(urls_train)
    matrix = train_cbow(sequences, tokenizer.vocab_size, dim=dim, window=2, epochs=epochs, max_pairs=max_pairs,
                        seed=seed, verbose=True)
    labels = character_labels(tokenizer)
    print(f"embedding matrix {matrix.shape}; nearest characters by cosine:")
    print(nearest_characters(matrix, labels, ["a", "0", ".", "/"]))
    points = pca_2d(matrix)
    print(f"2D projection (PCA): '.' at {np.round(points[labels.index('.')], 2)}, "
          f"'/' at {np.round(points[labels.index('/')], 2)}")
    try:
        path = plot_embedding(matrix, labels, out / "cbow_embedding.png", title="CBOW character embeddings (PCA)")
        print(f"wrote the 2D plot to {path}")
    except ImportError as error:
        print(f"(no plot: {error})")
    return matrix


def step_architectures(vocab_size, emb_dim, sizes, embedding_init, seed):
    heading("Step 5: the three architectures, dimensions layer by layer")
    models = {}
    for arch in sizes:  # the source's three
        minidl.manual_seed(seed)
        model = build_model(arch, max_vocab_len=vocab_size, emb_dim=emb_dim, embedding_init=embedding_init,
                            **sizes[arch])
        print(f"\n--- {arch}: {model.count_params():,} parameters")
        print_layers_dims(model)
        if arch == "conv_fully":
            width = model.filters * len(model.kernel_sizes)
            print(f"(the {len(model.kernel_sizes)} branches are concatenated: "
                  f"{len(model.kernel_sizes)} x (None, {model.filters}) -> (None, {width}))")
        models[arch] = model
    return models


def step_train(models, x_train, y_train, epochs, batch_size, lr):
    heading(f"Step 6: training ({epochs} epoch(s), batch size {batch_size}, Adam lr {lr})")
    steps = iterations_per_epoch(len(y_train), batch_size)
    print(f"{len(y_train)} training URLs at batch size {batch_size}: {steps} iterations per epoch, "
          f"{steps * epochs} in all")
    seconds = {}
    for arch, model in models.items():
        print(f"--- {arch}", flush=True)  # before fit's progress lines on stderr
        start = time.perf_counter()
        fit(model, x_train, y_train, epochs=epochs, batch_size=batch_size, optimizer=model.make_optimizer(lr),
            verbose=2)
        seconds[arch] = time.perf_counter() - start
    return seconds


def step_evaluate(models, x_test, y_test, seconds):
    heading(f"Step 7: evaluation on the {len(y_test)} test URLs (hosts never seen in training)")
    print(f"{'model':<12} {'params':>10} {'train s':>8} {'loss':>7} {'accuracy':>9} {'ROC AUC':>8} {'TPR@FPR1%':>10}")
    for arch, model in models.items():
        scores = evaluate(model, x_test, y_test)
        print(f"{arch:<12} {model.count_params():>10,} {seconds[arch]:>8.1f} {scores['loss']:>7.4f} "
              f"{scores['accuracy']:>9.4f} {scores['roc_auc']:>8.4f} {scores['tpr_at_fpr_1e-2']:>10.4f}")


def step_save(models, tokenizer, out, description):
    heading("Step 8: saving (architecture as JSON + weights + checksum, one file per model)")
    paths = {}
    for arch, model in models.items():
        paths[arch] = out / f"{arch}.mdl"
        minidl.io.save(paths[arch], model, extra={"tokenizer": tokenizer.get_config(), "arch": arch,
                                                  "data": description})
        print(f"{arch:<12} -> {paths[arch]} ({paths[arch].stat().st_size / 1024:,.0f} KiB)")
    return paths


def step_load(models, paths, x_check):
    heading("Step 9: loading, and the same predictions as before saving")
    loaded = {}
    for arch, path in paths.items():
        model, extra, _ = minidl.io.load(path)
        same = np.allclose(predict(model, x_check), predict(models[arch], x_check), rtol=1e-5, atol=1e-6)
        print(f"{arch:<12} <- {path}: {type(model).__name__}, tokeniser max_len {extra['tokenizer']['max_len']}, "
              f"same predictions: {same}")
        if not same:
            raise SystemExit(f"{path}: the loaded model predicts differently from the saved one")
        loaded[arch] = (model, CharTokenizer.from_config(extra["tokenizer"]))
    return loaded


def print_scores(loaded, urls):
    """A table: each URL's probability of malicious under each (model, tokenizer) of `loaded`."""
    print(f"{'URL':<66} " + " ".join(f"{arch:>11}" for arch in loaded))
    columns = {arch: predict(model, tokenizer.encode([normalize_url(url) for url in urls])).reshape(-1)
               for arch, (model, tokenizer) in loaded.items()}
    for i, url in enumerate(urls):
        print(f"{url[:66]:<66} " + " ".join(f"{columns[arch][i]:>11.3f}" for arch in loaded))


def step_predict(loaded, urls):
    heading("Step 10: predicting new URLs (probability of malicious, threshold 0.5)")
    print_scores(loaded, urls)
    print("(the notebook's models call the first URL malicious and the second benign; models trained on a few")
    print("thousand URLs for a few epochs show that the pipeline works, not what it can do: for that, train")
    print(f"on the full data, --data {FULL_DATA} --limit 200000 --epochs 5)")


def step_notebook_models(folder, out, urls):
    """Import the notebook's trained Keras models from `folder` with `minidl import-keras`
    and score `urls` with them; the conv + fully connected one has no weights there, so
    only its architecture is imported, to compare parameter counts with Keras'."""
    heading("Step 11: the notebook's own trained models (Keras 2.1.2), imported")
    if not folder.is_dir():
        print(f"(the notebook's model files are not on this machine ({folder}); they are published at "
              f"{NOTEBOOK_MODELS}: put them in that folder, or set MINIDL_SHARED_DATA_DIR to a folder holding "
              f"{SEED_MODELS}/, to import them here)")
        return None
    if importlib.util.find_spec("h5py") is None:
        print("(importing Keras' HDF5 weights needs h5py: pip install 'minidl[keras]')")
        return None
    print("The notebook saved its trained simple_lstm and lstm_conv (JSON architecture + HDF5 weights). Their")
    print("LSTMs gate with Keras 2's hard_sigmoid, clip(0.2 x + 0.5, 0, 1), which minidl's LSTM takes as")
    print("recurrent_activation='hard_sigmoid'; weights keep Keras' layout and gate order i, f, c, o.")
    loaded = {}
    for stem, arch in (("LSTM", "simple_lstm"), ("1DConvLSTM", "lstm_conv")):
        path = out / f"notebook_{arch}.mdl"
        print(f"$ minidl import-keras --config {folder / f'deeplearning_{stem}.json'} "
              f"--weights {folder / f'deeplearning_{stem}.h5'} --output {path}")
        if cli.main(["import-keras", "--config", str(folder / f"deeplearning_{stem}.json"),
                     "--weights", str(folder / f"deeplearning_{stem}.h5"), "--output", str(path)]) != 0:
            raise SystemExit(f"importing the notebook's {arch} failed (see the error above)")
        model, extra, _ = minidl.io.load(path)
        loaded[f"keras_{arch.split('_')[-1]}"] = (model, CharTokenizer.from_config(extra["tokenizer"]))
    print_scores(loaded, urls)
    print("(the notebook's notebook reports the same verdicts: the first URL malicious, the second benign)")
    lambdas = ",".join(f"lambda_{i}" for i in range(1, 5))
    print(f"$ minidl import-keras --config {folder / 'deeplearning_1DConv.json'} --lambda {lambdas}=sum "
          f"--output {out / 'notebook_conv_fully.mdl'}")
    print("(its four Lambda layers hold marshalled Python bytecode, which minidl never runs: --lambda says what")
    print("the notebook's source shows they compute, K.sum(x, axis=1). Its weights are not in the notebook's")
    print("repository, so the file holds an untrained model with Keras' parameter count:)")
    cli.main(["import-keras", "--config", str(folder / "deeplearning_1DConv.json"), "--lambda", f"{lambdas}=sum",
              "--output", str(out / "notebook_conv_fully.mdl")])
    return loaded


@contextlib.contextmanager
def thread_limit(threads):
    """Numba's and (with threadpoolctl, which scikit-learn brings) BLAS' threads capped at
    `threads` inside the block."""
    previous = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            print("(threadpoolctl is not installed: BLAS keeps its own thread count; set OPENBLAS_NUM_THREADS)")
            limits = contextlib.nullcontext()
        else:
            limits = threadpool_limits(threads)
        with limits:
            yield
    finally:
        numba.set_num_threads(previous)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--data", default=DEFAULT_DATA,
                        help="a registered data set, a CSV with url,isMalicious columns, or 'generated'")
    parser.add_argument("--limit", type=int, default=None, help="URLs used (a seeded random subset); "
                        "default 4000, 200 with --quick")
    parser.add_argument("--epochs", type=int, default=None, help="default 3, 1 with --quick")
    parser.add_argument("--batch-size", type=int, default=32, help="batch size")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam's learning rate (the 2017 notebook trains with 1e-4 for many more steps)")
    parser.add_argument("--no-cbow-init", action="store_true", help="start the models' embeddings at random")
    parser.add_argument("--seed", type=int, default=33,
                        help="seed of the subset, the split, the initial weights and the shuffling")
    parser.add_argument("--threads", type=int, default=1, help="Numba and BLAS threads (see the docstring)")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "walkthrough",
                        help="where the model files and the embedding plot go")
    parser.add_argument("--quick", action="store_true", help="tiny models and data: a smoke run in seconds")
    args = parser.parse_args(argv)
    args.limit = args.limit or (200 if args.quick else 4000)
    if args.epochs is None:
        args.epochs = 1 if args.quick else 3
    if args.limit < 20 or min(args.epochs, args.batch_size, args.threads) < 1:
        parser.error("--limit must be at least 20, --epochs, --batch-size and --threads at least 1")
    return args


def main(argv=None):
    args = parse_args(argv)
    with thread_limit(args.threads):
        walk_through(args)


def walk_through(args):
    started = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    emb_dim = 8 if args.quick else 32
    urls, labels, description = load_urls(args.data, args.limit, args.seed)
    full = get_dataset(FULL_DATA)
    print(f"data: {description}")
    print(f"the notebook's full data set: {full.description}; `--data {FULL_DATA}` downloads it from {full.url}")

    step_terminology()
    tokenizer = CharTokenizer(max_len=75)
    step_tokenise(tokenizer, urls)
    x = step_pad(tokenizer, urls)
    urls_train, x_train, x_test, y_train, y_test = step_labels(urls, x, labels, args.seed)
    cbow = step_cbow(tokenizer, urls_train, emb_dim, 1 if args.quick else 3, 2000 if args.quick else 50000,
                     args.seed, args.out)
    models = step_architectures(tokenizer.vocab_size, emb_dim, SIZES["quick" if args.quick else "notebook"],
                                None if args.no_cbow_init else cbow, args.seed)
    seconds = step_train(models, x_train, y_train, args.epochs, args.batch_size, args.lr)
    step_evaluate(models, x_test, y_test, seconds)
    paths = step_save(models, tokenizer, args.out, description)
    loaded = step_load(models, paths, x_test[:64])
    step_predict(loaded, NEW_URLS)
    shared = Path(os.environ.get("MINIDL_SHARED_DATA_DIR") or SHARED_DATA)
    step_notebook_models(shared / SEED_MODELS, args.out, NEW_URLS)
    print(f"\ndone in {time.perf_counter() - started:.0f} s; try: "
          f"minidl predict --model {paths['conv_fully']} github.com/numpy/numpy")


if __name__ == "__main__":
    main()
