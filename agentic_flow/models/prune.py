"""Logits for each row's last real token only: a graph pass over a built model.

A decoder built by onnxruntime-genai computes the LM head (hidden -> vocabulary) for every input
position, and the runtime keeps only the last one of each row.  On a long prompt that is most of the
waste: Qwen's head is 15% of the 1.5B's weights, and the logits of a 7.4k-token Claude Code request
are [1, 7400, 151936] float32, 4.5 GB that onnxruntime's arena keeps afterwards (a 32k prompt would
ask for 19.9 GB).

The builder's own `prune_lm_head=true` gathers position -1 of the input, which in a right-padded batch
is a pad for every row shorter than the longest (its first token comes out wrong: docs/benchmarks.md),
and onnxruntime-genai 0.18 forbids a second `append_tokens` on a batch, so the rows cannot be evened
out.  This pass gathers, per row, the position of the row's last real token instead: the count of ones
in the attention mask's columns for this input, minus one.  That is the last position for a one-row
prompt, a continuation after a rewind and every decode step, and the row's own end in a right-padded
prefill, so greedy output is token for token the unpruned model's (tests/test_prune.py).

Only the graph file changes (a few KB): the weights file is untouched, so an installed model can be
upgraded in place.  Needs the `onnx` package (the `convert` extra).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

PREFIX = "/agentic_flow/last_token/"
GRAPH_FILE = "model.onnx"
INT64_MAX = 2**63 - 1


def is_pruned(model_dir: Path) -> bool:
    """True when the pass has been applied (read without loading the weights)."""
    import onnx

    return _applied(onnx.load(str(model_dir / GRAPH_FILE), load_external_data=False).graph)


def prune_lm_head(model_dir: Path) -> bool:
    """Rewrite `model_dir/model.onnx` so the LM head reads each row's last real token only.
    False (and nothing written) when already done; a graph without the expected LM head and
    attention mask raises ValueError, as a graph this pass does not know must stay as it is."""
    import onnx
    from onnx import TensorProto, helper

    path = model_dir / GRAPH_FILE
    model = onnx.load(str(path), load_external_data=False)
    graph = model.graph
    if _applied(graph):
        return False
    head = _lm_head(graph)
    inputs = {i.name for i in graph.input}
    if "attention_mask" not in inputs or "input_ids" not in inputs:
        raise ValueError("the graph has no attention_mask/input_ids input: not a decoder this pass knows")
    hidden = head.input[0]
    hidden_size = _hidden_size(head)

    def name(part: str) -> str:
        return PREFIX + part

    def const(part: str, values: list[int]) -> str:
        graph.initializer.append(helper.make_tensor(name(part), TensorProto.INT64, [len(values)], values))
        return name(part)

    nodes = [
        # S, the length of this input; the mask's last S columns are this input's tokens.
        helper.make_node("Shape", ["input_ids"], [name("seq")], name=name("Shape"), start=1, end=2),
        helper.make_node("Neg", [name("seq")], [name("neg_seq")], name=name("Neg")),
        helper.make_node("Cast", ["attention_mask"], [name("mask")], name=name("Cast"), to=TensorProto.INT64),
        helper.make_node("Slice", [name("mask"), name("neg_seq"), const("end", [INT64_MAX]), const("axis1", [1])],
                         [name("tail")], name=name("Slice")),
        # Ones in the tail, minus one: the row's last real position in this input ([B, 1]).
        helper.make_node("ReduceSum", [name("tail"), const("axes", [1])], [name("count")], name=name("ReduceSum"),
                         keepdims=1),
        helper.make_node("Sub", [name("count"), const("one", [1])], [name("last")], name=name("Sub")),
        helper.make_node("Unsqueeze", [name("last"), const("axis2", [2])], [name("last3")], name=name("Unsqueeze")),
        helper.make_node("Expand", [name("last3"), const("width", [1, 1, hidden_size])], [name("index")],
                         name=name("Expand")),
        helper.make_node("GatherElements", [hidden, name("index")], [name("hidden")], name=name("GatherElements"),
                         axis=1),
    ]
    head.input[0] = name("hidden")
    at = list(graph.node).index(head)
    for offset, node in enumerate(nodes):
        graph.node.insert(at + offset, node)
    for output in graph.output:
        if output.name == "logits":
            output.type.tensor_type.shape.dim[1].ClearField("dim_param")
            output.type.tensor_type.shape.dim[1].dim_value = 1
    _write_atomically(path, model.SerializeToString())
    return True


def _applied(graph: Any) -> bool:
    return any(n.name.startswith(PREFIX) for n in graph.node)


def _lm_head(graph: Any) -> Any:
    """The node that produces the logits from the final hidden states (MatMul or MatMulNBits)."""
    producers = {out: n for n in graph.node for out in n.output}
    node = producers.get("logits")
    # Through a bias Add, a scale Mul or a Cast, back to the matrix product.
    while node is not None and node.op_type not in ("MatMul", "MatMulNBits"):
        node = producers.get(node.input[0])
    if node is None:
        raise ValueError("no LM head (a MatMul leading to 'logits') in the graph")
    return node


def _hidden_size(head: Any) -> int:
    if head.op_type == "MatMulNBits":
        for attribute in head.attribute:
            if attribute.name == "K":
                return int(attribute.i)
    raise ValueError(f"cannot tell the hidden size from the LM head ({head.op_type})")


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
