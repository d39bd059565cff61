"""Training recipes for the URL models: every setting of `minidl train` but the data.

best     the best recipe measured in docs/url_quality.md: wide_conv_max (conv_max's
         convolution branches beside a linear model over hashed character n-grams)
         reading the URL's first 200 characters (truncating "post" keeps the host),
         Adam with lr 1e-3, batch 64, a 75/25 split by host (no host in both parts), a
         tenth of the training part held out (again by host) to stop after 2 epochs
         without a better validation ROC AUC and keep the best epoch's weights, at most
         16 epochs. It was conv_max until the leave-one-source-out measurements of
         docs/url_quality.md: trained on the other URL sources, wide_conv_max catches
         more of every left-out source at FPR 1e-2 than conv_max (mean 0.496 against
         0.307), its quick-start model calls none of the 100 most popular hosts
         malicious (3 with --seed 1, where conv_max calls none), and inside each set it
         ranks at least as well (the four host splits there). On ISCX-2016 max_len 100
         and a patience of 3 were better for conv_max.
source   the 2017 notebook's settings (incertum/cyber-matrix-ai, "Featureless Deep
         Learning for Detection of Malicious URLs"): simple_lstm on the URL's last 75
         characters (Keras' pad_sequences default, truncating "pre"), Adam with lr 1e-4,
         batch 32, 5 epochs, scikit-learn's train_test_split(test_size=0.25,
         random_state=33): a random split, not stratified, no validation part and no
         early stopping. (The notebook's embedding has 100 rows; the tokeniser's ids
         run to 100, so every recipe builds it with 101.)

An architecture in ARCHITECTURE_LR learns at its own rate unless --lr is given: a
linear model over 2^18 hashed n-gram weights (ngram_linear) at 1e-2.

Each recipe sets the same keys; `minidl train --recipe NAME` takes it as its defaults,
and an option given on the command line overrides its value (`training_settings`).
"""
import inspect

from minidl.models.registry import ARCHITECTURES

RECIPES = {
    "best": {
        "arch": "wide_conv_max", "max_len": 200, "truncating": "post", "lr": 1e-3, "batch_size": 64, "epochs": 16,
        "split": "host", "test_size": 0.25, "validation_split": 0.1, "early_stopping": 2, "monitor": "val_auc",
    },
    "source": {
        "arch": "simple_lstm", "max_len": 75, "truncating": "pre", "lr": 1e-4, "batch_size": 32, "epochs": 5,
        "split": "random", "test_size": 0.25, "validation_split": 0.0, "early_stopping": 0, "monitor": "val_loss",
    },
}
DEFAULT_RECIPE = "best"
#: Architectures whose learning rate replaces the recipe's (docs/url_quality.md).
ARCHITECTURE_LR = {"ngram_linear": 1e-2}

#: The size arguments a recipe or a user may give -> the URL models' constructor arguments.
SIZE_ARGUMENTS = {
    "max_len": "max_len", "emb_dim": "emb_dim", "lstm_units": "lstm_output_size", "filters": "filters",
    "kernel_size": "kernel_size", "pool_size": "pool_size", "kernel_sizes": "kernel_sizes",
    "hidden_units": "hidden_units", "pooling": "pooling",
}


def training_settings(recipe=DEFAULT_RECIPE, **given):
    """(settings, names taken from the recipe): every key of RECIPES[recipe], from `given`
    where it is not None, else the recipe's (an architecture of ARCHITECTURE_LR brings
    its own learning rate)."""
    settings, from_recipe = {}, set()
    for name, value in RECIPES[recipe].items():
        if given.get(name) is None:
            settings[name] = value
            from_recipe.add(name)
        else:
            settings[name] = given[name]
    if "lr" in from_recipe and settings["arch"] in ARCHITECTURE_LR:
        settings["lr"] = ARCHITECTURE_LR[settings["arch"]]
    return settings, from_recipe


def model_sizes(arch, sizes, from_recipe=()):
    """`sizes` (SIZE_ARGUMENTS' names -> values, None for not given) as constructor
    arguments of `arch`. A size that `arch` does not take is a ValueError naming it,
    unless the recipe set it (max_len for ngram_linear, which reads no characters)."""
    accepted = inspect.signature(ARCHITECTURES[arch]).parameters
    arguments = {}
    for name, parameter in SIZE_ARGUMENTS.items():
        value = sizes.get(name)
        if value is None:
            continue
        if parameter not in accepted:
            if name in from_recipe:
                continue
            raise ValueError(f"--{name.replace('_', '-')} does not apply to {arch}")
        arguments[parameter] = value
    return arguments


def accepted_settings(arch, **settings):
    """The `settings` that `arch`'s constructor takes and that are given (not None):
    the character vocabulary and initial embedding mean nothing to ngram_linear."""
    accepted = inspect.signature(ARCHITECTURES[arch]).parameters
    return {name: value for name, value in settings.items() if name in accepted and value is not None}
