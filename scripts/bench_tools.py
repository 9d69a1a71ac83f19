"""Tool use on a local model, through the proxy: validity, choice, and the cost of guidance.

Sends each prompt (each names the tool a person would pick) with Claude Code's basic tools (Read,
Write, Edit, Bash, Glob, Grep: the project's own definitions) under the four tool_choice modes, over
the Anthropic wire format (streaming), to a proxy started by the product's launcher, and prints:

- schema-valid rate: tool_use inputs that validate against their tool's input_schema (must be 100%);
- right-tool rate: the first tool_use names the expected tool (`none`: a text answer, no tool_use);
- invented tool names, and text-only answers in `auto`;
- ms per generated token per mode (decode time after the first token), guided (`any`, `tool`)
  against unguided (`none`) in the same run, modes interleaved so machine drift hits all alike.

    python scripts/bench_tools.py --model qwen2.5-coder-1.5b --limit 12
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agentic_flow.agents.tools import Permissions, Workspace, build_tools, tool_definitions
from agentic_flow.anthropic.sse import iter_events
from agentic_flow.launcher.supervisor import free_port, launch
from agentic_flow.models import store
from agentic_flow.settings import ProxySettings, environ, local_model
from agentic_flow.tooluse.validate import validate

TOOLS = ("Read", "Write", "Edit", "Bash", "Glob", "Grep")
MODES = ("auto", "any", "tool", "none")
SYSTEM = ("You are a coding agent working in the repository at /repo. Use the tools to act; "
          "answer in text only when no tool is needed.")

# (prompt, the tool a person would choose).  Varied wording, all six tools, some near-misses.
PROMPTS: tuple[tuple[str, str], ...] = (
    ("Show me the contents of /repo/README.md", "Read"),
    ("What does /repo/setup.py contain?", "Read"),
    ("Open /repo/src/main.py so I can see it", "Read"),
    ("Print lines 10 to 40 of /repo/app/server.py", "Read"),
    ("Read the config file /repo/config.yaml", "Read"),
    ("I want to look at /repo/docs/usage.md", "Read"),
    ("Let me see the first 20 lines of /repo/CHANGELOG.md", "Read"),
    ("Check what is in /repo/.gitignore", "Read"),
    ("Display /repo/tests/test_api.py", "Read"),
    ("What's inside /repo/Makefile?", "Read"),
    ("Create /repo/hello.py that prints hello world", "Write"),
    ("Write a new file /repo/notes.txt containing 'remember the milk'", "Write"),
    ("Make a file /repo/.env with the line DEBUG=1", "Write"),
    ("Create /repo/src/utils.py with a function add(a, b) that returns a + b", "Write"),
    ("Save the text 'MIT License' into a new file /repo/LICENSE", "Write"),
    ("Write /repo/requirements.txt listing requests and flask", "Write"),
    ("Create an empty __init__.py in /repo/pkg", "Write"),
    ("Generate /repo/index.html with a heading that says Welcome", "Write"),
    ("In /repo/app.py, replace 'DEBUG = True' with 'DEBUG = False'", "Edit"),
    ("Rename the function foo to bar in /repo/lib.py (it is defined as 'def foo():')", "Edit"),
    ("Fix the typo 'recieve' to 'receive' in /repo/README.md", "Edit"),
    ("Change the port from 8080 to 9090 in /repo/server.py where it says 'PORT = 8080'", "Edit"),
    ("In /repo/setup.cfg change 'version = 1.0' to 'version = 1.1'", "Edit"),
    ("Update /repo/main.py: replace the line 'print(\"hi\")' with 'print(\"hello\")'", "Edit"),
    ("Edit /repo/config.py so that 'TIMEOUT = 5' becomes 'TIMEOUT = 30'", "Edit"),
    ("Replace 'http://' with 'https://' in the URL line 'URL = \"http://x.org\"' of /repo/links.py", "Edit"),
    ("Run the test suite with pytest", "Bash"),
    ("Install the requests package with pip", "Bash"),
    ("What is the current git branch?", "Bash"),
    ("Show the last five git commits", "Bash"),
    ("Run `make build`", "Bash"),
    ("How much free disk space is there?", "Bash"),
    ("Start the script /repo/run.sh", "Bash"),
    ("Check which Python version is installed", "Bash"),
    ("Delete the folder /repo/build", "Bash"),
    ("Show the git status of the repository", "Bash"),
    ("List all Python files in the repository", "Glob"),
    ("Find every Markdown file under /repo/docs", "Glob"),
    ("Which YAML files are there in /repo?", "Glob"),
    ("Find all test files matching test_*.py", "Glob"),
    ("List the JavaScript files in /repo/src", "Glob"),
    ("Are there any .env files anywhere in the project?", "Glob"),
    ("Find all Dockerfiles in the repo", "Glob"),
    ("Search the code for the string TODO", "Grep"),
    ("Where is the function parse_args defined?", "Grep"),
    ("Find every file that imports numpy", "Grep"),
    ("Which files mention 'API_KEY'?", "Grep"),
    ("Search for 'def main' across the Python files", "Grep"),
    ("Find where the class UserModel is used", "Grep"),
    ("Look for the error message 'connection refused' in the source", "Grep"),
    ("Grep the logs folder /repo/logs for ERROR", "Grep"),
    ("Find all occurrences of 'deprecated' in the repository", "Grep"),
)


@dataclass
class Answer:
    calls: list[tuple[str, str]] = field(default_factory=list)  # (name, input JSON)
    text: str = ""
    output_tokens: int = 0
    stop_reason: str | None = None
    first_s: float | None = None  # first content delta
    last_s: float = 0.0
    error: str | None = None

    def ms_per_token(self) -> float | None:
        if self.first_s is None or self.output_tokens < 2:
            return None
        return (self.last_s - self.first_s) * 1000 / (self.output_tokens - 1)


def tool_choice(mode: str, expected: str) -> dict[str, str]:
    return {"type": "tool", "name": expected} if mode == "tool" else {"type": mode}


async def ask(session: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> Answer:
    """One streamed request, read straight off the Anthropic wire format."""
    answer = Answer()
    parts: dict[int, list[str]] = {}
    names: dict[int, str] = {}
    started = time.perf_counter()
    async with session.post(f"{url}/v1/messages", json=body) as resp:
        if resp.status != 200:
            answer.error = f"{resp.status} {(await resp.text())[:200]}"
            return answer
        async for event in iter_events(resp.content.iter_any()):
            data = json.loads(event.data)
            kind = data.get("type")
            if kind == "content_block_start" and data["content_block"]["type"] == "tool_use":
                names[data["index"]] = data["content_block"]["name"]
                parts[data["index"]] = []
            elif kind == "content_block_delta":
                now = time.perf_counter() - started
                answer.first_s = answer.first_s if answer.first_s is not None else now
                answer.last_s = now
                delta = data["delta"]
                if delta["type"] == "text_delta":
                    answer.text += delta["text"]
                elif delta["type"] == "input_json_delta":
                    parts[data["index"]].append(delta["partial_json"])
            elif kind == "message_delta":
                answer.stop_reason = data["delta"].get("stop_reason")
                answer.output_tokens = data["usage"]["output_tokens"]
            elif kind == "error":
                answer.error = json.dumps(data.get("error"))
    answer.calls = [(names[i], "".join(parts[i])) for i in sorted(names)]
    return answer


@dataclass
class Tally:
    requests: int = 0
    tool_uses: int = 0
    valid: int = 0
    invented: int = 0
    truncated: int = 0  # the last call cut off by max_tokens (stop_reason says so): not a validity failure
    right: int = 0
    text_only: int = 0
    errors: int = 0
    ms_per_token: list[float] = field(default_factory=list)
    invalid_examples: list[str] = field(default_factory=list)


def _parses(raw: str) -> bool:
    try:
        json.loads(raw)
    except json.JSONDecodeError:
        return False
    return True


def score(tally: Tally, mode: str, expected: str, answer: Answer, schemas: dict[str, Any]) -> None:
    tally.requests += 1
    if answer.error is not None:
        tally.errors += 1
        tally.invalid_examples.append(f"error: {answer.error}")
        return
    for n, (name, raw) in enumerate(answer.calls):
        if n == len(answer.calls) - 1 and answer.stop_reason == "max_tokens" and not _parses(raw):
            tally.truncated += 1
            continue
        tally.tool_uses += 1
        if name not in schemas:
            tally.invented += 1
            tally.invalid_examples.append(f"invented {name}")
            continue
        try:
            problems = validate(json.loads(raw or "{}"), schemas[name])
        except json.JSONDecodeError as exc:
            problems = [f"not JSON: {exc}"]
        if problems:
            tally.invalid_examples.append(f"{name} {raw[:80]}: {problems[0]}")
        else:
            tally.valid += 1
    if not answer.calls:
        tally.text_only += 1
    first = answer.calls[0][0] if answer.calls else None
    tally.right += (first is None and bool(answer.text.strip())) if mode == "none" else first == expected
    if (ms := answer.ms_per_token()) is not None:
        tally.ms_per_token.append(ms)


async def run(url: str, prompts: Sequence[tuple[str, str]], max_tokens: int) -> dict[str, Tally]:
    with tempfile.TemporaryDirectory() as root:
        tools = tool_definitions(build_tools(TOOLS, Workspace(root), Permissions()))
    schemas = {tool["name"]: tool["input_schema"] for tool in tools}
    tallies = {mode: Tally() for mode in MODES}
    timeout = aiohttp.ClientTimeout(total=900)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for i, (prompt, expected) in enumerate(prompts):
            for mode in MODES:  # interleaved: drift hits every mode alike
                body = {"model": "bench", "max_tokens": max_tokens, "temperature": 0, "stream": True,
                        "system": SYSTEM, "tools": tools, "tool_choice": tool_choice(mode, expected),
                        "messages": [{"role": "user", "content": prompt}]}
                answer = await ask(session, url, body)
                score(tallies[mode], mode, expected, answer, schemas)
                got = ",".join(name for name, _ in answer.calls) or "text"
                print(f"[{i + 1}/{len(prompts)}] {mode:4} want {expected:5} got {got:12} "
                      f"{answer.output_tokens:3} tok {answer.stop_reason}", file=sys.stderr, flush=True)
    return tallies


def pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:5.1f}%" if whole else "    -"


def report(model: str, tallies: dict[str, Tally], n_prompts: int, max_tokens: int) -> None:
    print(f"\nmodel {model}: {n_prompts} prompts x {len(MODES)} modes, max_tokens {max_tokens}, greedy\n")
    print(f"{'mode':6} {'tool_use':>8} {'valid':>7} {'right':>7} {'invented':>8} {'truncated':>9} "
          f"{'text-only':>9} {'errors':>6} {'ms/token':>9}")
    for mode, t in tallies.items():
        ms = statistics.median(t.ms_per_token) if t.ms_per_token else float("nan")
        print(f"{mode:6} {t.tool_uses:8} {pct(t.valid, t.tool_uses):>7} {pct(t.right, t.requests):>7} "
              f"{t.invented:8} {t.truncated:9} {t.text_only:9} {t.errors:6} {ms:9.1f}")
    uses = sum(t.tool_uses for t in tallies.values())
    valid = sum(t.valid for t in tallies.values())
    guided = [ms for mode in ("any", "tool") for ms in tallies[mode].ms_per_token]
    free = tallies["none"].ms_per_token
    cut = sum(t.truncated for t in tallies.values())
    print(f"\nschema-valid tool_use inputs: {valid}/{uses} ({pct(valid, uses).strip()}) of complete calls; "
          f"{cut} more cut off by max_tokens (raise --max-tokens)")
    if guided and free:
        g, f = statistics.median(guided), statistics.median(free)
        print(f"guidance cost: {g:.1f} ms/token guided (any, tool) vs {f:.1f} unguided (none): {g / f:.2f}x")
    for mode, t in tallies.items():
        for example in t.invalid_examples[:3]:
            print(f"  {mode}: {example}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--model", default=None, help="catalog name or folder [default: ONNX_MODEL_PATH, else smollm2-135m]"
    )
    ap.add_argument("--limit", type=int, default=None, help="only the first N prompts (spread over the tools)")
    ap.add_argument("--max-tokens", type=int, default=128)
    args = ap.parse_args()
    name = local_model(args.model)
    model_path = store.resolve(name)
    prompts = spread(PROMPTS, args.limit)
    with tempfile.TemporaryDirectory() as home:
        env = {**environ(), "XDG_STATE_HOME": home}  # the proxy's log in a throwaway home
        with launch(ProxySettings(port=free_port(), model=str(model_path)), deadline_s=300, env=env) as proxy:
            tallies = asyncio.run(run(proxy.url, prompts, args.max_tokens))
    report(name, tallies, len(prompts), args.max_tokens)
    return 0


def spread(prompts: Sequence[tuple[str, str]], limit: int | None) -> list[tuple[str, str]]:
    """The first `limit` prompts taken round-robin over the expected tools, so a short run covers all six."""
    if limit is None or limit >= len(prompts):
        return list(prompts)
    by_tool = {tool: [p for p in prompts if p[1] == tool] for tool in TOOLS}
    chosen: list[tuple[str, str]] = []
    while len(chosen) < limit:
        for tool in TOOLS:
            if by_tool[tool] and len(chosen) < limit:
                chosen.append(by_tool[tool].pop(0))
    return chosen


if __name__ == "__main__":
    sys.exit(main())
