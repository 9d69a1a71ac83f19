"""Tool use on the real model, with onnxruntime-genai directly: does every mode give parseable, valid calls,
what does guidance cost per token, and what batching does guidance allow?

    nice .venv/bin/python scripts/tooluse_probe.py ~/.cache/agentic-flow/models/smollm2-135m --threads 1

Prints one line per generation and a JSON summary.  Compare times only within one run (shared machine).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime_genai as og

from agentic_flow.tooluse import (
    CallEnd,
    TextDelta,
    ToolCallParser,
    ToolChoice,
    ToolSpec,
    Turn,
    plan,
    render_chat,
    template_has_tools,
)
from agentic_flow.tooluse.grammar import Guidance
from agentic_flow.tooluse.validate import validate

TOOLS = (
    ToolSpec("Bash", "Run a shell command and return its output.", {
        "type": "object", "properties": {"command": {"type": "string", "description": "The command to run"}},
        "required": ["command"]}),
    ToolSpec("Read", "Read a file from the local filesystem.", {
        "type": "object", "properties": {"file_path": {"type": "string", "description": "Absolute path"}},
        "required": ["file_path"]}),
    ToolSpec("Write", "Write a file to the local filesystem.", {
        "type": "object", "properties": {"file_path": {"type": "string"}, "content": {"type": "string"}},
        "required": ["file_path", "content"]}),
)
PROMPTS = (  # (prompt, the tool a person would choose, or None for a plain answer)
    ("Show me the contents of /repo/README.md", "Read"),
    ("List the files in the current directory.", "Bash"),
    ("Create hello.py that prints hello world.", "Write"),
    ("What is the capital of France?", None),
)
MODES = (ToolChoice("auto"), ToolChoice("any"), ToolChoice("tool", "Bash"), ToolChoice("none"))


@dataclass
class Outcome:
    text: str
    calls: list[tuple[str, dict[str, object]]]
    stop: str
    tokens: int
    seconds: float
    raw: str


class Probe:
    def __init__(self, path: Path, threads: int) -> None:
        config = og.Config(str(path))
        config.overlay(json.dumps({"model": {"decoder": {"session_options": {"intra_op_num_threads": threads}}}}))
        self.model = og.Model(config)
        self.tok = og.Tokenizer(self.model)
        template = path / "chat_template.jinja"
        self.template = template.read_text() if template.is_file() else ""
        self.native = template_has_tools(self.template)
        self.eos = {int(t) for t in self.tok.eos_token_ids}

    def encode(self, prompt: str, choice: ToolChoice) -> list[int]:
        chat = render_chat((Turn("user", prompt),), TOOLS, choice, native=self.native)
        text = self.tok.apply_chat_template(
            json.dumps(list(chat.messages)), template_str=self.template or None, tools=chat.tools,
            add_generation_prompt=True)
        return [int(t) for t in self.tok.encode(str(text) + chat.prefill)]

    def generator(self, rows: list[list[int]], guidance: Guidance | None, new: int) -> og.Generator:
        params = og.GeneratorParams(self.model)
        params.set_search_options(max_length=max(map(len, rows)) + new, do_sample=False, batch_size=len(rows))
        if guidance is not None:
            params.set_guidance(guidance.kind, guidance.text)
        gen = og.Generator(self.model, params)
        ids = np.full((len(rows), max(map(len, rows))), 0, dtype=np.int32)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = row
        gen.append_tokens(ids)
        return gen

    def run(self, prompt: str, choice: ToolChoice, guided: bool, new: int) -> Outcome:
        tool_plan = plan(TOOLS, choice)
        gen = self.generator([self.encode(prompt, choice)], tool_plan.guidance if guided else None, new)
        parser = ToolCallParser(TOOLS if choice.mode != "none" else (), tool_plan.loose)
        stream, out, events = self.tok.create_stream(), [], []
        began = time.perf_counter()
        stop = "max_tokens"
        while not gen.is_done():
            gen.generate_next_token()
            token = int(gen.get_next_tokens()[0])
            if token in self.eos:
                stop = "end_turn"
                break
            out.append(token)
            events += parser.feed(stream.decode(token))
        seconds = time.perf_counter() - began
        tail, reason = parser.finish(stop)
        events += tail
        text = "".join(e.text for e in events if isinstance(e, TextDelta))
        calls = [(e.call.name, dict(e.call.input)) for e in events if isinstance(e, CallEnd) and e.call]
        return Outcome(text, calls, reason, len(out), seconds, self.tok.decode(out))


def one(probe: Probe, prompt: str, want: str | None, choice: ToolChoice, guided: bool, new: int) -> dict[str, object]:
    o = probe.run(prompt, choice, guided, new)
    specs = {t.name: t for t in TOOLS}
    valid = all(n in specs and not validate(i, specs[n].input_schema) for n, i in o.calls)
    forced_ok = not choice.forced or bool(o.calls)
    fmt = "tag" if "<tool_call>" in o.raw else "fence" if "```json" in o.raw else "text"
    row = {"mode": choice.mode, "guided": guided, "prompt": prompt, "want": want, "calls": o.calls,
           "valid": valid and forced_ok, "stop": o.stop, "format": fmt, "tokens": o.tokens,
           "ms_per_token": round(1000 * o.seconds / max(o.tokens, 1), 2), "text": o.text[:80]}
    print(json.dumps(row, ensure_ascii=False), flush=True)
    return row


def batch_checks(probe: Probe, new: int) -> dict[str, str]:
    """Two guided rows in one batch (one call each, so rows end on their own): fine while both run,
    broken once one finishes before the other."""
    single = ToolChoice("any", parallel=False)
    guidance = plan(TOOLS, single).guidance
    rows = [probe.encode(p, single) for p, _ in PROMPTS[:2]]
    results: dict[str, str] = {}
    for name, batch in (("same_prompt", [rows[0], rows[0]]), ("different_prompts", rows)):
        gen = probe.generator(batch, guidance, new)
        outs: list[list[int]] = [[], []]
        try:
            while not gen.is_done():
                gen.generate_next_token()
                for i, t in enumerate(gen.get_next_tokens()):
                    outs[i].append(int(t))
            results[name] = "ok: " + " | ".join(probe.tok.decode([t for t in o if t not in probe.eos]) for o in outs)
        except RuntimeError as exc:
            results[name] = f"error after {[len(o) for o in outs]} tokens: {str(exc).splitlines()[0]}"
    results["per_row_grammar"] = "not expressible: GeneratorParams.set_guidance is one per generator"
    return results


def reuse_check(probe: Probe, new: int) -> str:
    """Prefix reuse: rewind a finished guided generator and continue with a new prompt."""
    guidance = plan(TOOLS, ToolChoice("any")).guidance
    first, second = (probe.encode(p, ToolChoice("any")) for p, _ in PROMPTS[:2])
    gen = probe.generator([first], guidance, new + len(second))
    while not gen.is_done():
        gen.generate_next_token()
        if int(gen.get_next_tokens()[0]) in probe.eos:
            break
    same = min(len(first), len(second))
    keep = next((i for i, (a, b) in enumerate(zip(first, second, strict=False)) if a != b), same)
    gen.rewind_to(keep)
    gen.append_tokens(np.asarray([second[keep:]], dtype=np.int32))
    parser, stream, out = ToolCallParser(TOOLS), probe.tok.create_stream(), []
    for _ in range(new):
        gen.generate_next_token()
        token = int(gen.get_next_tokens()[0])
        if token in probe.eos:
            break
        out.append(token)
        parser.feed(stream.decode(token))
    _, reason = parser.finish("end_turn")
    return f"kept {keep} tokens; calls {[(c.name, dict(c.input)) for c in parser.calls]}; stop {reason}"


def summarize(rows: list[dict[str, object]]) -> dict[str, object]:
    def ms(sel: list[dict[str, object]]) -> float:
        toks = sum(int(r["tokens"]) for r in sel)  # type: ignore[call-overload]
        return round(sum(float(r["ms_per_token"]) * int(r["tokens"]) for r in sel) / max(toks, 1), 2)  # type: ignore[arg-type]
    guided = [r for r in rows if r["guided"] and r["mode"] != "none"]
    free = [r for r in rows if not r["guided"]]
    auto = [r for r in guided if r["mode"] == "auto"]
    return {
        "valid_rate_guided": sum(bool(r["valid"]) for r in guided) / max(len(guided), 1),
        "auto_right_choice": sum((r["calls"][0][0] if r["calls"] else None) == r["want"] for r in auto)
        / max(len(auto), 1),  # type: ignore[index]
        "free_formats": [r["format"] for r in free],
        "free_valid_calls": [bool(r["calls"]) for r in free],
        "ms_per_token_guided": ms(guided),
        "ms_per_token_free": ms(free),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model", type=Path)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--new", type=int, default=64)
    args = parser.parse_args()
    probe = Probe(args.model, args.threads)
    print(f"model {args.model.name}: native tools template: {probe.native}", flush=True)
    rows = []
    for prompt, want in PROMPTS:
        rows.append(one(probe, prompt, want, ToolChoice("auto"), False, args.new))  # the model left free
        rows += [one(probe, prompt, want, mode, True, args.new) for mode in MODES]
    summary = {"model": args.model.name, **summarize(rows), "batch": batch_checks(probe, args.new),
               "reuse": reuse_check(probe, args.new)}
    print(json.dumps(summary, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
