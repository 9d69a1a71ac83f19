"""The `agentic-flow` command.

Fast paths (help, usage errors, configuration errors) run in-process with Typer's CliRunner.  The main
job runs as a real subprocess (the installed console script) on the real default model: end to end with
a proxy it starts itself, and against one shared running proxy that requires a key (reuse, --json,
stdin, ONNX_PROXY_URL, the anthropic provider).  After every run that started a proxy, psutil must find
no process of it left.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from typer.testing import CliRunner

from agentic_flow import __version__
from agentic_flow.cli.main import app
from agentic_flow.errors import PortInUse, ProxyError
from agentic_flow.launcher import records, supervisor
from agentic_flow.proxy.health import HealthStatus
from agentic_flow.settings import ProxySettings, state_dir
from tests.conftest import ProxyFactory

AGENTIC_FLOW = str(Path(sys.executable).parent / "agentic-flow")
KEY = "test-key-123"
FRANCE = "What is the capital of France?"
RUN_TIMEOUT = 120


# ---------------------------------------------------------------- helpers


def cli(*args: str, env: dict[str, str] | None = None, stdin: str | None = None,
        timeout: float = RUN_TIMEOUT) -> subprocess.CompletedProcess[str]:
    """Run the installed console script with the (isolated) test environment plus `env`."""
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    return subprocess.run([AGENTIC_FLOW, *args], env=full_env, input=stdin if stdin is not None else "",
                          capture_output=True, text=True, timeout=timeout, check=False)


def proxy_processes(port: int) -> list[psutil.Process]:
    """Live `python -m agentic_flow.proxy ... --port PORT` processes (zombies count as gone)."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        args = proc.info["cmdline"] or []
        if ("agentic_flow.proxy" in args and str(port) in args
                and proc.info["status"] != psutil.STATUS_ZOMBIE):
            found.append(proc)
    return found


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


@pytest.fixture(scope="module")
def keyed_proxy(proxy_factory: ProxyFactory) -> Iterator[supervisor.ProxyProcess]:
    """One real proxy that requires KEY, shared by the tests that only need a running proxy."""
    with proxy_factory(api_key=KEY) as handle:
        yield handle


def port_of(handle: supervisor.ProxyProcess) -> int:
    return int(handle.url.rsplit(":", 1)[1])


# ---------------------------------------------------------------- fast paths, in-process

runner = CliRunner()


def test_help_lists_the_main_options() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for option in ("--agent", "--task", "--provider", "--priority", "--optimize-priority", "--json", "--list"):
        assert option in result.output
    assert "agentic-flow --agent coder" in result.output  # the docstring's example


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert (result.exit_code, result.stdout.strip()) == (0, __version__)


def test_list_shows_the_builtin_agents() -> None:
    result = runner.invoke(app, ["--list"])
    assert result.exit_code == 0
    for name in ("coder", "planner", "researcher", "reviewer", "tester"):
        assert name in result.stdout


def test_unknown_agent_suggests_a_close_name() -> None:
    result = runner.invoke(app, ["--agent", "codr", "--task", "x", "--provider", "onnx"])
    assert result.exit_code == 2
    assert "unknown agent 'codr'" in result.stderr and "coder" in result.stderr


def test_unknown_provider_exits_2_listing_valid_ones() -> None:
    result = runner.invoke(app, ["--agent", "coder", "--task", "x", "--provider", "vllm"])
    assert result.exit_code == 2
    assert "valid providers: onnx, anthropic, openai, openrouter, gemini" in result.stderr


def test_use_onnx_garbage_is_a_usage_error() -> None:
    result = runner.invoke(app, ["--agent", "coder", "--task", "x"], env={"USE_ONNX": "perhaps"})
    assert result.exit_code == 2
    assert "USE_ONNX='perhaps' is not a boolean" in result.stderr


def test_anthropic_without_key_suggests_the_local_model() -> None:
    result = runner.invoke(app, ["--agent", "coder", "--task", "x", "--provider", "anthropic"])
    assert result.exit_code == 2
    assert "ANTHROPIC_API_KEY is not set" in result.stderr and "--provider onnx" in result.stderr


