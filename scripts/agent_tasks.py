"""A small task suite for the agent loop: each task runs `agentic-flow --agent coder` in a fresh temporary
workspace and a checker decides pass or fail from the files left behind or the final answer.

Usage: python scripts/agent_tasks.py [--model NAME] [--cap 180] [--tasks name,name] [--max-turns 6]
                                    [--max-tokens 512] [--tool-choice any]
       make agent-tasks MODEL=qwen2.5-coder-1.5b

The local proxy is started once (the product's launcher, on a free port) and every task reaches it
through ONNX_PROXY_URL, so a task's time is the agent's, not the model's loading.  Each task gets
--timeout CAP seconds; a task over its cap fails.  Greedy decoding (--temperature 0), so a rerun on
the same model gives the same result up to thread-timing noise.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agentic_flow.launcher.supervisor import free_port, launch  # noqa: E402
from agentic_flow.settings import ProxySettings, local_model  # noqa: E402

AGENTIC_FLOW = str(Path(sys.executable).parent / "agentic-flow")
Checker = Callable[[Path, str], bool]  # (workspace, final answer) -> passed


@dataclass(frozen=True)
class Task:
    name: str
    prompt: str
    check: Checker
    files: dict[str, str] = field(default_factory=dict)


def _run_py(workspace: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], cwd=workspace, capture_output=True, text=True, timeout=60)


def _read(workspace: Path, name: str) -> str:
    path = workspace / name
    return path.read_text(errors="replace") if path.is_file() else ""


def _hello_runs(ws: Path, _: str) -> bool:
    return (ws / "hello.py").is_file() and "hello world" in _run_py(ws, "hello.py").stdout.lower()


def _add_fixed(ws: Path, _: str) -> bool:
    return _run_py(ws, "-m", "pytest", "-q", "test_mathutil.py").returncode == 0


def _renamed(ws: Path, _: str) -> bool:
    sources = _read(ws, "shapes.py") + _read(ws, "main.py")
    return "compute_area" not in sources and sources.count("rect_area") >= 2 \
        and _run_py(ws, "main.py").stdout.strip() == "12"


def _is_even_added(ws: Path, _: str) -> bool:
    probe = "import utils; f = utils.is_even; assert f(4) and not f(3) and (f.__doc__ or '').strip(); print('ok')"
    return _run_py(ws, "-c", probe).stdout.strip() == "ok" and "def double" in _read(ws, "utils.py")


def _port_changed(ws: Path, _: str) -> bool:
    try:
        config = json.loads(_read(ws, "config.json"))
    except ValueError:
        return False
    return config == {"name": "demo", "port": 9090, "debug": True}


def _test_written(ws: Path, _: str) -> bool:
    test = _read(ws, "test_calc.py")
    return "multiply" in test and _run_py(ws, "-m", "pytest", "-q", "test_calc.py").returncode == 0


def _mentions(*words: str, absent: tuple[str, ...] = ()) -> Checker:
    def check(_: Path, answer: str) -> bool:
        low = answer.lower()
        return all(w.lower() in low for w in words) and not any(a.lower() in low for a in absent)
    return check


TASKS = [
    Task("create-file", "Create a file named greeting.txt that contains the word hello.",
         lambda ws, _: "hello" in _read(ws, "greeting.txt").lower()),
    Task("hello-py", "Create hello.py that prints hello world.", _hello_runs),
    Task("fix-function", "The test in test_mathutil.py fails. Fix the add function in mathutil.py so the test "
         "passes.", _add_fixed,
         {"mathutil.py": "def add(a, b):\n    return a - b\n",
          "test_mathutil.py": "from mathutil import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"}),
    Task("rename-symbol", "Rename the function compute_area to rect_area in shapes.py and in main.py.", _renamed,
         {"shapes.py": "def compute_area(w, h):\n    return w * h\n",
          "main.py": "from shapes import compute_area\n\nprint(compute_area(3, 4))\n"}),
    Task("find-definition", "In which file is the function parse_config defined? Answer with the file's path.",
         _mentions("loader.py"),
         {"app/main.py": "from app.loader import parse_config\n\nprint(parse_config('x'))\n",
          "app/loader.py": "def parse_config(text):\n    return dict(line.split('=') for line in text.splitlines())\n",
          "app/__init__.py": ""}),
    Task("count-lines", "How many lines does data.txt have? Answer with the number.", _mentions("17"),
         {"data.txt": "".join(f"row {i}\n" for i in range(1, 18))}),
    Task("add-function", "Add a function is_even(n) to utils.py that returns True when n is even, with a "
         "docstring. Keep the existing function.", _is_even_added,
         {"utils.py": 'def double(n):\n    """Twice n."""\n    return 2 * n\n'}),
    Task("edit-config", "Change the port in config.json to 9090.", _port_changed,
         {"config.json": '{\n  "name": "demo",\n  "port": 8000,\n  "debug": true\n}\n'}),
    Task("list-python-files", "List the Python files in this folder and its subfolders.",
         _mentions("a.py", "b.py", "c.py", absent=("notes.txt",)),
         {"a.py": "x = 1\n", "b.py": "y = 2\n", "notes.txt": "not code\n", "sub/c.py": "z = 3\n"}),
    Task("write-test", "Write a pytest test for the multiply function of calc.py in a new file test_calc.py.",
         _test_written, {"calc.py": "def multiply(a, b):\n    return a * b\n"}),
    Task("explain-function", "Read fib.py and explain in one sentence what its function computes.",
         _mentions("fibonacci"),
         {"fib.py": "def f(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n"}),
    Task("replace-text", "In README.md, change the version from 1.0 to 2.0.",
         lambda ws, _: "Version 2.0" in _read(ws, "README.md") and "1.0" not in _read(ws, "README.md"),
         {"README.md": "# Demo\n\nVersion 1.0 of the demo.\n"}),
]


@dataclass(frozen=True)
class Outcome:
    task: str
    passed: bool
    seconds: float
    turns: int
    tool_calls: list[str]
    note: str


def run_task(task: Task, proxy_url: str, model: str, args: argparse.Namespace) -> Outcome:
    with tempfile.TemporaryDirectory(prefix=f"agent-task-{task.name}-") as folder:
        ws = Path(folder)
        for name, content in task.files.items():
            (ws / name).parent.mkdir(parents=True, exist_ok=True)
            (ws / name).write_text(content)
        argv = [AGENTIC_FLOW, "--agent", "coder", "--provider", "onnx", "--model", model, "--task", task.prompt,
                "--workspace",
                folder, "--permission-mode", "bypassPermissions", "--max-turns", str(args.max_turns),
                "--temperature", "0", "--timeout", str(args.cap), "--max-tokens", str(args.max_tokens), "--json"]
        if args.tool_choice:
            argv += ["--tool-choice", args.tool_choice]
        env = {**os.environ, "ONNX_PROXY_URL": proxy_url}
        started = time.monotonic()
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=args.cap + 60,
                              stdin=subprocess.DEVNULL)
        seconds = time.monotonic() - started
        body: dict[str, Any] = {}
        if proc.stdout.strip():
            body = json.loads(proc.stdout)
        answer = str(body.get("text", ""))
        calls = [f"{c['name']}{'!' if c['is_error'] else ''}" for c in body.get("tool_calls", [])]
        passed = proc.returncode in (0, 7) and task.check(ws, answer)
        note = "" if proc.returncode == 0 else f"exit {proc.returncode}: {proc.stderr.strip()[-160:]}"
        return Outcome(task.name, passed, seconds, int(body.get("turns", 0)), calls, note)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="catalog name or model folder (default: ONNX_MODEL_PATH)")
    parser.add_argument("--cap", type=float, default=180.0, help="seconds per task")
    parser.add_argument("--max-turns", type=int, default=6)
    # Per turn: a small model that repeats itself would otherwise spend the whole cap in one answer.
    parser.add_argument("--max-tokens", type=int, default=512)
    parser.add_argument("--tool-choice", default=None, help="the first turn's --tool-choice (e.g. any)")
    parser.add_argument("--tasks", default="", help="comma-separated task names (default: all)")
    parser.add_argument("--json-out", type=Path, default=None, help="also write the outcomes here")
    args = parser.parse_args()
    chosen = [t for t in TASKS if not args.tasks or t.name in args.tasks.split(",")]
    model = local_model(args.model)
    outcomes: list[Outcome] = []
    with launch(ProxySettings(port=free_port(), model=model), deadline_s=300) as proxy:
        for task in chosen:
            outcome = run_task(task, proxy.url, model, args)
            outcomes.append(outcome)
            mark = "PASS" if outcome.passed else "FAIL"
            print(f"{mark} {task.name:18} {outcome.seconds:6.1f} s  {outcome.turns} turns  "
                  f"tools: {','.join(outcome.tool_calls) or '-'}  {outcome.note}", flush=True)
    passed = sum(o.passed for o in outcomes)
    print(f"{model}: {passed}/{len(outcomes)} tasks passed ({100 * passed / max(len(outcomes), 1):.0f}%)")
    if args.json_out:
        args.json_out.write_text(json.dumps([o.__dict__ for o in outcomes], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
