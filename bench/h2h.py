#!/usr/bin/env python3
"""Head to head: the project's proxy against llama.cpp's server, same weights, same machine, one run.

usage: python bench/h2h.py --llama-server BIN [--model smollm2-135m] [--rounds 3] [--threads 2]
       (`make bench-peer MODEL=...` builds llama-server first and runs this)

Adapted from ../shared/bench/h2h.py, the tool behind the figures in issue 12. Both servers run at once;
rounds alternate which goes first, so that drift in the machine's speed hits both alike. Prints each
round as JSON on stderr, then a Markdown table of medians with each round's spread (min-max). Ratios
read "> 1: ours is better" throughout (ours/llama for rates, llama/ours for times and memory).

The Claude Code rows replay the first request the installed Claude Code sends for a small task when
`agentic-flow claude-code` sets it up, captured at the start of the run against a recording server
(bench/claude_client.py; Claude Code from --claude, CLAUDE_CODE_BIN, PATH or `make claude-code`), or a
request saved earlier (--cc-request FILE). Without either the rows are skipped with a message.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import statistics
import sys
from pathlib import Path
from typing import Any

try:
    from . import claude_client, peers, workloads
except ImportError:  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import claude_client  # type: ignore[no-redef]
    import peers  # type: ignore[no-redef]
    import workloads  # type: ignore[no-redef]

PROJECT = Path(__file__).resolve().parent.parent
# (label, field, unit, better): rows of the table in order; better "high" for rates, "low" for times.
ROWS = [
    ("single-stream decode", "single_decode_tok_s", "tok/s", "high"),
    ("four streams, aggregate", "four_aggregate_tok_s", "tok/s", "high"),
    ("short-prompt time to first token (prompt repeated)", "single_ttft_ms", "ms", "low"),
    ("short-prompt time to first token (unique prompt)", "unique_ttft_ms", "ms", "low"),
    ("Claude Code's first request, time to first token", "cc_cold_ttft_ms", "ms", "low"),
    ("  its prompt, as each server renders it", "cc_input_tokens", "tokens", "none"),
    ("  prefill rate", "cc_prefill_tok_s", "tok/s", "high"),
    ("the next turn of that conversation, time to first token", "cc_warm_ttft_ms", "ms", "low"),
    ("a second session (same system prompt and tools, another task), TTFT", "cc_second_ttft_ms", "ms", "low"),
    ("agent turn: Write of a file just read (decode, bench/spec_workloads.py)", "echo_write_tok_s", "tok/s", "high"),
    ("agent turn: Edit of a file just read (decode)", "echo_edit_tok_s", "tok/s", "high"),
    ("agent turn: plain explanation of a file just read (decode)", "echo_explain_tok_s", "tok/s", "high"),
    ("memory, resident after the rounds", "rss_mb", "MB", "low"),
    ("memory, peak resident", "peak_rss_mb", "MB", "low"),
]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--llama-server", type=Path, required=True, help="the binary build_llama_server.sh printed")
    ap.add_argument("--model", default="smollm2-135m", help="catalog name (installed) or model folder")
    ap.add_argument("--gguf", type=Path, help="llama-server's file, when the model is not one known here")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    # 4 slots x 16,384: Claude Code's first request is ~11.6k tokens as llama-server renders it for Qwen
    # (with 32,768, each slot's 8,192 refused it with a 400).
    ap.add_argument("--ctx", type=int, default=65536, help="llama-server's total context (its 4 slots share it)")
    ap.add_argument("--cc-request", type=Path, default=None,
                    help="a saved Claude Code request (default: capture one from the installed client)")
    ap.add_argument("--claude", default=None, help="the claude binary to capture it from")
    ap.add_argument("--logs", type=Path, default=Path("."), help="folder for the two servers' logs")
    ap.add_argument("--json", type=Path, help="also write every round and the summary here")
    return ap.parse_args(argv)


def run_rounds(a: argparse.Namespace, pair: peers.Pair, cc: Path | None) -> dict[str, list[dict[str, Any]]]:
    ports = {"ours": peers.free_port(), "llama": peers.free_port()}
    bases = {k: f"http://127.0.0.1:{p}" for k, p in ports.items()}
    a.logs.mkdir(parents=True, exist_ok=True)
    procs = {
        "ours": peers.start_proxy(PROJECT, pair, ports["ours"], a.threads, a.logs / "h2h-proxy.log"),
        "llama": peers.start_llama(a.llama_server, pair, ports["llama"], a.threads, a.ctx, a.logs / "h2h-llama.log"),
    }
    runs: dict[str, list[dict[str, Any]]] = {"ours": [], "llama": []}
    try:
        for k, proc in procs.items():
            peers.wait_healthy(bases[k], proc)
        for r in range(a.rounds):
            for k in (["ours", "llama"] if r % 2 == 0 else ["llama", "ours"]):
                runs[k].append(asyncio.run(workloads.measure(bases[k], cc)))
                print(k, json.dumps(runs[k][-1]), file=sys.stderr)
        for k, proc in procs.items():
            runs[k][-1]["rss_mb"], runs[k][-1]["peak_rss_mb"] = peers.memory_mb(proc.pid)
    finally:
        peers.stop(list(procs.values()))
    return runs


def _fmt(v: float, unit: str, seconds: bool) -> str:
    if seconds:
        return f"{v / 1000:.2f} s"
    return f"{v:.1f} {unit}" if unit == "tok/s" and v < 100 else f"{v:,.0f} {unit}"


def cell(values: list[float], unit: str) -> str:
    """The median, and the spread over rounds when there is one; long times in seconds."""
    if not values:
        return "-"
    med = statistics.median(values)
    seconds = unit == "ms" and med >= 10_000
    text = _fmt(med, unit, seconds)
    if len(values) > 1 and min(values) != max(values):
        text += f" ({_fmt(min(values), unit, seconds)}-{_fmt(max(values), unit, seconds)})"
    return text


def table(model: str, runs: dict[str, list[dict[str, Any]]]) -> str:
    lines = [f"| {model} | llama-server | ours | ratio (> 1: ours better) |", "|---|---|---|---|"]
    for label, field, unit, better in ROWS:
        vals = {k: [r[field] for r in runs[k] if r.get(field) is not None] for k in runs}
        if not vals["ours"] and not vals["llama"]:
            continue
        ratio = "-"
        if vals["ours"] and vals["llama"] and better != "none":
            o, ll = statistics.median(vals["ours"]), statistics.median(vals["llama"])
            ratio = f"{(o / ll if better == 'high' else ll / o):.2f}"
        lines.append(f"| {label} | {cell(vals['llama'], unit)} | {cell(vals['ours'], unit)} | {ratio} |")
    return "\n".join(lines)


def capture_claude_code(claude: str | None, model: str, folder: Path) -> Path | None:
    """Claude Code's first request for a small task, from the installed client, saved in `folder`."""
    try:
        binary = claude_client.find_claude(claude)
        body = asyncio.run(claude_client.capture_first_request(binary, model=model))
    except (claude_client.NotInstalled, RuntimeError) as exc:
        print(f"the Claude Code rows are skipped: {exc}", file=sys.stderr)
        return None
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "claude-code-first-request.json"
    path.write_text(json.dumps(body, indent=1))
    print(f"captured Claude Code's first request ({len(body.get('tools', []))} tools) into {path}", file=sys.stderr)
    return path


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    # SIGTERM would end the interpreter without running `finally`, leaving both servers behind.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        pair = peers.resolve(a.model, a.gguf)
    except peers.Skip as exc:
        print(f"skipped: {exc}", file=sys.stderr)
        return 3
    cc = a.cc_request or capture_claude_code(a.claude, Path(a.model).name, a.logs)
    print(f"ours: {pair.proxy_model}\nllama-server: {pair.gguf}\n{a.threads} threads, {a.rounds} rounds",
          file=sys.stderr)
    runs = run_rounds(a, pair, cc)
    errors = [e for k in runs for r in runs[k] for e in r.get("errors", [])]
    print(table(Path(a.model).name, runs))
    if errors:
        print(f"\n{len(errors)} request(s) failed, e.g. {errors[0]}")
    if a.json:
        a.json.write_text(json.dumps({"model": a.model, "gguf": str(pair.gguf), "runs": runs}, indent=1))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