def test_bad_priority_lists_the_priorities() -> None:
    result = runner.invoke(app, ["--agent", "coder", "--task", "x", "--priority", "fastest"])
    assert result.exit_code == 2
    assert "quality, balanced, cost, speed, privacy" in result.stderr


def test_missing_task_is_a_usage_error() -> None:
    result = runner.invoke(app, ["--agent", "coder"], input="")
    assert result.exit_code == 2
    assert "--agent and --task are required" in result.stderr


def test_task_dash_with_empty_stdin_is_a_usage_error() -> None:
    result = runner.invoke(app, ["--agent", "coder", "--task", "-"], input="  \n")
    assert result.exit_code == 2
    assert "standard input is empty" in result.stderr


@pytest.mark.parametrize("args", [["--max-tokens", "0"], ["--temperature", "3"], ["--timeout", "0"]])
def test_out_of_range_numbers_are_usage_errors(args: list[str]) -> None:
    assert runner.invoke(app, ["--agent", "coder", "--task", "x", *args]).exit_code == 2


def test_bad_port_variable_is_a_usage_error() -> None:
    result = runner.invoke(app, ["--agent", "coder", "--task", "x"], env={"ONNX_PROXY_PORT": "http"})
    assert result.exit_code == 2
    assert "port 'http' (env ONNX_PROXY_PORT) is not a number" in result.stderr


def test_proxy_start_on_a_public_host_needs_a_key() -> None:
    result = runner.invoke(app, ["proxy", "start", "--host", "0.0.0.0"])
    assert result.exit_code == 2
    assert "without an API key" in result.stderr


@pytest.mark.parametrize("args", [["--max-queue", "-5"], ["--port", "\u0663\u0660\u0660\u0661"], ["--port", "0"]])
def test_proxy_start_refuses_bad_numbers(args: list[str]) -> None:
    result = runner.invoke(app, ["proxy", "start", *args])
    assert result.exit_code == 2, result.output
    assert "Invalid value" in result.stderr


def test_an_ftp_proxy_url_is_a_usage_error() -> None:
    result = runner.invoke(app, ["--agent", "coder", "--task", "x"], env={"ONNX_PROXY_URL": "ftp://127.0.0.1"})
    assert result.exit_code == 2
    assert "is not an http:// or https:// URL" in result.stderr


def test_proxy_status_and_stop_with_nothing_running() -> None:
    status = runner.invoke(app, ["proxy", "status"])
    assert (status.exit_code, status.stderr.strip()) == (1, "no proxy is running")
    stop = runner.invoke(app, ["proxy", "stop"])
    assert (stop.exit_code, stop.stderr.strip()) == (1, "no proxy is running")


def test_claude_code_not_installed_in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no `claude` anywhere
    result = runner.invoke(app, ["claude-code", "-p", "hi"])
    assert result.exit_code == 2
    assert "Claude Code is not installed" in result.stderr and "npm install" in result.stderr


# ---------------------------------------------------------------- pid files


