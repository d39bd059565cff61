"""`minidl ensemble`: join trained models into one file that averages their
probabilities, its threshold chosen on the members' validation part."""
import numpy as np

from minidl.cli.inputs import describe_labels, load_labelled_urls, load_model_file
from minidl.cli.options import UsageError, add_data_options, add_target_fpr_option, fraction, open_fraction
from minidl.cli.outputs import format_scores, output_file, save_trained
from minidl.data.split import split_parts
from minidl.distributed import launch_rank
from minidl.models.ensemble import MeanEnsemble
from minidl.models.recipes import DEFAULT_RECIPE, RECIPES
from minidl.train import evaluate
from minidl.train.calibration import calibrate_threshold


def add_parser(commands, runtime):
    parser = commands.add_parser(
        "ensemble", parents=[runtime], help="join trained models into one that averages their probabilities",
        description="Write one model file that scores a URL with the mean probability of the given models (each "
                    "keeps its tokeniser). With --data and the split the models were trained with, it chooses its "
                    "decision threshold on their validation part and reports its test metrics.")
    parser.add_argument("--model", action="append", required=True, help="a model file (give two or more)")
    parser.add_argument("--output", required=True, help="where to write the ensemble; missing folders are made")
    add_data_options(parser, default_help="optional: without it the threshold stays 0.5",
                     seed_help="the --limit subset and the split (the members' own)")
    best = RECIPES[DEFAULT_RECIPE]
    parser.add_argument("--split", choices=("host", "random", "stratified"), default=best["split"],
                        help="the members' split (default: the best recipe's, host)")
    parser.add_argument("--test-size", type=open_fraction, default=best["test_size"],
                        help="the members' test fraction (default: the best recipe's)")
    parser.add_argument("--validation-split", type=fraction, default=best["validation_split"],
                        help="the members' validation fraction (default: the best recipe's)")
    add_target_fpr_option(parser)
    parser.set_defaults(run=run)


def run(args):
    if len(args.model) < 2:
        raise UsageError("give two or more --model files to join")
    output = output_file(args.output, "--output")
    members = [load_model_file(path) for path in args.model]
    model = MeanEnsemble([member.model for member in members])
    tokenizer = model.make_tokenizer_from([member.tokenizer for member in members])
    print(f"ensemble of {', '.join(member.extra.get('arch', '?') for member in members)}: "
          f"{model.count_params():,} parameters")
    threshold, reached = 0.5, False
    if args.data:
        urls, labels, where = load_labelled_urls(args)
        _, validation, test = split_parts(urls, np.arange(len(urls)), labels, args.split, args.test_size,
                                          args.validation_split, args.seed)
        x = tokenizer.encode(urls)
        validation = None if validation is None else (x[validation[0]], validation[1])
        chosen = calibrate_threshold(model, validation, args.target_fpr)
        print(chosen.message)
        threshold, reached = chosen.threshold, chosen.reached
        scores = evaluate(model, x[test[0]], test[1], distributed="auto", threshold=threshold)
        print(f"test set of {where} ({describe_labels(test[1])}), malicious above {threshold:.6g}:")
        print(format_scores(scores))
    else:
        print("no --data: the decision threshold stays 0.5 (give the members' data to calibrate it)")
    if launch_rank() > 0:
        return 0
    save_trained(output, model, tokenizer.get_config(),
                 {"arch": "mean_ensemble", "members": [str(path) for path in args.model], "threshold": threshold,
                  "target_fpr": args.target_fpr if reached else None})
    return 0
