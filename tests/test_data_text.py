"""Character tokeniser and pad_sequences (Keras semantics)."""
import json
import string

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minidl.data import CharTokenizer, pad_sequences


def source_tokens(url):
    """The source notebook's tokeniser, verbatim."""
    return [string.printable.index(x) + 1 for x in url if x in string.printable]


def keras_pad(sequences, maxlen, padding, truncating, value):
    """Keras' pad_sequences loop transcribed (for scalar items), the oracle below."""
    maxlen = max((len(s) for s in sequences), default=0) if maxlen is None else maxlen
    out = np.full((len(sequences), maxlen), value, dtype="int32")
    for i, s in enumerate(sequences):
        if not len(s) or not maxlen:
            continue
        trunc = s[-maxlen:] if truncating == "pre" else s[:maxlen]
        if padding == "post":
            out[i, : len(trunc)] = trunc
        else:
            out[i, -len(trunc) :] = trunc
    return out


# ----------------------------------------------------------------------- pad_sequences
SEQUENCES = [[1], [2, 3], [4, 5, 6]]


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({}, [[0, 0, 1], [0, 2, 3], [4, 5, 6]]),
        ({"value": -1}, [[-1, -1, 1], [-1, 2, 3], [4, 5, 6]]),
        ({"padding": "post"}, [[1, 0, 0], [2, 3, 0], [4, 5, 6]]),
        ({"maxlen": 2}, [[0, 1], [2, 3], [5, 6]]),
        ({"maxlen": 2, "truncating": "post"}, [[0, 1], [2, 3], [4, 5]]),
        ({"maxlen": 2, "padding": "post", "truncating": "post"}, [[1, 0], [2, 3], [4, 5]]),
        ({"maxlen": 4, "padding": "post"}, [[1, 0, 0, 0], [2, 3, 0, 0], [4, 5, 6, 0]]),
        ({"maxlen": 1}, [[1], [3], [6]]),
    ],
)
def test_pad_sequences_matches_keras_examples(kwargs, expected):
    out = pad_sequences(SEQUENCES, **kwargs)
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, expected)


def test_pad_sequences_empty_rows_dtype_and_vectors():
    np.testing.assert_array_equal(pad_sequences([[], [7]], maxlen=3), [[0, 0, 0], [0, 0, 7]])
    assert pad_sequences([[], []]).shape == (2, 0)
    floats = pad_sequences([[0.5, 1.5]], maxlen=3, dtype="float32", value=-1.0)
    np.testing.assert_array_equal(floats, [[-1.0, 0.5, 1.5]])
    assert floats.dtype == np.float32
    vectors = pad_sequences([[[1, 2], [3, 4]], [[5, 6]]], padding="post")
    np.testing.assert_array_equal(vectors, [[[1, 2], [3, 4]], [[5, 6], [0, 0]]])
    words = pad_sequences([["a", "b"], ["c"]], dtype=object, value="<pad>")
    assert words.tolist() == [["a", "b"], ["<pad>", "c"]]


def test_pad_sequences_errors():
    with pytest.raises(ValueError, match='padding must be "pre" or "post"'):
        pad_sequences(SEQUENCES, padding="middle")
    with pytest.raises(ValueError, match='truncating must be "pre" or "post"'):
        pad_sequences(SEQUENCES, truncating="both")
    with pytest.raises(ValueError, match="cannot hold the padding value"):
        pad_sequences(SEQUENCES, value="x")
    with pytest.raises(ValueError, match="item 1 is int"):
        pad_sequences([[1], 2])
    with pytest.raises(ValueError, match="item 1 has items of shape"):
        pad_sequences([[[1, 2]], [[1, 2, 3]]])


@settings(max_examples=15, deadline=None)
@given(
    sequences=st.lists(st.lists(st.integers(1, 99), max_size=7), max_size=5),
    maxlen=st.one_of(st.none(), st.integers(1, 8)),
    padding=st.sampled_from(["pre", "post"]),
    truncating=st.sampled_from(["pre", "post"]),
)
def test_pad_sequences_equals_keras_loop(sequences, maxlen, padding, truncating):
    expected = keras_pad(sequences, maxlen, padding, truncating, value=0)
    np.testing.assert_array_equal(pad_sequences(sequences, maxlen, padding=padding, truncating=truncating), expected)


