"""The last-token LM head pass (models/prune.py) on the real default model: logits of one position
per row, and greedy output token for token the unpruned graph's, in a right-padded batch too."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime_genai as og
import pytest

from agentic_flow.engine.base import Prompt, Turn
from agentic_flow.engine.ort import OrtModel
from agentic_flow.engine.search import search_key
from agentic_flow.models.prune import GRAPH_FILE, PREFIX, is_pruned, prune_lm_head
from agentic_flow.models.tail_logits import TAIL_PREFIX

PROMPTS = ("What is the capital of France?", "Write a short poem about the sea and the wind, with four lines.")


def unpruned_copy(source: Path, dest: Path) -> Path:
    """The model as the builder wrote it: the pass's nodes taken out again, the head fed as before."""
    shutil.copytree(source, dest)
    model = onnx.load(str(dest / GRAPH_FILE), load_external_data=False)
    graph = model.graph
    tail = [n for n in graph.node if n.name.startswith(TAIL_PREFIX)]
    if tail:  # build 3 (models/tail_logits.py): the head's own output is "logits" again
        source_hidden = next(n for n in tail if n.op_type == "GatherElements").input[0]
        for node in graph.node:
            node.input[:] = [source_hidden if i == TAIL_PREFIX + "hidden" else i for i in node.input]
            node.output[:] = ["logits" if o == TAIL_PREFIX + "tail_logits" else o for o in node.output]
        for node in tail:
            graph.node.remove(node)
        for init in [i for i in graph.initializer if i.name.startswith(TAIL_PREFIX)]:
            graph.initializer.remove(init)
        onnx.save(model, str(dest / GRAPH_FILE))
    ours = [n for n in graph.node if n.name.startswith(PREFIX)]
    if ours:
        source_hidden = next(n for n in ours if n.op_type == "GatherElements").input[0]
        for node in graph.node:
            node.input[:] = [source_hidden if i == PREFIX + "hidden" else i for i in node.input]
        for node in ours:
            graph.node.remove(node)
        for init in [i for i in graph.initializer if i.name.startswith(PREFIX)]:
            graph.initializer.remove(init)
        dim = next(o for o in graph.output if o.name == "logits").type.tensor_type.shape.dim[1]
        dim.dim_param = "sequence_length"
        onnx.save(model, str(dest / GRAPH_FILE))
    return dest


@pytest.fixture(scope="module")
def models(real_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("prune")
    plain = unpruned_copy(real_model_dir, root / "plain")
    pruned = shutil.copytree(plain, root / "pruned")
    assert prune_lm_head(pruned)
    return plain, pruned


def greedy_rows(rows: list[list[int]], model: OrtModel, n: int = 12) -> list[list[int]]:
    generator = model.start(rows, search_key(0.0, None, None, None), max(len(r) for r in rows) + n + 1)
    out: list[list[int]] = [[] for _ in rows]
    for _ in range(n):
        for tokens, token in zip(out, generator.step(), strict=True):
            tokens.append(token)
    generator.close()
    return out


def test_the_pass_is_recorded_idempotent_and_shapes_the_logits(models: tuple[Path, Path]) -> None:
    plain, pruned = models
    assert not is_pruned(plain) and is_pruned(pruned)
    before = (pruned / GRAPH_FILE).read_bytes()
    assert prune_lm_head(pruned) is False and (pruned / GRAPH_FILE).read_bytes() == before
    graph = onnx.load(str(pruned / GRAPH_FILE), load_external_data=False).graph
    logits = next(o for o in graph.output if o.name == "logits")
    assert logits.type.tensor_type.shape.dim[1].dim_value == 1
    assert not list(pruned.glob("*.tmp"))
    # What the runtime hands back after a prefill: one position per row, not one per prompt token.
    model = og.Model(str(pruned))
    params = og.GeneratorParams(model)
    params.set_search_options(max_length=64, batch_size=1)
    generator = og.Generator(model, params)
    generator.append_tokens(np.arange(10, 30, dtype=np.int32).reshape(1, 20))
    assert generator.get_output("logits").shape[:2] == (1, 1)


def test_greedy_output_matches_the_unpruned_model_alone_and_in_a_padded_batch(models: tuple[Path, Path]) -> None:
    plain, pruned = models
    answers = {}
    for folder in (plain, pruned):
        model = OrtModel(folder, ("cpu",), 0)
        rows = [model.encode(model.render(Prompt((Turn("user", p),)))) for p in PROMPTS]
        assert len(rows[0]) != len(rows[1])  # right padding is in play
        alone = [greedy_rows([row], model)[0] for row in rows]
        assert greedy_rows(rows, model) == alone
        answers[folder] = alone
    assert answers[plain] == answers[pruned]


def test_a_graph_without_a_known_lm_head_is_refused_untouched(tmp_path: Path) -> None:
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["b", "s"])
    y = helper.make_tensor_value_info("logits", TensorProto.INT64, ["b", "s"])
    graph = helper.make_graph([helper.make_node("Identity", ["input_ids"], ["logits"])], "g", [x], [y])
    onnx.save(helper.make_model(graph), str(tmp_path / GRAPH_FILE))
    before = (tmp_path / GRAPH_FILE).read_bytes()
    with pytest.raises(ValueError, match="LM head"):
        prune_lm_head(tmp_path)
    assert (tmp_path / GRAPH_FILE).read_bytes() == before
