"""Training recipes for the URL models: every setting of `minidl train` but the data.

best     the best recipe measured in docs/url_quality.md (phishing40k, host splits):
         conv_max reading the URL's first 200 characters (truncating "post" keeps the
         host), Adam with lr 1e-3, batch 64, a 75/25 split by host (no host in both
         parts), a tenth of the training part held out (again by host) to stop after
         2 epochs without a better validation ROC AUC and keep the best epoch's
         weights, at most 16 epochs. On ISCX-2016 the same study found max_len 100 and
         a patience of 3 better.
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
and an option given on the command line overrides its value.
"""

RECIPES = {
    "best": {
        "arch": "conv_max", "max_len": 200, "truncating": "post", "lr": 1e-3, "batch_size": 64, "epochs": 16,
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
