"""The compare benchmark's tables, as text while it runs and as Markdown for the docs,
from its result record (the JSON `python -m benchmarks.compare --json` writes):

    {"command", "environment", "threads": ["2", "1"], "default_threads": "2",
     "matmul_peak_gflops": {"2": ..., "1": ...},
     "rows": [{"model", "row", "flops", "by_threads": {"2": {"minidl": {...}, "torch": {...},
               "ratio"}, ...}}],
     "memory": {"threads", "batch", "rows": [{"model", "minidl_mib", "torch_mib", "ratio"}]},
     "end_to_end": {"csv_rows", "epochs", "batch_size", "train_samples",
                    "rows": [{"model", "by_threads": {"2": {"minidl": {...}, "torch": {...},
                              "vs_torch", "step_ms_per_sample", "vs_step"}}}]}}

Thread counts are strings throughout, as JSON keys must be. `write_markdown` puts the
Markdown between the two MARKERS of an existing file (docs/benchmarks.md), or writes it
as the whole file.

    python -m benchmarks.report compare.json docs/benchmarks.md   # the docs' table from a saved run
"""
import argparse
import json
import sys

#: The hard bar of issue 14: every ratio at or below this, judged as printed (two decimals).
BAR = 1.0
MARKERS = ("<!-- benchmark table: begin (python -m benchmarks.compare --markdown) -->",
           "<!-- benchmark table: end -->")


def meets_bar(ratio):
    """Whether a ratio is at or below BAR as the tables print it, to two decimals."""
    return round(ratio, 2) <= BAR


def thread_label(count, default):
    """'2 threads (default)', '1 thread'."""
    label = f"{count} thread{'' if count == '1' else 's'}"
    return label + " (default)" if count == default else label


# ----------------------------------------------------------------------- text
_ROW_BLOCK = f"{'minidl ms':>10} {'torch ms':>10} {'ratio':>6} {'minidl GFLOP/s':>15} {'torch GFLOP/s':>15}"
_E2E_BLOCK = f"{'minidl':>8} {'torch':>8} {'vs torch':>8} {'step':>8} {'vs step':>8} {'data ms':>8}"


def _header(first, block, threads, default):
    """Two lines: each thread count's label centred over its block, then the columns."""
    width = len(block)
    top = " " * len(first) + "".join(f"   {' ' + thread_label(n, default) + ' ':-^{width}}" for n in threads)
    return [top, first + "".join(f"   {block}" for _ in threads)]


def row_header(threads, default):
    return _header(f"{'model':<12} {'row':<11}", _ROW_BLOCK, threads, default)


def _rate(measured):
    return f"{measured['gflops']:>7.1f} ({measured['peak_fraction']:>4.0%})"


def format_row(row, threads):
    """One model row: per thread count minidl's and PyTorch's median ms, the ratio,
    and each one's GFLOP/s with its fraction of the matmul peak."""
    line = f"{row['model']:<12} {row['row']:<11}"
    for count in threads:
        cell = row["by_threads"][count]
        ours, theirs = cell["minidl"], cell["torch"]
        line += (f"   {ours['median_ms']:>10.3f} {theirs['median_ms']:>10.3f} {cell['ratio']:>6.2f} "
                 f"{_rate(ours):>15} {_rate(theirs):>15}")
    return line


def memory_header(memory):
    return [f"peak memory of a training step at batch {memory['batch']}, {memory['threads']} threads "
            "(MiB over the resident size before it)", f"{'model':<12} {'minidl':>8} {'torch':>8} {'ratio':>6}"]


def format_memory(row):
    return f"{row['model']:<12} {row['minidl_mib']:>8.1f} {row['torch_mib']:>8.1f} {row['ratio']:>6.2f}"


def end_to_end_header(end_to_end, threads, default):
    intro = [f"end to end: {end_to_end['csv_rows']} generated URLs, {end_to_end['train_samples']} training samples, "
             f"{end_to_end['epochs']} epochs at batch {end_to_end['batch_size']}, ms per training sample",
             "(minidl: CSV, tokenise, fit with validation and progress bar; torch: a plain loop over the same arrays;",
             f" step: minidl's train b{end_to_end['batch_size']} row per sample; data ms: loading and tokenising, per run)"]
    return [*intro, *_header(f"{'model':<12}", _E2E_BLOCK, threads, default)]


def format_end_to_end(row, threads):
    line = f"{row['model']:<12}"
    for count in threads:
        cell = row["by_threads"][count]
        data_ms = cell["minidl"]["phases_ms"]["load"] + cell["minidl"]["phases_ms"]["tokenise"]
        line += (f"   {cell['minidl']['ms_per_sample']:>8.3f} {cell['torch']['ms_per_sample']:>8.3f} "
                 f"{cell['vs_torch']:>8.2f} {cell['step_ms_per_sample']:>8.3f} {cell['vs_step']:>8.2f} "
                 f"{data_ms:>8.1f}")
    return line


def bar_summary(record):
    """One line per thread count: how many model rows meet the bar, and the worst."""
    lines = []
    for count in record["threads"]:
        ratios = [(row["by_threads"][count]["ratio"], f"{row['model']} {row['row']}") for row in record["rows"]]
        worst, where = max(ratios)
        met = sum(meets_bar(ratio) for ratio, _ in ratios)
        lines.append(f"{thread_label(count, record['default_threads'])}: {met} of {len(ratios)} rows at or below "
                     f"{BAR:.2f}, worst {worst:.2f} ({where})")
    memory = record.get("memory")
    if memory:
        met = sum(meets_bar(row["ratio"]) for row in memory["rows"])
        lines.append(f"peak memory: {met} of {len(memory['rows'])} models at or below {BAR:.2f}")
    if record.get("end_to_end"):
        cells = [row["by_threads"][count] for row in record["end_to_end"]["rows"] for count in record["threads"]]
        against = {name: sum(meets_bar(cell[key]) for cell in cells)
                   for name, key in (("the training step", "vs_step"), ("PyTorch's loop", "vs_torch"))}
        lines.append("end to end, per sample: " + ", ".join(
            f"{met} of {len(cells)} at or below {BAR:.2f} against {name}" for name, met in against.items()))
    return lines


