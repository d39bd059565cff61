"""The `minidl` command: help, clear one-line errors with exit codes, and a train ->
evaluate -> predict round trip on a small synthetic CSV."""
import argparse
import csv
import importlib.util
import json
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from minidl.cli import main
from minidl.data import normalize_url

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
    assert err.strip() == ("minidl train: error: --arch: choose from simple_lstm, lstm_conv, conv_fully, conv_max, "
                           "ngram_linear, wide_conv_max, urlnet (got 'transformer')")


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
    (["trian"], "COMMAND: choose from train, evaluate, predict, ensemble, summary, embed, import-keras, export-onnx (got 'trian')"),
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


# ------------------------------------------------------------ output paths, checked first
def test_output_paths_are_checked_before_anything_is_loaded(capsys, tmp_path):
    absent = tmp_path / "absent.csv"  # never read: the path checks come first
    for argv, fragment in ((["--output", f"{tmp_path}/"], "is a directory; give the name of a file"),
                           (["--output", tmp_path], "is a directory"),
                           (["--csv-log", tmp_path], "--csv-log"),
                           (["--plots", write_csv(tmp_path / "file.csv", [])], "--plots")):
        status, _, err = run(["train", "--data", absent, *argv], capsys)
        assert_one_line_error(status, err, fragment, code=2)
    status, _, err = run(["embed", "--data", absent, "--output", f"{tmp_path}/"], capsys)
    assert_one_line_error(status, err, "--output", "is a directory", code=2)


def test_missing_output_folders_are_made(capsys, tmp_path):
    data = write_csv(tmp_path / "urls.csv", synthetic_urls(80))
    model = tmp_path / "runs" / "new" / "model.mdl"
    status, out, err = run(["train", "--arch", "conv_fully", "--data", data, *TINY, "--epochs", "1", "--verbose", "0",
                            "--output", model, "--csv-log", tmp_path / "logs" / "epochs.csv"], capsys)
    assert status == 0, err
    assert model.is_file() and f"saved the model to {model}" in out
    rows = list(csv.DictReader(open(tmp_path / "logs" / "epochs.csv")))
    assert len(rows) == 1 and {"epoch", "loss", "val_roc_auc"} <= set(rows[0])


def test_train_without_output_says_the_model_was_not_saved(capsys, tmp_path):
    data = write_csv(tmp_path / "urls.csv", synthetic_urls(80))
    status, out, _ = run(["train", "--arch", "conv_fully", "--data", data, *TINY, "--epochs", "1", "--verbose", "0"],
                         capsys)
    assert status == 0 and "the model was not saved (give --output FILE to keep it)" in out


def test_a_missing_matplotlib_is_reported_before_training(capsys, monkeypatch, tmp_path):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *rest: None if name == "matplotlib" else real_find_spec(name, *rest))
    status, _, err = run(["train", "--data", tmp_path / "absent.csv", "--plots", tmp_path / "plots"], capsys)
    assert_one_line_error(status, err, "--plots needs matplotlib", 'pip install -e ".[plot]"')
    status, _, err = run(["embed", "--data", tmp_path / "absent.csv", "--output", tmp_path / "m.npy",
                          "--plot", tmp_path / "m.png"], capsys)
    assert_one_line_error(status, err, "--plot needs matplotlib")


# ----------------------------------------------------------------------------- predict
def test_predict_marks_unscorable_input_and_flags_text_that_is_no_url(trained, capsys):
    inputs = ["", "   ", "http://", "\U0001F600\U0001F680", "hello world", "maps.org/news/index.html"]
    status, out, err = run(["predict", "--model", trained[2], *inputs], capsys)
    assert status == 0, err
    lines = [line.split("\t") for line in out.splitlines()]
    assert len(lines) == 4  # blank inputs are skipped, as blank lines of --file are
    assert [line[1] for line in lines[:2]] == ["unscorable"] * 2
    assert all(line[0] == "-" and line[3] == "(no character the model reads)" for line in lines[:2])
    assert lines[2][1] in ("benign", "malicious") and lines[2][3] == "(does not look like a URL)"
    assert len(lines[3]) == 3  # a URL gets no note
    status, out, err = run(["predict", "--model", trained[2], "http://", "\U0001F600"], capsys)
    assert status == 1 and out.count("unscorable") == 2
    assert err.strip() == "minidl predict: error: nothing to score: none of the 2 inputs has a character the model reads"


@pytest.mark.parametrize("form, separator", [("tsv", "\t"), ("csv", ",")])
def test_predict_tabular_formats_have_a_header(trained, capsys, form, separator):
    status, out, _ = run(["predict", "--model", trained[2], "--format", form, "maps.org/a", "http://"], capsys)
    assert status == 0
    rows = list(csv.reader(out.splitlines(), delimiter=separator))
    assert rows[0] == ["probability", "verdict", "url", "note"]
    assert rows[1][2] == "maps.org/a" and 0 <= float(rows[1][0]) <= 1 and rows[1][3] == ""
    assert rows[2] == ["", "unscorable", "http://", "no character the model reads"]


