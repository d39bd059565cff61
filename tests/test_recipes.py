"""The training recipes of `minidl train`: the best measured one is the default and
matches docs/url_quality.md; `--recipe source` is the 2017 notebook's settings."""
from pathlib import Path

import numpy as np

from minidl.cli import build_parser
from minidl.cli.train import apply_recipe
from minidl.data import train_test_split
from minidl.data.split import split_parts
from minidl.models.recipes import RECIPES
from minidl.models.registry import ARCHITECTURES
from minidl.models.url import ADAM

REPO = Path(__file__).resolve().parents[1]


def parsed(*argv):
    args = build_parser().parse_args(["train", *argv])
    apply_recipe(args)
    return args


def test_the_source_recipe_is_the_notebooks_settings():
    args = parsed("--recipe", "source")
    # the notebook: max_len=75 and Keras' pad_sequences (truncating "pre"), Adam(lr=1e-4), nb_epoch = 5,
    # batch_size = 32, train_test_split(X, target, test_size=0.25, random_state=33), simple_lstm first
    assert (args.arch, args.max_len, args.truncating, args.lr, args.epochs, args.batch_size) == \
        ("simple_lstm", 75, "pre", ADAM["lr"], 5, 32)
    assert (args.split, args.test_size, args.seed, args.validation_split, args.early_stopping) == \
        ("random", 0.25, 33, 0.0, 0)


def test_the_source_split_is_a_plain_random_split():
    args = parsed("--recipe", "source")
    x, y = np.arange(40)[:, None], np.arange(40) % 2
    (x_train, _), validation, (x_test, _) = split_parts(None, x, y, args.split, args.test_size, args.validation_split, args.seed)
    expected = train_test_split(x, y, test_size=0.25, seed=33)  # no stratify, as the notebook
    assert validation is None
    np.testing.assert_array_equal(x_train, expected[0])
    np.testing.assert_array_equal(x_test, expected[1])


def test_the_best_recipe_is_the_default_and_the_one_docs_url_quality_measured():
    args = parsed()
    assert args.recipe == "best" and args.arch == "wide_conv_max" and args.monitor == "val_roc_auc"
    best = RECIPES["best"]
    assert (best["split"], best["validation_split"], best["lr"], best["batch_size"]) == ("host", 0.1, 1e-3, 64)
    docs = (REPO / "docs" / "url_quality.md").read_text(encoding="utf-8")
    # the phishing40k command of the four-model table: conv_max reads 200 characters
    command = ("--datasets url-bahnsen-phishing40k --epochs 16 --max-len 250 --truncating post \\\n"
               "        --val-size 0.1 --patience 2 --time-budget 900 --override conv_max:max_len=200")
    assert command in docs
    assert (best["epochs"], best["truncating"], best["early_stopping"], best["max_len"]) == (16, "post", 2, 200)


def test_an_option_given_overrides_the_recipe():
    args = parsed("--lr", "0.01", "--arch", "lstm_conv")
    assert (args.lr, args.arch) == (0.01, "lstm_conv")
    assert "lr" not in args.from_recipe and "epochs" in args.from_recipe


def test_every_recipe_sets_the_same_known_settings():
    keys = {frozenset(recipe) for recipe in RECIPES.values()}
    assert len(keys) == 1
    assert all(recipe["arch"] in ARCHITECTURES for recipe in RECIPES.values())
