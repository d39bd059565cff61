"""Labelled text tables (CSV with a header row) -> texts and integer labels.

One reader serves every data set: the URL sets (`url,isMalicious`, the source's format),
DGA domains (`domain,isDGA,family`) and botnet letter strings (`state,isBotnet,...`);
the caller names the text and label columns. (The module is not called `csv.py` so that
it never shadows the standard `csv` module it uses.)

Nothing is dropped silently: a malformed row (wrong number of fields, a label outside the
allowed classes, an empty text, bytes that are not UTF-8) stops the load with a
ValueError that gives its line number, or, with on_error="skip", is left out, counted
and listed in the returned `LoadReport` (and a warning says how many went).
"""
import csv
import gzip
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ON_ERROR = ("raise", "skip")
BINARY = ("0", "1")

# Undecodable bytes are read as lone surrogates (errors="surrogateescape"), so one bad
# row can be reported, or skipped, without losing the rest of the file.
_UNDECODABLE = re.compile("[\udc80-\udcff]")


class MalformedRowError(ValueError):
    """A row that does not fit the header (on_error="raise"): `path`, `line` (where the
    row starts) and `reason`; the message also says how to skip such rows."""

    def __init__(self, path, line, reason):
        self.path, self.line, self.reason = path, line, reason
        super().__init__(f"{path}, line {line}: {reason} (pass on_error='skip' to leave such rows out)")


@dataclass
class LoadReport:
    """What a load kept and left out. skipped: (line, reason) for each row left out,
    line being the 1-based line on which the row starts (the header is line 1)."""

    path: str
    rows: int = 0
    classes: tuple = ()
    skipped: list = field(default_factory=list)
    blank_lines: int = 0

    @property
    def n_skipped(self):
        return len(self.skipped)

    def __str__(self):
        text = f"{self.path}: {self.rows} rows kept, {self.n_skipped} skipped"
        if self.skipped:
            line, reason = self.skipped[0]
            text += f" (first at line {line}: {reason})"
        return text


def load_text_csv(path, text_column, label_column, classes=BINARY, on_error="raise"):
    """Read a CSV with a header row (gzip-compressed when the name ends in .gz) ->
    (texts, labels, report).

    texts: list of str from `text_column`; labels: int64 array, the index of each row's
    `label_column` value in `classes` (so the default ("0", "1") gives 0/1 labels);
    classes=None accepts any non-empty label and uses the sorted distinct labels as
    classes (for multi-class sets such as DGA families; `report.classes` lists them).
    on_error: "raise" (default) or "skip" malformed rows, see the module docstring.
    A missing column, an empty file or a CSV syntax error always raises.
    """
    if on_error not in ON_ERROR:
        raise ValueError(f'load_text_csv: on_error must be "raise" or "skip", got {on_error!r}')
    path = Path(path)
    report = LoadReport(path=str(path))
    texts, label_texts = [], []
    allowed = None if classes is None else {str(name): index for index, name in enumerate(classes)}

    def malformed(line, reason):
        if on_error == "raise":
            raise MalformedRowError(path, line, reason)
        report.skipped.append((line, reason))

    # utf-8-sig: a byte-order mark, as spreadsheet programs write, must not rename the first column
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", newline="", encoding="utf-8-sig", errors="surrogateescape") as stream:
        reader = csv.reader(stream)
        header = _read_header(reader, path)
        text_index = _column_index(header, text_column, "text", path)
        label_index = _column_index(header, label_column, "label", path)
        while True:
            line = reader.line_num + 1  # where the next row starts: a quoted field may span lines
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as error:  # the reader cannot resynchronise, so never skipped
                raise ValueError(f"{path}, line {line}: not valid CSV: {error}") from error
            if not row:
                report.blank_lines += 1
                continue
            if len(row) != len(header):
                if any("\n" in value for value in row):
                    # a quote that is never closed swallows the lines after it into one field
                    malformed(line, f"an unterminated quote? a quoted field opened here runs on to line "
                                    f"{reader.line_num}, so the row has {len(row)} of the header's {len(header)} fields")
                else:
                    malformed(line, f"{len(row)} fields, the header has {len(header)}")
                continue
            if any(_UNDECODABLE.search(value) for value in row):
                malformed(line, "bytes that are not valid UTF-8")
                continue
            text, label = row[text_index], row[label_index].strip()
            if not text.strip():
                malformed(line, f"empty {text_column!r}")
                continue
            if allowed is not None and label not in allowed:
                malformed(line, f"{label_column!r} is {label!r}, expected one of {', '.join(map(repr, allowed))}")
                continue
            if allowed is None and not label:
                malformed(line, f"empty {label_column!r}")
                continue
            texts.append(text)
            label_texts.append(label)

    if allowed is None:
        allowed = {name: index for index, name in enumerate(sorted(set(label_texts)))}
    report.rows = len(texts)
    report.classes = tuple(allowed)
    if report.skipped:
        warnings.warn(f"load_text_csv: {report}", stacklevel=2)
    labels = np.fromiter((allowed[label] for label in label_texts), dtype=np.int64, count=len(label_texts))
    return texts, labels, report


def load_url_csv(path, url_column="url", label_column="isMalicious", on_error="raise"):
    """The source's format, `url,isMalicious` with 0/1 labels -> (urls, labels, report)."""
    return load_text_csv(path, url_column, label_column, classes=BINARY, on_error=on_error)


def _read_header(reader, path):
    try:
        header = next(reader)
    except StopIteration:
        raise ValueError(f"{path}: the file is empty; expected a header row") from None
    except csv.Error as error:
        raise ValueError(f"{path}, line 1: not valid CSV: {error}") from error
    header = [name.strip() for name in header]
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise ValueError(f"{path}: the header names the columns {repeated} more than once")
    return header


def _column_index(header, name, role, path):
    if name not in header:
        raise ValueError(f"{path}: no {role} column {name!r}; the header has {', '.join(map(repr, header))}")
    return header.index(name)
