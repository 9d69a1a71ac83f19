"""The real Claude Code (npm `@anthropic-ai/claude-code`) as a benchmark and test client.

- `find_claude()`: the installed `claude`: --claude / CLAUDE_CODE_BIN, `claude` on PATH, or the copy
  `make claude-code` installs (CLAUDE_CODE_DIR, default ~/.cache/agentic-flow-claude-code).
- `isolated_env(home, url)`: the environment Claude Code runs in here: HOME in a folder of its own (its
  settings, credentials and transcripts stay there), telemetry and every non-essential call off.
- `Recorder`: a server that answers like Anthropic's API with a short text reply and records every
  request Claude Code makes; `capture_first_request()` runs `claude -p` against it and returns the
  first POST /v1/messages body, for the head-to-head's Claude Code rows (bench/h2h.py).

Nothing here is the product: `agentic-flow claude-code` (agentic_flow/agents/claude_code.py) sets
Claude Code up for users.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from agentic_flow.agents.claude_code import ClaudeCodeSetup, claude_args, claude_env
from agentic_flow.anthropic import sse
from agentic_flow.models.catalog import output_limit

CLAUDE_CODE_DIR = Path.home() / ".cache" / "agentic-flow-claude-code"
CAPTURE_TASK = "Create a file hello.py that prints hello world"
INSTALL_HINT = "`make claude-code` installs it from npm (needs npm and the registry)"


class NotInstalled(Exception):
    """No Claude Code binary here; the message says how to get one."""


def find_claude(explicit: str | None = None, env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    candidates = [explicit, env.get("CLAUDE_CODE_BIN"), shutil.which("claude", path=env.get("PATH"))]
    folder = Path(env.get("CLAUDE_CODE_DIR") or CLAUDE_CODE_DIR)
    candidates.append(str(folder / "node_modules" / ".bin" / "claude"))
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    raise NotInstalled(f"Claude Code is not installed (no CLAUDE_CODE_BIN, no `claude` on PATH, nothing in "
                       f"{folder}); {INSTALL_HINT}")


def version(claude: Path, home: Path) -> str:
    out = subprocess.run([str(claude), "--version"], capture_output=True, text=True, timeout=60,
                         env=isolated_env(home, "http://127.0.0.1:9"), check=True).stdout
    return out.split()[0] if out.split() else "?"


def isolated_env(home: Path, url: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Claude Code's environment: PATH and locale from ours, HOME in `home`, pointed at `url`."""
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TERM", "TMPDIR")}
    return {
        **keep,
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "ANTHROPIC_BASE_URL": url,
        "ANTHROPIC_API_KEY": "local",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_AUTOUPDATER": "1",
        **(extra or {}),
    }


@dataclass
class Recorded:
    method: str
    path: str  # with its query string
    headers: dict[str, str]
    body: Any  # the decoded JSON body, or None


@dataclass
class Recorder:
    """An Anthropic-shaped server on a free port that records each request and answers /v1/messages
    with `reply` (streamed when asked), and GET /v1/models with `models` (Claude Code's gateway model
    discovery reads it)."""

    reply: str = "Done."
    models: list[dict[str, Any]] = field(default_factory=list)
    requests: list[Recorded] = field(default_factory=list)
    url: str = ""
    _runner: web.AppRunner | None = None

    async def __aenter__(self) -> Recorder:
        app = web.Application(client_max_size=64 << 20)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def messages(self) -> list[dict[str, Any]]:
        return [r.body for r in self.requests if r.method == "POST" and r.path.startswith("/v1/messages")
                and "count_tokens" not in r.path]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body = json.loads(raw) if raw else None
        self.requests.append(Recorded(request.method, request.path_qs, dict(request.headers), body))
        if request.path.startswith("/v1/models"):
            return web.json_response({"data": self.models, "has_more": False,
                                      "first_id": None, "last_id": None})
        if request.path == "/v1/messages/count_tokens":
            return web.json_response({"input_tokens": len(raw) // 4})
        if request.path != "/v1/messages":
            return web.json_response({"type": "error", "error": {"type": "not_found_error", "message": "no"}},
                                     status=404)
        model = body.get("model", "m") if isinstance(body, dict) else "m"
        if not (isinstance(body, dict) and body.get("stream")):
            return web.json_response(_message(model, self.reply))
        response = web.StreamResponse(headers=sse.HEADERS)
        await response.prepare(request)
        for event, data in _events(model, self.reply):
            await response.write(sse.frame(event, data))
        await response.write_eof()
        return response


def _message(model: str, text: str) -> dict[str, Any]:
    return {"id": "msg_recorded", "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": None,
            "usage": {"input_tokens": 1, "output_tokens": 1}}


def _events(model: str, text: str) -> list[tuple[str, dict[str, Any]]]:
    start = {**_message(model, text), "content": [], "stop_reason": None}
    return [
        ("message_start", {"type": "message_start", "message": start}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "text_delta", "text": text}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                           "usage": {"output_tokens": 1}}),
        ("message_stop", {"type": "message_stop"}),
    ]


async def run_claude(claude: Path, args: list[str], *, home: Path, cwd: Path, url: str,
                     extra_env: Mapping[str, str] | None = None, timeout: float = 120.0) -> tuple[int, str, str]:
    """Run `claude ARGS` isolated; (exit code, stdout, stderr).  Killed at `timeout` (exit code -9)."""
    proc = await asyncio.create_subprocess_exec(
        str(claude), *args, cwd=cwd, env=isolated_env(home, url, extra_env), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        out, err = await proc.communicate()
    return proc.returncode if proc.returncode is not None else -9, out.decode(), err.decode()


async def capture_first_request(claude: Path, task: str = CAPTURE_TASK, model: str = "local-model",
                                context: int = 32768) -> dict[str, Any]:
    """The first Messages request `claude -p TASK` sends when `agentic-flow claude-code` sets it up (the
    product's variables and arguments, for a model of `context` tokens).  Raises RuntimeError with Claude
    Code's output when it sent none."""
    setup = ClaudeCodeSetup(model, model, context, output_limit(context), "capture")
    with tempfile.TemporaryDirectory(prefix="cc-capture-") as tmp:
        home, cwd = Path(tmp) / "home", Path(tmp) / "project"
        home.mkdir()
        cwd.mkdir()
        async with Recorder() as recorder:
            env = claude_env(isolated_env(home, recorder.url), recorder.url, "local", setup)
            code, out, err = await run_claude(claude, claude_args(["-p", task]), home=home, cwd=cwd,
                                              url=recorder.url, extra_env=env)
        sent = recorder.messages()
        if not sent:
            raise RuntimeError(f"Claude Code sent no Messages request (exit {code}): {(out + err)[-400:]}")
        return dict(sent[0])


if __name__ == "__main__":  # python bench/claude_client.py > first-request.json
    print(json.dumps(asyncio.run(capture_first_request(find_claude())), indent=1))
