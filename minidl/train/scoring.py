"""Scoring URLs with a trained URL model: a list, a stream of lines in bounded memory,
and the rows `minidl predict` prints.

    model, tokenizer, extra = minidl.models.load_url_model("runs/url.mdl")
    with open("urls.txt") as lines:
        for url, probability in score_lines(model, tokenizer, lines):
            ...

A URL is normalised as the training data were (scheme and a leading www. removed),
then tokenised. One with no character the model reads scores NaN: there is nothing
to base a verdict on. Blank lines are skipped.
"""
import csv
import json

import numpy as np

from minidl.data.split import normalize_url
from minidl.data.url_lines import CHUNK_URLS, chunked, looks_like_url
from minidl.distributed import RootFailed, block
from minidl.train.loop import predict

#: Columns of the tabular prediction formats.
PREDICTION_FIELDS = ("probability", "verdict", "url", "note")


def score_urls(model, tokenizer, urls, batch_size=1024):
    """The probability that each URL is malicious, (n,) float64; NaN for a URL with no
    character the model reads."""
    x = tokenizer.encode([normalize_url(url) for url in urls])
    probabilities = np.full(len(urls), np.nan)
    scorable = (x != 0).any(axis=1)  # id 0 is padding: a row of zeros holds nothing to read
    if scorable.any():
        probabilities[scorable] = predict(model, x[scorable], batch_size=batch_size).reshape(-1)
    return probabilities


def score_lines(model, tokenizer, lines, batch_size=1024, chunk_urls=CHUNK_URLS):
    """(url, probability) for each non-blank line of `lines` (an open file, any iterable
    of strings), in order, scoring `chunk_urls` at a time: memory holds one chunk, not
    the whole input."""
    for urls, probabilities in scored_chunks(model, tokenizer, chunked(lines, chunk_urls), batch_size):
        yield from zip(urls, probabilities.tolist())


def scored_chunks(model, tokenizer, chunks, batch_size=1024, group=None, patient=False):
    """(urls, probabilities) for each chunk (list) of URLs, in input order. With a
    process group (minidl.distributed) rank 0 reads the chunks and gives each rank one
    contiguous block of every chunk to score; the results come back to rank 0, the
    only rank that yields. patient: the other ranks wait for rank 0's next chunk
    without the watchdog (stdin)."""
    if group is None:
        for urls in chunks:
            yield urls, score_urls(model, tokenizer, urls, batch_size)
        return
    while True:
        message, failure = None, None
        if group.is_root:
            try:
                urls = next(chunks, None)
            except Exception as error:  # noqa: BLE001 - a missing file, a bad line: every rank stops
                urls, failure = None, error
            if failure is not None:
                message = [("error", str(failure))] * group.size
            elif urls is None:
                message = [("end", None)] * group.size
            else:
                message = [("urls", urls[slice(*block(0, len(urls), rank, group.size))]) for rank in range(group.size)]
        kind, part = group.scatter(message, patient=patient)
        if failure is not None:
            raise failure
        if kind == "error":
            raise RootFailed(f"rank 0: {part}")
        if kind == "end":
            return
        try:
            probabilities = score_urls(model, tokenizer, part, batch_size)
        except BaseException as error:
            group.abort(error)  # the other ranks wait for this one's scores
        probabilities = group.gather_to_root(probabilities)
        if group.is_root:
            yield urls, np.concatenate(probabilities)


def prediction_rows(urls, probabilities, threshold):
    """One dict per URL: probability (None when unscorable), verdict ("malicious" above
    `threshold`, "benign", or "unscorable"), url, and a note."""
    rows = []
    for url, probability in zip(urls, probabilities):
        if np.isnan(probability):
            rows.append({"probability": None, "verdict": "unscorable", "url": url,
                         "note": "no character the model reads"})
            continue
        note = "" if looks_like_url(url) else "does not look like a URL"
        verdict = "malicious" if probability > threshold else "benign"
        rows.append({"probability": float(probability), "verdict": verdict, "url": url, "note": note})
    return rows


def write_predictions(rows, form, stream, header=True):
    """Write the rows to `stream` as text (probability, verdict, URL, a note in
    brackets), tsv or csv (with a header row unless `header` is False: a later chunk)
    or json (one object per line)."""
    if form == "json":
        for row in rows:
            stream.write(json.dumps(row) + "\n")
        return
    shown = [dict(row, probability="" if row["probability"] is None else f"{row['probability']:.4f}")
             for row in rows]
    if form == "text":
        for row in shown:
            note = f"\t({row['note']})" if row["note"] else ""
            stream.write(f"{row['probability'] or '-'}\t{row['verdict']}\t{row['url']}{note}\n")
        return
    writer = csv.DictWriter(stream, fieldnames=PREDICTION_FIELDS, delimiter="\t" if form == "tsv" else ",",
                            lineterminator="\n")
    if header:
        writer.writeheader()
    writer.writerows(shown)
