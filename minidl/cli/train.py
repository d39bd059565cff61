"""`minidl train`: train a URL model on labelled URLs, report its test metrics, save it
with its tokeniser, decision threshold and training record."""
from pathlib import Path

import numpy as np

import minidl
from minidl.cli.inputs import describe_labels, load_labelled_urls, on_rank_zero
from minidl.cli.options import (PLOT_INSTALL, UsageError, UserError, add_data_options, add_size_options,
                                add_target_fpr_option, fraction, metric_name, monitor_names, nonnegative_int,
                                open_fraction, positive_int, positive_number, recipe_help)
from minidl.cli.outputs import format_scores, output_file, output_folder, require_matplotlib, save_trained
from minidl.data import CharTokenizer, DATASETS
from minidl.data.mix import is_mix
from minidl.data.labelled import DEFAULT_DATA
from minidl.data.split import split_parts
from minidl.distributed import launch_rank
from minidl.kernels.parallelism import describe_threads
from minidl.models import build_model
from minidl.models.recipes import (DEFAULT_RECIPE, RECIPES, SIZE_ARGUMENTS, accepted_settings, model_sizes,
                                   training_settings)
from minidl.models.registry import ARCHITECTURES, describe_architecture
from minidl.nn import parameter_counts
from minidl.train import BackupAndRestore, CSVLogger, EarlyStopping, evaluate, fit, predict
from minidl.train.calibration import calibrate_threshold
from minidl.train.plots import plot_history, plot_roc
from minidl.train.progress import logged_name

#: The settings of a training run that a resumed run and `evaluate --split test` repeat.
RUN_SETTINGS = ("recipe", "arch", "data", "url_column", "label_column", "bad_rows", "limit", "seed", "split",
                "test_size", "validation_split", "truncating", "lr", "batch_size", "early_stopping", "monitor",
                "class_weight", *SIZE_ARGUMENTS)


def add_parser(commands, runtime):
    train = commands.add_parser(
        "train", parents=[runtime], help="train a URL model on labelled URLs",
        description="Train a URL model, report its test metrics, save it. The defaults are the best recipe "
                    "measured in docs/url_quality.md; --recipe source gives the 2017 notebook's settings.")
    train.add_argument("--recipe", choices=list(RECIPES), default=DEFAULT_RECIPE,
                       help="the training defaults: best (wide_conv_max, max_len 200, truncating post, lr 1e-3, "
                            "batch 64, host split, 10 %% validation, early stopping after 2 epochs on val_auc, "
                            "16 epochs; the default) or source (the 2017 notebook's: simple_lstm, max_len 75, "
                            "truncating pre, lr 1e-4, batch 32, random split, 5 epochs); options given "
                            "override it")
    train.add_argument("--arch", choices=list(ARCHITECTURES), metavar="ARCH",
                       help="architecture: " + "; ".join(f"{name}: {describe_architecture(name)}"
                                                          for name in ARCHITECTURES) + f" {recipe_help('arch')}")
    add_data_options(train)
    add_size_options(train, max_len_help="default: the recipe's, 200 for best, 75 for source")
    train.add_argument("--truncating", choices=("pre", "post"),
                       help="cut long URLs at the start (pre: keep the last --max-len characters) or at the end "
                            f"(post: keep the host) {recipe_help('truncating')}")
    train.add_argument("--epochs", type=positive_int, help=f"epochs at most {recipe_help('epochs')}")
    train.add_argument("--batch-size", type=positive_int, help=f"batch size {recipe_help('batch_size')}")
    train.add_argument("--lr", type=positive_number, help=f"Adam's learning rate {recipe_help('lr')}")
    train.add_argument("--split", choices=("host", "random", "stratified"),
                       help="how the test (and validation) part is drawn: host (no host in two parts), random, "
                            f"or stratified (random, keeping the class proportions) {recipe_help('split')}")
    train.add_argument("--test-size", type=open_fraction,
                       help=f"test fraction of the data {recipe_help('test_size')}")
    train.add_argument("--validation-split", type=fraction,
                       help="fraction of the training part held out for validation, 0 for none "
                            f"{recipe_help('validation_split')}")
    train.add_argument("--early-stopping", type=nonnegative_int, metavar="PATIENCE",
                       help="stop after PATIENCE epochs without a better --monitor value and keep the best "
                            f"epoch's weights; 0 trains every epoch {recipe_help('early_stopping')}")
    train.add_argument("--monitor", type=metric_name,
                       help=f"the metric early stopping watches, as the progress bar names it: "
                            f"{', '.join(monitor_names())} {recipe_help('monitor')}")
    train.add_argument("--class-weight", choices=("balanced",),
                       help="weight each class by n / (2 * its count), for unbalanced data (default: none)")
    train.add_argument("--embedding-init", help="a .npy matrix from `minidl embed` to start the embedding from")
    add_target_fpr_option(train)
    train.add_argument("--output", help="write the trained model to this file (default: not saved); "
                                        "missing folders are made")
    train.add_argument("--plots",
                       help="write training curves and the ROC curve (PNG) into this folder; needs matplotlib "
                            f"({PLOT_INSTALL})")
    train.add_argument("--csv-log", metavar="FILE", help="append one CSV row of metrics per epoch to FILE")
    train.add_argument("--checkpoint", metavar="DIR",
                       help="save the run's state into DIR after every epoch (last.mdl, and best.mdl for early "
                            "stopping), so --resume can continue it")
    train.add_argument("--resume", action="store_true",
                       help="continue the run saved in --checkpoint DIR where it stopped (same options; "
                            "--epochs may grow)")
    train.add_argument("--verbose", type=int, choices=(0, 1, 2), default=1,
                       help="0 silent, 1 progress bar (default), 2 one line per epoch")
    train.set_defaults(run=run)