# ------------------------------------------------------------------- Markdown
def _cells(values):
    return "| " + " | ".join(values) + " |"


def _ratio(value):
    """A ratio, bold when it misses the bar."""
    return f"{value:.2f}" if meets_bar(value) else f"**{value:.2f}**"


def _markdown_rows(record):
    threads, default = record["threads"], record["default_threads"]
    head = ["model", "row"]
    for count in threads:
        label = thread_label(count, default)
        head += [f"minidl ms, {label}", "torch ms", "ratio", "minidl GFLOP/s (% peak)", "torch GFLOP/s (% peak)"]
    lines = [_cells(head), _cells(["---"] * 2 + ["---:"] * (len(head) - 2))]
    for row in record["rows"]:
        cells = [row["model"], row["row"]]
        for count in threads:
            cell = row["by_threads"][count]
            ours, theirs = cell["minidl"], cell["torch"]
            cells += [f"{ours['median_ms']:.3f}", f"{theirs['median_ms']:.3f}", _ratio(cell["ratio"]),
                      f"{ours['gflops']:.1f} ({ours['peak_fraction']:.0%})",
                      f"{theirs['gflops']:.1f} ({theirs['peak_fraction']:.0%})"]
        lines.append(_cells(cells))
    return lines


def _markdown_memory(memory):
    lines = [f"Peak memory a training step at batch {memory['batch']} adds ({memory['threads']} threads), MiB:", "",
             _cells(["model", "minidl", "torch", "ratio"]), _cells(["---", "---:", "---:", "---:"])]
    lines += [_cells([row["model"], f"{row['minidl_mib']:.1f}", f"{row['torch_mib']:.1f}", _ratio(row["ratio"])])
              for row in memory["rows"]]
    return lines


def _markdown_end_to_end(end_to_end, threads, default):
    lines = [f"End to end, ms per training sample: {end_to_end['csv_rows']} generated URLs, "
             f"{end_to_end['train_samples']} training samples, {end_to_end['epochs']} epochs at batch "
             f"{end_to_end['batch_size']} (vs torch: minidl's whole path over PyTorch's loop; vs step: over "
             "minidl's own train b32 row per sample; data: loading and tokenising, ms per run):", ""]
    head = ["model"]
    for count in threads:
        head += [f"minidl, {thread_label(count, default)}", "torch", "vs torch", "step", "vs step", "data ms"]
    lines += [_cells(head), _cells(["---"] + ["---:"] * (len(head) - 1))]
    for row in end_to_end["rows"]:
        cells = [row["model"]]
        for count in threads:
            cell = row["by_threads"][count]
            phases = cell["minidl"]["phases_ms"]
            cells += [f"{cell['minidl']['ms_per_sample']:.3f}", f"{cell['torch']['ms_per_sample']:.3f}",
                      _ratio(cell["vs_torch"]), f"{cell['step_ms_per_sample']:.3f}", _ratio(cell["vs_step"]),
                      f"{phases['load'] + phases['tokenise']:.1f}"]
        lines.append(_cells(cells))
    return lines


def markdown(record):
    """The run as Markdown: the command, the environment, the rows, memory, end to end
    and the bar's summary."""
    environment = record["environment"]
    lines = ["Produced by:", "", "```bash", record["command"], "```", "",
             f"Machine: {environment['cpu_count']} CPUs, scheduler {environment['scheduler']}, load average "
             f"{environment['load_average_1min']:.2f} at the start; float32 matmul peak (NumPy, 2048^3) "
             + ", ".join(f"{record['matmul_peak_gflops'][n]:.1f} GFLOP/s on {thread_label(n, None)}"
                         for n in record["threads"]) + ".", "",
             "<details><summary>environment</summary>", "", "```json", json.dumps(environment, indent=1), "```",
             "", "</details>", "", *_markdown_rows(record), ""]
    if record.get("memory"):
        lines += [*_markdown_memory(record["memory"]), ""]
    if record.get("end_to_end"):
        lines += [*_markdown_end_to_end(record["end_to_end"], record["threads"], record["default_threads"]), ""]
    lines += ["Against the bar (every ratio at or below 1.00):", ""]
    lines += [f"- {line}" for line in bar_summary(record)]
    return "\n".join(lines) + "\n"


def write_markdown(path, text):
    """Put `text` between the MARKERS of the file at `path` when it has them (the rest
    of the file is kept), else write it as the whole file."""
    begin, end = MARKERS
    try:
        with open(path, encoding="utf-8") as existing:
            document = existing.read()
    except FileNotFoundError:
        document = ""
    if begin in document and end in document.split(begin, 1)[1]:
        before, rest = document.split(begin, 1)
        after = rest.split(end, 1)[1]
        text = f"{before}{begin}\n{text}{end}{after}"
    with open(path, "w", encoding="utf-8") as out:
        out.write(text)
    print(f"wrote {path}")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.report",
                                     description="The Markdown tables of a saved compare run.")
    parser.add_argument("json", help="a record written by python -m benchmarks.compare --json")
    parser.add_argument("markdown", help="the Markdown file to fill (between its markers) or write")
    args = parser.parse_args(argv)
    with open(args.json, encoding="utf-8") as saved:
        write_markdown(args.markdown, markdown(json.load(saved)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
