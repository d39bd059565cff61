"""The hashed character n-gram tokeniser, URLNet's word tokeniser, several tokenisers
side by side (URLEncoder), and the configs a model file keeps."""
import subprocess
import sys

import numpy as np
import pytest

from minidl.data import CharTokenizer, NgramHasher, URLEncoder, WordTokenizer, fnv1a, tokenizer_from_config, url_words


def test_fnv1a_matches_the_published_test_vectors():
    # FNV-1a 32-bit of "", "a" and "foobar" (Fowler, Noll and Vo's reference values)
    assert fnv1a(np.zeros((1, 0)))[0] == 0x811C9DC5
    assert fnv1a([[ord("a")]])[0] == 0xE40C292C
    assert fnv1a([[ord(c) for c in "foobar"]])[0] == 0xBF9CF968


def test_ngrams_are_distinct_in_order_of_first_occurrence_with_their_counts():
    hasher = NgramHasher(ngram_range=(1, 2), buckets=1000, max_ngrams=6)
    row = hasher.encode(["aab"])[0]
    ids, counts = row[:6], row[6:]
    grams = ["a", "aa", "ab", "b"]  # a (twice), aa, ab, b: the order in which they start
    expected = [int(fnv1a([[ord(c) for c in g]])[0]) % 1000 + 1 for g in grams]
    np.testing.assert_array_equal(ids, expected + [0, 0])
    np.testing.assert_array_equal(counts, [2, 1, 1, 1, 0, 0])


def test_ngrams_never_cross_from_one_url_into_the_next():
    hasher = NgramHasher(ngram_range=(2, 3), buckets=2**20, max_ngrams=8)
    together = hasher.encode(["ab", "cd", ""])
    alone = np.concatenate([hasher.encode([text]) for text in ("ab", "cd", "")])
    np.testing.assert_array_equal(together, alone)
    assert (together[0, :8] > 0).sum() == 1 and (together[2] == 0).all()  # "ab" has one 2-gram, "" none


def test_long_urls_keep_their_first_ngrams_and_chunks_do_not_change_the_result():
    hasher = NgramHasher(max_ngrams=10)
    texts = ["example.com/" + "x" * i + "/login.php" for i in range(30)]
    np.testing.assert_array_equal(hasher.encode(texts, chunk=7), hasher.encode(texts))
    first = hasher.encode(["exam"])[0]
    np.testing.assert_array_equal(hasher.encode(["example.com/a/b/c"])[0, :4], first[:4])  # e, ex, exa, exam


def test_lowercase_is_an_option():
    assert np.array_equal(NgramHasher().encode(["PayPal.com"]), NgramHasher().encode(["paypal.com"]))
    assert not np.array_equal(NgramHasher(lowercase=False).encode(["PayPal.com"]), NgramHasher().encode(["paypal.com"]))


def test_buckets_are_stable_across_processes():
    """Python's str hash is salted per process; FNV-1a is not, so a saved model reads
    the same buckets in any run."""
    code = "from minidl.data import NgramHasher; print(NgramHasher(buckets=977).encode(['paypal.com/x'])[0, :6].tolist())"
    runs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": seed, "PATH": ""}).stdout for seed in ("1", "2")}
    assert len(runs) == 1
    assert runs.pop().strip() == str(NgramHasher(buckets=977).encode(["paypal.com/x"])[0, :6].tolist())


def test_urlnet_words_cut_at_special_characters_and_keep_them():
    assert url_words("PayPal.com/secure-Login?id=7") == ["Pay", "Pal", ".", "com", "/", "secure-Login", "?", "id",
                                                        "=", "7"]
    assert url_words("HTTPServer") == ["HTTP", "Server"]


def test_word_tokenizer_fits_frequent_words_and_maps_the_rest_to_unknown():
    texts = ["a.com/login", "b.com/login", "c.net/x"]
    tokenizer = WordTokenizer.fit(texts, min_count=2, max_words=5, max_word_len=5)
    assert tokenizer.vocabulary == [".", "/", "com", "login"]  # most frequent first, ties in order
    row = tokenizer.encode(["z.com/login"])[0]
    word_ids, chars = row[:5], row[5:].reshape(5, 5)
    np.testing.assert_array_equal(word_ids, [1, 2, 4, 3, 5])  # z unknown, ., com, /, login
    np.testing.assert_array_equal(chars[2], CharTokenizer(max_len=5, padding="post", truncating="post").encode(["com"])[0])
    assert tokenizer.vocab_size == 6 and tokenizer.width == 5 * 6


def test_words_longer_than_max_word_len_are_unknown_and_cut():
    tokenizer = WordTokenizer(vocabulary=["abcdef"], max_words=2, max_word_len=3)
    row = tokenizer.encode(["abcdef"])[0]
    assert row[0] == 1  # unknown: longer than 3 characters, as URLNet treats it
    np.testing.assert_array_equal(row[2:5], CharTokenizer(max_len=3, padding="post", truncating="post").encode(["abc"])[0])


def test_an_encoder_packs_its_parts_side_by_side():
    encoder = URLEncoder({"chars": CharTokenizer(max_len=5), "ngrams": NgramHasher(buckets=50, max_ngrams=3)})
    assert encoder.layout() == [("chars", 0, 5), ("ngrams", 5, 6)] and encoder.width == 11
    texts = ["a.io", "bb.com/x"]
    np.testing.assert_array_equal(encoder.encode(texts),
                                  np.concatenate([CharTokenizer(max_len=5).encode(texts),
                                                  NgramHasher(buckets=50, max_ngrams=3).encode(texts)], axis=1))


@pytest.mark.parametrize("tokenizer", [
    CharTokenizer(max_len=9, truncating="post"),
    NgramHasher(ngram_range=(2, 4), buckets=123, max_ngrams=7, lowercase=False),
    WordTokenizer(vocabulary=["com", "/"], max_words=4, max_word_len=6),
    URLEncoder({"chars": CharTokenizer(max_len=3), "words": WordTokenizer(vocabulary=["x"]),
                "ngrams": NgramHasher(buckets=10)}),
], ids=lambda t: type(t).__name__)
def test_every_tokenizer_comes_back_from_its_config(tokenizer):
    clone = type(tokenizer).from_config(tokenizer.get_config())
    if isinstance(tokenizer, (CharTokenizer, URLEncoder)):  # what a model file holds
        assert tokenizer_from_config(tokenizer.get_config()) == tokenizer
    assert clone == tokenizer
    texts = ["PayPal.com/x?a=1", "b.org"]
    np.testing.assert_array_equal(clone.encode(texts), tokenizer.encode(texts))


def test_bad_settings_are_clear_errors():
    with pytest.raises(ValueError, match="ngram_range must be"):
        NgramHasher(ngram_range=(3, 2))
    with pytest.raises(ValueError, match="buckets must be"):
        NgramHasher(buckets=0)
    with pytest.raises(ValueError, match="repeats words"):
        WordTokenizer(vocabulary=["a", "a"])
    with pytest.raises(ValueError, match="unknown tokeniser 'Nope'"):
        tokenizer_from_config({"class_name": "Nope"})
    with pytest.raises(TypeError, match="expects a list of strings"):
        NgramHasher().encode("paypal.com")
