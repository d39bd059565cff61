"""benchmarks/url_quality.py, the issue-4 quality-bar runner, end to end on a small
synthetic set laid out like ../shared/data (no shared data, no scikit-learn needed)."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks.url_quality import (host_weights, load, main, parse_model_setting, parse_override, split_summary,
                                    with_cropped_copies)

from test_cli import synthetic_urls, write_csv

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("initial", ["matrix", "cbow"])
def test_runner_scores_each_seed_and_their_mean(tmp_path, initial):
    folder = tmp_path / "data" / "url-bahnsen-phishing40k"
    folder.mkdir(parents=True)
    write_csv(folder / "urls.csv", synthetic_urls(300))
    embedding = np.random.default_rng(0).normal(size=(101, 32)).astype(np.float32)
    np.save(tmp_path / "chars.npy", embedding)
    out = tmp_path / "quality"
    command = [sys.executable, "-m", "benchmarks.url_quality", "--data-dir", str(tmp_path / "data"),
               "--datasets", "url-bahnsen-phishing40k", "--archs", "simple_lstm", "--no-baseline",
               "--epochs", "2", "--max-len", "40", "--truncating", "post", "--val-size", "0.2",
               "--seeds", "1,2", "--out", str(out)]
    command += (["--embedding-init", str(tmp_path / "chars.npy")] if initial == "matrix"
                else ["--cbow-window", "2", "--cbow-epochs", "1", "--cbow-pairs", "3000", "--host-weight", "0.5"])
    run = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert ("Epoch 1/1 [" in run.stderr) == (initial == "cbow")  # train_cbow's progress bar, one epoch
    report = json.loads(out.with_suffix(".json").read_text())
    models = [row["model"] for row in report["results"]]
    assert models == ["simple_lstm, seed 1", "simple_lstm, seed 2", "simple_lstm, mean of 2 seeds"]
    assert report["settings"]["seeds"] == [1, 2]
    for row in report["results"]:
        assert row["train"] + row["test"] == 300
        assert 0.0 <= row["roc_auc"] <= 1.0 and 0.0 <= row["accuracy"] <= 1.0
    assert report["results"][-1]["seconds"] == sum(row["seconds"] for row in report["results"][:2])
    saved = np.load(out.with_suffix(".probabilities.npz"))
    assert sorted(saved.files) == ["url-bahnsen-phishing40k: simple_lstm, seed 1", "url-bahnsen-phishing40k: simple_lstm, seed 2"]
    assert all(saved[key].shape == (report["results"][0]["test"],) for key in saved.files)
    table = out.with_suffix(".md").read_text()
    assert "| url-bahnsen-phishing40k | 33 | simple_lstm, mean of 2 seeds |" in table
    assert "splits at or above the baseline" not in table


def test_host_weights_give_each_host_the_same_total_at_power_one():
    urls = ["a.com/1", "a.com/2", "a.com/3", "b.org/x"]
    assert host_weights(urls, 1.0) == pytest.approx([2 / 3, 2 / 3, 2 / 3, 2.0])
    assert host_weights(urls, 0.0) == pytest.approx(np.ones(4))
    assert host_weights(urls, 0.5).mean() == pytest.approx(1.0)


def test_cropped_copies_keep_the_host_and_stay_within_max_len():
    urls = ["shop.example.com/login/verify.php?id=123456", "a.io", "news.org/" + "x" * 100]
    labels = np.array([1, 0, 0])
    augmented, augmented_labels = with_cropped_copies(urls, labels, copies=3, max_len=30, seed=0)
    assert augmented[:3] == urls and list(augmented_labels) == [1, 0, 0] * 4
    for i, crop in enumerate(augmented[3:]):
        original = urls[i % 3]
        assert original.startswith(crop)
        assert len(crop) == len(original) or (len(original.split("/")[0]) < len(crop) <= 30)
    assert with_cropped_copies(urls, labels, 3, 30, seed=0)[0] == augmented


def test_override_changes_one_architectures_settings(tmp_path):
    assert parse_override("conv_max:max_len=100") == ("conv_max", "max_len", 100)
    assert parse_override("lstm_conv:lr=3e-4") == ("lstm_conv", "lr", 3e-4)
    for bad in ("conv_max:max_len=x", "cnn:max_len=5", "conv_max:dropout=0.1", "conv_max:max_len"):
        with pytest.raises(Exception, match=bad):
            parse_override(bad)
    assert parse_model_setting('ngram_linear:weighting="count"') == ("ngram_linear", "weighting", "count")
    for bad in ("ngram_linear:filters=3", "ngram_linear:wide_l2=x"):
        with pytest.raises(Exception, match=bad):
            parse_model_setting(bad)
    folder = tmp_path / "data" / "url-bahnsen-phishing40k"
    folder.mkdir(parents=True)
    write_csv(folder / "urls.csv", synthetic_urls(200))
    out = tmp_path / "quality"
    assert main(["--data-dir", str(tmp_path / "data"), "--datasets", "url-bahnsen-phishing40k", "--no-baseline",
                 "--archs", "simple_lstm,conv_max", "--epochs", "1", "--max-len", "30",
                 "--override", "conv_max:max_len=50", "--override", "conv_max:lr=3e-3", "--out", str(out)]) == 0
    rows = json.loads(out.with_suffix(".json").read_text())["results"]
    assert [(row["model"], row["max_len"], row["lr"]) for row in rows] == [
        ("simple_lstm", 30, 1e-3), ("conv_max", 50, 3e-3)]
    assert "conv_max: max_len 50. conv_max: lr 0.003." in out.with_suffix(".md").read_text()


def test_runner_repeats_everything_on_each_host_split(tmp_path):
    folder = tmp_path / "data" / "url-bahnsen-phishing40k"
    folder.mkdir(parents=True)
    write_csv(folder / "urls.csv", synthetic_urls(200))
    out = tmp_path / "quality"
    assert main(["--data-dir", str(tmp_path / "data"), "--datasets", "url-bahnsen-phishing40k",
                 "--archs", "conv_max", "--epochs", "1", "--max-len", "30", "--val-size", "0.2",
                 "--split-seeds", "1,2", "--out", str(out)]) == 0
    rows = json.loads(out.with_suffix(".json").read_text())["results"]
    assert [(row["split"], row["model"]) for row in rows] == [
        (1, "tfidf+logreg"), (1, "conv_max"), (2, "tfidf+logreg"), (2, "conv_max")]
    saved = np.load(out.with_suffix(".probabilities.npz"))
    assert sorted(saved.files) == ["url-bahnsen-phishing40k, split 1: conv_max",
                                   "url-bahnsen-phishing40k, split 2: conv_max"]
    assert [saved[key].shape[0] for key in sorted(saved.files)] == [rows[1]["test"], rows[3]["test"]]
    # Each split seed holds out other hosts.
    assert load(tmp_path / "data", "url-bahnsen-phishing40k", None, 1)[2] != \
        load(tmp_path / "data", "url-bahnsen-phishing40k", None, 2)[2]
    table = out.with_suffix(".md").read_text()
    assert "(seed 1, 2)" in table and "| url-bahnsen-phishing40k | 2 | conv_max |" in table
    assert "| url-bahnsen-phishing40k | conv_max | 2 |" in table


def test_split_summary_compares_each_split_with_its_own_baseline():
    rows = [{"dataset": "d", "split": split, "model": model, "roc_auc": auc, "tpr_at_fpr_1e-3": tpr,
             "tpr_at_fpr_1e-2": 0.9, "accuracy_at_threshold": 0.8, "fpr_at_threshold": 0.001, "train_seconds": 10.0}
            for split, model, auc, tpr in [(1, "tfidf+logreg", 0.90, 0.5), (1, "cnn", 0.95, 0.4),
                                           (2, "tfidf+logreg", 0.99, 0.6), (2, "cnn", 0.97, 0.7)]]
    lines = split_summary(rows).splitlines()
    assert lines[2] == ("| d | tfidf+logreg | 2 | 0.94500 | 0.06364 | 0.90000 | 0.99000 | 0.5500 (0.0707) "
                        "| 0.9000 (0.0000) | 0.8000 (0.0000) | 0.0010 (0.0000) | 10 (0) | - | - |")
    assert lines[3].startswith("| d | cnn | 2 | 0.96000 | 0.01414 | 0.95000 | 0.97000 | 0.5500 (0.2121) |")
    assert lines[3].endswith("| 1 of 2 | 1 of 2 |")


def test_runner_thresholds_ensembles_and_cross_source(tmp_path):
    for name, prefix in (("url-bahnsen-phishing40k", ""), ("url-iscx2016", "other-")):
        folder = tmp_path / "data" / name
        folder.mkdir(parents=True)  # the second set's hosts are all new to a model trained on the first
        write_csv(folder / "urls.csv", [(prefix + url, label) for url, label in synthetic_urls(160)])
    out = tmp_path / "quality"
    assert main(["--data-dir", str(tmp_path / "data"), "--datasets", "url-bahnsen-phishing40k", "--no-baseline",
                 "--archs", "ngram_linear,conv_max", "--epochs", "1", "--max-len", "30", "--val-size", "0.25",
                 "--override", "ngram_linear:lr=1e-2", "--ensemble", "ngram_linear+conv_max", "--cross-source",
                 "--target-fpr", "0.1", "--model-setting", "ngram_linear:buckets=500", "--out", str(out)]) == 0
    rows = json.loads(out.with_suffix(".json").read_text())["results"]
    assert [(row["dataset"], row["model"]) for row in rows] == [
        ("url-bahnsen-phishing40k", "ngram_linear"), ("url-bahnsen-phishing40k", "conv_max"),
        ("url-bahnsen-phishing40k", "mean of ngram_linear + conv_max")] + [
        ("url-bahnsen-phishing40k -> url-iscx2016", model)
        for model in ("ngram_linear", "conv_max", "mean of ngram_linear + conv_max")]
    for row in rows:
        assert 0 <= row["fpr_at_threshold"] <= 1 and 0 <= row["accuracy_at_threshold"] <= 1
        assert 0 <= row["tpr_at_fpr_1e-2"] <= 1 and row["train_seconds"] <= row["seconds"]
    assert rows[0]["parameters"] == 500 + 2  # one weight per bucket, the padding row and the bias
    cross = rows[3]
    assert cross["threshold"] == rows[0]["threshold"] and cross["test"] == 160
    table = out.with_suffix(".md").read_text()
    assert "| url-bahnsen-phishing40k -> url-iscx2016 | 33 | ngram_linear |" in table