def test_predict_json_is_one_object_per_line(trained, capsys):
    status, out, _ = run(["predict", "--model", trained[2], "--format", "json", "maps.org/a", "http://"], capsys)
    first, second = (json.loads(line) for line in out.splitlines())
    assert status == 0 and set(first) == {"probability", "verdict", "url", "note"}
    assert second == {"probability": None, "verdict": "unscorable", "url": "http://",
                      "note": "no character the model reads"}


def test_predict_file_errors_name_the_option(trained, capsys, tmp_path):
    status, _, err = run(["predict", "--model", trained[2], "--file", tmp_path / "none.txt"], capsys)
    assert_one_line_error(status, err, f"--file {tmp_path / 'none.txt'}: no such file")
    assert "Errno" not in err
    status, _, err = run(["predict", "--model", trained[2], "--file", tmp_path], capsys)
    assert_one_line_error(status, err, "is a directory")
    status, _, err = run(["predict", "--model", tmp_path, "x.com"], capsys)
    assert_one_line_error(status, err, f"--model {tmp_path}: is a directory")


# --------------------------------------------------------------- evaluate and summary
def test_evaluate_split_test_scores_the_recorded_test_part(trained, capsys):
    from minidl.io import read_header

    _, data, model = trained
    extra = read_header(model)["extra"]
    status, out, _ = run(["evaluate", "--model", model, "--split", "test"], capsys)
    assert status == 0
    assert f"the model's test part (host split): {extra['rows']['test']} URLs" in out.splitlines()[0]
    scores = dict(line.split()[:2] for line in out.splitlines()[2:] if not line.startswith("confusion"))
    assert float(scores["roc_auc"]) == pytest.approx(extra["test_scores"]["roc_auc"], abs=1e-4)
    status, _, err = run(["evaluate", "--model", model, "--split", "test", "--data", data], capsys)
    assert_one_line_error(status, err, "leave out --data", code=2)
    status, _, err = run(["evaluate", "--model", model], capsys)
    assert_one_line_error(status, err, "give --data", code=2)


def test_evaluate_on_the_training_data_says_it_mixes_in_training_rows(trained, capsys):
    _, data, model = trained
    status, _, err = run(["evaluate", "--model", model, "--data", data], capsys)
    assert status == 0 and "these rows include its training rows" in err and "--split test" in err


def test_evaluate_threshold_moves_the_confusion_matrix(trained, capsys):
    _, data, model = trained

    def confusion(threshold):
        status, out, _ = run(["evaluate", "--model", model, "--data", data, "--threshold", threshold], capsys)
        assert status == 0
        line = next(line for line in out.splitlines() if line.startswith("confusion"))
        return [int(value) for value in line.split()[2::2]]  # tn, fp, fn, tp

    tn, fp, fn, tp = confusion("0.5")
    assert confusion("1") == [tn + fp, 0, fn + tp, 0]  # nothing is above a probability of 1
    assert confusion("0")[1] + confusion("0")[3] >= fp + tp


def test_summary_of_a_model_file_shows_how_it_was_trained(trained, capsys):
    status, out, _ = run(["summary", "--model", trained[2]], capsys)
    assert status == 0
    assert f"trained on: {trained[1]}, host split (seed 1)" in out and "test scores: loss" in out
    assert "training: recipe best" in out


def test_summary_refuses_an_architecture_and_a_model_together(trained, capsys):
    status, _, err = run(["summary", "--arch", "conv_max", "--model", trained[2]], capsys)
    assert_one_line_error(status, err, "not both", code=2)
    status, _, err = run(["summary", "--model", trained[2], "--max-len", "10"], capsys)
    assert_one_line_error(status, err, "--max-len does not apply to --model", code=2)


def test_summary_counts_parameters_as_keras_and_train_prints_the_same(capsys, tmp_path):
    status, out, _ = run(["summary", "--arch", "conv_fully", *TINY], capsys)
    total = re.search(r"Total params: ([\d,]+)", out)[1]
    trainable = re.search(r"Trainable params: ([\d,]+)", out)[1]
    assert status == 0 and total != trainable  # batch normalisation's moving statistics do not train
    assert "Connected to" in out and "dropout_k2, dropout_k3, dropout_k4, dropout_k5" in out
    data = write_csv(tmp_path / "urls.csv", synthetic_urls(80))
    status, out, _ = run(["train", "--arch", "conv_fully", "--data", data, *TINY, "--epochs", "1", "--verbose", "0"],
                         capsys)
    assert f"(Total params: {total}, Trainable params: {trainable}," in out
    status, out, _ = run(["summary", "--arch", "simple_lstm"], capsys)
    assert "Connected to" not in out  # one layer after another


