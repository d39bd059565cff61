"""examples/seed_walkthrough.py end to end at --quick sizes: on the 400-row sample of the
lecture's data when ../shared/data holds it, and on generated URLs everywhere."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from minidl import cli
from minidl.data import get_dataset

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def walkthrough():
    """examples/seed_walkthrough.py as a module (examples are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location("seed_walkthrough", REPO / "examples" / "seed_walkthrough.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check_run(output, out):
    """What every run prints and writes, whatever the data."""
    assert "1000 samples at batch size 500 -> 2 iterations per epoch" in output
    assert "Input Shape: (None, 75) Output Shape: (None, 75, 8)" in output  # the embedding, --quick's dim 8
    for step in range(11):
        assert f"=== Step {step}:" in output
    assert output.count("same predictions: True") == 3
    assert "naureen.net/etisalat.ae/index2.php" in output
    for arch in ("simple_lstm", "lstm_conv", "conv_fully"):
        assert (out / f"{arch}.mdl").is_file()


@pytest.mark.shared_data
def test_quick_run_on_the_lecture_data_sample(walkthrough, tmp_path, capsys, shared_data):
    sample = shared_data(get_dataset("url-incertum-sample").path)  # the 400-row sample of the lecture's data
    walkthrough.main(["--quick", "--data", str(sample), "--out", str(tmp_path)])
    output = capsys.readouterr().out
    check_run(output, tmp_path)
    assert "(200 URLs kept)" in output
    # the model files are the command line's: predict reads one with its tokeniser
    assert cli.main(["predict", "--model", str(tmp_path / "lstm_conv.mdl"), "sixt.com/php/reservation"]) == 0
    assert "sixt.com/php/reservation" in capsys.readouterr().out


def test_quick_run_on_generated_urls(walkthrough, tmp_path, capsys):
    walkthrough.main(["--quick", "--data", "generated", "--limit", "120", "--no-cbow-init", "--out", str(tmp_path)])
    output = capsys.readouterr().out
    check_run(output, tmp_path)
    assert "120 generated URLs" in output
    assert (tmp_path / "cbow_embedding.png").is_file() or "(no plot:" in output


def test_defaults_are_modest_and_quick_is_tiny(walkthrough):
    default, quick = walkthrough.parse_args([]), walkthrough.parse_args(["--quick"])
    assert (default.limit, default.epochs, default.threads, default.data) == (4000, 3, 1, "url-bahnsen-phishing-sample")
    assert (quick.limit, quick.epochs) == (200, 1)
    assert walkthrough.parse_args(["--quick", "--epochs", "2"]).epochs == 2
    with pytest.raises(SystemExit):
        walkthrough.parse_args(["--limit", "5"])


def test_generated_urls_are_balanced_and_seeded(walkthrough):
    urls, labels = walkthrough.generated_urls(50, seed=1)
    assert len(urls) == 50 and labels.sum() == 25
    assert walkthrough.generated_urls(50, seed=1)[0] == urls
    assert np.array_equal(labels, walkthrough.generated_urls(50, seed=2)[1])


def test_unknown_data_says_what_is_known(walkthrough, tmp_path):
    with pytest.raises(SystemExit, match="no registered data set of that name"):
        walkthrough.main(["--quick", "--data", str(tmp_path / "missing.csv"), "--out", str(tmp_path)])


def test_quick_run_on_a_fresh_clone_uses_the_sample_inside_minidl(walkthrough, tmp_path, capsys, monkeypatch):
    """No ../shared and no data folder: the default data is the embedded sample, and step 11
    says where the lecture's models are published instead of pointing at a folder the user lacks."""
    monkeypatch.setenv("MINIDL_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MINIDL_SHARED_DATA_DIR", str(tmp_path / "no-shared"))
    walkthrough.main(["--quick", "--limit", "120", "--no-cbow-init", "--out", str(tmp_path / "out")])
    output = capsys.readouterr().out
    check_run(output, tmp_path / "out")
    assert "url-bahnsen-phishing-sample.csv.gz (120 URLs kept)" in output
    step_11 = output.split("=== Step 11:", 1)[1]
    assert "shared/data/README.md" not in step_11 and "incertum/cyber-matrix-ai" in step_11


def test_a_registered_set_that_is_absent_suggests_the_sample(walkthrough, tmp_path, monkeypatch):
    monkeypatch.setenv("MINIDL_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MINIDL_SHARED_DATA_DIR", str(tmp_path / "no-shared"))
    with pytest.raises(SystemExit, match="--data url-bahnsen-phishing-sample, the sample inside minidl"):
        walkthrough.main(["--quick", "--data", "url-bahnsen-phishing40k", "--out", str(tmp_path)])
