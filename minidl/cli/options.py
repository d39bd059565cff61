"""What the commands share on the command line: the parser with one-line usage errors,
the two kinds of user error, the argument types and the options several commands take."""
import argparse
import re

from minidl import backend
from minidl.data.labelled import DEFAULT_DATA
from minidl.models.recipes import RECIPES
from minidl.models.url import POOLINGS
from minidl.train.progress import ABBREVIATIONS, logged_name

PROGRAM = "minidl"
BAD_INPUT, BAD_USAGE = 1, 2
#: The metrics evaluate prints, in order; with "val_" in front, what --monitor may watch.
SCORES = ("loss", "accuracy", "roc_auc", "precision", "recall", "f1", "tpr_at_fpr_1e-2", "tpr_at_fpr_1e-3")
#: The training metrics fit logs every epoch.
TRAINING_METRICS = ("loss", "accuracy", "roc_auc")
PLOT_INSTALL = "pip install -e \".[plot]\""


class UserError(Exception):
    """Bad input found while running a command: reported as one line, exit status 1."""


class UsageError(UserError):
    """Options that do not go together: reported as one line, exit status 2, as argparse does."""


class Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors in the command's words:
    `minidl train: error: --arch: choose from simple_lstm, lstm_conv, ...`, exit status 2."""

    def error(self, message):
        self.exit(BAD_USAGE, f"{self.prog}: error: {plain_usage_error(message)}\n")


def plain_usage_error(message):
    """argparse's message without its jargon: 'argument --arch: invalid choice: 'x'
    (choose from 'a', 'b')' -> "--arch: choose from a, b (got 'x')"."""
    message = re.sub(r"^argument ", "", message)
    choice = re.match(r"(?P<option>.+?): invalid choice: (?P<got>.+?) \(choose from (?P<choices>.*)\)$", message)
    if choice:
        choices = ", ".join(part.strip().strip("'") for part in choice["choices"].split(","))
        return f"{choice['option']}: choose from {choices} (got {choice['got']})"
    kind = re.match(r"(?P<option>.+?): invalid (?P<kind>int|float) value: (?P<got>.*)$", message)
    if kind:
        expected = "an integer" if kind["kind"] == "int" else "a number"
        return f"{kind['option']}: expected {expected}, got {kind['got']}"
    return message


# ------------------------------------------------------------------ argument types
def bounded_number(convert, in_range, expected):
    """An argparse type: `convert(text)`, refused with "expected <expected>" when the text
    is not such a number or `in_range(value)` is false."""
    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not in_range(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value
    return parse


positive_int = bounded_number(int, lambda value: value >= 1, "a positive integer")
nonnegative_int = bounded_number(int, lambda value: value >= 0, "0 or a positive integer")
positive_number = bounded_number(float, lambda value: value > 0, "a positive number")
fraction = bounded_number(float, lambda value: 0 <= value < 1, "a number in [0, 1)")
open_fraction = bounded_number(float, lambda value: 0 < value < 1, "a number between 0 and 1 (both excluded)")
probability = bounded_number(float, lambda value: 0 <= value <= 1, "a probability in [0, 1]")


def int_list(text):
    """'2,3,4,5' -> (2, 3, 4, 5), for argparse."""
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers separated by commas, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def monitor_names():
    """The names --monitor accepts, as the progress bar shows them."""
    names = [*TRAINING_METRICS, *(f"val_{name}" for name in SCORES)]
    return [ABBREVIATIONS.get(name, name) for name in names]


def metric_name(text):
    """A metric as fit logs it, from the bar's short name or the full one, for argparse."""
    accepted = {logged_name(name) for name in monitor_names()}
    if logged_name(text) not in accepted:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(monitor_names())} (got {text!r})")
    return logged_name(text)


# ------------------------------------------------------------------ shared options
def add_data_options(parser, default_help=f"default: {DEFAULT_DATA}, the 6,152-row URL sample inside minidl",
                     seed_help="the subset, the split and the initial weights"):
    parser.add_argument("--data",
                        help="a CSV file (or a folder holding one), a registered data set name, such as "
                             f"url-iscx2016 ({default_help}), or a mix of URL sources: url-mix or registered "
                             "sets joined by commas (minidl.data.mix); URLs lose a scheme and a leading www. as "
                             "in the data sets")
    parser.add_argument("--url-column", help="the URL column (default: url, or the data set's)")
    parser.add_argument("--label-column", help="the 0/1 label column (default: isMalicious, or the data set's)")
    parser.add_argument("--bad-rows", choices=("raise", "skip"), default="raise",
                        help="stop at a malformed row (raise, the default) or skip it and count it")
    parser.add_argument("--limit", type=positive_int, metavar="N",
                        help="use a seeded random subset of N rows (quick runs; default: every row)")
    parser.add_argument("--seed", type=int, default=33,
                        help=f"random seed of {seed_help} (default 33, the 2017 notebook's random_state)")


def add_size_options(parser, max_len_help):
    sizes = parser.add_argument_group("model sizes (default: each architecture's own)")
    sizes.add_argument("--max-len", type=positive_int, help=f"characters per URL ({max_len_help})")
    sizes.add_argument("--emb-dim", type=positive_int, help="embedding dimension (default 32)")
    sizes.add_argument("--lstm-units", type=positive_int, help="LSTM units (simple_lstm, lstm_conv; default 32)")
    sizes.add_argument("--filters", type=positive_int,
                       help="convolution filters (lstm_conv, conv_fully: default 256; conv_max: 128)")
    sizes.add_argument("--kernel-size", type=positive_int, help="convolution width (lstm_conv; default 5)")
    sizes.add_argument("--pool-size", type=positive_int, help="max-pooling size (lstm_conv; default 4)")
    sizes.add_argument("--kernel-sizes", type=int_list,
                       help="branch widths (conv_fully, conv_max; default 2,3,4,5)")
    sizes.add_argument("--hidden-units", type=int_list,
                       help="hidden layer sizes (conv_fully; default 1024,1024; conv_max has none)")
    sizes.add_argument("--pooling", choices=list(POOLINGS),
                       help="each branch's reduction over time (default: conv_fully sum, conv_max max)")


def add_runtime_options(parser, default):
    """--threads and --device: on the main parser with their defaults, and on each
    command with `default` argparse.SUPPRESS, so that they may come after its name."""
    parser.add_argument("--threads", type=positive_int, metavar="N", default=default,
                        help="CPU threads minidl uses (default: the idle cores, every core on an idle machine)")
    parser.add_argument("--device", choices=backend.DEVICES, default=default,
                        help="where to compute (default: cpu, or $MINIDL_DEVICE); cuda needs CuPy and a GPU "
                             "(pip install -e \".[gpu]\")")
    return parser


def add_target_fpr_option(parser):
    parser.add_argument("--target-fpr", type=probability, default=1e-3,
                        help="choose the decision threshold on the validation part so that at most this fraction "
                             "of its benign URLs is called malicious, and store it in the model file for predict "
                             "and evaluate (default 1e-3; without a validation part the threshold is 0.5)")


def add_threshold_option(parser):
    parser.add_argument("--threshold", type=probability,
                        help="probability above which a URL is called malicious (default: the threshold `minidl "
                             "train --target-fpr` stored in the model file, else 0.5)")


def recipe_help(name, describe=str):
    """'(default: the recipe's: wide_conv_max in best, simple_lstm in source)' for option `name`."""
    values = ", ".join(f"{describe(recipe[name])} in {recipe_name}" for recipe_name, recipe in RECIPES.items())
    return f"(default: the recipe's: {values})"
