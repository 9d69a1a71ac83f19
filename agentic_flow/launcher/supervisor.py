"""The one way to start the proxy as a child process, used by the CLI, `proxy start --detach`, the
tests and the benchmark (after vLLM's RemoteOpenAIServer and uvicorn's supervisor): spawn it, probe
/health against a deadline, fail fast when the child exits (showing its last log lines), stop it with
SIGTERM, wait, then kill whatever remains of its process tree.  Never sleep-and-hope.

    with launch(settings) as proxy:
        ...  # proxy.url answers /health 200
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from pathlib import Path

import psutil

from ..errors import PortInUse, ProxyError
from ..proxy.health import Health, HealthStatus
from ..settings import UPSTREAM_KEY_VARIABLE, ProxySettings, environ, state_dir
from . import records

# /health is polled this often while the proxy starts: half of it is, on average, added to a cold start,
# and each poll costs both processes a connection (~1 ms) while the model loads on the same cores.
POLL_SECONDS = 0.05
KEY_VARIABLE = "AGENTIC_FLOW_API_KEY"

OnStatus = Callable[[Health], None]


@dataclass
class ProxyProcess:
    """A proxy we started (`process` set) or found running and reuse (`reused`: never stopped by us)."""

    url: str
    pid: int | None
    reused: bool = False
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    idle_exit: float | None = None  # it exits by itself after this many seconds without a request


def client_host(host: str) -> str:
    """The address a client on this machine uses to reach a server bound to `host`."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    return "::1" if host == "::" else host


def base_url(settings: ProxySettings) -> str:
    host = client_host(settings.host)
    return f"http://[{host}]:{settings.port}" if ":" in host else f"http://{host}:{settings.port}"


def probe(url: str, timeout: float = 1.0) -> Health | None:
    """/health of an agentic-flow proxy at `url` (whatever its status), or None when none answers."""
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as resp:
            body = resp.read()
    except urllib.error.HTTPError as exc:  # 503 while loading still carries the JSON body
        body = exc.read()
    except (OSError, ValueError):
        return None
    try:
        return Health.from_json(json.loads(body))
    except ValueError:
        return None


def port_in_use(settings: ProxySettings) -> bool:
    try:
        with socket.create_connection((client_host(settings.host), settings.port), timeout=0.5):
            return True
    except OSError:
        return False


