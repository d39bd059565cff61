"""The `minidl` command: train, evaluate and use the URL models, and pre-train
character embeddings. One module per command, each with `add_parser(commands,
runtime)` and `run(args)`; they parse, call the library and print.

    minidl train --output runs/url.mdl                   # the sample inside minidl, the best recipe
    minidl train --data url-iscx2016 --max-len 100 --early-stopping 3 --output runs/iscx.mdl
    minidl train --recipe source --data url-incertum-mega --output runs/source.mdl
    minidl evaluate --model runs/url.mdl --split test    # the model's own held-out test part
    minidl predict --model runs/url.mdl naureen.net/etisalat.ae/index2.php sixt.com/php/reservation?language=en_US
    minidl summary --model runs/url.mdl
    minidl train --arch ngram_linear --validation-split 0.1 --target-fpr 1e-3 --output runs/ngram.mdl
    minidl ensemble --model runs/url.mdl --model runs/ngram.mdl --output runs/both.mdl --data url-bahnsen-phishing-sample
    minidl embed --window 2 --dim 32 --output chars.npy --plot chars.png
    minidl export-onnx --model runs/url.mdl --output runs/url.onnx   # for ONNX Runtime (the onnx extra)

`--data` takes a CSV path, a folder holding one CSV, the name of a registered data set
(`minidl.data.DATASETS`; found in $MINIDL_DATA_DIR, ~/.cache/minidl, $MINIDL_SHARED_DATA_DIR
or ../shared/data beside a source checkout, and downloaded when published as is), or a mix
of URL sources (`url-mix`, or registered sets joined by commas: `minidl.data.mix`). Without
it, train and embed use the 6,152-row URL sample inside the package, url-bahnsen-phishing-sample.
A model file holds the tokeniser's settings, how the model was trained and its decision
threshold, so `predict` and `evaluate` need only the model.

Under an MPI launcher (`mpiexec -n 4 minidl train ...`) train, evaluate and predict
spread their work over the ranks (minidl.distributed); rank 0 alone prints and writes.

Bad input (a missing file, a wrong column, a malformed CSV row, an unreadable model file)
ends with one line on stderr and exit status 1; a wrong command line (an unknown option or
value, options that do not go together, an output path that cannot be written) with one
line and exit status 2; never a traceback (MINIDL_DEBUG=1 shows it).
"""
import argparse
import contextlib
import os
import sys
import time
import warnings

from minidl import backend
from minidl.cli import (
    embed,
    ensemble,
    evaluate,
    export_onnx,
    import_keras,
    predict,
    summary,
    train,
)
from minidl.cli.options import (
    BAD_INPUT,
    BAD_USAGE,
    PROGRAM,
    Parser,
    UsageError,
    UserError,
    add_runtime_options,
)
from minidl.cli.outputs import kernel_messages
from minidl.distributed import FOLLOW_ROOT_SECONDS, RootFailed, launch_rank
from minidl.kernels import set_num_threads
from minidl.version import __version__

#: The commands, in the order --help lists them.
COMMANDS = (train, evaluate, predict, ensemble, summary, embed, import_keras, export_onnx)


def build_parser():
    parser = Parser(prog=PROGRAM, description="Featureless malicious-URL detection with minidl.")
    parser.add_argument("--version", action="version", version=f"{PROGRAM} {__version__}")
    add_runtime_options(parser, default=None)
    runtime = add_runtime_options(Parser(add_help=False), default=argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.add_parser(commands, runtime)
    return parser


def selected_device(args):
    """The device to compute on, from --device or $MINIDL_DEVICE; a CUDA request on a
    machine without CuPy or a GPU names the setting that asked for it."""
    requested, source = args.device, "--device"
    if requested is None:
        requested, source = os.environ.get("MINIDL_DEVICE", "cpu"), "MINIDL_DEVICE"
    try:
        name = backend.check_device(requested)
        if name == "cuda":
            backend.cupy_module()
    except (ValueError, RuntimeError) as error:
        raise UserError(f"{source}={requested}: {error}") from None
    return name


@contextlib.contextmanager
def warnings_as_lines(command):
    """Python warnings as one line each, `minidl train: warning: ...`."""
    def show(message, category, filename, lineno, file=None, line=None):
        print(f"{PROGRAM} {command}: warning: {message}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = show  # catch_warnings puts the original back
        yield


def main(argv=None):
    """Run the command line; returns the exit status (0 ok, 1 bad input, 2 bad usage)."""
    args = build_parser().parse_args(argv)
    try:
        device = selected_device(args)
        if args.threads is not None:
            set_num_threads(args.threads)
        if launch_rank() > 0:  # under mpiexec rank 0 alone prints results; errors still reach stderr
            sys.stdout = open(os.devnull, "w", encoding="utf-8")
        with warnings_as_lines(args.command), backend.device(device), kernel_messages():
            return args.run(args)
    except KeyboardInterrupt:
        print(f"{PROGRAM}: interrupted", file=sys.stderr)
        return 130
    except RootFailed:  # under MPI: rank 0 failed and reports it; this rank ends quietly, after it
        time.sleep(FOLLOW_ROOT_SECONDS)
        return 1
    except (UserError, OSError, ValueError, ImportError, ArithmeticError) as error:
        # what users can get wrong (files, columns, CSV rows, model files, settings; a diverged training)
        if os.environ.get("MINIDL_DEBUG"):
            raise
        print(f"{PROGRAM} {args.command}: error: {error}", file=sys.stderr)
        return BAD_USAGE if isinstance(error, UsageError) else BAD_INPUT
