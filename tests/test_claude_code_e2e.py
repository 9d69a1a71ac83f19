"""The real Claude Code (npm `@anthropic-ai/claude-code`, installed by `make claude-code`), as users run it.

Skipped, with the reason, where it is not installed (npm and the registry are needed to get it): set
CLAUDE_CODE_BIN, put `claude` on PATH, or run `make claude-code`.  The run through the real proxy is
behind CLAUDE_CODE_E2E=1 as well (minutes on a loaded machine; see its skip reason).  Claude Code runs with HOME in a
temporary folder, telemetry and non-essential traffic off (bench/claude_client.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from agentic_flow.agents.claude_code import ClaudeCodeSetup, claude_args, claude_env
from agentic_flow.anthropic.convert import to_prompt
from agentic_flow.anthropic.requests import parse_messages_request
from agentic_flow.models.catalog import SMALL_MODEL_TOOLS
from agentic_flow.proxy.tool_policy import ToolPolicy
from bench.claude_client import NotInstalled, Recorder, find_claude, isolated_env, run_claude
from tests.conftest import ProxyFactory

try:
    CLAUDE: Path | None = find_claude()
    WHY = ""
except NotInstalled as exc:  # found before the tests point HOME elsewhere
    CLAUDE, WHY = None, str(exc)

pytestmark = pytest.mark.skipif(CLAUDE is None, reason=WHY)
AGENTIC_FLOW = str(Path(sys.executable).parent / "agentic-flow")


async def test_what_the_real_client_sends_is_accepted_and_narrowed(tmp_path: Path) -> None:
    """Claude Code's first request, as `agentic-flow claude-code` sets it up, through the proxy's parser
    and the tool policy of a small model: nothing refused, only the tools it can use offered."""
    assert CLAUDE is not None
    home, cwd = tmp_path / "home", tmp_path / "project"
    home.mkdir()
    cwd.mkdir()
    cc = ClaudeCodeSetup("qwen2.5-coder-1.5b", "qwen2.5-coder-1.5b", 32768, 4096, "test")
    async with Recorder() as recorder:
        env = claude_env(isolated_env(home, recorder.url), recorder.url, "local", cc)
        code, out, err = await run_claude(CLAUDE, claude_args(["-p", "Create hello.py that prints hello world"]),
                                          home=home, cwd=cwd, url=recorder.url, extra_env=env)
    assert code == 0 and "Done." in out, err
    body = recorder.messages()[0]
    assert body["model"] == "qwen2.5-coder-1.5b" and body["max_tokens"] == 4096
    offered = [tool["name"] for tool in body["tools"]]
    assert "Agent" not in offered and {"Read", "Write", "Edit", "Bash"} <= set(offered)  # denied by the launcher
    prompt = ToolPolicy(SMALL_MODEL_TOOLS).apply(to_prompt(parse_messages_request(body)))
    assert [tool.name for tool in prompt.tools] == ["Bash", "Edit", "Read", "Write"]
    assert "hello.py" in prompt.turns[-1].content


def assistant_texts(home: Path) -> list[str]:
    """The assistant's text blocks in every transcript Claude Code wrote under `home`."""
    texts = []
    for path in (home / ".claude" / "projects").glob("*/*.jsonl"):
        for line in path.read_text().splitlines():
            entry = json.loads(line)
            message = entry.get("message")
            if entry.get("type") == "assistant" and isinstance(message, dict):
                texts += [b["text"] for b in message.get("content", []) if b.get("type") == "text"]
    return texts


@pytest.mark.model
@pytest.mark.skipif(not os.environ.get("CLAUDE_CODE_E2E"),
                    reason="set CLAUDE_CODE_E2E=1: the 135M model at Claude Code's sampling may run on to the output "
                           "limit, and Claude Code's own retries then take minutes on a loaded machine")
def test_claude_code_through_agentic_flow_on_the_real_proxy(proxy_factory: ProxyFactory, tmp_path: Path) -> None:
    """`agentic-flow claude-code -p ...` with the real `claude`, on the real proxy (default model): Claude
    Code's requests are served and the model's answer reaches its transcript."""
    assert CLAUDE is not None
    home = tmp_path / "home"
    home.mkdir()
    with proxy_factory() as proxy:
        port = proxy.url.rsplit(":", 1)[1]
        env = {**isolated_env(home, "unused"), "ONNX_PROXY_PORT": port,
               "PATH": f"{CLAUDE.parent}{os.pathsep}{os.environ['PATH']}", "CLAUDE_CODE_MAX_OUTPUT_TOKENS": "200"}
        env.pop("ANTHROPIC_BASE_URL")
        # A short system prompt and no tools keep the prompt at ~450 tokens: this test is about the path
        # (the real client, the command, the real proxy), not about what the 135M model can do with
        # Claude Code's ~4.4k-token prompt (the first test checks that prompt is accepted).
        argv = [AGENTIC_FLOW, "claude-code", "-p", "Say hi", "--system-prompt", "Answer in one short sentence.",
                "--tools", "", "--max-turns", "1", "--output-format", "json"]
        # Its own session: at the timeout the whole tree goes (claude is agentic-flow's child).
        proc = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            out, err = proc.communicate(timeout=900)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.communicate()
    result = json.loads(out)
    assert result["type"] == "result", result
    # The 135M model, at Anthropic's default sampling (Claude Code sends none), sometimes runs on to the
    # output limit; Claude Code then asks it to resume and may give up (exit 1, "output token maximum").
    # Either way every request was answered: the model's words are in the transcript, and an error is
    # only ever that one.
    assert any(text.strip() for text in assistant_texts(home)), (out[-2000:], err[-2000:])
    assert proc.returncode == 0 or "output token" in json.dumps(result).lower(), (out[-2000:], err[-2000:])
