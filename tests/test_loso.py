"""benchmarks/loso.py's bookkeeping: the popular-hosts shares, the rows per malicious
type, and the table with its mean over the left-out sources."""
import numpy as np

from benchmarks.loso import CHECK_HOSTS, markdown, popular_shares, type_rows


def test_popular_shares_split_the_check_into_bare_hosts_and_hosts_with_a_slash():
    probabilities = np.zeros(2 * CHECK_HOSTS)
    probabilities[:10] = 0.9                 # 10 bare hosts above the threshold
    probabilities[CHECK_HOSTS:CHECK_HOSTS + 100] = 0.9
    assert popular_shares(probabilities, 0.5) == (10 / CHECK_HOSTS, 100 / CHECK_HOSTS)


def test_each_malicious_type_is_scored_against_every_benign_url():
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    types = np.array(["benign"] * 4 + ["spam", "spam", "phishing", "phishing"])
    probabilities = np.array([0.1, 0.2, 0.3, 0.4, 0.05, 0.15, 0.8, 0.9])  # spam ranked among the benign
    rows = {row["type"]: row for row in type_rows("m", "set", labels, types, probabilities)}
    assert rows["phishing"]["roc_auc"] == 1.0 and rows["phishing"]["urls"] == 2
    assert rows["spam"]["roc_auc"] == 0.125


def test_the_table_means_tpr_over_left_out_sources_only():
    row = {"roc_auc": 0.9, "tpr_at_fpr_1e-3": 0.1, "threshold": 0.5, "fpr_at_threshold": 0.01,
           "popular_bare": 0.0, "popular_slash": 0.001}
    rows = [dict(row, left_out="a", model="m", **{"tpr_at_fpr_1e-2": 0.4}),
            dict(row, left_out="b", model="m", **{"tpr_at_fpr_1e-2": 0.8}),
            dict(row, left_out="none", model="m", **{"tpr_at_fpr_1e-2": 0.99})]
    text = markdown(rows)
    assert "| m | 0.6000 (2 sources) |" in text and "| none | m | 0.9000 | 0.9900 |" in text
