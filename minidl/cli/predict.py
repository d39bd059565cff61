"""`minidl predict`: the probability and verdict of each URL given, or of each line of a
file streamed in chunks (minidl.train.scoring)."""
import itertools
import sys
import time

import numpy as np

from minidl.cli.inputs import decision_threshold, load_model_file
from minidl.cli.options import UsageError, UserError, add_threshold_option, positive_int
from minidl.data.url_lines import CHUNK_URLS, url_chunks
from minidl.distributed import resolve_group
from minidl.train.scoring import prediction_rows, scored_chunks, write_predictions

#: Below this many URLs a throughput figure measures start-up, not scoring.
THROUGHPUT_MIN_URLS = 1000


def add_parser(commands, runtime):
    parser = commands.add_parser(
        "predict", parents=[runtime], help="score URLs with a saved model",
        description="Print the probability and the verdict for each URL, in input order; a --file is "
                    "streamed in chunks, and its count and time (with the throughput, from 1,000 URLs on) go to stderr. Blank "
                    "inputs are skipped; an input with no character the model reads is marked unscorable "
                    "(exit status 1 when no input is scorable); text that does not look like a URL is "
                    "scored and flagged.")
    parser.add_argument("--model", required=True, help="a model file written by `minidl train`")
    parser.add_argument("urls", nargs="*", metavar="URL", help="URLs to score")
    parser.add_argument("--file", help="a file with one URL per line ('-' for stdin)")
    add_threshold_option(parser)
    parser.add_argument("--format", choices=("text", "tsv", "csv", "json"), default="text",
                        help="text: probability, verdict, URL per line (the default); tsv and csv: the same "
                             "with a note column and a header row; json: one object per line")
    parser.add_argument("--batch-size", type=positive_int, default=1024, help="batch size (default 1024)")
    parser.add_argument("--chunk-size", type=positive_int, default=CHUNK_URLS, metavar="URLS",
                        help=f"URLs of --file read, scored and written at a time (default {CHUNK_URLS}): memory "
                             "grows with it, not with the file's length")
    parser.set_defaults(run=run)


def run(args):
    given = [url.strip() for url in args.urls if url.strip()]  # blank inputs are skipped, as blank lines are
    if not given and not args.file:
        raise UsageError("no URLs given: pass them as arguments, or with --file (one per line, '-' for stdin)")
    model, tokenizer, extra = load_model_file(args.model)
    threshold, _ = decision_threshold(args, extra)
    group = resolve_group("auto")
    chunks = itertools.chain([given] if given else [],
                             url_chunks(args.file, args.chunk_size, name=f"--file {args.file}") if args.file else [])
    start, count, scorable = time.perf_counter(), 0, 0
    for urls, probabilities in scored_chunks(model, tokenizer, chunks, args.batch_size, group,
                                             patient=args.file == "-"):
        write_predictions(prediction_rows(urls, probabilities, threshold), args.format, sys.stdout,
                          header=count == 0)
        count += len(urls)
        scorable += int(np.count_nonzero(~np.isnan(probabilities)))
    if group is not None and not group.is_root:  # it scored its blocks; rank 0 writes and reports
        return 0
    if count == 0:
        raise UserError(f"no URLs given: --file {args.file} holds no non-empty line")
    if args.file:
        seconds = time.perf_counter() - start
        ranks = f" on {group.size} ranks" if group is not None else ""
        rate = f" ({count / seconds:,.0f} URLs/s{ranks})" if count >= THROUGHPUT_MIN_URLS else ranks
        print(f"scored {count:,} URLs in {seconds:.1f} s{rate}", file=sys.stderr)
    if scorable == 0:
        raise UserError(f"nothing to score: {'the input has' if count == 1 else f'none of the {count} inputs has'}"
                        " a character the model reads")
    return 0
