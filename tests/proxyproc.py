"""Start the real proxy process (`python -m agentic_flow.proxy`) on a free port for tests, wait for
/health by polling, and stop it with SIGTERM, checking that no process of its tree survives."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil

from agentic_flow.launcher import supervisor


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_proxy(model: Path | str, home: Path, *args: str, api_key: str | None = None,
                  port: int | None = None) -> Iterator[supervisor.ProxyHandle]:
    port = port or free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTIC_FLOW_", "ONNX_"))}
    env.update(HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"), XDG_STATE_HOME=str(home / "state"))
    if api_key:
        env["AGENTIC_FLOW_API_KEY"] = api_key
    log_path = home / f"proxy-{port}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "agentic_flow.proxy", "--port", str(port), "--model", str(model), *args],
            stdout=log, stderr=log, env=env, start_new_session=True,
        )
    handle = supervisor.ProxyHandle(f"http://127.0.0.1:{port}", proc.pid, False, proc, log_path)
    try:
        supervisor.wait_healthy(handle, 120)
        yield handle
    finally:
        tree = _tree(proc.pid)
        supervisor.stop(handle)
        survivors = [p for p in tree if _alive(p)]
        assert not survivors, f"processes left running after stop: {survivors}"


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _alive(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
