"""Logits for each row's last few tokens: the graph pass of convert build 3, which keeps the pruned
prefill of build 2 (models/prune.py) and allows speculative decoding.

onnxruntime-genai 0.18's n-gram speculation verifies several drafted tokens in one forward pass and needs
one logits row per verified token: it refuses a graph whose logits output is declared `[batch, 1, vocab]`
(build 2's).  The runtime sizes its logits buffer from that declaration, for every call: a fixed 1 means
"last token only", anything else one row per input token.  So this graph declares one row per token,
but computes the LM head only for the last `n = min(S, TAIL)` real positions of each row (S: this
input's length) and scatters them into a zero-filled [batch, S, vocab] output:
  - a decode step (S = 1) computes one row, as build 2 does;
  - a verification round (at most 16 drafted tokens + 1) computes every row;
  - a prefill computes 17 rows instead of every prompt position (the saving build 2 bought: +22%
    prefill on the 1.5B), and in a right-padded batch each row's own last positions.
What it still costs is the buffer: [batch, S, vocab] float32 is written (zeros) for a prefill, 311 MB
for 512 tokens of Qwen's vocabulary.  So the engine reads a one-row prompt in chunks (engine/ort.py) and
the scheduler bounds what a batch of several rows reads at once (engine/costs.py).

Only the graph file changes (a few KB): the weights file is untouched, so an installed model is upgraded
in place, from build 1 or 2.  Needs the `onnx` package (the `convert` extra).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .prune import GRAPH_FILE, PREFIX, _lm_head, _write_atomically

TAIL_PREFIX = "/agentic_flow/tail_logits/"
# Rows of logits computed per call: the runtime's largest verification round (max_draft_tokens <= 16,
# plus the bonus token).
TAIL = 17


def has_tail_logits(model_dir: Path) -> bool:
    """True when the pass has been applied (read without loading the weights)."""
    import onnx

    graph = onnx.load(str(model_dir / GRAPH_FILE), load_external_data=False).graph
    return any(n.name.startswith(TAIL_PREFIX) for n in graph.node)


def tail_logits(model_dir: Path) -> bool:
    """Rewrite `model_dir/model.onnx` (the builder's graph or build 2's) so the LM head reads each row's
    last TAIL positions only; False (and nothing written) when already done.  A graph without the expected
    LM head and inputs raises ValueError, as in models/prune.py."""
    import onnx

    path = model_dir / GRAPH_FILE
    model = onnx.load(str(path), load_external_data=False)
    if any(n.name.startswith(TAIL_PREFIX) for n in model.graph.node):
        return False
    _rewrite(model.graph)
    _write_atomically(path, model.SerializeToString())
    return True


def _rewrite(graph: Any) -> None:
    from onnx import TensorProto, helper

    inputs = {i.name for i in graph.input}
    if "attention_mask" not in inputs or "input_ids" not in inputs:
        raise ValueError("the graph has no attention_mask/input_ids input: not a decoder this pass knows")
    hidden = _lm_head(graph).input[0]
    producers = {out: n for n in graph.node for out in n.output}
    gather = producers.get(hidden)
    if gather is not None and gather.name.startswith(PREFIX):  # build 2: undo its gather first
        hidden = gather.input[0]
        _drop_prefixed(graph, PREFIX)  # (copies the nodes: look them up again below)
    head = _lm_head(graph)
    last = next(n for n in graph.node if "logits" in n.output)  # the head, or a bias / scale node after it
    hidden_size = _dim(head, "K")
    vocab = _dim(head, "N")

    def name(part: str) -> str:
        return TAIL_PREFIX + part

    def const(part: str, values: list[int]) -> str:
        graph.initializer.append(helper.make_tensor(name(part), TensorProto.INT64, [len(values)], values))
        return name(part)

    def scalar(part: str, value: int) -> str:
        graph.initializer.append(helper.make_tensor(name(part), TensorProto.INT64, [], [value]))
        return name(part)

    def node(op: str, ins: list[str], out: str, **attrs: Any) -> Any:
        return helper.make_node(op, ins, [name(out)], name=name(out), **attrs)

    before = [
        # S, this input's length; the mask's last S columns are its tokens.
        node("Shape", ["input_ids"], "seq", start=1, end=2),
        node("Neg", [name("seq")], "neg_seq"),
        node("Cast", ["attention_mask"], "mask", to=TensorProto.INT64),
        node("Slice", [name("mask"), name("neg_seq"), const("end", [2**63 - 1]), const("axis1", [1])], "columns"),
        # Each row's last real position in this input ([B, 1]).
        node("ReduceSum", [name("columns"), const("axes", [1])], "count", keepdims=1),
        node("Sub", [name("count"), const("one", [1])], "last"),
        # n = min(S, TAIL) positions per row, ending at its last: last - n + 1 .. last (clamped at 0 for a
        # padded row shorter than n: repeats of position 0, scattered onto itself).
        node("Min", [name("seq"), const("tail", [TAIL])], "n"),
        node("Sub", [const("one_b", [1]), name("n")], "from"),
        node("Squeeze", [name("from")], "from0"),
        node("Range", [name("from0"), scalar("stop", 1), scalar("step", 1)], "offsets"),
        node("Add", [name("last"), name("offsets")], "raw_positions"),
        node("Max", [name("raw_positions"), const("zero", [0])], "positions"),
        node("Unsqueeze", [name("positions"), const("axis2", [2])], "positions3"),
        node("Expand", [name("positions3"), const("width", [1, 1, hidden_size])], "hidden_index"),
        node("GatherElements", [hidden, name("hidden_index")], "hidden", axis=1),
    ]
    after = [
        node("Shape", [hidden], "batch", start=0, end=1),
        node("Concat", [name("batch"), name("seq"), const("vocab", [vocab])], "shape", axis=0),
        node("ConstantOfShape", [name("shape")], "zeros",
             value=helper.make_tensor("zero_f", TensorProto.FLOAT, [1], [0.0])),
        node("Expand", [name("positions3"), const("vocab_width", [1, 1, vocab])], "logits_index"),
    ]
    scatter = helper.make_node("ScatterElements", [name("zeros"), name("logits_index"), name("tail_logits")],
                               ["logits"], name=name("ScatterElements"), axis=1)
    head.input[0] = name("hidden")
    last.output[0] = name("tail_logits")
    at = list(graph.node).index(head)
    for offset, item in enumerate(before):
        graph.node.insert(at + offset, item)
    graph.node.extend([*after, scatter])
    for output in graph.output:
        if output.name == "logits":
            dim = output.type.tensor_type.shape.dim[1]
            dim.ClearField("dim_value")
            dim.dim_param = "sequence_length"


def _dim(head: Any, attribute: str) -> int:
    """K (hidden size) or N (vocabulary) of a MatMulNBits LM head."""
    if head.op_type == "MatMulNBits":
        for item in head.attribute:
            if item.name == attribute:
                return int(item.i)
    raise ValueError(f"cannot tell the LM head's sizes ({head.op_type})")


def _drop_prefixed(graph: Any, prefix: str) -> None:
    nodes = [n for n in graph.node if not n.name.startswith(prefix)]
    inits = [i for i in graph.initializer if not i.name.startswith(prefix)]
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.initializer[:]
    graph.initializer.extend(inits)