def apply_recipe(args):
    """Fill every training option the command line left out from --recipe; remember
    which came from it, for the messages."""
    settings, args.from_recipe = training_settings(args.recipe, **{name: getattr(args, name)
                                                                   for name in RECIPES[args.recipe]})
    for name, value in settings.items():
        setattr(args, name, value)
    args.monitor = logged_name(args.monitor)


def check_options(args):
    """Option combinations that cannot work, refused before anything is loaded."""
    if args.early_stopping and not args.validation_split:
        if {"early_stopping", "validation_split"} & args.from_recipe:
            raise UsageError(f"the {args.recipe} recipe stops early on a validation part: give --validation-split "
                             "(such as 0.1) with --early-stopping, or --early-stopping 0 to train without one")
        raise UsageError("--early-stopping needs a validation set: give --validation-split too")
    if args.resume and not args.checkpoint:
        raise UsageError("--resume needs --checkpoint DIR: the folder of the run to continue")


def sizes_of(args):
    """The size options as the architecture's constructor arguments."""
    try:
        return model_sizes(args.arch, {name: getattr(args, name, None) for name in SIZE_ARGUMENTS},
                           getattr(args, "from_recipe", ()))
    except ValueError as error:
        raise UsageError(str(error)) from None


def outputs(args):
    """(model file, plots folder) after checking every path train writes, so that a
    run never trains for minutes and then fails to save."""
    output = output_file(args.output, "--output")
    plots = output_folder(args.plots, "--plots")
    if plots:
        require_matplotlib("--plots")
    output_file(args.csv_log, "--csv-log")
    output_folder(args.checkpoint, "--checkpoint")
    return output, plots


def run_settings(args):
    """The run's settings as JSON data, with --data as a registered name (or mix) or an
    absolute path, so `evaluate --split test` finds the same rows from any folder."""
    settings = {name: getattr(args, name) for name in RUN_SETTINGS}
    settings["data"] = args.data or DEFAULT_DATA
    if settings["data"] not in DATASETS and not is_mix(settings["data"]):
        settings["data"] = str(Path(settings["data"]).expanduser().resolve())
    for name in ("kernel_sizes", "hidden_units"):
        if settings[name] is not None:
            settings[name] = list(settings[name])
    return settings


def callbacks_for(args, settings):
    """(callbacks for fit, the EarlyStopping or None, the BackupAndRestore or None)."""
    early = backup = None
    callbacks = []
    if args.early_stopping:
        early = EarlyStopping(monitor=args.monitor, patience=args.early_stopping, restore_best_weights=True)
        callbacks.append(early)
    if args.csv_log:
        callbacks.append(CSVLogger(args.csv_log, append=args.resume))
    if args.checkpoint:
        backup = BackupAndRestore(args.checkpoint, watch=[early] if early else [], extra={"run": settings})
        callbacks.append(backup)
    return callbacks, early, backup


def resume_from(backup, settings, model, optimizer):
    """The epochs the checkpointed run had done, after loading it; its settings must be
    this command's."""
    saved = backup.saved_extra()
    if saved is None:
        raise UserError(f"--resume: {backup.folder} holds no checkpoint ({backup.last_path.name}) to continue")
    differing = [name for name in RUN_SETTINGS if saved["run"].get(name) != settings[name]]
    if differing:
        name = differing[0]
        raise UsageError(f"--resume: the run in {backup.folder} was trained with {name} {saved['run'].get(name)!r}, "
                         f"this command gives {settings[name]!r}; give the same settings (only --epochs may grow)")
    done = backup.restore(model, optimizer)
    print(f"resuming the run in {backup.folder} after epoch {done}")
    return done


def model_line(arch, model):
    total, trainable = parameter_counts(model)
    return (f"model: {arch} (Total params: {total:,}, Trainable params: {trainable:,}, "
            f"Non-trainable params: {total - trainable:,})")


