"""Streaming `minidl predict --file`: the file is read, scored and written in chunks, in
input order, with a bad line named after the chunks before it were written; the
throughput goes to stderr. Under `mpiexec -n 2` rank 0 reads and every rank scores a
block of each chunk (tests/test_distributed.py runs the command under MPI)."""
import io as stdio

import pytest
from test_cli import assert_one_line_error, run, synthetic_urls
from test_model_file_schema import tiny_model_file

from minidl.data.url_lines import MAX_URL_CHARS, URLFileError, url_chunks


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    return tiny_model_file(tmp_path_factory.mktemp("stream"))


class CountingLines(stdio.StringIO):
    """A text stream that counts the lines read from it."""

    lines_read = 0

    def readline(self, limit=-1):
        self.lines_read += 1
        return super().readline(limit)


def test_chunks_keep_order_skip_blank_lines_and_read_any_line_end(tmp_path):
    path = tmp_path / "urls.txt"
    path.write_bytes(b"a.com\r\n\r\n  b.com  \rc.com\nd.com\n\n e.com")
    assert list(url_chunks(path, 2)) == [["a.com", "b.com"], ["c.com", "d.com"], ["e.com"]]


def test_chunks_are_read_as_they_are_needed(monkeypatch):
    stream = CountingLines("".join(f"u{i}.com\n" for i in range(1000)))
    monkeypatch.setattr("sys.stdin", stream)
    chunks = url_chunks("-", 10)
    assert next(chunks) == [f"u{i}.com" for i in range(10)]
    assert stream.lines_read == 10  # not the whole input: memory holds one chunk


def test_a_line_that_is_not_utf8_is_named_after_the_chunks_before_it_were_written(model_file, tmp_path, capsys):
    path = tmp_path / "urls.txt"
    path.write_bytes(b"".join(b"site%d.com\n" % i for i in range(7)) + b"bad\xff.com\n")
    status, out, err = run(["predict", "--model", model_file, "--file", path, "--chunk-size", "3"], capsys)
    assert_one_line_error(status, err, f"--file {path}, line 8: not UTF-8 text")
    assert [line.split("\t")[2] for line in out.splitlines()] == [f"site{i}.com" for i in range(6)]


def test_a_line_too_long_to_be_a_url_is_refused(tmp_path):
    path = tmp_path / "urls.txt"
    path.write_text("a.com\n" + "x" * (MAX_URL_CHARS + 1) + "\n")
    with pytest.raises(URLFileError, match="line 2: longer than 65,536 characters"):
        list(url_chunks(path))


def test_scores_in_chunks_equal_scores_in_one_go_in_input_order(model_file, tmp_path, capsys):
    urls = [url for url, _ in synthetic_urls(50, seed=3)]
    path = tmp_path / "urls.txt"
    path.write_text("\n".join(urls) + "\n")
    status, whole, _ = run(["predict", "--model", model_file, *urls], capsys)
    assert status == 0
    status, chunked, err = run(["predict", "--model", model_file, "--file", path, "--chunk-size", "7"], capsys)
    assert status == 0 and chunked == whole
    assert [line.split("\t")[2] for line in chunked.splitlines()] == urls
    assert err.startswith("scored 50 URLs in ") and "URLs/s" not in err  # 50 URLs time the start-up, not a rate


def test_an_empty_file_is_one_line(model_file, tmp_path, capsys):
    path = tmp_path / "empty.txt"
    path.write_text("\n\n")
    status, _, err = run(["predict", "--model", model_file, "--file", path], capsys)
    assert_one_line_error(status, err, "holds no non-empty line")
