"""benchmarks/url_shortcuts.py: the shape table across sets and the shape-only baseline."""
import numpy as np
import pytest

pytest.importorskip("sklearn")
from benchmarks.url_shortcuts import report, shape_baseline_scores


def collected_by_shape(n=400, seed=0):
    """A set whose malicious URLs are all bare hosts and whose benign URLs all have a
    path: the shortcut issue 32 found in phishing40k, made total."""
    rng = np.random.default_rng(seed)
    names = ["".join(rng.choice(list("abcdefghij"), 6)) for _ in range(n)]
    urls = [f"{name}.com" if i % 2 else f"{name}.org/page/{i}.html" for i, name in enumerate(names)]
    return urls, np.arange(n) % 2


def test_the_shape_only_baseline_finds_a_shape_shortcut():
    urls, labels = collected_by_shape()
    assert shape_baseline_scores(urls, labels)["roc_auc"] == pytest.approx(1.0)


def test_the_report_has_a_column_per_set_and_the_baseline_rows():
    lines = report({"first": collected_by_shape(), "second": collected_by_shape(seed=1)})
    assert lines[0].startswith("| shape | value | first: malicious (URLs) | second: malicious (URLs) |")
    assert "| bare host | bare host | 100.0% (200) | 100.0% (200) |" in lines
    assert lines[-2].startswith("| shape-only baseline, host split 33 | ROC AUC | 1.0000 | 1.0000")