def free_port() -> int:
    """A port nothing listens on now (for tests and benchmarks, which never use fixed ports)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def spawn(settings: ProxySettings, *, detach: bool = False, env: Mapping[str, str] | None = None) -> ProxyProcess:
    """Start `python -m agentic_flow.proxy` with `settings` as its arguments; its output goes to a log
    file in the state directory of `env` (default: ours)."""
    base = environ() if env is None else env
    if not detach:
        # The child watches us: even if we are killed outright, it does not outlive us.
        settings = replace(settings, parent_pid=os.getpid())
    child_env = {k: v for k, v in base.items() if k not in (KEY_VARIABLE, UPSTREAM_KEY_VARIABLE)}
    if settings.api_key:
        child_env[KEY_VARIABLE] = settings.api_key  # not in argv, where `ps` would show it
    if settings.upstream_key:
        child_env[UPSTREAM_KEY_VARIABLE] = settings.upstream_key
    folder = state_dir(base)
    folder.mkdir(parents=True, exist_ok=True)
    log_path = folder / f"proxy-{settings.port}.log"
    with open(log_path, "wb") as log:
        # A session of its own: the terminal's Ctrl-C reaches only us, and we stop the child in order.
        process = subprocess.Popen([sys.executable, "-m", "agentic_flow.proxy", *settings.to_argv()],
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=child_env,
                                   start_new_session=True)
    return ProxyProcess(base_url(settings), process.pid, False, process, log_path)


def wait_healthy(proxy: ProxyProcess, deadline_s: float, on_status: OnStatus | None = None) -> Health:
    deadline = time.monotonic() + deadline_s
    while True:
        if proxy.process is not None and proxy.process.poll() is not None:
            raise ProxyError(f"the proxy exited with code {proxy.process.returncode} before it was ready:\n"
                             + last_lines(proxy.log_path))
        health = probe(proxy.url, timeout=0.5)
        if health is not None:
            if on_status is not None:
                on_status(health)
            if health.status is HealthStatus.OK:
                return health
            if health.status is HealthStatus.ERROR:
                raise ProxyError(f"the proxy could not load its model: {health.error}")
        if time.monotonic() > deadline:
            raise ProxyError(f"the proxy at {proxy.url} was not ready after {deadline_s:.0f} s:\n"
                             + last_lines(proxy.log_path))
        time.sleep(POLL_SECONDS)


def last_lines(path: Path | None, n: int = 12) -> str:
    if path is None or not path.is_file():
        return "(no log)"
    lines = path.read_text(errors="replace").strip().splitlines()
    return "\n".join(lines[-n:]) or "(empty log)"


def start(settings: ProxySettings, *, detach: bool = False, deadline_s: float = 180.0,
          on_status: OnStatus | None = None, env: Mapping[str, str] | None = None) -> ProxyProcess:
    """Spawn the proxy and return once /health says ok; on any failure nothing is left running."""
    proxy = spawn(settings, detach=detach, env=env)
    try:
        wait_healthy(proxy, deadline_s, on_status)
    except BaseException:
        stop(proxy)
        raise
    return proxy


@contextmanager
def launch(settings: ProxySettings, *, deadline_s: float = 180.0, on_status: OnStatus | None = None,
           env: Mapping[str, str] | None = None) -> Iterator[ProxyProcess]:
    """A healthy proxy for the duration of the block, stopped (its whole tree) on every exit path."""
    proxy = start(settings, deadline_s=deadline_s, on_status=on_status, env=env)
    try:
        yield proxy
    finally:
        stop(proxy)


def start_detached(settings: ProxySettings, *, deadline_s: float = 300.0,
                   on_status: OnStatus | None = None) -> ProxyProcess:
    """Start a proxy that outlives us (`proxy start --detach`, `--keep-warm`), healthy, with its record
    written for `proxy status` and `proxy stop`; it removes the record itself when it exits."""
    proxy = replace(start(settings, detach=True, deadline_s=deadline_s, on_status=on_status),
                    idle_exit=settings.idle_exit)
    records.write(records.ProxyRecord(proxy.pid or 0, settings.host, settings.port, proxy.url, describe(settings),
                                      True, settings.idle_exit))
    return proxy


def describe(settings: ProxySettings) -> str:
    """What a proxy with these settings serves, in a few words (records, messages)."""
    if settings.upstream_mode:
        return f"{settings.upstream_model or '*'} via {settings.provider}"
    return settings.model


@contextmanager
def reuse_or_launch(settings: ProxySettings, *, deadline_s: float = 180.0,
                    on_status: OnStatus | None = None) -> Iterator[ProxyProcess]:
    """A healthy proxy on the configured port: the one already running there (left running), or one
    launched for the block.  With `settings.idle_exit` (`--keep-warm`) the one launched is detached
    instead: it is left running after the block, and exits by itself once idle that long."""
    url = base_url(settings)
    health = probe(url)
    if health is not None:
        check_serves(health, settings, url)
        proxy = ProxyProcess(url, health.pid, reused=True, idle_exit=health.idle_exit_s)
        wait_healthy(proxy, deadline_s, on_status)
        yield proxy
        return
    check_port_free(settings)
    if settings.idle_exit is not None:
        yield start_detached(settings, deadline_s=deadline_s, on_status=on_status)
        return
    with launch(settings, deadline_s=deadline_s, on_status=on_status) as proxy:
        yield proxy


@contextmanager
def held(proxy: ProxyProcess) -> Iterator[None]:
    """Keep a proxy with an idle exit from leaving while the block uses it: an agent's tool call (a long
    Bash command) or a Claude Code session waiting for its user can outlast the idle time between two
    requests.  A thread sends /health, which counts as a request, three times per idle period."""
    if proxy.idle_exit is None:
        yield
        return
    done = threading.Event()

    def beat() -> None:
        while not done.wait(max(0.1, min(proxy.idle_exit or 0, 180.0) / 3)):
            probe(proxy.url)

    thread = threading.Thread(target=beat, name="proxy-held", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def check_serves(health: Health, settings: ProxySettings, url: str) -> None:
    """A running proxy is reused only for what it serves: a request for another model would be refused
    (404) or, for a name it does not know, answered by the model it has loaded."""
    if health.provider != settings.provider:
        raise ProxyError(f"the proxy at {url} serves {health.provider}, not {settings.provider}; stop it "
                         "with `agentic-flow proxy stop` or choose another port (ONNX_PROXY_PORT)")
    if not settings.upstream_mode and health.model != settings.served_model:
        raise ProxyError(f"the proxy at {url} serves {health.model}, not {settings.served_model}: run with "
                         f"--model {health.model}, stop it with `agentic-flow proxy stop --port {settings.port}`, "
                         "or choose another port (ONNX_PROXY_PORT)")


def check_port_free(settings: ProxySettings) -> None:
    # Checked before spawning: a child's own PortInUse would only reach us as "exited early".
    if port_in_use(settings):
        raise PortInUse(f"port {settings.port} is in use by something that is not an agentic-flow proxy; "
                        "choose another port with --port or ONNX_PROXY_PORT")


def stop(proxy: ProxyProcess, timeout: float = 15.0) -> None:
    """SIGTERM the proxy we started, wait, then kill whatever remains of its tree.  A reused proxy
    belongs to someone else and is left running."""
    if proxy.reused or proxy.pid is None:
        return
    terminate_tree(proxy.pid, timeout)
    if proxy.process is not None:
        proxy.process.wait()


def terminate_tree(pid: int, timeout: float = 15.0) -> None:
    try:
        root = psutil.Process(pid)
        tree = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    with suppress(psutil.NoSuchProcess):
        root.terminate()
    _, alive = psutil.wait_procs([root], timeout=timeout)
    _, alive = psutil.wait_procs(alive + tree[1:], timeout=2)
    for proc in alive:
        with suppress(psutil.NoSuchProcess):
            proc.kill()
    psutil.wait_procs(alive, timeout=5)
