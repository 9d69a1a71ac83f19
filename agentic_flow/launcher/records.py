"""Records of running proxies (one JSON file per port in the user's state directory).

A record is only trusted when psutil confirms that its pid is alive and is one of our proxies;
a stale file left by a crash is ignored and removed."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from ..settings import state_dir


@dataclass(frozen=True)
class ProxyRecord:
    pid: int
    host: str
    port: int
    url: str
    model: str
    detached: bool
    idle_exit: float | None = None  # it exits by itself after this many seconds without a request


def _folder() -> Path:
    return state_dir() / "proxies"


def write(record: ProxyRecord) -> Path:
    folder = _folder()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{record.port}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(record)))
    os.replace(tmp, path)
    return path


def remove(port: int) -> None:
    (_folder() / f"{port}.json").unlink(missing_ok=True)


def remove_own(port: int, pid: int) -> None:
    """Remove the port's record if it is the record of `pid`: a proxy that exits by itself (its idle
    exit) cleans up after itself, and never removes the record of another proxy on its port."""
    path = _folder() / f"{port}.json"
    try:
        if json.loads(path.read_text()).get("pid") == pid:
            path.unlink(missing_ok=True)
    except (OSError, ValueError, AttributeError):
        pass  # no record, or not one of ours: nothing to remove


def is_our_proxy(pid: int) -> bool:
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        args = proc.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False
    # Match whole arguments, not substrings: a recycled pid running, say, `less agentic-flow.log`
    # must not be taken for a proxy (and then be killed by `proxy stop`).
    if "agentic_flow.proxy" in args:  # python -m agentic_flow.proxy (detached or supervised)
        return True
    # `agentic-flow proxy start` serving in the foreground
    script = any(Path(a).name == "agentic-flow" for a in args)
    return script and "proxy" in args and "start" in args


def running() -> tuple[list[ProxyRecord], list[Path]]:
    """(live records, stale files that were removed)."""
    live: list[ProxyRecord] = []
    stale: list[Path] = []
    folder = _folder()
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            record = ProxyRecord(**json.loads(path.read_text()))
        except (ValueError, TypeError):
            record = None
        if record is not None and is_our_proxy(record.pid):
            live.append(record)
        else:
            path.unlink(missing_ok=True)
            stale.append(path)
    return live, stale
