#!/usr/bin/env python3
"""Where a short prompt's time to first token goes, stage by stage, on onnxruntime-genai directly.

usage: python scripts/profile_ttft.py [--model smollm2-135m|FOLDER] [--threads 2] [--repeat 5]
           [--long 1000 [--chunks 128 512]] [--ort-profile DIR] [--overlay JSON] [--json FILE]

What the inference process does for one request, timed separately (milliseconds, median of --repeat
after the first, which is reported apart as the first run of a new session):
  render     the chat template (tokenizer.apply_chat_template)
  encode     tokenizing the rendered prompt
  generator  GeneratorParams + og.Generator: allocates the KV cache to max_length
  prefill    append_tokens: the forward pass over the prompt
  sample     generate_next_token: picks the first token (its logits came from the prefill)
  detok      the streaming detokenizer on that token
  step       the median decode step over --steps after it (for scale: a prompt token's cost in steps)
Then: the same prompt with KV sized to the context (max_length), a new prompt length after warm-up
(the first run of a new shape), a --long prompt's prefill rate, and optionally onnxruntime's own
per-operator profile of a prefill (--ort-profile).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

T0 = time.perf_counter()
import numpy as np  # noqa: E402 (timed: the import cost is part of the profile)
import onnxruntime_genai as og  # noqa: E402

IMPORT_MS = (time.perf_counter() - T0) * 1000
SHORT = "Write a Python function that reverses a string."
FILLER = "The quick brown fox jumps over the lazy dog while the farmer counts his sheep. "


def ms(t: float) -> float:
    return round((time.perf_counter() - t) * 1000, 2)


def load(folder: Path, threads: int, overlay: dict[str, Any]) -> tuple[Any, Any, dict[str, float]]:
    t = time.perf_counter()
    config = og.Config(str(folder))
    options: dict[str, Any] = {"intra_op_num_threads": threads, **overlay}
    config.overlay(json.dumps({"model": {"decoder": {"session_options": options}}}))
    config_ms = ms(t)
    t = time.perf_counter()
    model = og.Model(config)
    model_ms = ms(t)
    t = time.perf_counter()
    tokenizer = og.Tokenizer(model)
    return model, tokenizer, {"import": round(IMPORT_MS, 1), "config": config_ms, "model_load": model_ms,
                              "tokenizer_load": ms(t)}


def one_request(model: Any, tok: Any, template: str | None, text: str, max_length: int | None,
                steps: int = 1) -> dict[str, float]:
    """One request's stages, as the worker runs them."""
    st: dict[str, float] = {}
    t = time.perf_counter()
    prompt = tok.apply_chat_template(json.dumps([{"role": "user", "content": text}]),
                                     template_str=template, add_generation_prompt=True)
    st["render"] = ms(t)
    t = time.perf_counter()
    ids = np.asarray([tok.encode(str(prompt))], dtype=np.int32)
    st["encode"] = ms(t)
    st["tokens"] = ids.shape[1]
    t = time.perf_counter()
    params = og.GeneratorParams(model)
    params.set_search_options(max_length=max_length or ids.shape[1] + 129, batch_size=1, do_sample=False)
    gen = og.Generator(model, params)
    st["generator"] = ms(t)
    t = time.perf_counter()
    gen.append_tokens(ids)
    st["prefill"] = ms(t)
    t = time.perf_counter()
    gen.generate_next_token()
    token = int(gen.get_next_tokens()[0])
    st["sample"] = ms(t)
    t = time.perf_counter()
    tok.create_stream().decode(token)
    st["detok"] = ms(t)
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        gen.generate_next_token()
        gen.get_next_tokens()
        times.append(ms(t))
    st["step"] = round(statistics.median(times), 2)
    st["ttft"] = round(sum(st[k] for k in ("render", "encode", "generator", "prefill", "sample", "detok")), 2)
    del gen
    return st