def read_training_data(args, model):
    """((train, validation or None, test) pairs of (x, y), what was found) from --data:
    read, split by --split, tokenised by the model's tokeniser (fitted on the training
    part, for one that learns a vocabulary: URLNet's words), with what was found printed."""
    urls, labels, where = load_labelled_urls(args)
    if len(np.unique(labels)) < 2:
        raise UserError(f"{where}: the labels hold one class only; training needs benign and malicious URLs")
    print(f"data: {where}: {describe_labels(labels)}")
    parts = split_parts(urls, np.arange(len(urls)), labels, args.split, args.test_size, args.validation_split,
                        args.seed)
    if any(part is not None and len(part[1]) == 0 for part in parts):
        raise UserError(f"{where}: {len(urls)} URLs are too few for the {args.split} split's parts; give more "
                        "data (a larger --limit)")
    tokenizer = model.make_tokenizer([urls[i] for i in parts[0][0]], truncating=args.truncating)
    x = tokenizer.encode(urls)
    report_dropped_characters(tokenizer, urls)
    train, validation, test = (None if part is None else (x[part[0]], part[1]) for part in parts)
    print(f"split ({args.split}): train {len(train[1])}, "
          f"{'validation ' + str(len(validation[1])) + ', ' if validation else ''}test {len(test[1])}")
    rows = {"train": len(train[1]), "validation": len(validation[1]) if validation else 0, "test": len(test[1])}
    return (train, validation, test), {"where": where, "test": describe_labels(test[1]), "rows": rows,
                                       "tokenizer": tokenizer.get_config()}


def report_dropped_characters(tokenizer, urls):
    """Say how many characters outside string.printable the character tokeniser drops."""
    chars = tokenizer if isinstance(tokenizer, CharTokenizer) else getattr(tokenizer, "parts", {}).get("chars")
    if chars is None:
        return
    _, unknown = chars.tokenize(urls)
    dropped, holding = int(unknown.sum()), int((unknown > 0).sum())
    if dropped:
        print(f"dropped {dropped} character{'s' if dropped != 1 else ''} outside string.printable in {holding} "
              f"URL{'s' if holding != 1 else ''}")


def write_training_plots(folder, history, model, test, arch):
    plot_history(dict(history), folder / "history.png", title=arch)
    plot_roc(test[1], predict(model, test[0]).reshape(-1), folder / "roc.png", label=arch, log_fpr=True)
    print(f"wrote {folder / 'history.png'} and {folder / 'roc.png'}")


def run(args):
    apply_recipe(args)
    check_options(args)
    sizes = sizes_of(args)
    output, plots = outputs(args)
    embedding_init = None
    if args.embedding_init is not None:
        try:
            embedding_init = np.load(args.embedding_init, allow_pickle=False)
        except (OSError, ValueError) as error:
            raise UserError(f"--embedding-init {args.embedding_init}: cannot read a .npy matrix ({error})") from None

    minidl.manual_seed(args.seed)
    model = build_model(args.arch, **accepted_settings(args.arch, max_vocab_len=CharTokenizer().vocab_size,
                                                       embedding_init=embedding_init), **sizes)
    (train, validation, test), found = on_rank_zero(lambda: read_training_data(args, model),
                                                    ((None, None), None, (None, None)))
    print(model_line(args.arch, model))
    print(describe_threads())
    optimizer = model.make_optimizer(args.lr)
    settings = run_settings(args)
    callbacks, early, backup = callbacks_for(args, settings)
    initial_epoch = resume_from(backup, settings, model, optimizer) if args.resume else 0
    history = {}
    if initial_epoch < args.epochs and not (backup and backup.stopped):
        history = fit(model, train[0], train[1], epochs=args.epochs, batch_size=args.batch_size,
                      optimizer=optimizer, validation_data=validation, callbacks=callbacks, verbose=args.verbose,
                      class_weight=args.class_weight, distributed="auto", initial_epoch=initial_epoch)
    else:
        backup.load_final_weights(model)
        print(f"nothing left to train: the run in {args.checkpoint} ended after epoch {initial_epoch}")
    if backup:
        history = backup.history  # the epochs of the earlier run too
    chosen = calibrate_threshold(model, validation, args.target_fpr, found["rows"]["validation"])
    print(chosen.message)
    scores = evaluate(model, test[0], test[1], distributed="auto", threshold=chosen.threshold)
    print(f"test set ({found['test']}), malicious above {chosen.threshold:.6g}:")
    print(format_scores(scores))

    if launch_rank() > 0:  # every rank holds the trained model; rank 0 writes it
        return 0
    record = {"arch": args.arch, "run": settings, "data_path": found["where"],
              "epochs_run": len(history.get("loss", [])), "best_epoch": None if early is None else early.best_epoch,
              "rows": found["rows"], "threshold": chosen.threshold,
              "target_fpr": args.target_fpr if chosen.reached else None,
              "test_scores": {k: v for k, v in scores.items() if isinstance(v, float) and np.isfinite(v)}}
    save_trained(output, model, found["tokenizer"], record)
    if plots:
        write_training_plots(plots, history, model, test, args.arch)
    return 0
