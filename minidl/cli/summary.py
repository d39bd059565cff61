"""`minidl summary`: a Keras-like table of an architecture's layers, or of a saved
model's with how it was trained."""
from minidl.cli.inputs import load_model_file
from minidl.cli.options import SCORES, UsageError, add_size_options, positive_int
from minidl.models import build_model
from minidl.models.recipes import DEFAULT_RECIPE, RECIPES, SIZE_ARGUMENTS, accepted_settings, model_sizes
from minidl.models.registry import ARCHITECTURES
from minidl.nn import print_layers_dims, summary

#: Characters per URL when none is given: the default recipe's, as `minidl train` builds.
DEFAULT_MAX_LEN = RECIPES[DEFAULT_RECIPE]["max_len"]


def add_parser(commands, runtime):
    parser = commands.add_parser(
        "summary", parents=[runtime], help="print a model's layers, shapes and parameter counts",
        description="Print a Keras-like summary of an architecture, or of a saved model with how it was trained.")
    parser.add_argument("--arch", choices=list(ARCHITECTURES), help="an architecture, built with the sizes below")
    parser.add_argument("--model", help="a saved model file instead")
    parser.add_argument("--vocab-size", type=positive_int, default=101,
                        help="embedding rows (default 101, the tokeniser's ids 0-100; the 2017 notebook's Keras "
                             "models have 100)")
    add_size_options(parser, max_len_help=f"default {DEFAULT_MAX_LEN}, as `minidl train` builds it")
    parser.add_argument("--dims", action="store_true",
                        help="also print each layer's input and output shape (as the 2017 notebook's "
                             "print_layers_dims)")
    parser.set_defaults(run=run)


def describe_training(extra):
    """What a model file records about its training, as lines of text."""
    run_settings = extra.get("run")
    if run_settings is None:
        return []
    rows = extra.get("rows", {})
    lines = [f"trained on: {extra.get('data_path', run_settings['data'])}, {run_settings['split']} split "
             f"(seed {run_settings['seed']}): " + ", ".join(f"{part} {count}" for part, count in rows.items() if count),
             f"training: recipe {run_settings['recipe']}, {extra.get('epochs_run')} epochs"
             + (f" (best {extra['best_epoch'] + 1}, restored)" if extra.get("best_epoch") is not None else "")
             + f", batch {run_settings['batch_size']}, Adam lr {run_settings['lr']}, max_len {run_settings['max_len']}, "
             + "truncating " + run_settings["truncating"]]
    scores = extra.get("test_scores", {})
    if scores:
        lines.append("test scores: " + ", ".join(f"{name} {scores[name]:.4f}" for name in SCORES if name in scores))
    return lines


def run(args):
    if args.model and args.arch:
        raise UsageError("give --arch (an architecture) or --model (a saved model), not both")
    if args.model:
        given = [f"--{name.replace('_', '-')}" for name in SIZE_ARGUMENTS if getattr(args, name, None) is not None]
        if given:
            raise UsageError(f"{given[0]} does not apply to --model: a saved model has its sizes")
        model, _, extra = load_model_file(args.model)
    elif args.arch:
        sizes = {name: getattr(args, name, None) for name in SIZE_ARGUMENTS}
        from_default = set()
        if sizes["max_len"] is None:
            sizes["max_len"], from_default = DEFAULT_MAX_LEN, {"max_len"}
        try:
            arguments = model_sizes(args.arch, sizes, from_default)
        except ValueError as error:
            raise UsageError(str(error)) from None
        model = build_model(args.arch, **accepted_settings(args.arch, max_vocab_len=args.vocab_size), **arguments)
        extra = {}
    else:
        raise UsageError("give --arch (and sizes) or --model")
    summary(model)
    if args.dims:
        print_layers_dims(model)
    for line in describe_training(extra):
        print(line)
    return 0
