"""`minidl export-onnx`: a model file as an ONNX model, for ONNX Runtime and the tools
that read ONNX (minidl.interop.onnx)."""
from pathlib import Path

from minidl.cli.options import UserError
from minidl.cli.outputs import output_file
from minidl.interop.onnx import export
from minidl.io import load


def add_parser(commands, runtime):
    parser = commands.add_parser(
        "export-onnx", parents=[runtime], help="write a model file as an ONNX model, for ONNX Runtime",
        description="Write a minidl model file as an ONNX model (needs the onnx package: pip install -e "
                    "\".[onnx]\"). The graph takes the token ids, as `predict` makes them, and gives what the "
                    "model gives (the probability for the URL models); the tokeniser's settings go into the "
                    "ONNX model's metadata (minidl.tokenizer). docs/interop.md shows how to make the ids.")
    parser.add_argument("--model", required=True, help="the minidl model file")
    parser.add_argument("--output", required=True, help="where to write the ONNX model (.onnx)")
    parser.set_defaults(run=run)


def describe_inputs(proto):
    """'ids (batch, 75)': the graph's inputs and their axes."""
    def axes(item):
        return ", ".join(dim.dim_param or str(dim.dim_value) for dim in item.type.tensor_type.shape.dim)

    return "; ".join(f"{item.name} ({axes(item)})" for item in proto.graph.input)


def run(args):
    if not Path(args.model).is_file():
        raise UserError(f"--model {args.model}: no such file")
    output = output_file(args.output, "--output")
    model, extra, _ = load(args.model)
    tokenizer = extra.get("tokenizer")
    proto = export(model, output, tokenizer=tokenizer if isinstance(tokenizer, dict) else None)
    print(f"exported {type(model).__name__} to {output}: {len(proto.graph.node)} ONNX nodes, "
          f"input {describe_inputs(proto)}"
          + ("" if tokenizer is not None else "; the model file holds no tokeniser settings"))
    return 0
