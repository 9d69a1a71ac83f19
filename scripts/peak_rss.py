"""Run a command and report the peak resident memory of its whole process tree.

`/usr/bin/time -v` reports the largest single process; a conversion runs a CLI, pip, a de-quantizer
and the builder, some at once, so this samples the sum of RSS over the command and all of its
descendants (psutil, every 0.1 s) and prints the peak, the wall time and the peak of each process
name.  Used for the conversion figures in docs/models.md:

    python scripts/peak_rss.py -- agentic-flow models pull qwen2.5-coder-1.5b --wheels DIR
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import psutil

GB = 1000**3


def tree_rss(root: psutil.Process) -> tuple[int, dict[str, int]]:
    """Sum of RSS over `root` and its descendants, and each process's RSS keyed by a short name."""
    total = 0
    each: dict[str, int] = {}
    try:
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0, each
    for proc in procs:
        try:
            rss = proc.memory_info().rss
            cmdline = proc.cmdline()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        total += rss
        key = _short(cmdline)
        each[key] = max(each.get(key, 0), rss)
    return total, each


def _short(cmdline: list[str]) -> str:
    words = [w for w in cmdline[1:] if not w.startswith("/") and len(w) < 60][:3]
    return " ".join([cmdline[0].rsplit("/", 1)[-1], *words]) if cmdline else "?"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--interval", type=float, default=0.1, help="seconds between samples")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command, after --")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command after --")
    start = time.monotonic()
    child = subprocess.Popen(command)
    root = psutil.Process(child.pid)
    peak = 0
    peaks: dict[str, int] = {}
    while child.poll() is None:
        total, each = tree_rss(root)
        peak = max(peak, total)
        for key, rss in each.items():
            peaks[key] = max(peaks.get(key, 0), rss)
        time.sleep(args.interval)
    wall = time.monotonic() - start
    print(f"peak RSS of the process tree: {peak / GB:.2f} GB; wall {wall:.0f} s; exit {child.returncode}",
          file=sys.stderr)
    for key, rss in sorted(peaks.items(), key=lambda item: -item[1])[:6]:
        print(f"  {rss / GB:6.2f} GB  {key}", file=sys.stderr)
    return child.returncode


if __name__ == "__main__":
    sys.exit(main())
