"""Where speculative decoding changes greedy output: plain and speculative generators on the same prompts.

Verifying several drafted tokens in one forward pass rounds differently from one-token steps, so where
the two best tokens' logits nearly tie the argmax can flip.  For each prompt this prints whether the
first N greedy tokens agree, the first position where they do not, the two tokens there, and the gap
between their logits as a plain prefill of the shared prefix computes them.

Usage: python scripts/spec_identity.py [--model NAME_OR_PATH] [--tokens 150] [--draft-tokens 8]
The model must be a convert build 3 (models/tail_logits.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agentic_flow.engine.base import Prompt, Turn  # noqa: E402
from agentic_flow.engine.ort import OrtModel  # noqa: E402
from agentic_flow.engine.search import GREEDY  # noqa: E402
from agentic_flow.models import store  # noqa: E402

CODE = (ROOT / "agentic_flow" / "engine" / "stops.py").read_text()
SCHEDULER = (ROOT / "agentic_flow" / "engine" / "costs.py").read_text()
PROMPTS = [
    "What is the capital of France?",
    "Write a long story about a lighthouse keeper who finds a message in a bottle.",
    "Explain, step by step and in detail, how a refrigerator works.",
    "Write a detailed travel guide for a week in Lisbon.",
    "Write a Python function that checks whether a string is a palindrome, with tests.",
    f"Here is the file stops.py:\n```python\n{CODE}```\nRewrite it with the class StopMatcher renamed to StopFinder.",
    f"Here is the file stops.py:\n```python\n{CODE}```\nExplain in plain words what this code does.",
    f"Here is the file costs.py:\n```python\n{SCHEDULER}```\nAdd type hints where missing and print the whole file.",
    f"Here is the file costs.py:\n```python\n{SCHEDULER}```\nWhat does merge_pays decide?",
    f"Repeat this text exactly:\n{CODE[:1200]}",
]


def tokens(model: OrtModel, ids: list[int], n: int, speculate: bool) -> list[int]:
    generator = model.start([ids], GREEDY, len(ids) + n + 1, speculate=speculate)
    out = []
    for _ in range(n):
        token = generator.step()[0]
        out.append(token)
        if token in model.eos_ids:
            break
    generator.close()
    return out


def gap(model: OrtModel, ids: list[int]) -> tuple[int, int, float]:
    """The two best tokens after `ids` and their logit gap, from a plain prefill of `ids`."""
    import onnxruntime_genai as og

    params = og.GeneratorParams(model.model)
    params.set_search_options(max_length=len(ids) + 2, do_sample=False)
    generator = og.Generator(model.model, params)
    generator.append_tokens(np.asarray([ids], dtype=np.int32))
    logits = np.asarray(generator.get_logits())[0, -1]
    first, second = (int(t) for t in np.argsort(logits)[::-1][:2])
    return first, second, float(logits[first] - logits[second])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--tokens", type=int, default=150)
    parser.add_argument("--draft-tokens", type=int, default=8)
    args = parser.parse_args()
    model = OrtModel(store.resolve(args.model), ("cpu",), 0, args.draft_tokens)
    if not model.can_speculate:
        print(f"no speculation: {model.speculation}")
        return 1
    same = 0
    for text in PROMPTS:
        ids = model.encode(model.render(Prompt((Turn("user", text),))))
        plain, spec = tokens(model, ids, args.tokens, False), tokens(model, ids, args.tokens, True)
        at = next((i for i, (a, b) in enumerate(zip(plain, spec, strict=False)) if a != b), None)
        row: dict[str, object] = {"prompt": text[:40], "prompt_tokens": len(ids), "identical": at is None}
        if at is None:
            same += 1
        else:
            first, second, logit_gap = gap(model, ids + plain[:at])
            row.update(diverges_at=at, plain=plain[at], speculative=spec[at], prefill_best=[first, second],
                       logit_gap=round(logit_gap, 4))
        print(json.dumps(row), flush=True)
    print(f"identical on {same} of {len(PROMPTS)} prompts ({args.tokens} tokens, {args.draft_tokens} draft tokens)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
