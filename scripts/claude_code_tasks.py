"""The real Claude Code on coding tasks, through `agentic-flow claude-code`, on a local model.

Usage: python scripts/claude_code_tasks.py --model qwen2.5-coder-1.5b [--tasks hello,clamp] [--runs 3]
           [--tasks-dir DIR] [--timeout 300] [--tool-policy auto|all|Read,Write] [--json-out FILE]
       make claude-code-tasks MODEL=qwen2.5-coder-1.5b CC_FLAGS="--tasks hello --runs 5"

A task is a folder (bench/claude_code_tasks/ by default, or any --tasks-dir holding one folder per
task): `instructions.md`, the files the agent starts with (a stub and its unit tests), and an optional
`task.json` with `prompt` and `check` (without one, the prompt is instructions.md plus the names of
the stub and the tests, and the check is `{python} -m pytest -q` run in the finished folder, `{python}`
being this interpreter).  The agent suite's folders (--tasks-dir bench/agent_tasks: task.json, files/,
solution/; bench/agent_suite.py) are read as that suite reads them, prompt and checks included (Claude
Code's final text is the answer), and --tasks may name its kinds (exercise, bugfix, ...).

Each run copies the task into a temporary folder, gives Claude Code a HOME of its own (telemetry and
non-essential traffic off), runs `agentic-flow claude-code -p PROMPT --permission-mode acceptEdits
--output-format json` there with a timeout, runs the check, and reads the session's transcript
(HOME/.claude/projects/...) to classify a failure:

  timeout    the run passed --timeout and was killed
  prose      no tool was called: the model answered in text (or wrote a call as text)
  refusal    Claude Code refused a call (a permission denied, e.g. Bash under acceptEdits)
  bad edit   Write/Edit were called, and failed or left code that fails the check
  wrong tool other tools were called, never Write or Edit

The proxy is started once for all runs (the product's launcher, on a free port, with --tool-policy),
and `agentic-flow claude-code` reuses it through ONNX_PROXY_PORT: a run's time is Claude Code's and the
model's, not the model's loading.  Claude Code comes from --claude, CLAUDE_CODE_BIN, PATH, or
`make claude-code` (bench/claude_client.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))  # not `bench.` (scripts/bench.py shadows the folder here)

import agent_suite  # noqa: E402
import workloads  # noqa: E402
from claude_client import capture_first_request, find_claude, isolated_env  # noqa: E402

from agentic_flow.launcher.supervisor import free_port, launch  # noqa: E402
from agentic_flow.settings import ProxySettings, local_model, model_dir  # noqa: E402

AGENTIC_FLOW = str(Path(sys.executable).parent / "agentic-flow")
TASKS_DIR = ROOT / "bench" / "claude_code_tasks"
DEFAULT_CHECK = "{python} -m pytest -q"
EDIT_TOOLS = ("Write", "Edit", "MultiEdit", "NotebookEdit")


@dataclass(frozen=True)
class Task:
    name: str
    folder: Path  # what the session starts with
    prompt: str
    check: str  # a shell command; unused for a suite task
    suite: agent_suite.Task | None = None  # a task of the agent suite (bench/agent_tasks): its own checks


def load_task(folder: Path) -> Task:
    if (folder / "files").is_dir():  # the agent suite's form (bench/agent_suite.py)
        task = agent_suite.load_task(folder)
        return Task(task.name, task.files, task.prompt, "", task)
    spec: dict[str, Any] = {}
    if (folder / "task.json").is_file():
        spec = json.loads((folder / "task.json").read_text())
    prompt = spec.get("prompt")
    if prompt is None:
        files = sorted(p.name for p in folder.glob("*.py"))
        tests = [f for f in files if f.startswith("test_") or f.endswith("_test.py")]
        stubs = [f for f in files if f not in tests]
        prompt = ((folder / "instructions.md").read_text().strip()
                  + f"\n\nWrite the solution in {', '.join(stubs)} in the current folder; "
                  f"the tests are in {', '.join(tests)}.")
    return Task(folder.name, folder, prompt, spec.get("check", DEFAULT_CHECK))


def load_tasks(root: Path, names: str) -> list[Task]:
    folders = sorted(p for p in root.iterdir() if (p / "instructions.md").is_file() or (p / "task.json").is_file())
    if names and all(n in {"exercise", "bugfix", "quick", "question"} or not (root / n).is_dir()
                     for n in names.split(",")) and (root / folders[0].name / "files").is_dir():
        # the suite's selection by kind ("exercise") as well as by name
        return [load_task(t.folder) for t in agent_suite.select(agent_suite.load_tasks(root), names)]
    chosen = [f for f in folders if not names or f.name in names.split(",")]
    if names and len(chosen) != len(names.split(",")):
        missing = set(names.split(",")) - {f.name for f in chosen}
        raise SystemExit(f"no such task(s) in {root}: {', '.join(sorted(missing))}")
    return [load_task(f) for f in chosen]


@dataclass
class Call:
    name: str
    input: dict[str, Any]
    error: str | None = None  # the tool_result's text when it is an error


@dataclass
class Transcript:
    calls: list[Call] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)  # the assistant's text blocks
    turns: int = 0  # assistant messages


def read_transcript(home: Path) -> Transcript:
    """Every session Claude Code recorded under `home`: its calls (with their errors) and texts."""
    out = Transcript()
    pending: dict[str, Call] = {}
    for path in sorted((home / ".claude" / "projects").glob("*/*.jsonl")):
        for line in path.read_text(errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            message = entry.get("message") if isinstance(entry, dict) else None
            if not isinstance(message, dict) or not isinstance(message.get("content"), list):
                continue
            if entry.get("type") == "assistant":
                out.turns += 1
            for block in message["content"]:
                kind = block.get("type") if isinstance(block, dict) else None
                if kind == "tool_use":
                    call = Call(str(block.get("name")), dict(block.get("input") or {}))
                    pending[str(block.get("id"))] = call
                    out.calls.append(call)
                elif kind == "text" and entry.get("type") == "assistant":
                    out.texts.append(str(block.get("text", "")))
                elif kind == "tool_result" and block.get("is_error"):
                    call = pending.get(str(block.get("tool_use_id")))
                    if call is not None:
                        call.error = _text(block.get("content"))
    return out


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def classify(passed: bool, timed_out: bool, transcript: Transcript) -> str:
    if passed:
        return ""
    if timed_out:
        return "timeout"
    if not transcript.calls:
        return "prose"
    if any(c.error and ("permission" in c.error.lower() or "denied" in c.error.lower()) for c in transcript.calls):
        return "refusal"
    if any(c.name in EDIT_TOOLS for c in transcript.calls):
        return "bad edit"
    return "wrong tool"


@dataclass
class Outcome:
    task: str
    run: int
    passed: bool
    seconds: float
    exit_code: int
    kind: str  # the failure kind ("" when passed)
    turns: int
    tools: list[str]  # call names, "!" after one that failed
    evidence: str  # the first failed call's error, or the model's last text
    result: str = ""  # Claude Code's own summary line (its JSON output's `result`)


def run_task(task: Task, run: int, claude: Path, port: int, model: str, args: argparse.Namespace,
             root: Path) -> Outcome:
    # The same folder and HOME for every session, as for a user who works in one project: Claude Code
    # writes both paths into its system prompt, and the prefix cache then matches across sessions.
    tmp = root / "session"
    shutil.rmtree(tmp, ignore_errors=True)
    home, ws = tmp / "home", tmp / "project"
    home.mkdir(parents=True)
    shutil.copytree(task.folder, ws, ignore=shutil.ignore_patterns("task.json", "__pycache__", ".keep"))
    env = {**os.environ, **isolated_env(home, "unused"), "ONNX_PROXY_PORT": str(port),
           "AGENTIC_FLOW_MODEL_DIR": str(model_dir()),  # HOME is Claude Code's: keep our store
           "PATH": f"{claude.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("ANTHROPIC_BASE_URL")  # agentic-flow claude-code sets it (to the proxy)
    env.pop("ANTHROPIC_API_KEY")
    argv = [AGENTIC_FLOW, "claude-code", "--model", model, "-p", task.prompt, "--permission-mode",
            args.permission_mode, "--output-format", "json", *args.claude_args]
    started = time.monotonic()
    proc = subprocess.Popen(argv, cwd=ws, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    timed_out = False
    try:
        out, err = proc.communicate(timeout=args.timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(proc.pid, signal.SIGKILL)  # claude and its children; the shared proxy is not in it
        out, err = proc.communicate()
    finally:
        if proc.poll() is None:  # interrupted: nothing of the session outlives the run
            os.killpg(proc.pid, signal.SIGKILL)
    seconds = time.monotonic() - started
    result = _result_line(out)
    if task.suite is not None:
        passed = agent_suite.check_task(task.suite, ws, result).passed and not timed_out
    else:
        check = subprocess.run(task.check.format(python=sys.executable), shell=True, cwd=ws, capture_output=True,
                               text=True, timeout=120)
        passed = check.returncode == 0 and not timed_out
    transcript = read_transcript(home)
    if args.keep:
        keep = args.keep / f"{task.name}-{run}"
        shutil.rmtree(keep, ignore_errors=True)
        shutil.copytree(tmp, keep, symlinks=True)
    failed = [c for c in transcript.calls if c.error]
    evidence = failed[0].error if failed else (transcript.texts[-1] if transcript.texts else result or err)
    kind = classify(passed, timed_out, transcript)
    tools = [c.name + ("!" if c.error else "") for c in transcript.calls]
    return Outcome(task.name, run, passed, round(seconds, 1), proc.returncode, kind, transcript.turns, tools,
                   " ".join((evidence or "").split())[:200], result)


def _result_line(stdout: str) -> str:
    try:
        body = json.loads(stdout)
    except ValueError:
        return " ".join(stdout.split())[-200:]
    return " ".join(str(body.get("result", "")).split())[:200] if isinstance(body, dict) else ""


def table(outcomes: list[Outcome]) -> str:
    lines = ["| task | run | result | s | turns | tools called | failure | evidence |",
             "|---|---|---|---|---|---|---|---|"]
    for o in outcomes:
        lines.append(f"| {o.task} | {o.run} | {'pass' if o.passed else 'FAIL'} | {o.seconds:.0f} | {o.turns} | "
                     f"{', '.join(o.tools) or '-'} | {o.kind or '-'} | {o.evidence.replace('|', '/')[:90]} |")
    passed = sum(o.passed for o in outcomes)
    lines.append(f"\n{passed}/{len(outcomes)} passed ({100 * passed / max(len(outcomes), 1):.0f}%)")
    return "\n".join(lines)


async def first_request_ttft(claude: Path, url: str, model: str) -> dict[str, Any]:
    """Claude Code's first request, captured from the installed client, sent to the proxy while its cache is
    cold (a fresh proxy, a nonce in the system prompt): time to first token, prompt tokens as rendered."""
    import aiohttp

    request = await capture_first_request(claude, model=model)
    body = workloads.cc_body(request, nonce=0)
    body.pop("temperature")  # as Claude Code: no sampling fields, the model's own sampling applies
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1800)) as session:
        got = await workloads.stream(session, url, body)
    return {"offered_tools": len(request.get("tools", [])), **got}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="catalog name or model folder (default: ONNX_MODEL_PATH)")
    parser.add_argument("--tasks-dir", type=Path, default=TASKS_DIR)
    parser.add_argument("--tasks", default="", help="comma-separated task names (default: all)")
    parser.add_argument("--runs", type=int, default=1, help="sessions per task")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per session")
    parser.add_argument("--tool-policy", default="auto", help="the proxy's --tool-policy")
    parser.add_argument("--permission-mode", default="acceptEdits")
    parser.add_argument("--claude", default=None, help="the claude binary (default: see above)")
    parser.add_argument("--keep", type=Path, default=None, help="copy each run's folder and HOME here")
    parser.add_argument("--json-out", type=Path, default=None)
    parser.add_argument("--ttft", action="store_true",
                        help="first measure the time to first token of Claude Code's first request, cold")
    parser.add_argument("claude_args", nargs="*", help="more arguments for claude (after --)")
    args = parser.parse_args()
    # SIGTERM would end the interpreter without running `finally`, leaving the proxy behind.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    claude = find_claude(args.claude)
    tasks = load_tasks(args.tasks_dir, args.tasks)
    model = local_model(args.model)
    port = free_port()
    print(f"{claude} on {model}, tool policy {args.tool_policy}; load average {os.getloadavg()[0]:.1f}",
          file=sys.stderr, flush=True)
    outcomes: list[Outcome] = []
    with launch(ProxySettings(port=port, model=model, tool_policy=args.tool_policy), deadline_s=300) as proxy, \
            tempfile.TemporaryDirectory(prefix="cc-tasks-") as root:
        if args.ttft:
            ttft = asyncio.run(first_request_ttft(claude, proxy.url, model))
            print(f"first request, cold cache: {json.dumps(ttft)}; load average "
                  f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
        for run in range(1, args.runs + 1):
            for task in tasks:
                outcome = run_task(task, run, claude, port, model, args, Path(root))
                outcomes.append(outcome)
                print(json.dumps(asdict(outcome)), file=sys.stderr, flush=True)
    print(table(outcomes))
    print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    if args.json_out:
        args.json_out.write_text(json.dumps([asdict(o) for o in outcomes], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
