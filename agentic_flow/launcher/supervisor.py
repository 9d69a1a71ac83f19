"""Run the proxy as a supervised child process (after vLLM's test-server helper and uvicorn's
supervisor): probe /health against a deadline, fail fast when the child exits, stop it with SIGTERM,
wait, then kill whatever remains of its process tree.  Never sleep-and-hope."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psutil

from ..errors import PortInUse, ProxyError
from ..settings import ProxySettings, environ, state_dir

SERVICE = "agentic-flow-proxy"
POLL_SECONDS = 0.1


@dataclass
class ProxyHandle:
    url: str
    pid: int | None
    reused: bool
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None


def base_url(settings: ProxySettings) -> str:
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "") else settings.host
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{settings.port}"


def probe(url: str, timeout: float = 1.0) -> dict[str, Any] | None:
    """/health of an agentic-flow proxy at `url` (any status), or None when nothing of ours answers."""
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as resp:
            body = resp.read()
    except urllib.error.HTTPError as exc:  # 503 while loading still carries the JSON body
        body = exc.read()
    except (OSError, ValueError):
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data if isinstance(data, dict) and data.get("service") == SERVICE else None


def port_is_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def log_file(port: int) -> Path:
    folder = state_dir()
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"proxy-{port}.log"


def spawn(settings: ProxySettings, *, detach: bool = False) -> ProxyHandle:
    if not detach:
        # The child watches us: even if we are killed outright, it does not outlive us.
        settings = replace(settings, parent_pid=os.getpid())
    argv = [sys.executable, "-m", "agentic_flow.proxy", *settings.to_argv()]
    env = dict(environ())  # the child inherits our environment, minus the key unless we set it
    env.pop("AGENTIC_FLOW_API_KEY", None)
    if settings.api_key:
        env["AGENTIC_FLOW_API_KEY"] = settings.api_key  # not in argv, where `ps` would show it
    log_path = log_file(settings.port)
    with open(log_path, "wb") as log:
        # A session of its own: the terminal's Ctrl-C reaches only us, and we stop the child in order.
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
                                   start_new_session=True)
    return ProxyHandle(base_url(settings), process.pid, False, process, log_path)


def wait_healthy(handle: ProxyHandle, deadline_s: float,
                 on_status: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    deadline = time.monotonic() + deadline_s
    while True:
        if handle.process is not None and handle.process.poll() is not None:
            raise ProxyError(
                f"the proxy exited with code {handle.process.returncode} before it was ready:\n"
                + last_lines(handle.log_path)
            )
        health = probe(handle.url, timeout=0.5)
        if health is not None:
            if on_status is not None:
                on_status(health)
            if health.get("status") == "ok":
                return health
            if health.get("status") == "error":
                raise ProxyError(f"the proxy could not load its model: {health.get('error')}")
        if time.monotonic() > deadline:
            raise ProxyError(f"the proxy at {handle.url} was not ready after {deadline_s:.0f} s:\n"
                             + last_lines(handle.log_path))
        time.sleep(POLL_SECONDS)


def last_lines(path: Path | None, n: int = 12) -> str:
    if path is None or not path.is_file():
        return "(no log)"
    lines = path.read_text(errors="replace").strip().splitlines()
    return "\n".join(lines[-n:]) or "(empty log)"


def ensure_proxy(settings: ProxySettings, *, deadline_s: float = 180.0,
                 on_status: Callable[[dict[str, Any]], None] | None = None) -> ProxyHandle:
    """Reuse a healthy proxy on the port, or start one and wait until it is ready."""
    url = base_url(settings)
    health = probe(url)
    if health is not None:
        handle = ProxyHandle(url, health.get("pid"), True)
        wait_healthy(handle, deadline_s, on_status)
        return handle
    if port_is_open(settings.host if settings.host != "0.0.0.0" else "127.0.0.1", settings.port):
        raise PortInUse(
            f"port {settings.port} is in use by something that is not an agentic-flow proxy; "
            "choose another port with ONNX_PROXY_PORT"
        )
    handle = spawn(settings)
    try:
        wait_healthy(handle, deadline_s, on_status)
    except BaseException:
        stop(handle)
        raise
    return handle


def stop(handle: ProxyHandle, timeout: float = 15.0) -> None:
    """SIGTERM the proxy we started, wait, then kill whatever remains of its tree.  A reused proxy
    belongs to someone else and is left running."""
    if handle.reused or handle.pid is None:
        return
    terminate_tree(handle.pid, timeout)
    if handle.process is not None:
        handle.process.wait()


def terminate_tree(pid: int, timeout: float = 15.0) -> None:
    try:
        root = psutil.Process(pid)
        tree = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    try:
        root.terminate()
    except psutil.NoSuchProcess:
        pass
    _, alive = psutil.wait_procs([root], timeout=timeout)
    _, alive = psutil.wait_procs(alive + tree[1:], timeout=2)
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=5)
