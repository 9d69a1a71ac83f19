#!/usr/bin/env python3
"""Where the cold start of `agentic-flow --agent coder --task "Say hi" --max-tokens 1 --provider onnx` goes.

usage: python scripts/profile_cold_start.py [--model smollm2-135m] [--repeat 3]

Each on a free port of its own, so that no proxy another process left running is reused:
  cold       the whole command, wall time (spawns the proxy, loads the model, one token, stops the proxy)
  cli_only   `agentic-flow --version`: the interpreter and the CLI's imports
  imports    `python -X importtime -c "import agentic_flow.cli.main"`: the slowest imports
  proxy      `python -m agentic_flow.proxy` alone: first /health answer (server imported, port bound),
             then 200 ok (inference process spawned, model loaded)
  first/next the same command against that running proxy, twice: the CLI's first token from the
             agent's first request (a new session's first run) and from the next (prefix reuse)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TASK = ["--agent", "coder", "--task", "Say hi", "--max-tokens", "1", "--provider", "onnx"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def env(port: int) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(PROJECT), "ONNX_PROXY_PORT": str(port)}


def timed(argv: list[str], port: int) -> tuple[float, str]:
    t = time.perf_counter()
    proc = subprocess.run(argv, env=env(port), capture_output=True, text=True, check=True)
    return time.perf_counter() - t, proc.stdout


def slowest_imports(n: int = 8) -> list[str]:
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", "import agentic_flow.cli.main"],
                          env=env(0), capture_output=True, text=True, check=True)
    rows = []
    for line in proc.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)", line)
        if m and len(m.group(3)) <= 3:  # top-level packages only (the indent is the nesting)
            rows.append((int(m.group(2)), m.group(4)))
    return [f"{name} {us / 1000:.0f} ms" for us, name in sorted(rows, reverse=True)[:n]]


def health(port: int) -> int | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=0.5) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return None


def proxy_startup(model: str) -> tuple[dict[str, float], subprocess.Popen[bytes], int]:
    port = free_port()
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "agentic_flow.proxy", "--port", str(port), "--model", model],
                            env=env(port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    marks: dict[str, float] = {}
    while "ok" not in marks and proc.poll() is None and time.perf_counter() - t < 120:
        status = health(port)
        if status is not None and "first_answer" not in marks:
            marks["first_answer"] = time.perf_counter() - t
        if status == 200:
            marks["ok"] = time.perf_counter() - t
        time.sleep(0.01)
    return {k: round(v, 3) for k, v in marks.items()}, proc, port


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args(argv)
    cli = [str(BIN / "agentic-flow")]
    report: dict[str, Any] = {}
    colds = [timed(cli + TASK + ["--model", a.model], free_port())[0] for _ in range(a.repeat)]
    report["cold_wall_s"] = [round(x, 2) for x in colds]
    report["cli_only_s"] = round(statistics.median(timed([*cli, "--version"], 0)[0] for _ in range(3)), 3)
    report["slowest_imports"] = slowest_imports()
    starts = []
    for i in range(a.repeat):
        marks, proc, port = proxy_startup(a.model)
        starts.append(marks)
        if i == a.repeat - 1:
            for name in ("first", "next"):
                wall, out = timed(cli + TASK + ["--model", a.model, "--json"], port)
                result = json.loads(out)
                report[f"{name}_request"] = {"wall_s": round(wall, 3), **result["timings"], **result["usage"]}
        proc.terminate()
        proc.wait(20)
    report["proxy_startup_s"] = starts
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
