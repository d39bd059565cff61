"""The command line's calibrated decisions (train --target-fpr stores a threshold that
predict and evaluate use unless --threshold is given), metrics.threshold_at_fpr, and
the new architectures trained, summarised and served from the command line."""
import pytest

from minidl.io import read_header
from minidl.train import metrics

from test_cli import run, synthetic_urls, write_csv

BAD, GOOD = "mail123456.tk/login/verify.php?id=123456", "maps.org/news/index.html"


def test_threshold_at_fpr_reaches_tpr_at_fpr_with_the_rule_score_above_it(rng):
    labels = rng.integers(0, 2, 2000)
    scores = rng.normal(labels * 1.5, 1.0)
    for target in (0.0, 1e-3, 1e-2, 0.1, 1.0):
        threshold = metrics.threshold_at_fpr(labels, scores, target)
        called = scores > threshold
        assert called[labels == 0].mean() <= target
        assert called[labels == 1].mean() == metrics.tpr_at_fpr(labels, scores, target)
    with pytest.raises(ValueError, match="max_fpr must be in"):
        metrics.threshold_at_fpr(labels, scores, 2.0)


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    """ngram_linear trained by the command line with a threshold for FPR 0.05."""
    folder = tmp_path_factory.mktemp("thresholds")
    data = write_csv(folder / "urls.csv", synthetic_urls(300))
    model = folder / "linear.mdl"
    from minidl.cli import main

    status = main(["train", "--arch", "ngram_linear", "--data", str(data), "--split", "host", "--epochs", "2",
                   "--validation-split", "0.25", "--target-fpr", "0.05", "--output", str(model), "--verbose", "0"])
    assert status == 0
    return data, model


def test_train_stores_the_threshold_it_chose_on_the_validation_part(calibrated):
    _, model = calibrated
    extra = read_header(model)["extra"]
    assert extra["target_fpr"] == 0.05 and 0 < extra["threshold"] < 1
    assert extra["tokenizer"]["class_name"] == "URLEncoder"


def test_predict_and_evaluate_use_the_stored_threshold_unless_told(calibrated, capsys):
    data, model = calibrated
    threshold = read_header(model)["extra"]["threshold"]
    status, out, _ = run(["predict", "--model", model, BAD, GOOD], capsys)
    assert status == 0
    lines = [line.split("\t") for line in out.splitlines()]
    assert [(float(p) > threshold, verdict) for p, verdict, _ in lines] == [(True, "malicious"), (False, "benign")]
    status, out, _ = run(["predict", "--model", model, "--threshold", "1", BAD], capsys)
    assert status == 0 and out.split("\t")[1] == "benign"
    status, out, _ = run(["evaluate", "--model", model, "--data", data], capsys)
    assert status == 0 and f"malicious above {threshold:.6g} (stored: FPR 0.05 on the validation part)" in out
    status, out, _ = run(["evaluate", "--model", model, "--data", data, "--threshold", "0"], capsys)
    recall = float([line.split()[1] for line in out.splitlines() if line.startswith("recall")][0])
    assert status == 0 and "(--threshold)" in out and recall == 1.0


def test_a_threshold_outside_zero_to_one_is_a_usage_error(calibrated, capsys):
    _, model = calibrated
    status, _, err = run(["predict", "--model", model, "--threshold", "1.5", BAD], capsys)
    assert status == 2 and "expected a probability in [0, 1]" in err


def test_without_validation_the_threshold_stays_one_half(tmp_path, capsys):
    data = write_csv(tmp_path / "urls.csv", synthetic_urls(120))
    status, out, _ = run(["train", "--arch", "ngram_linear", "--data", data, "--epochs", "1", "--verbose", "0",
                          "--validation-split", "0", "--early-stopping", "0", "--output", tmp_path / "m.mdl"], capsys)
    assert status == 0 and "the decision threshold stays 0.5" in out
    assert read_header(tmp_path / "m.mdl")["extra"]["threshold"] == 0.5


@pytest.mark.parametrize("arch, sizes", [
    ("wide_conv_max", ["--max-len", "30", "--filters", "4"]),
    ("urlnet", ["--max-len", "30", "--filters", "4", "--kernel-sizes", "3,4"]),
])
def test_the_new_architectures_train_and_serve_from_the_command_line(arch, sizes, tmp_path, capsys):
    data = write_csv(tmp_path / "urls.csv", synthetic_urls(160))
    model = tmp_path / f"{arch}.mdl"
    status, out, err = run(["train", "--arch", arch, "--data", data, *sizes, "--epochs", "1", "--lr", "3e-3",
                            "--validation-split", "0.2", "--output", model, "--verbose", "0"], capsys)
    assert status == 0, err
    assert f"model: {arch}" in out and "decision threshold" in out
    status, out, _ = run(["predict", "--model", model, BAD, GOOD], capsys)
    probabilities = [float(line.split("\t")[0]) for line in out.splitlines()]
    assert status == 0 and len(probabilities) == 2 and all(0 < p < 1 for p in probabilities)
    status, out, _ = run(["summary", "--model", model], capsys)
    assert status == 0 and f'Model: "{arch}"' in out


@pytest.mark.parametrize("arch", ["ngram_linear", "wide_conv_max", "urlnet"])
def test_summary_of_each_new_architecture(arch, capsys):
    status, out, _ = run(["summary", "--arch", arch], capsys)
    assert status == 0 and "Total params" in out
    assert f'Model: "{arch}"' in out


def test_a_size_an_architecture_lacks_is_an_error(capsys):
    status, _, err = run(["summary", "--arch", "ngram_linear", "--filters", "8"], capsys)
    assert status == 2 and "--filters does not apply to ngram_linear" in err


def test_ensemble_joins_trained_models_and_calibrates_on_their_validation_part(calibrated, tmp_path, capsys):
    data, linear = calibrated
    other = tmp_path / "wide.mdl"
    split = ["--split", "host", "--validation-split", "0.25"]
    status, _, err = run(["train", "--arch", "wide_conv_max", "--data", data, "--max-len", "30", "--filters", "4",
                          "--epochs", "1", "--lr", "3e-3", *split, "--output", other, "--verbose", "0"], capsys)
    assert status == 0, err
    joined = tmp_path / "both.mdl"
    status, out, err = run(["ensemble", "--model", linear, "--model", other, "--output", joined, "--data", data,
                            *split, "--target-fpr", "0.05"], capsys)
    assert status == 0, err
    assert "ensemble of ngram_linear, wide_conv_max" in out and "decision threshold" in out and "roc_auc" in out
    extra = read_header(joined)["extra"]
    assert extra["arch"] == "mean_ensemble" and extra["target_fpr"] == 0.05
    status, out, _ = run(["predict", "--model", joined, BAD, GOOD], capsys)
    assert status == 0 and [line.split("\t")[1] for line in out.splitlines()] == ["malicious", "benign"]
    status, _, err = run(["ensemble", "--model", linear, "--output", joined], capsys)
    assert status == 2 and "two or more --model files" in err