@pytest.fixture()
def decoy() -> Iterator[subprocess.Popen[bytes]]:
    """A live process that is not a proxy, though its command line mentions agentic-flow."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "/tmp/agentic-flow.log"])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def test_stale_pid_files_are_not_trusted(decoy: subprocess.Popen[bytes]) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    for pid, port in ((decoy.pid, 40001), (gone.pid, 40002)):
        records.write(records.ProxyRecord(pid, "127.0.0.1", port, f"http://127.0.0.1:{port}", "m", True))
    result = runner.invoke(app, ["proxy", "stop"])
    assert result.exit_code == 1 and "no proxy is running" in result.stderr
    assert decoy.poll() is None  # `proxy stop` did not kill a stranger that reuses a recorded pid
    assert records.running() == ([], [])  # the stale records were removed

    records.write(records.ProxyRecord(decoy.pid, "127.0.0.1", 40001, "http://127.0.0.1:40001", "m", True))
    status = runner.invoke(app, ["proxy", "status"])
    assert status.exit_code == 1
    assert "removed a stale record" in status.stderr and "no proxy is running" in status.stderr


# ---------------------------------------------------------------- real subprocesses, no model load


def test_console_script_claude_code_without_claude(tmp_path: Path) -> None:
    result = cli("claude-code", "--version", env={"PATH": str(tmp_path)})
    assert result.returncode == 2
    assert "Claude Code is not installed (no `claude` on PATH)" in result.stderr


def test_port_held_by_something_else(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        monkeypatch.setenv("ONNX_PROXY_PORT", str(port))
        result = cli("--agent", "coder", "--task", "hi")
        started = cli("proxy", "start", "--detach")
    assert result.returncode == PortInUse.exit_code == 6
    assert result.stdout == ""
    [line] = error_lines(result.stderr)  # one line, naming the variable that fixes it
    assert f"port {port} is in use" in line and "ONNX_PROXY_PORT" in line
    assert started.returncode == 6
    assert "--port or ONNX_PROXY_PORT" in started.stderr
    assert proxy_processes(port) == []


def test_proxy_that_exits_early_is_reported_with_its_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    port = supervisor.free_port()
    monkeypatch.setenv("ONNX_MODEL_PATH", str(tmp_path))  # an empty folder is no model
    monkeypatch.setenv("ONNX_PROXY_PORT", str(port))
    result = cli("--agent", "coder", "--task", "hi")
    assert result.returncode == ProxyError.exit_code
    assert "the proxy exited with code 3 before it was ready" in result.stderr
    assert "genai_config.json is missing" in result.stderr  # the child's last stderr lines
    assert proxy_processes(port) == []


# ---------------------------------------------------------------- real subprocesses, own proxy


def test_main_job_end_to_end_on_the_local_model(local_model: int) -> None:
    result = cli("--agent", "coder", "--task", FRANCE, "--max-tokens", "12", "--temperature", "0")
    assert result.returncode == 0, result.stderr
    assert "Paris" in result.stdout
    assert "no ANTHROPIC_API_KEY: running on the local model" in result.stderr
    assert "using the proxy already running" not in result.stderr  # it started its own
    assert proxy_processes(local_model) == []


def test_no_proxy_left_after_the_agent_call_fails(local_model: int) -> None:
    # A prompt longer than the model's 8192-token context: the proxy rejects the request with 400.
    result = cli("--agent", "coder", "--task", "-", "--max-tokens", "8", stdin="apple " * 9000)
    assert result.returncode == 1
    [line] = error_lines(result.stderr)
    assert "400 invalid_request_error: prompt is too long" in line and "8192" in line
    assert proxy_processes(local_model) == []


def test_sigint_mid_stream_exits_130_and_stops_the_proxy(local_model: int) -> None:
    task = "Write a very long essay about the history of computing, with many details."
    proc = subprocess.Popen([AGENTIC_FLOW, "--agent", "coder", "--task", task, "--max-tokens", "2000",
                             "--temperature", "0"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + RUN_TIMEOUT
        ready: list[Any] = []
        while not ready and proc.poll() is None and time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], 0.2)  # wait for streamed text
        first = os.read(proc.stdout.fileno(), 64) if ready else b""
        assert first, "no text was streamed before the CLI exited or the deadline"
        assert proxy_processes(local_model), "the CLI should be running its own proxy now"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert b"interrupted" in err
    assert proxy_processes(local_model) == []


def test_proxy_start_detach_status_stop(real_model_dir: Path) -> None:
    port = supervisor.free_port()
    started = cli("proxy", "start", "--detach", "--port", str(port), "--model", str(real_model_dir))
    record_path = state_dir() / "proxies" / f"{port}.json"
    try:
        assert started.returncode == 0, started.stderr
        assert started.stdout.strip() == f"http://127.0.0.1:{port}"
        record = json.loads(record_path.read_text())
        assert record["port"] == port and record["detached"] is True
        assert [p.pid for p in proxy_processes(port)] == [record["pid"]]

        again = cli("proxy", "start", "--detach", "--port", str(port), "--model", str(real_model_dir))
        assert again.returncode == ProxyError.exit_code and "already running" in again.stderr

        status = cli("proxy", "status")
        assert status.returncode == 0
        assert f"http://127.0.0.1:{port}" in status.stdout and " ok " in status.stdout

        stopped = cli("proxy", "stop", "--port", str(port))
        assert stopped.returncode == 0
        assert f"stopped the proxy on port {port} (pid {record['pid']})" in stopped.stdout
        assert proxy_processes(port) == []
        assert not record_path.exists()
        assert cli("proxy", "status").returncode == 1
    finally:
        for proc in proxy_processes(port):  # only if an assertion failed above
            supervisor.terminate_tree(proc.pid)


# ---------------------------------------------------------------- real subprocesses, a running proxy


def test_reuses_a_running_proxy_and_leaves_it_running(keyed_proxy: supervisor.ProxyProcess) -> None:
    port = port_of(keyed_proxy)
    result = cli("--agent", "coder", "--task", FRANCE, "--max-tokens", "8", "--verbose",
                 env={"ONNX_PROXY_PORT": str(port), "AGENTIC_FLOW_API_KEY": KEY})
    assert result.returncode == 0, result.stderr
    assert f"using the proxy already running at {keyed_proxy.url}" in result.stderr
    assert "resolved settings" in result.stderr and "env ONNX_PROXY_PORT" in result.stderr
    assert "output tokens" in result.stderr  # --verbose timings
    assert KEY not in result.stderr + result.stdout
    assert result.stdout.strip()
    health = supervisor.probe(keyed_proxy.url)
    assert health is not None and health.status is HealthStatus.OK and health.pid == keyed_proxy.pid
    assert keyed_proxy.process is not None and keyed_proxy.process.poll() is None


def test_json_output_with_piped_task(keyed_proxy: supervisor.ProxyProcess) -> None:
    env = {"ONNX_PROXY_PORT": str(port_of(keyed_proxy)), "AGENTIC_FLOW_API_KEY": KEY}
    result = cli("--agent", "coder", "--max-tokens", "12", "--temperature", "0", "--json",
                 stdin=FRANCE + "\n", env=env)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)  # stdout is exactly one JSON document
    assert "Paris" in data["text"]
    assert data["agent"] == "coder" and data["provider"] == "onnx"
    assert data["stop_reason"] in ("end_turn", "max_tokens")
    assert data["usage"]["input_tokens"] > 10 and 0 < data["usage"]["output_tokens"] <= 12
    assert data["model"]
    assert 0 < data["timings"]["first_token_s"] <= data["timings"]["total_s"]
    assert data["request_id"].startswith("req_")


def test_optimize_privacy_runs_locally_despite_an_api_key(keyed_proxy: supervisor.ProxyProcess) -> None:
    env = {"ONNX_PROXY_PORT": str(port_of(keyed_proxy)), "AGENTIC_FLOW_API_KEY": KEY,
           "ANTHROPIC_API_KEY": "unused", "ANTHROPIC_BASE_URL": "http://127.0.0.1:1"}
    result = cli("--agent", "coder", "--task", FRANCE, "--max-tokens", "8", "--optimize",
                 "--optimize-priority", "privacy", "--verbose", "--json", env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["provider"] == "onnx"
    assert "priority privacy" in result.stderr and "<- chosen" in result.stderr


def test_task_dash_reads_stdin(keyed_proxy: supervisor.ProxyProcess) -> None:
    env = {"ONNX_PROXY_PORT": str(port_of(keyed_proxy)), "AGENTIC_FLOW_API_KEY": KEY}
    result = cli("--agent", "coder", "--task", "-", "--max-tokens", "12", "--temperature", "0",
                 "--no-stream", stdin=FRANCE, env=env)
    assert result.returncode == 0, result.stderr
    assert "Paris" in result.stdout


def test_onnx_proxy_url_is_used_without_starting_anything(keyed_proxy: supervisor.ProxyProcess) -> None:
    unused_port = supervisor.free_port()
    env = {"ONNX_PROXY_URL": keyed_proxy.url + "/", "ONNX_PROXY_PORT": str(unused_port),
           "AGENTIC_FLOW_API_KEY": KEY}
    result = cli("--agent", "coder", "--task", FRANCE, "--max-tokens", "12", "--temperature", "0",
                 "--json", env=env)
    assert result.returncode == 0, result.stderr
    assert "Paris" in json.loads(result.stdout)["text"]
    assert proxy_processes(unused_port) == []
    assert not supervisor.port_in_use(ProxySettings(port=unused_port))


def test_anthropic_provider_against_a_proxy_with_a_required_key(keyed_proxy: supervisor.ProxyProcess) -> None:
    env = {"ANTHROPIC_BASE_URL": keyed_proxy.url, "ANTHROPIC_API_KEY": KEY}
    result = cli("--agent", "coder", "--task", FRANCE, "--max-tokens", "12", "--temperature", "0",
                 "--provider", "anthropic", "--json", env=env)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["provider"] == "anthropic" and data["model"] == "claude-sonnet-4-5"  # the name is echoed
    assert "Paris" in data["text"]

    wrong = cli("--agent", "coder", "--task", FRANCE, "--max-tokens", "4",
                env={**env, "ANTHROPIC_API_KEY": "wrong"})
    assert wrong.returncode == 1
    [line] = error_lines(wrong.stderr)
    assert "401 authentication_error" in line and "check the API key (ANTHROPIC_API_KEY)" in line
    assert "wrong" not in line  # the key itself is never printed


STAND_IN_CLAUDE = '''#!{python}
"""A stand-in for Claude Code: an Anthropic client that reads the same variables Claude Code reads."""
import json, os, sys
import anthropic
client = anthropic.Anthropic(base_url=os.environ["ANTHROPIC_BASE_URL"], api_key=os.environ["ANTHROPIC_API_KEY"],
                             max_retries=0)
with client.messages.stream(model="claude-sonnet-4-6", max_tokens=32000, extra_query={{"beta": "true"}},
                            system=[{{"type": "text", "text": "You are Claude Code.",
                                      "cache_control": {{"type": "ephemeral"}}}}],
                            tools=[{{"name": "Read", "description": "Read a file",
                                     "input_schema": {{"type": "object"}}}}],
                            messages=[{{"role": "user", "content": "What is the capital of France?"}}],
                            extra_body={{"temperature": 0}}) as stream:
    stream.until_done()
    text = stream.get_final_message().content[0].text
print("ARGS", " ".join(sys.argv[1:]))
PREFIXES = ("ANTHROPIC_", "CLAUDE_CODE_", "DISABLE_")
print("ENV", json.dumps({{k: v for k, v in os.environ.items() if k.startswith(PREFIXES)}}))
print("TEXT", text[:40].replace("\\n", " "))
sys.exit(7)
'''


def test_claude_code_runs_against_the_local_proxy(local_model: int, tmp_path: Path) -> None:
    claude = tmp_path / "claude"
    claude.write_text(STAND_IN_CLAUDE.format(python=sys.executable))
    claude.chmod(0o755)
    result = cli("claude-code", "-p", "explain this repo", "--verbose",
                 env={"PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}"})
    assert result.returncode == 7, result.stderr  # claude's own exit code comes back
    # the user's arguments pass through untouched, after the deny list for the sub-agent tool
    assert "ARGS --disallowedTools Agent -p explain this repo --verbose" in result.stdout
    assert "TEXT " in result.stdout and "Paris" in result.stdout
    [env_line] = [line for line in result.stdout.splitlines() if line.startswith("ENV ")]
    env = json.loads(env_line[4:])
    name = Path(os.environ["ONNX_MODEL_PATH"]).name  # ONNX_MODEL_PATH wins over the catalog rank
    assert env == {
        "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{local_model}", "ANTHROPIC_API_KEY": "agentic-flow-local",
        "ANTHROPIC_MODEL": name, "ANTHROPIC_DEFAULT_OPUS_MODEL": name, "ANTHROPIC_DEFAULT_SONNET_MODEL": name,
        "ANTHROPIC_DEFAULT_HAIKU_MODEL": name,
        "CLAUDE_CODE_MAX_CONTEXT_TOKENS": "8192", "CLAUDE_CODE_MAX_OUTPUT_TOKENS": "2048",  # the 135M's 8k
        "CLAUDE_CODE_ATTRIBUTION_HEADER": "0", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_TELEMETRY": "1",
    }
    assert f"Claude Code on {os.environ['ONNX_MODEL_PATH']} (env ONNX_MODEL_PATH)" in result.stderr
    assert proxy_processes(local_model) == []
