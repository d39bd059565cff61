"""`minidl embed`: pre-train character embeddings on URLs (word2vec's CBOW) for
`minidl train --embedding-init`."""
from pathlib import Path

import numpy as np

from minidl.cli.inputs import describe_labels, load_labelled_urls, read_url_lines
from minidl.cli.options import PLOT_INSTALL, add_data_options, positive_int, positive_number
from minidl.cli.outputs import output_file, require_matplotlib
from minidl.data import CharTokenizer
from minidl.models import character_labels, plot_embedding, train_cbow


def add_parser(commands, runtime):
    parser = commands.add_parser(
        "embed", parents=[runtime], help="pre-train character embeddings (word2vec CBOW)",
        description="Train CBOW character embeddings on URLs (labelled URLs as for train, or a .txt file or '-' "
                    "with one URL per line); write the matrix (.npy) and a 2D PCA plot of the characters.")
    add_data_options(parser, seed_help="the --limit subset, the initial embedding and the pairs drawn")
    parser.add_argument("--window", type=positive_int, default=2, help="context characters on each side (default 2)")
    parser.add_argument("--dim", type=positive_int, default=32, help="embedding dimension (default 32)")
    parser.add_argument("--epochs", type=positive_int, default=5, help="passes over the data (default 5)")
    parser.add_argument("--batch-size", type=positive_int, default=512, help="batch size (default 512)")
    parser.add_argument("--lr", type=positive_number, default=1e-2, help="Adam's learning rate (default 1e-2)")
    parser.add_argument("--max-pairs", type=positive_int,
                        help="train on a random subset of N (context, character) pairs (default: all)")
    parser.add_argument("--output", required=True, help="where to write the matrix (.npy); missing folders are made")
    parser.add_argument("--plot", help=f"where to write the PCA plot of the characters (.png; needs {PLOT_INSTALL})")
    parser.set_defaults(run=run)


def run(args):
    output = output_file(args.output, "--output")
    plot = output_file(args.plot, "--plot")
    if plot:
        require_matplotlib("--plot")
    if args.data is not None and (args.data == "-" or Path(args.data).suffix.lower() == ".txt"):
        urls = read_url_lines(args.data, "--data")[:args.limit]
        print(f"data: {args.data}: {len(urls)} URLs")
    else:
        urls, labels, where = load_labelled_urls(args)
        print(f"data: {where}: {describe_labels(labels)}")
    tokenizer = CharTokenizer()
    sequences, _ = tokenizer.tokenize(urls)
    matrix = train_cbow(sequences, tokenizer.vocab_size, dim=args.dim, window=args.window, epochs=args.epochs,
                        batch_size=args.batch_size, lr=args.lr, seed=args.seed, max_pairs=args.max_pairs,
                        verbose=True)
    np.save(output, matrix)
    print(f"saved the {matrix.shape[0]} x {matrix.shape[1]} embedding matrix to {output} "
          f"(use it with `minidl train --embedding-init {output} --emb-dim {args.dim}`)")
    if plot:
        plot_embedding(matrix, character_labels(tokenizer), plot)
        print(f"wrote {plot}")
    return 0