# ---------------------------------------------------------------- options and messages
def test_version(capsys):
    import minidl

    status, out, _ = run(["--version"], capsys)
    assert status == 0 and out.strip() == f"minidl {minidl.__version__}"


def test_monitor_takes_the_progress_bar_names(capsys, tmp_path):
    data = write_csv(tmp_path / "urls.csv", synthetic_urls(80))
    model = tmp_path / "m.mdl"
    status, _, err = run(["train", "--arch", "conv_fully", "--data", data, *TINY, "--epochs", "2", "--verbose", "2",
                          "--monitor", "val_acc", "--output", model], capsys)
    assert status == 0 and " - val_acc " in err  # the name it watches is the one the bar shows
    from minidl.io import read_header

    assert read_header(model)["extra"]["run"]["monitor"] == "val_accuracy"


def test_registered_names_and_folders_are_data(capsys, monkeypatch, tmp_path):
    from minidl.data import Dataset, file_sha256, registry

    folder = tmp_path / "set"
    folder.mkdir()
    data = write_csv(folder / "urls.csv", synthetic_urls(40))
    status, out, _ = run(["train", "--data", folder, "--limit", "1", "--output", f"{tmp_path}/"], capsys)
    assert status == 2  # the folder was accepted as data; the output check stopped it
    monkeypatch.setenv("MINIDL_DATA_DIR", str(tmp_path))
    tiny = Dataset(name="tiny-urls", path="set/urls.csv", columns=("url", "isMalicious"), text_column="url",
                   label_column="isMalicious", licence="made by the test", description="", rows=40,
                   sha256=file_sha256(data))
    monkeypatch.setitem(registry.DATASETS, "tiny-urls", tiny)
    status, out, err = run(["embed", "--data", "tiny-urls", "--dim", "2", "--epochs", "1", "--max-pairs", "50",
                            "--output", tmp_path / "e.npy"], capsys)
    assert status == 0, err
    assert out.startswith(f"data: tiny-urls ({data}): 40 URLs")
    assert "Epoch 1/1 [" in err  # embed shows train's progress bar


def test_a_cuda_request_without_cupy_names_the_setting(capsys, monkeypatch):
    if importlib.util.find_spec("cupy") is not None:
        pytest.skip("CuPy is installed: the CUDA request may succeed here")
    monkeypatch.setenv("MINIDL_DEVICE", "cuda")
    status, _, err = run(["summary", "--arch", "simple_lstm"], capsys)
    assert_one_line_error(status, err, "MINIDL_DEVICE=cuda: the CUDA device needs CuPy", 'pip install -e ".[gpu]"')
    monkeypatch.delenv("MINIDL_DEVICE")
    status, _, err = run(["summary", "--arch", "simple_lstm", "--device", "cuda"], capsys)
    assert_one_line_error(status, err, "--device=cuda: the CUDA device needs CuPy")
    status, out, _ = run(["summary", "--arch", "simple_lstm", "--device", "cpu"], capsys)
    assert status == 0 and "Total params" in out


def test_python_warnings_are_one_line(capsys):
    from minidl.cli import warnings_as_lines

    with warnings_as_lines("train"):
        warnings.warn("something odd", UserWarning)
    assert capsys.readouterr().err == "minidl train: warning: something odd\n"


def test_class_weight_balanced_trains(capsys, tmp_path):
    rows = synthetic_urls(120)
    data = write_csv(tmp_path / "urls.csv", [row for row in rows if row[1] == 0] + rows[1::4])
    status, out, err = run(["train", "--arch", "conv_fully", "--data", data, *TINY, "--epochs", "1", "--verbose", "0",
                            "--class-weight", "balanced", "--split", "stratified"], capsys)
    assert status == 0, err


# ------------------------------------------------------------------------- help texts
def subcommand_parsers():
    from minidl.cli import build_parser

    parser = build_parser()
    commands = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    return {"minidl": parser, **commands.choices}


def test_every_default_is_stated_in_the_help():
    for name, parser in subcommand_parsers().items():
        for action in parser._actions:
            if action.help in (None, argparse.SUPPRESS) or isinstance(action, (argparse._HelpAction,
                                                                                  argparse._VersionAction)):
                continue
            from_recipe = name == "train" and action.dest in RECIPE_OPTIONS
            has_default = action.default not in (None, False, argparse.SUPPRESS) or from_recipe
            if has_default and action.nargs != 0:
                assert "default" in action.help, f"{name} {action.option_strings}: the help states no default"


RECIPE_OPTIONS = ("arch", "max_len", "truncating", "lr", "batch_size", "epochs", "split", "test_size",
                  "validation_split", "early_stopping", "monitor")


def test_help_texts_say_what_things_are_without_the_project_history():
    for name, parser in subcommand_parsers().items():
        text = parser.format_help().lower()
        for word in ("issue", "lecture", "the source's"):
            assert word not in text, f"{name} --help says {word!r}: say what it is instead"
