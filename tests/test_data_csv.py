"""CSV loaders: the source's url,isMalicious format and other labelled text tables."""
import numpy as np
import pytest

from minidl.data import load_text_csv, load_url_csv


def write(tmp_path, content, name="data.csv"):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def test_reads_the_source_format(tmp_path):
    path = write(tmp_path, 'url,isMalicious\ngoogle.com/a,0\n"evil.ru/x,y",1\ncaf\u00e9.fr,0\n')
    urls, labels, report = load_url_csv(path)
    assert urls == ["google.com/a", "evil.ru/x,y", "caf\u00e9.fr"]
    np.testing.assert_array_equal(labels, [0, 1, 0])
    assert labels.dtype == np.int64
    assert (report.rows, report.n_skipped, report.classes) == (3, 0, ("0", "1"))


def test_other_column_names_order_and_bom(tmp_path):
    path = write(tmp_path, b"\xef\xbb\xbfbad,link\r\n1,a.com\r\n0,b.com\r\n")
    urls, labels, _ = load_url_csv(path, url_column="link", label_column="bad")
    assert urls == ["a.com", "b.com"]
    np.testing.assert_array_equal(labels, [1, 0])


@pytest.mark.parametrize(
    "body, line, reason",
    [
        ("a.com,0\nb.com,1,extra\n", 3, "3 fields, the header has 2"),
        ("a.com,0\nb.com\n", 3, "1 fields, the header has 2"),
        ("a.com,0\nb.com,2\n", 3, "'isMalicious' is '2', expected one of '0', '1'"),
        ("a.com,0\nb.com,yes\n", 3, "'isMalicious' is 'yes'"),
        ("a.com,0\nb.com,\n", 3, "'isMalicious' is ''"),
        ("a.com,0\n,1\n", 3, "empty 'url'"),
        ("a.com,0\n   ,1\n", 3, "empty 'url'"),
        ('"multi\nline.com",0\nb.com,1,x\n', 4, "3 fields"),  # line numbers count physical lines
    ],
)
def test_malformed_row_raises_with_its_line(tmp_path, body, line, reason):
    path = write(tmp_path, "url,isMalicious\n" + body)
    with pytest.raises(ValueError, match=rf"line {line}: .*{reason}.*on_error='skip'"):
        load_url_csv(path)


def test_invalid_utf8_is_reported_with_its_line(tmp_path):
    path = write(tmp_path, b"url,isMalicious\na.com,0\nb\xff\xfe.com,1\nc.com,1\n")
    with pytest.raises(ValueError, match="line 3: bytes that are not valid UTF-8"):
        load_url_csv(path)


def test_skip_leaves_malformed_rows_out_and_counts_them(tmp_path):
    content = (
        b"url,isMalicious\n"
        b"a.com,0\n"  # line 2
        b"b.com,1,extra\n"  # line 3: field count
        b"c\xff.com,1\n"  # line 4: invalid UTF-8
        b"\n"  # line 5: blank, counted but not an error
        b"d.com,7\n"  # line 6: label
        b",0\n"  # line 7: empty URL
        b"e.com,1\n"  # line 8
    )
    path = write(tmp_path, content)
    with pytest.warns(UserWarning, match="2 rows kept, 4 skipped"):
        urls, labels, report = load_url_csv(path, on_error="skip")
    assert urls == ["a.com", "e.com"]
    np.testing.assert_array_equal(labels, [0, 1])
    assert [line for line, _ in report.skipped] == [3, 4, 6, 7]
    assert report.n_skipped == 4 and report.blank_lines == 1 and report.rows == 2
    assert "first at line 3" in str(report)


def test_general_loader_for_multiclass_labels(tmp_path):
    path = write(tmp_path, "domain,isDGA,family\nabc.com,0,alexa\nqxz.ru,1,tinba\nzzq.biz,1,conficker\n")
    domains, families, report = load_text_csv(path, "domain", "family", classes=None)
    assert domains == ["abc.com", "qxz.ru", "zzq.biz"]
    assert report.classes == ("alexa", "conficker", "tinba")
    np.testing.assert_array_equal(families, [0, 2, 1])
    _, binary, _ = load_text_csv(path, "domain", "isDGA")
    np.testing.assert_array_equal(binary, [0, 1, 1])
    _, named, _ = load_text_csv(path, "domain", "family", classes=("alexa", "tinba", "conficker"))
    np.testing.assert_array_equal(named, [0, 1, 2])


def test_file_level_errors_always_raise(tmp_path):
    with pytest.raises(ValueError, match="no text column 'url'; the header has 'link', 'isMalicious'"):
        load_url_csv(write(tmp_path, "link,isMalicious\na.com,0\n"), on_error="skip")
    with pytest.raises(ValueError, match="the file is empty"):
        load_url_csv(write(tmp_path, ""))
    with pytest.raises(ValueError, match="more than once"):
        load_url_csv(write(tmp_path, "url,url,isMalicious\na,b,0\n"))
    with pytest.raises(ValueError, match='on_error must be "raise" or "skip"'):
        load_url_csv(write(tmp_path, "url,isMalicious\n"), on_error="ignore")
    with pytest.raises(FileNotFoundError):
        load_url_csv(tmp_path / "missing.csv")
