"""The library work behind `minidl predict`, `train` and `evaluate`, called from Python:
streaming scores of lines, the scorable-line rule, threshold calibration at a target
false-positive rate, labelled data and the held-out part recorded in a model file."""
import io as stdio

import numpy as np
import pytest
from test_cli import TINY, assert_one_line_error, run, synthetic_urls, write_csv
from test_model_file_schema import tiny_model_file

import minidl
from minidl.data.labelled import DataNotFound, read_labelled_urls
from minidl.data.url_lines import looks_like_url
from minidl.models.saved import SavedModelError, load_url_model, recorded_test_part
from minidl.train.calibration import calibrate_threshold, stored_threshold
from minidl.train.scoring import prediction_rows, score_lines, score_urls


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    return tiny_model_file(tmp_path_factory.mktemp("scoring"))


@pytest.fixture(scope="module")
def saved(model_path):
    return load_url_model(model_path)


def test_score_lines_streams_a_file_in_chunks_as_score_urls_does_at_once(saved):
    urls = [url for url, _ in synthetic_urls(23, seed=5)]
    lines = stdio.StringIO("\n".join(urls[:10]) + "\n\n   \n" + "\n".join(urls[10:]) + "\n")
    streamed = list(score_lines(saved.model, saved.tokenizer, lines, batch_size=4, chunk_urls=6))
    assert [url for url, _ in streamed] == urls  # blank lines skipped, order kept
    np.testing.assert_allclose([p for _, p in streamed], score_urls(saved.model, saved.tokenizer, urls), rtol=1e-6)


def test_a_url_with_nothing_to_read_scores_nan_and_is_unscorable(saved):
    probabilities = score_urls(saved.model, saved.tokenizer, ["\U0001F600", "maps.org/a"])
    assert np.isnan(probabilities[0]) and 0 <= probabilities[1] <= 1
    rows = prediction_rows(["\U0001F600", "maps.org/a"], probabilities, threshold=2.0)
    assert rows[0]["verdict"] == "unscorable" and rows[1]["verdict"] == "benign"


@pytest.mark.parametrize("text, expected", [("example.com", True), ("https://www.a.b.org/x?y=1", True),
                                            ("hello world", False), ("localhost/admin", False), ("a .com", False)])
def test_looks_like_url(text, expected):
    assert looks_like_url(text) is expected


def test_calibration_reaches_the_target_rate_or_says_why_not():
    model = minidl.Sequential([minidl.nn.Dense(1, activation="sigmoid")])
    rng = np.random.default_rng(0)
    x = rng.standard_normal((400, 2)).astype(np.float32)
    y = (rng.random(400) < 0.5).astype(np.float32)
    chosen = calibrate_threshold(model, (x, y), target_fpr=0.05)
    scores = model.predict(x).reshape(-1)
    assert chosen.reached and np.mean(scores[y == 0] > chosen.threshold) <= 0.05
    assert "decision threshold" in chosen.message
    tiny = calibrate_threshold(model, (x[:20], y[:20]), target_fpr=1e-3)
    assert (tiny.threshold, tiny.reached) == (0.5, False) and "cannot resolve" in tiny.message
    none = calibrate_threshold(model, None, target_fpr=1e-3)
    assert (none.threshold, none.reached) == (0.5, False) and "no validation part" in none.message


def test_the_stored_threshold_names_its_rate_only_when_it_was_reached():
    assert stored_threshold({"threshold": 0.9, "target_fpr": 1e-3}) == (0.9, "stored: FPR 0.001 on the validation part")
    assert stored_threshold({"threshold": 0.5, "target_fpr": None}) == (0.5, "stored")
    assert stored_threshold({}) == (0.5, "default")


def test_train_stores_no_rate_it_could_not_reach(tmp_path, capsys):
    data = write_csv(tmp_path / "urls.csv", synthetic_urls(60))
    model = tmp_path / "m.mdl"
    status, out, err = run(["train", "--arch", "conv_fully", "--data", data, *TINY, "--epochs", "1", "--verbose",
                            "0", "--validation-split", "0.2", "--output", model], capsys)
    assert status == 0, err
    assert "cannot resolve a false-positive rate" in out
    status, out, _ = run(["evaluate", "--model", model, "--split", "test"], capsys)
    assert status == 0 and "malicious above 0.5 (stored)" in out


def test_evaluate_on_one_class_says_what_it_cannot_measure(model_path, tmp_path, capsys):
    data = write_csv(tmp_path / "benign.csv", [("maps.org/a", 0), ("news.com/b", 0)])
    status, out, _ = run(["evaluate", "--model", model_path, "--data", data], capsys)
    assert status == 0 and "roc_auc           n/a (the data hold one class)" in out and "nan" not in out


def test_train_counts_dropped_characters_in_words(tmp_path, capsys):
    rows = synthetic_urls(60)
    rows[0] = ("maps.org/caf\u00e9", rows[0][1])
    data = write_csv(tmp_path / "urls.csv", rows)
    status, out, err = run(["train", "--arch", "conv_fully", "--data", data, *TINY, "--epochs", "1", "--verbose",
                            "0"], capsys)
    assert status == 0, err
    assert "dropped 1 character outside string.printable in 1 URL\n" in out


def test_too_few_rows_for_the_split_say_so(tmp_path, capsys):
    status, _, err = run(["train", "--epochs", "1", "--limit", "10", "--verbose", "0"], capsys)
    assert_one_line_error(status, err, "10 URLs are too few", "a larger --limit")


def test_read_labelled_urls_normalises_and_subsets(tmp_path):
    path = write_csv(tmp_path / "u.csv", [("https://www.a.com/x", 1), ("b.org", 0), ("http://c.net", 1)])
    found = read_labelled_urls(str(path))
    assert found.urls == ["a.com/x", "b.org", "c.net"] and found.labels.tolist() == [1, 0, 1]
    assert len(read_labelled_urls(str(path), limit=2, seed=1).urls) == 2
    with pytest.raises(DataNotFound, match="no such file, and no registered data set"):
        read_labelled_urls(str(tmp_path / "absent.csv"))


def test_the_recorded_test_part_is_the_training_runs(saved):
    urls, labels, where = recorded_test_part(saved.extra)
    assert len(urls) == saved.extra["rows"]["test"] == len(labels) and "test part" in where
    with pytest.raises(SavedModelError, match="written by `minidl ensemble`"):
        recorded_test_part({"arch": "mean_ensemble"})
    with pytest.raises(SavedModelError, match="an older minidl train"):
        recorded_test_part({"arch": "conv_max"})
