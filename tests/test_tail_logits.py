"""Convert build 3's graph pass (models/tail_logits.py) on the real 135M: one logits row per input token,
computed only for each row's last positions, so greedy output is build 2's (alone, read in pieces, in a
right-padded batch), the runtime accepts speculative options on it, and the engine sees which build it
has without the onnx package."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime_genai as og
import pytest

from agentic_flow.engine.base import Prompt, Turn
from agentic_flow.engine.ort import OrtModel
from agentic_flow.engine.search import GREEDY
from agentic_flow.models.onnx_graph import declared_dim
from agentic_flow.models.prune import GRAPH_FILE, prune_lm_head
from agentic_flow.models.tail_logits import TAIL, has_tail_logits, tail_logits
from tests.test_prune import PROMPTS, greedy_rows, unpruned_copy


@pytest.fixture(scope="module")
def builds(real_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("tail")
    pruned = unpruned_copy(real_model_dir, root / "build2")
    assert prune_lm_head(pruned)
    tail = shutil.copytree(pruned, root / "build3")
    assert tail_logits(tail)  # from build 2's graph, as an in-place upgrade does
    return pruned, tail


def test_the_pass_is_recorded_idempotent_and_declares_a_row_per_token(builds: tuple[Path, Path]) -> None:
    pruned, tail = builds
    assert has_tail_logits(tail) and not has_tail_logits(pruned)
    before = (tail / GRAPH_FILE).read_bytes()
    assert tail_logits(tail) is False and (tail / GRAPH_FILE).read_bytes() == before
    assert declared_dim(tail / GRAPH_FILE, "logits", 1) == "sequence_length"
    assert declared_dim(pruned / GRAPH_FILE, "logits", 1) == 1
    graph = onnx.load(str(tail / GRAPH_FILE), load_external_data=False).graph
    assert not any(n.name.startswith("/agentic_flow/last_token/") for n in graph.node)  # build 2's gather is gone
    # The runtime's buffer has a row per input token; only the last TAIL are computed, the rest are zeros.
    model = og.Model(str(tail))
    params = og.GeneratorParams(model)
    params.set_search_options(max_length=64, batch_size=1)
    generator = og.Generator(model, params)
    generator.append_tokens(np.arange(10, 40, dtype=np.int32).reshape(1, 30))
    logits = np.asarray(generator.get_output("logits"))
    assert logits.shape[:2] == (1, 30)
    assert not logits[0, : 30 - TAIL].any() and logits[0, 30 - TAIL:].any(axis=1).all()


def test_greedy_output_is_build_2s_alone_in_pieces_and_in_a_padded_batch(builds: tuple[Path, Path]) -> None:
    pruned, tail = builds
    answers = {}
    for folder in (pruned, tail):
        model = OrtModel(folder, ("cpu",), 0)
        rows = [model.encode(model.render(Prompt((Turn("user", p),)))) for p in PROMPTS]
        alone = [greedy_rows([row], model)[0] for row in rows]
        assert greedy_rows(rows, model) == alone
        answers[folder] = alone
    assert answers[pruned] == answers[tail]
    model = OrtModel(tail, ("cpu",), 0)
    assert model.full_logits and model.batch_prefill_tokens == 512 * 2**20 // (4 * 49152)
    long_prompt = model.encode(model.render(Prompt((Turn("user", " ".join(PROMPTS * 12)),))))
    whole = greedy_rows([long_prompt], model)
    model.batch_prefill_tokens = 50  # a one-row generator reads its prompt in pieces of this many tokens
    assert len(long_prompt) > 150 and greedy_rows([long_prompt], model) == whole


def test_speculation_needs_build_3(builds: tuple[Path, Path]) -> None:
    pruned, tail = builds
    old = OrtModel(pruned, ("cpu",), 0, draft_tokens=8)
    assert not old.can_speculate and old.speculation.startswith("off: the model's graph gives logits for the last")
    new = OrtModel(tail, ("cpu",), 0, draft_tokens=8)
    assert new.can_speculate and new.speculation.startswith("n-gram 3, up to 8 draft tokens")
    assert OrtModel(tail, ("cpu",), 0, draft_tokens=0).speculation == "off"
    ids = new.encode(new.render(Prompt((Turn("user", PROMPTS[0]),))))
    generator = new.start([ids], GREEDY, len(ids) + 8, speculate=True)
    assert generator.speculative and len([generator.step() for _ in range(4)]) == 4
    generator.close()
