"""`minidl import-keras`: a Keras 2 model (JSON architecture, HDF5 weights) as a minidl
model file with the 2017 notebook's tokeniser."""
import argparse
from pathlib import Path

import numpy as np

from minidl.cli.options import UserError
from minidl.data import CharTokenizer
from minidl.interop.keras import load_keras_model, read_keras_config
from minidl.io import save


def lambda_mapping(text):
    """'lambda_1,lambda_2=sum' -> {"lambda_1": "sum", "lambda_2": "sum"}, for argparse."""
    names, separator, reduction = text.partition("=")
    if not separator or not names.strip() or not reduction.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=REDUCTION (e.g. lambda_1=sum), got {text!r}")
    return {name.strip(): reduction.strip() for name in names.split(",") if name.strip()}


def add_parser(commands, runtime):
    parser = commands.add_parser(
        "import-keras", parents=[runtime],
        help="import a Keras 2 model (JSON architecture, HDF5 weights) as a model file",
        description="Read a Keras 2 model's JSON (model.to_json(), also JSON-encoded twice) and its HDF5 "
                    "weights (model.save_weights; needs h5py: pip install -e \".[keras]\") and write a "
                    "minidl model file with the 2017 notebook's tokeniser, for predict, evaluate and "
                    "summary. Lambda layers are never executed: map each to a reduction over time "
                    "with --lambda.")
    parser.add_argument("--config", required=True, help="the model's JSON file")
    parser.add_argument("--weights", help="its HDF5 weights (default: none, minidl's initial weights)")
    parser.add_argument("--output", required=True, help="where to write the minidl model file")
    parser.add_argument("--lambda", dest="lambdas", type=lambda_mapping, action="append", metavar="NAME=REDUCTION",
                        help="treat the Lambda layer(s) NAME (comma-separated) as a reduction over the time "
                             "axis: sum, mean or max (the 2017 notebook's conv_fully: lambda_1,lambda_2,lambda_3,"
                             "lambda_4=sum); repeatable")
    parser.set_defaults(run=run)


def run(args):
    lambdas = {}
    for mapping in args.lambdas or []:
        lambdas.update(mapping)
    for option, path in (("--config", args.config), ("--weights", args.weights)):
        if path is not None and not Path(path).is_file():
            raise UserError(f"{option} {path}: no such file")
    model = load_keras_model(args.config, args.weights, lambdas)
    shape = model.input_shape
    ids = isinstance(model.input_dtype, str) and np.issubdtype(np.dtype(model.input_dtype), np.integer)
    if not (ids and isinstance(shape, tuple) and len(shape) == 2 and shape[1] is not None):
        raise UserError(f"{args.config}: the model's input is {shape} {model.input_dtype}; the URL commands need "
                        "one input of character ids (batch, length)")
    # The notebook's tokeniser: string.printable index + 1, padded and cut at the front.
    tokenizer = CharTokenizer(max_len=shape[1], padding="pre", truncating="pre")
    keras_version = read_keras_config(args.config).get("keras_version", "unknown")
    extra = {"tokenizer": tokenizer.get_config(), "arch": f"keras:{model.name}",
             "keras": {"config": str(args.config), "weights": None if args.weights is None else str(args.weights),
                       "keras_version": keras_version, "lambdas": lambdas}}
    save(args.output, model, extra=extra)
    # Keras counts batch normalisation's moving statistics among the parameters.
    total = model.count_params() + sum(int(np.size(values)) for _, values in model.named_buffers())
    print(f"imported {model.name} (Keras {keras_version}): {len(model.layers)} layers, {total:,} parameters "
          f"as Keras counts them")
    if args.weights is None:
        print("no --weights: the model holds minidl's initial (untrained) weights")
    print(f"saved the model to {args.output} (tokeniser: string.printable index + 1, "
          f"padded and cut at the front to {shape[1]})")
    return 0
