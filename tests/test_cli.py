"""The `minidl` command: help, clear one-line errors with exit codes, and a train ->
evaluate -> predict round trip on a small synthetic CSV."""
import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from minidl.cli import main, normalize_url

REPO = Path(__file__).resolve().parents[1]
TINY = ["--max-len", "40", "--emb-dim", "8", "--filters", "8", "--hidden-units", "16"]


def synthetic_urls(n=400, seed=0):
    """Benign URLs are words under .com/.org; malicious ones carry digits, a phishing
    path and odd TLDs: a signal a character model learns in an epoch or two."""
    rng = np.random.default_rng(seed)
    words = ["news", "shop", "maps", "blog", "docs", "mail", "wiki", "home", "team", "code"]
    rows = []
    for i in range(n):
        a, b = rng.choice(words, 2)
        if i % 2:
            digits = "".join(rng.choice(list("0123456789"), 6))
            rows.append((f"{a}{digits}.{rng.choice(['xyz', 'tk', 'ru'])}/login/verify.php?id={digits}", 1))
        else:
            rows.append((f"{a}.{rng.choice(['com', 'org'])}/{b}/index.html", 0))
    return rows


def write_csv(path, rows, header=("url", "isMalicious")):
    with open(path, "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def run(argv, capsys):
    """(exit status, stdout, stderr) of main(argv)."""
    try:
        status = main([str(arg) for arg in argv])
    except SystemExit as exit_:  # argparse: --help and usage errors
        status = exit_.code
    out, err = capsys.readouterr()
    return status, out, err


def assert_one_line_error(status, err, *fragments, code=1):
    assert status == code, err
    lines = err.strip().splitlines()
    assert "Traceback" not in err
    assert len(lines) == 1 or code == 2, err
    for fragment in fragments:
        assert fragment in err, err


@pytest.mark.parametrize("command", ["train", "evaluate", "predict", "summary", "embed"])
def test_every_command_has_help(command, capsys):
    status, out, _ = run([command, "--help"], capsys)
    assert status == 0
    assert out.startswith(f"usage: minidl {command}")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A conv_fully model trained by the command line on a synthetic CSV."""
    folder = tmp_path_factory.mktemp("cli")
    data = write_csv(folder / "urls.csv", synthetic_urls())
    model = folder / "model.mdl"
    status = main(["train", "--arch", "conv_fully", "--data", str(data), *TINY, "--epochs", "2", "--batch-size", "16",
                   "--lr", "3e-3", "--validation-split", "0.2", "--early-stopping", "2", "--output", str(model),
                   "--plots", str(folder / "plots"), "--verbose", "0", "--seed", "1"])
    assert status == 0
    return folder, data, model


def test_train_reports_test_metrics_and_writes_model_and_plots(trained):
    folder, _, model = trained
    assert model.is_file()
    pytest.importorskip("matplotlib")
    assert (folder / "plots" / "history.png").is_file() and (folder / "plots" / "roc.png").is_file()


def test_evaluate_prints_the_metrics_table(trained, capsys):
    _, data, model = trained
    status, out, _ = run(["evaluate", "--model", model, "--data", data], capsys)
    assert status == 0
    scores = dict(line.split()[:2] for line in out.splitlines()[2:] if not line.startswith("confusion"))
    assert set(scores) >= {"loss", "accuracy", "roc_auc", "precision", "recall", "f1", "tpr_at_fpr_1e-3"}
    assert float(scores["accuracy"]) >= 0.95  # the signal is plain; two epochs learn it


def test_predict_needs_only_the_model_file(trained, capsys, monkeypatch, tmp_path):
    _, _, model = trained
    bad, good = "https://www.mail123456.tk/login/verify.php?id=123456", "maps.org/news/index.html"
    status, out, _ = run(["predict", "--model", model, bad, good], capsys)
    assert status == 0
    lines = [line.split("\t") for line in out.splitlines()]
    assert [(verdict, url) for _, verdict, url in lines] == [("malicious", bad), ("benign", good)]
    assert float(lines[0][0]) > 0.5 > float(lines[1][0])

    listing = tmp_path / "urls.txt"
    listing.write_text(f"{good}\n\n{bad}\n")
    status, out, _ = run(["predict", "--model", model, "--file", listing, "--threshold", "0.999999"], capsys)
    assert status == 0 and [line.split("\t")[2] for line in out.splitlines()] == [good, bad]

    monkeypatch.setattr("sys.stdin", open(listing))
    status, out, _ = run(["predict", "--model", model, "--file", "-"], capsys)
    assert status == 0 and len(out.splitlines()) == 2


def test_summary_of_an_architecture_and_of_a_model_file(trained, capsys):
    status, out, _ = run(["summary", "--arch", "conv_fully", "--vocab-size", "100"], capsys)
    assert status == 0 and "Total params: 2,227,329" in out
    status, out, _ = run(["summary", "--model", trained[2], "--dims"], capsys)
    assert status == 0
    assert "Input Shape: (None, 40) Output Shape: (None, 40, 8)" in out


def test_conv_max_trains_from_the_command_line_with_its_pooling(tmp_path, capsys):
    from minidl.io import read_header

    data = write_csv(tmp_path / "urls.csv", synthetic_urls())
    model = tmp_path / "max.mdl"
    status, out, _ = run(["train", "--arch", "conv_max", "--data", data, *TINY, "--epochs", "2", "--lr", "3e-3",
                          "--pooling", "average", "--output", model, "--verbose", "0", "--seed", "1"], capsys)
    assert status == 0
    assert read_header(model)["model"]["config"]["pooling"] == "average"
    status, out, _ = run(["evaluate", "--model", model, "--data", data], capsys)
    accuracy = next(float(line.split()[1]) for line in out.splitlines() if line.startswith("accuracy"))
    assert status == 0 and accuracy >= 0.9
    status, out, _ = run(["summary", "--arch", "conv_max", "--vocab-size", "100"], capsys)
    assert status == 0 and "Total params: 61,569" in out and "(GlobalMaxPooling1D)" in out


def test_embed_writes_the_matrix_and_the_plot(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    listing = tmp_path / "urls.txt"
    listing.write_text("\n".join(url for url, _ in synthetic_urls(60)))
    status, out, err = run(["embed", "--data", listing, "--dim", "4", "--window", "2", "--epochs", "1",
                            "--output", tmp_path / "chars.npy", "--plot", tmp_path / "chars.png"], capsys)
    assert status == 0, err
    assert np.load(tmp_path / "chars.npy").shape == (101, 4)  # the source's tokeniser: ids 0..100
    assert (tmp_path / "chars.png").read_bytes()[:4] == b"\x89PNG"


def test_train_starts_from_an_embedding_matrix_and_checks_its_shape(tmp_path, capsys):
    data = write_csv(tmp_path / "urls.csv", synthetic_urls(60))
    np.save(tmp_path / "wrong.npy", np.zeros((101, 5)))
    status, _, err = run(["train", "--arch", "conv_fully", "--data", data, *TINY, "--epochs", "1", "--verbose", "0",
                          "--embedding-init", tmp_path / "wrong.npy"], capsys)
    assert_one_line_error(status, err, "initial embedding has shape (101, 5), the model needs (101, 8)")


# ------------------------------------------------------------------ bad input
@pytest.fixture
def csv_file(tmp_path):
    return write_csv(tmp_path / "urls.csv", synthetic_urls(40))


def test_missing_data_file(capsys, tmp_path):
    status, _, err = run(["train", "--data", tmp_path / "absent.csv"], capsys)
    assert_one_line_error(status, err, "absent.csv: no such file, and no registered data set")


def test_wrong_column(capsys, csv_file):
    status, _, err = run(["train", "--data", csv_file, "--url-column", "link"], capsys)
    assert_one_line_error(status, err, "no text column 'link'")


def test_malformed_csv_names_the_line_and_skipping_counts_it(capsys, tmp_path):
    rows = synthetic_urls(40)
    rows[3] = (rows[3][0], "maybe")
    data = write_csv(tmp_path / "bad.csv", rows)
    status, _, err = run(["train", "--data", data], capsys)
    assert_one_line_error(status, err, "line 5", "'maybe'", "give --bad-rows skip")
    assert "on_error" not in err
    status, out, err = run(["train", "--arch", "conv_fully", "--data", data, *TINY, "--epochs", "1",
                            "--verbose", "0", "--bad-rows", "skip"], capsys)
    assert status == 0 and "skipped 1 malformed rows" in err
    assert "Warning" not in err and "load_text_csv" not in err  # no Python warning besides the count


def test_an_unterminated_quote_says_so(capsys, tmp_path):
    data = tmp_path / "quote.csv"
    data.write_text('url,isMalicious\na.com,0\n"b.com,1\nc.com,0\n')
    status, _, err = run(["train", "--data", data], capsys)
    assert_one_line_error(status, err, "line 3", "unterminated quote")


def test_one_class_only(capsys, tmp_path):
    data = write_csv(tmp_path / "benign.csv", [(url, 0) for url, _ in synthetic_urls(20)])
    status, _, err = run(["train", "--data", data], capsys)
    assert_one_line_error(status, err, "one class only")


def test_unknown_architecture_is_a_one_line_usage_error(capsys, csv_file):
    status, _, err = run(["train", "--arch", "transformer", "--data", csv_file], capsys)
    assert_one_line_error(status, err, code=2)
    assert err.strip() == ("minidl train: error: --arch: choose from simple_lstm, lstm_conv, conv_fully, conv_max "
                           "(got 'transformer')")


def test_size_option_that_does_not_apply(capsys, csv_file):
    status, _, err = run(["train", "--arch", "conv_fully", "--data", csv_file, "--pool-size", "2"], capsys)
    assert_one_line_error(status, err, "--pool-size does not apply to conv_fully", code=2)


def test_early_stopping_needs_validation(capsys, csv_file):
    status, _, err = run(["train", "--data", csv_file, "--validation-split", "0", "--early-stopping", "2"], capsys)
    assert_one_line_error(status, err, "--early-stopping needs a validation set", code=2)
    status, _, err = run(["train", "--data", csv_file, "--validation-split", "0"], capsys)
    assert_one_line_error(status, err, "the best recipe stops early", "--early-stopping 0", code=2)


def test_unreadable_model_file(capsys, tmp_path):
    junk = tmp_path / "junk.mdl"
    junk.write_bytes(b"not a model at all")
    status, _, err = run(["predict", "--model", junk, "example.com"], capsys)
    assert_one_line_error(status, err, "not a minidl model file")
    status, _, err = run(["evaluate", "--model", tmp_path / "absent.mdl", "--data", junk], capsys)
    assert_one_line_error(status, err, "absent.mdl: no such file")


def test_truncated_model_file(capsys, trained, tmp_path):
    cut = tmp_path / "cut.mdl"
    cut.write_bytes(trained[2].read_bytes()[:-100])
    status, _, err = run(["predict", "--model", cut, "example.com"], capsys)
    assert_one_line_error(status, err, "cut.mdl")


def test_predict_without_urls(capsys, trained):
    status, _, err = run(["predict", "--model", trained[2]], capsys)
    assert_one_line_error(status, err, "no URLs given", code=2)


@pytest.mark.parametrize("argv, fragment", [
    (["train", "--epochs", "0"], "--epochs: expected a positive integer, got '0'"),
    (["train", "--test-size", "1.5"], "--test-size: expected a number between 0 and 1"),
    (["train", "--test-size", "0"], "--test-size: expected a number between 0 and 1"),
    (["train", "--lr", "fast"], "--lr: expected a positive number, got 'fast'"),
    (["summary", "--arch", "conv_fully", "--kernel-sizes", "2,x"], "--kernel-sizes: expected integers"),
    (["--threads", "0", "summary", "--arch", "conv_max"], "--threads: expected a positive integer"),
    (["summary", "--arch", "conv_max", "--threads", "0"], "--threads: expected a positive integer"),
    (["train", "--monitor", "val_xyz"], "--monitor: choose from loss, acc, auc, val_loss, val_acc, val_auc"),
    (["trian"], "COMMAND: choose from train, evaluate, predict, summary, embed (got 'trian')"),
])
def test_bad_option_values_are_one_line_usage_errors(argv, fragment, capsys):
    status, _, err = run(argv, capsys)
    assert_one_line_error(status, err, fragment, code=2)
    assert len(err.strip().splitlines()) == 1 and "usage:" not in err


def test_normalize_url_strips_scheme_and_www():
    assert normalize_url("  HTTPS://www.Example.com/a?b=c ") == "Example.com/a?b=c"
    assert normalize_url("example.com/www.x") == "example.com/www.x"


def test_the_installed_entry_point_reports_errors_without_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "minidl", "evaluate", "--model", str(tmp_path / "m.mdl"),
                             "--data", "x.csv"], capture_output=True, text=True, cwd=REPO,
                            env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip() == f"minidl evaluate: error: --model {tmp_path / 'm.mdl'}: no such file"


def test_truncating_choice_travels_in_the_model_file(tmp_path):
    from minidl.io import read_header

    data = write_csv(tmp_path / "urls.csv", synthetic_urls())
    model = tmp_path / "post.mdl"
    status = main(["train", "--arch", "conv_fully", "--data", str(data), *TINY, "--epochs", "1",
                   "--truncating", "post", "--output", str(model), "--verbose", "0"])
    assert status == 0
    assert read_header(model)["extra"]["tokenizer"]["truncating"] == "post"
