"""The popular-hosts check: how many of the best-known sites a trained model calls malicious.

    python -m benchmarks.popular_hosts --model runs/url.mdl [--top 100,10000]

For each --top N: the first N hosts of the Alexa top-100,000 list (`domains-alexa100k`,
found as the registry finds it: $MINIDL_DATA_DIR or ../shared/data; the list has no
licence that allows shipping it, so it is read here and never copied into minidl), scored
bare (`google.com`) and with a `/` appended (`google.com/`), both through
`minidl.data.normalize_url` as `minidl predict` scores them. A host counts as called
malicious when its probability is above the model file's stored threshold (else 0.5, or
--threshold). Prints one line per N and form, and with --show the N hosts' scores.

Every host on the list is a legitimate site, so every one called malicious is a false
positive a user would meet in their first minutes.
"""
import argparse
import sys

import numpy as np

from minidl.data import load_dataset, normalize_url, tokenizer_from_config
from minidl.data.text import CharTokenizer

FORMS = {"bare": "{host}", "with /": "{host}/"}


def popular_hosts(count, **fetch_options):
    """The `count` most popular hosts of the Alexa list, most popular first."""
    hosts, _, _ = load_dataset("domains-alexa100k", **fetch_options)
    return hosts[:count]


def load_scorer(path):
    """(score(urls) -> probabilities, stored threshold) of a model file written by
    `minidl train` or `minidl ensemble`."""
    import minidl.models  # noqa: F401 - registers the URL model classes before loading
    from minidl.io import load
    from minidl.train import predict

    model, extra, _ = load(path)
    config = extra["tokenizer"]
    if config.get("class_name", "CharTokenizer") == "CharTokenizer":
        tokenizer = CharTokenizer(**{k: v for k, v in config.items() if k != "class_name"})
    else:
        tokenizer = tokenizer_from_config(config)

    def score(urls):
        x = tokenizer.encode([normalize_url(url) for url in urls])
        return predict(model, x, batch_size=1024).reshape(-1)

    threshold = extra.get("threshold")
    return score, 0.5 if threshold is None else float(threshold)


def called_malicious(score, hosts, threshold):
    """{form: (number called malicious, probabilities)} for the hosts bare and with '/'."""
    found = {}
    for form, pattern in FORMS.items():
        probabilities = score([pattern.format(host=host) for host in hosts])
        found[form] = (int(np.count_nonzero(probabilities > threshold)), probabilities)
    return found


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.popular_hosts", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, action="append",
                        help="a model file (.mdl); give it several times to check several models")
    parser.add_argument("--top", default="100,10000", help="comma-separated list sizes to check (default 100,10000)")
    parser.add_argument("--threshold", type=float, default=None,
                        help="call malicious above this probability (default: the model file's stored threshold)")
    parser.add_argument("--show", type=int, default=0, help="print the scores of the first N hosts")
    args = parser.parse_args(argv)
    sizes = sorted(int(size) for size in args.top.split(","))
    hosts = popular_hosts(sizes[-1])
    for path in args.model:
        score, stored = load_scorer(path)
        threshold = stored if args.threshold is None else args.threshold
        found = {size: called_malicious(score, hosts[:size], threshold) for size in sizes}
        for size in sizes:
            for form, (count, _) in found[size].items():
                print(f"{path}\ttop {size:,}\t{form}\t{count} called malicious ({count / size:.2%}) "
                      f"above {threshold:.6g}")
        if args.show:
            probabilities = found[sizes[-1]]["bare"][1]
            for host, probability in zip(hosts[:args.show], probabilities):
                print(f"{probability:.4f}\t{host}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
