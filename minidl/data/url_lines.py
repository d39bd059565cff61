"""Files of URLs, one per line, read in bounded memory, and the rule for which lines
look like URLs.

    for chunk in url_chunks("urls.txt"):        # lists of at most CHUNK_URLS URLs
        ...

A file is read as UTF-8 one line at a time, so a file of any length costs one chunk
of memory; a line that is not UTF-8, or too long to be a URL, is an error that names
it (after the chunks before it have been yielded).
"""
import contextlib
import io
import itertools
import re
import sys
from pathlib import Path

from minidl.data.split import normalize_url, url_host

#: URLs read, scored and written at a time: memory holds one chunk whatever the file's length.
CHUNK_URLS = 8192
#: A longer line is not a URL (servers refuse a few kilobytes; browsers stop at 2 MB)
#: and would make a chunk's memory unbounded.
MAX_URL_CHARS = 2**16
_UNDECODABLE = re.compile("[\udc80-\udcff]")  # bytes that are not UTF-8, read with surrogateescape


class URLFileError(ValueError):
    """A file of URLs that cannot be read as one: missing, a folder, a bad line."""


def looks_like_url(url):
    """A URL as the data sets hold them: no white space, and a host with a dot in it."""
    normalized = normalize_url(url)
    return not re.search(r"\s", normalized) and "." in url_host(normalized)


@contextlib.contextmanager
def _utf8_lines(source):
    """The text of a file, or of stdin for '-', as UTF-8 with undecodable bytes kept as
    lone surrogates (so that the line holding them can be named)."""
    if source != "-":
        with open(source, encoding="utf-8", errors="surrogateescape") as stream:
            yield stream
    elif hasattr(sys.stdin, "buffer"):  # stdin as UTF-8, whatever the locale says
        stream = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="surrogateescape")
        try:
            yield stream
        finally:
            stream.detach()  # leaves sys.stdin open
    else:
        yield sys.stdin


def chunked(lines, chunk_urls=CHUNK_URLS):
    """Lists of at most `chunk_urls` URLs, in order: the non-blank `lines`, stripped."""
    chunk = []
    for line in lines:
        url = line.strip()
        if url:
            chunk.append(url)
            if len(chunk) == chunk_urls:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


def _checked_lines(stream, name):
    """The lines of `stream`, each read with a bound on its length, refused when longer
    than a URL can be or not UTF-8."""
    for number in itertools.count(1):
        line = stream.readline(MAX_URL_CHARS + 1)
        if not line:
            return
        if len(line) > MAX_URL_CHARS:
            raise URLFileError(f"{name}, line {number}: longer than {MAX_URL_CHARS:,} characters, not a URL")
        if _UNDECODABLE.search(line):
            raise URLFileError(f"{name}, line {number}: not UTF-8 text")
        yield line


def url_chunks(source, chunk_urls=CHUNK_URLS, name=None):
    """Lists of at most `chunk_urls` URLs, in order: the non-empty lines, stripped, of a
    UTF-8 file or of stdin ('-'). Errors (URLFileError) start with `name` (default: the
    path) and give the line's number."""
    name = name or str(source)
    if source != "-" and Path(source).is_dir():
        raise URLFileError(f"{name}: is a directory, not a file of URLs")
    if source != "-" and not Path(source).is_file():
        raise URLFileError(f"{name}: no such file")
    with _utf8_lines(source) as stream:
        yield from chunked(_checked_lines(stream, name), chunk_urls)