def long_prefill(model: Any, tok: Any, template: str | None, tokens: int, chunks: list[int]) -> dict[str, Any]:
    """Prefill rate of a long prompt, read at once (chunk 0) or in chunks of N tokens."""
    text = FILLER * max(1, tokens // 17)
    prompt = tok.apply_chat_template(json.dumps([{"role": "user", "content": text}]),
                                     template_str=template, add_generation_prompt=True)
    ids = np.asarray([tok.encode(str(prompt))], dtype=np.int32)
    out: dict[str, Any] = {"tokens": ids.shape[1]}
    for chunk in [0, 0, *chunks]:  # the first whole read is a warm-up for this shape
        params = og.GeneratorParams(model)
        params.set_search_options(max_length=ids.shape[1] + 2, batch_size=1, do_sample=False)
        gen = og.Generator(model, params)
        t = time.perf_counter()
        step = chunk or ids.shape[1]
        for i in range(0, ids.shape[1], step):
            gen.append_tokens(ids[:, i:i + step])
        gen.generate_next_token()
        out[f"chunk_{chunk}_tok_s"] = round(ids.shape[1] / (time.perf_counter() - t), 1)
        del gen
    return out


def median(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: round(statistics.median(r[k] for r in runs), 2) for k in runs[0]}


def top_ops(folder: Path, limit: int = 8) -> dict[str, list[str]]:
    """onnxruntime's profile (written when the session closes), by operator type, for the second
    request's prefill and its decode step (each request runs the model twice: prefill, one step)."""
    files = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime)
    if not files:
        return {}
    events = json.loads(files[-1].read_text())
    runs = [e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"]
    return {name: _ops_within(events, runs[i], limit) for name, i in (("prefill", 2), ("step", 3)) if i < len(runs)}


def _ops_within(events: list[dict[str, Any]], run: dict[str, Any], limit: int) -> list[str]:
    lo, hi = run["ts"], run["ts"] + run["dur"]
    agg: dict[str, list[float]] = {}
    for e in events:
        if e.get("cat") == "Node" and lo <= e["ts"] <= hi and e["name"].endswith("_kernel_time"):
            agg.setdefault(e["args"].get("op_name", "?"), []).append(e["dur"] / 1000)
    rows = sorted(agg.items(), key=lambda kv: -sum(kv[1]))[:limit]
    return [f"model_run {run['dur'] / 1000:.2f} ms"] + [f"{op} {sum(d):.2f} ms x{len(d)}" for op, d in rows]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--steps", type=int, default=16, help="decode steps after each short prompt's first token")
    ap.add_argument("--long", type=int, default=1000, help="approximate tokens of the long prompt (0: skip)")
    ap.add_argument("--chunks", type=int, nargs="*", default=[128, 512], help="chunk sizes to try on it")
    ap.add_argument("--ort-profile", type=Path, help="write onnxruntime's per-operator profile here")
    ap.add_argument("--overlay", default="{}", help="more decoder session_options, as JSON")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    folder = Path(a.model) if "/" in a.model else Path.home() / ".cache/agentic-flow/models" / a.model
    overlay = json.loads(a.overlay)
    if a.ort_profile:
        a.ort_profile.mkdir(parents=True, exist_ok=True)
        overlay["enable_profiling"] = str(a.ort_profile / "ort")
    model, tok, out = load(folder, a.threads, overlay)
    template_file = folder / "chat_template.jinja"
    template = template_file.read_text() if template_file.is_file() else None
    report: dict[str, Any] = {"model": str(folder), "threads": a.threads, "load_ms": out}
    report["first_request"] = one_request(model, tok, template, SHORT, None)
    report["short"] = median([one_request(model, tok, template, SHORT, None, a.steps) for _ in range(a.repeat)])
    report["decode_tok_s"] = round(1000 / report["short"]["step"], 1)
    context = json.loads((folder / "genai_config.json").read_text())["model"]["context_length"]
    report["short_kv_to_context"] = median(
        [one_request(model, tok, template, SHORT, context) for _ in range(max(1, a.repeat // 2))])
    report["new_shape_first"] = one_request(model, tok, template, SHORT + " Use slicing, please.", None)
    if a.long:
        report["long"] = long_prefill(model, tok, template, a.long, a.chunks)
    if a.ort_profile:
        del model  # the profile is written when the session closes
        report["ort_prefill_ops_ms"] = top_ops(a.ort_profile)
    report["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1000)
    print(json.dumps(report, indent=1))
    if a.json:
        a.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
