"""A second decoder graph for speculative decoding, written beside model.onnx and sharing its weights file.

onnxruntime-genai 0.18's n-gram speculation verifies several drafted tokens in one forward pass and
needs one logits row per verified token; it refuses the pruned graph (models/prune.py), whose logits
output is declared `[batch, 1, vocab]`.  The runtime sizes the logits buffer from that declaration: a
fixed 1 means "last token only", anything else means one row per input token, for every call.  One graph
cannot be both, so this pass writes `spec.onnx`: the same decoder, whose LM head reads only the last
`TAIL` positions of each input (a prefill's earlier rows are never read) and pads the logits with zero
rows at the front up to the input's length.  Decode steps and verification rounds (at most 16 drafted
tokens + 1) get every row computed; a prefill costs what the pruned graph's does, plus the head for 16
more rows.  The zero-filled buffer is still [1, S, vocab] float32, so the engine appends a speculative
generator's prompt in chunks (engine/ort.py) to bound it.

The weights are not copied: the graph's initializers keep pointing at model.onnx.data.  Only
one-row generators use this graph (the runtime speculates on batch 1 only); batches keep the pruned one.
Needs the `onnx` package (the `convert` extra).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .prune import GRAPH_FILE, INT64_MAX, PREFIX, _lm_head, _write_atomically

SPEC_FILE = "spec.onnx"
SPEC_PREFIX = "/agentic_flow/spec_tail/"
# Rows of logits computed per call: the runtime's largest verification round (max_draft_tokens <= 16,
# plus the bonus token).
TAIL = 17


def has_spec_graph(model_dir: Path) -> bool:
    return (model_dir / SPEC_FILE).is_file()


def write_spec_graph(model_dir: Path) -> bool:
    """Write `model_dir/spec.onnx` from `model_dir/model.onnx` (pruned or not); False when it exists.
    A graph without the expected LM head raises ValueError, as in models/prune.py."""
    import onnx

    target = model_dir / SPEC_FILE
    if target.is_file():
        return False
    model = onnx.load(str(model_dir / GRAPH_FILE), load_external_data=False)
    _rewrite(model.graph)
    _write_atomically(target, model.SerializeToString())
    return True


def _rewrite(graph: Any) -> None:
    from onnx import TensorProto, helper

    hidden = _lm_head(graph).input[0]
    producers = {out: n for n in graph.node for out in n.output}
    gather = producers.get(hidden)
    if gather is not None and gather.name.startswith(PREFIX):  # the pruned graph: undo the gather
        hidden = gather.input[0]
        _drop_prefixed(graph, PREFIX)  # (copies the nodes: look them up again below)
    head = _lm_head(graph)
    last = next(n for n in graph.node if "logits" in n.output)  # the head, or a bias / scale node after it

    def name(part: str) -> str:
        return SPEC_PREFIX + part

    def const(part: str, values: list[int]) -> str:
        graph.initializer.append(helper.make_tensor(name(part), TensorProto.INT64, [len(values)], values))
        return name(part)

    before = [
        helper.make_node("Slice", [hidden, const("start", [-TAIL]), const("end", [INT64_MAX]), const("axis1", [1])],
                         [name("tail")], name=name("Slice")),
    ]
    zero = const("zero", [0])
    after = [
        helper.make_node("Shape", ["input_ids"], [name("seq")], name=name("Shape"), start=1, end=2),
        helper.make_node("Shape", [name("tail")], [name("rows")], name=name("ShapeTail"), start=1, end=2),
        helper.make_node("Sub", [name("seq"), name("rows")], [name("front")], name=name("Sub")),
        # Pad's layout: every axis's start, then every axis's end: [0, S - rows, 0, 0, 0, 0].
        helper.make_node("Concat", [zero, name("front"), zero, zero, zero, zero], [name("pads")],
                         name=name("Concat"), axis=0),
        helper.make_node("Pad", [name("tail_logits"), name("pads")], ["logits"], name=name("Pad"), mode="constant"),
    ]
    head.input[0] = name("tail")
    last.output[0] = name("tail_logits")
    at = list(graph.node).index(head)
    for offset, node in enumerate(before):
        graph.node.insert(at + offset, node)
    graph.node.extend(after)
    for output in graph.output:
        if output.name == "logits":
            dim = output.type.tensor_type.shape.dim[1]
            dim.ClearField("dim_value")
            dim.dim_param = "sequence_length"


def _drop_prefixed(graph: Any, prefix: str) -> None:
    nodes = [n for n in graph.node if not n.name.startswith(prefix)]
    inits = [i for i in graph.initializer if not i.name.startswith(prefix)]
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.initializer[:]
    graph.initializer.extend(inits)
