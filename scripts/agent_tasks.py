"""The agent task suite: run `agentic-flow --agent coder` on every task folder of bench/agent_tasks, each in a
fresh temporary workspace, and check what it left (the task's unit tests restored as given, a command's
output, a file, or the final answer).

Usage: python scripts/agent_tasks.py [--model NAME[,NAME]] [--tasks NAMES_OR_KINDS] [--runs N] [--cap S]
                                    [--json-out FILE] [--max-turns N] [--max-tokens N] [--tool-choice any]
                                    [-- EXTRA AGENTIC-FLOW FLAGS]
       make agent-tasks MODEL=qwen2.5-coder-1.5b TASK_FLAGS="--runs 3"

One proxy per model is started (the product's launcher, on a free port) and every task reaches it through
ONNX_PROXY_URL, so a task's time is the agent's, not the model's loading.  Each task runs with
--permission-mode bypassPermissions, --temperature 0 and --timeout CAP (CAP: --cap, else the task's
timeout_s, else 180 s); it is killed, tree and all, 30 s after that.  Each failure is named: no_edit (the
workspace is unchanged), tests_failing (a check of the files failed), wrong_answer (a question's answer
lacks a required word or has a forbidden one), timeout, repetition (the run's stop reason or last error
line says so), error (an exit code other than 0, 7 or 8; its last stderr line is shown).  With --runs N the suite is
repeated and the spread of the pass rate is printed (min / median / max).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agentic_flow.launcher.supervisor import free_port, launch  # noqa: E402
from agentic_flow.settings import ProxySettings, local_model  # noqa: E402
from bench.agent_suite import (  # noqa: E402
    DEFAULT_CAP_S,
    AgentRun,
    Task,
    check_task,
    classify,
    copy_tree,
    load_tasks,
    run_command,
    select,
    snapshot,
)

AGENTIC_FLOW = str(Path(sys.executable).parent / "agentic-flow")
KILL_GRACE_S = 30.0  # past the agent's own --timeout, the runner kills the process tree


@dataclass(frozen=True)
class Outcome:
    model: str
    run: int
    task: str
    kind: str
    passed: bool
    failure: str | None
    seconds: float
    turns: int
    tool_calls: list[str]
    verifications: str  # "2 runs, last passed"; "" when the --json has none
    detail: str
    agent_outcome: str = ""  # the --json's own "outcome" (verified, tests_failing, ...), when it has one


def parse_body(stdout: str) -> dict[str, Any]:
    """The --json object: the last stdout line that parses as one (anything printed before it is ignored)."""
    for line in reversed(stdout.strip().splitlines()):
        if line.startswith("{"):
            try:
                body = json.loads(line)
            except ValueError:
                continue
            if isinstance(body, dict):
                return body
    return {}


def describe_verifications(body: dict[str, Any]) -> str:
    runs = body.get("verifications") or []
    if not runs:
        return ""
    last = runs[-1]
    state = "timed out" if last.get("timed_out") else "passed" if last.get("passed") else "failed"
    return f"{len(runs)} run{'s' if len(runs) != 1 else ''}, last {state}"


def agent_argv(task: Task, model: str, workspace: Path, cap: float, args: argparse.Namespace,
               extra: Sequence[str]) -> list[str]:
    argv = [AGENTIC_FLOW, "--agent", "coder", "--provider", "onnx", "--model", model, "--task", task.prompt,
            "--workspace", str(workspace), "--permission-mode", "bypassPermissions", "--temperature", "0",
            "--timeout", f"{cap:g}", "--json"]
    if args.max_turns is not None:
        argv += ["--max-turns", str(args.max_turns)]
    if args.max_tokens is not None:
        argv += ["--max-tokens", str(args.max_tokens)]
    if args.tool_choice:
        argv += ["--tool-choice", args.tool_choice]
    return argv + list(extra)


def run_task(task: Task, proxy_url: str, model: str, run: int, args: argparse.Namespace,
             extra: Sequence[str]) -> Outcome:
    cap = args.cap or task.timeout_s or DEFAULT_CAP_S
    with tempfile.TemporaryDirectory(prefix=f"agent-task-{task.name}-") as folder:
        ws = Path(folder)
        copy_tree(task.files, ws)
        before = snapshot(ws)
        env = {**os.environ, "ONNX_PROXY_URL": proxy_url}
        started = time.monotonic()
        code, out, err = run_command(agent_argv(task, model, ws, cap, args, extra), ws, cap + KILL_GRACE_S, env)
        seconds = time.monotonic() - started
        body = parse_body(out)
        changed = snapshot(ws) != before  # before the checks: the pytest check restores the tests
        answer = str(body.get("text", ""))
        check = check_task(task, ws, answer)
        agent = AgentRun(code, body, err)
        failure = classify(task, agent, changed, check)
    calls = [f"{c.get('name')}{'!' if c.get('is_error') else ''}" for c in body.get("tool_calls", [])]
    detail = check.detail
    if failure == "error":
        detail = f"exit {code}: {agent.last_stderr_line}"
    elif failure == "timeout":
        detail = f"killed after {cap + KILL_GRACE_S:g} s" if code is None else f"exit {code}: {agent.last_stderr_line}"
    elif failure == "repetition":
        detail = f"stop reason {body.get('stop_reason')}; {detail}"
    return Outcome(model, run, task.name, task.kind, failure is None, failure, round(seconds, 1),
                   int(body.get("turns") or 0), calls, describe_verifications(body), detail,
                   str(body.get("outcome") or ""))


def print_outcome(o: Outcome) -> None:
    mark = "PASS" if o.passed else "FAIL"
    calls = f"{len(o.tool_calls)} calls ({','.join(o.tool_calls)})" if o.tool_calls else "0 calls"
    verify = f"  verify: {o.verifications}" if o.verifications else ""
    verify += f"  outcome: {o.agent_outcome}" if o.agent_outcome else ""
    why = "" if o.passed else f"  {o.failure}: {o.detail}"
    print(f"{mark} {o.kind:9} {o.task:20} {o.seconds:6.1f} s  {o.turns} turns  {calls}{verify}{why}", flush=True)


def summarize(model: str, outcomes: list[Outcome]) -> list[str]:
    """Pass rate per kind and in total (each run, then min / median / max across runs), median seconds,
    failure counts."""
    runs = sorted({o.run for o in outcomes})
    kinds = sorted({o.kind for o in outcomes})
    lines = [f"== {model}: {len(runs)} run(s)"]

    def rates(selected: list[Outcome]) -> list[float]:
        per_run = [[o for o in selected if o.run == r] for r in runs]
        return [100 * sum(o.passed for o in rs) / len(rs) for rs in per_run if rs]

    def spread(values: list[float]) -> str:
        return f"min {min(values):.0f}% / median {statistics.median(values):.0f}% / max {max(values):.0f}%"

    for kind in [*kinds, "total"]:
        selected = outcomes if kind == "total" else [o for o in outcomes if o.kind == kind]
        per_task = len(selected) // len(runs)
        passed = [sum(o.passed for o in selected if o.run == r) for r in runs]
        lines.append(f"{kind:10} {per_task:3} tasks  passed per run {','.join(map(str, passed))}  "
                     f"{spread(rates(selected))}")
    lines.append(f"median {statistics.median(o.seconds for o in outcomes):.1f} s per task, "
                 f"median {statistics.median(len(o.tool_calls) for o in outcomes):.0f} tool calls")
    failures: dict[str, int] = {}
    for o in outcomes:
        if o.failure:
            failures[o.failure] = failures.get(o.failure, 0) + 1
    if failures:
        lines.append("failures: " + ", ".join(f"{k} {v}" for k, v in sorted(failures.items(), key=lambda kv: -kv[1])))
    return lines


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    own, extra = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None,
                        help="catalog name or model folder, or several comma-separated (default: ONNX_MODEL_PATH)")
    parser.add_argument("--tasks", default="", help="comma-separated task names or kinds (default: all)")
    parser.add_argument("--runs", type=int, default=1, help="repeat the suite N times to show the spread")
    parser.add_argument("--cap", type=float, default=None,
                        help=f"seconds per task (default: the task's timeout_s, else {DEFAULT_CAP_S:g})")
    parser.add_argument("--max-turns", type=int, default=None, help="passed on when given (default: the agent's)")
    parser.add_argument("--max-tokens", type=int, default=None, help="passed on when given (default: the agent's)")
    parser.add_argument("--tool-choice", default=None, help="the first turn's --tool-choice (e.g. any)")
    parser.add_argument("--json-out", type=Path, default=None, help="also write every outcome here")
    return parser.parse_args(own), extra


def _stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # unwinds through run_command (kills the task's tree) and launch (stops the proxy)


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGTERM, _stop)
    args, extra = parse_args(argv)
    try:
        tasks = select(load_tasks(), args.tasks)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    models = [local_model(m.strip()) for m in args.model.split(",")] if args.model else [local_model(None)]
    outcomes: list[Outcome] = []
    for model in models:
        with launch(ProxySettings(port=free_port(), model=model), deadline_s=300) as proxy:
            for run in range(1, args.runs + 1):
                if args.runs > 1:
                    print(f"-- {model}, run {run}/{args.runs}", flush=True)
                for task in tasks:
                    outcome = run_task(task, proxy.url, model, run, args, extra)
                    outcomes.append(outcome)
                    print_outcome(outcome)
                    if args.json_out:  # after each task, so a long run stopped midway keeps what it has
                        args.json_out.write_text(json.dumps([asdict(o) for o in outcomes], indent=2))
    for model in models:
        print("\n".join(summarize(model, [o for o in outcomes if o.model == model])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
