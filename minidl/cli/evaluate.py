"""`minidl evaluate`: a saved model's metrics on labelled URLs, or on its own held-out
test part."""
import sys

from minidl.cli.inputs import decision_threshold, describe_labels, load_labelled_urls, load_model_file, on_rank_zero
from minidl.cli.options import UsageError, add_data_options, add_threshold_option, positive_int
from minidl.cli.outputs import format_scores
from minidl.models.saved import recorded_test_part
from minidl.train import evaluate


def add_parser(commands, runtime):
    parser = commands.add_parser(
        "evaluate", parents=[runtime], help="metrics of a saved model on labelled URLs",
        description="Print a saved model's metrics on labelled URLs: --data, or the model's own held-out test "
                    "part (--split test).")
    parser.add_argument("--model", required=True, help="a model file written by `minidl train`")
    add_data_options(parser, default_help="needed unless --split test", seed_help="the --limit subset")
    parser.add_argument("--split", choices=("all", "test"), default="all",
                        help="all: every row of --data (the default); test: the test part recorded in the "
                             "model file, drawn again from its training data")
    add_threshold_option(parser)
    parser.add_argument("--batch-size", type=positive_int, default=256, help="batch size (default 256)")
    parser.set_defaults(run=run)


def run(args):
    model, tokenizer, extra = load_model_file(args.model)
    if args.split == "test":
        if args.data:
            raise UsageError("--split test scores the data the model was trained on; leave out --data")
    elif not args.data:
        raise UsageError("give --data (a CSV or a registered data set), or --split test for the model's own "
                         "held-out test part")

    def read():
        if args.split == "test":
            urls, labels, where = recorded_test_part(extra, f"--model {args.model}")
        else:
            urls, labels, where = load_labelled_urls(args)
            if extra.get("data_path") == where:
                print(f"note: {where} is the data the model was trained on, so these rows include its training "
                      "rows; --split test scores its held-out test part alone", file=sys.stderr)
        return (tokenizer.encode(urls), labels), f"{where}: {describe_labels(labels)}"

    threshold, source = decision_threshold(args, extra)
    (x, labels), found = on_rank_zero(read, (None, None))
    scores = evaluate(model, x, labels, batch_size=args.batch_size, threshold=threshold, distributed="auto")
    print(found)
    print(f"malicious above {threshold:.6g} ({source})")
    print(format_scores(scores))
    return 0