# ------------------------------------------------------------------------- tokeniser
def test_default_tokenizer_is_the_source_one():
    urls = ["google.com/search?q=a b", "evil.ru/login.php", "x" * 80 + "END", ""]
    tokenizer = CharTokenizer()
    assert tokenizer.max_len == 75
    # the source's pipeline: printable index + 1, then Keras' default pad_sequences
    expected = pad_sequences([source_tokens(url) for url in urls], maxlen=75)
    np.testing.assert_array_equal(tokenizer.encode(urls), expected)
    assert tokenizer.encode(urls).dtype == np.int32
    # the defaults keep the *last* 75 characters
    assert tokenizer.decode(tokenizer.encode(urls)[2]) == ("x" * 80 + "END")[-75:]


def test_printable_ids_and_vocab_size():
    tokenizer = CharTokenizer(max_len=4)
    np.testing.assert_array_equal(tokenizer.encode(["0aA!"]), [[1, 11, 37, 63]])
    # string.printable has 100 characters: ids 1..100 plus padding 0
    np.testing.assert_array_equal(tokenizer.encode([" \x0c"]), [[0, 0, 95, 100]])
    assert tokenizer.vocab_size == 101


def test_characters_outside_the_vocabulary_are_dropped_and_counted():
    tokenizer = CharTokenizer(max_len=6)
    ids, unknown = tokenizer.encode(["caf\u00e9.fr", "ab", "\u2603\u2603x"], return_unknown=True)
    np.testing.assert_array_equal(ids[0], source_tokens("caf.fr"))
    np.testing.assert_array_equal(ids[2], [0] * 5 + source_tokens("x"))
    np.testing.assert_array_equal(unknown, [1, 0, 2])
    sequences, unknown = tokenizer.tokenize(["caf\u00e9", "\udcff"])  # a lone surrogate (undecodable byte)
    assert [s.tolist() for s in sequences] == [source_tokens("caf"), []]
    np.testing.assert_array_equal(unknown, [1, 1])


def test_post_padding_and_truncating_options():
    tokenizer = CharTokenizer(max_len=3, padding="post", truncating="post")
    np.testing.assert_array_equal(tokenizer.encode(["abcd", "a"]), [source_tokens("abc"), [11, 0, 0]])


def test_config_round_trips_through_json():
    tokenizer = CharTokenizer.fit(["ab\x0bc", "zz"], max_len=9, oov=True)
    config = json.loads(json.dumps(tokenizer.get_config()))
    clone = CharTokenizer.from_config(config)
    assert clone == tokenizer
    np.testing.assert_array_equal(clone.encode(["abq"]), tokenizer.encode(["abq"]))
    assert CharTokenizer.from_config(CharTokenizer().get_config()) == CharTokenizer()


def test_fit_builds_the_data_alphabet_with_oov():
    tokenizer = CharTokenizer.fit(["ba", "ca.", "a"], max_len=5)
    assert tokenizer.vocabulary == ".abc"
    assert tokenizer.vocab_size == 6  # padding, OOV, 4 characters
    ids, unknown = tokenizer.encode(["abz"], return_unknown=True)
    np.testing.assert_array_equal(ids, [[0, 0, 3, 4, 1]])  # 'z' -> OOV id 1
    np.testing.assert_array_equal(unknown, [1])
    assert tokenizer.decode(ids[0]) == "ab\ufffd"
    rare_dropped = CharTokenizer.fit(["aab", "a"], min_count=2, oov=False)
    assert rare_dropped.vocabulary == "a"
    np.testing.assert_array_equal(rare_dropped.encode(["ab"], return_unknown=True)[1], [1])


def test_tokenizer_errors_name_the_problem():
    with pytest.raises(TypeError, match="a list of strings, got a single str"):
        CharTokenizer().encode("google.com")
    with pytest.raises(TypeError, match="item 1 is bytes"):
        CharTokenizer().encode(["a", b"b"])
    with pytest.raises(ValueError, match="repeats the characters"):
        CharTokenizer(vocabulary="abca")
    with pytest.raises(ValueError, match="max_len must be a positive integer"):
        CharTokenizer(max_len=0)
    with pytest.raises(ValueError, match="id 101 is outside 0..100"):
        CharTokenizer().decode([101])
    with pytest.raises(ValueError, match="no character occurs 3 or more times"):
        CharTokenizer.fit(["ab"], min_count=3)
