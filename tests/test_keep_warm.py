"""A proxy kept warm for the next run: `--keep-warm DURATION` on the main command, `--idle-exit` on
the proxy.  Every test here runs real processes: the console script, `python -m agentic_flow.proxy`
and its inference process, found and checked with psutil."""

from __future__ import annotations

import json
import time

import anthropic
import psutil
import pytest

from agentic_flow.errors import ConfigError, ProxyError
from agentic_flow.launcher import supervisor
from agentic_flow.settings import ProxySettings, parse_duration, run_settings, show_duration, state_dir
from tests.conftest import ProxyFactory
from tests.test_cli import FRANCE, cli, error_lines, proxy_processes

# ---------------------------------------------------------------- values


@pytest.mark.parametrize(("raw", "seconds"), [("300", 300.0), ("90s", 90.0), ("5m", 300.0), ("1.5h", 5400.0),
                                              (" 2M ", 120.0), ("0.5", 0.5)])
def test_durations(raw: str, seconds: float) -> None:
    assert parse_duration(raw, "--keep-warm") == seconds


@pytest.mark.parametrize("raw", ["0", "off", "OFF", "no", "false"])
def test_zero_or_off_is_no_keep_warm(raw: str) -> None:
    assert parse_duration(raw, "--keep-warm") is None


@pytest.mark.parametrize("raw", ["-1", "abc", "", "5 minutes", "1e400", "inf", "nan", "5d", "٣٠٠", "0.0s"])
def test_bad_durations_name_the_setting(raw: str) -> None:
    with pytest.raises(ConfigError, match=r"^--keep-warm .*give a duration such as 300, 90s, 5m or 1h"):
        parse_duration(raw, "--keep-warm")


def test_durations_are_shown_as_written() -> None:
    assert [show_duration(s) for s in (300.0, 90.0, 3600.0, 5400.0, 0.5)] == ["5m", "90s", "1h", "90m", "0.5s"]


def test_the_variable_and_the_flag() -> None:
    assert run_settings(env={}).keep_warm.value is None
    from_env = run_settings(env={"AGENTIC_FLOW_KEEP_WARM": "2m"}).keep_warm
    assert (from_env.value, from_env.source) == (120.0, "env AGENTIC_FLOW_KEEP_WARM")
    # The flag wins, and 0 turns a variable's keep-warm off for one run.
    assert run_settings(keep_warm="0", env={"AGENTIC_FLOW_KEEP_WARM": "2m"}).keep_warm.value is None


@pytest.mark.parametrize(("args", "env"), [
    (["--keep-warm", "-1"], {}),
    (["--keep-warm", "abc"], {}),
    (["--keep-warm=-5m"], {}),
    ([], {"AGENTIC_FLOW_KEEP_WARM": "abc"}),
])
def test_bad_keep_warm_is_a_one_line_usage_error(args: list[str], env: dict[str, str]) -> None:
    result = cli("--agent", "coder", "--task", FRANCE, "--provider", "onnx", *args, env=env)
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    [line] = error_lines(result.stderr)
    assert "give a duration such as 300, 90s, 5m or 1h" in line


def test_proxy_start_refuses_a_bad_idle_exit() -> None:
    result = cli("proxy", "start", "--idle-exit", "-3")
    assert result.returncode == 2
    [line] = error_lines(result.stderr)
    assert "--idle-exit '-3'" in line


# ---------------------------------------------------------------- a real proxy, no model


def test_idle_exit_of_a_real_proxy_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Upstream mode (nothing to load) with a 1.5 s idle exit: requests hold it up, /health included, and
    so does `supervisor.held` (what a CLI run does while it uses the proxy); without them it exits by
    itself, code 0, and removes its record."""
    monkeypatch.setenv("OPENAI_API_KEY", "unused")
    settings = ProxySettings(port=supervisor.free_port(), provider="openai", upstream="http://127.0.0.1:9",
                             idle_exit=1.5)
    proxy = supervisor.start_detached(settings, deadline_s=60)
    record = state_dir() / "proxies" / f"{settings.port}.json"
    try:
        assert json.loads(record.read_text())["idle_exit"] == 1.5
        until = time.monotonic() + 3.5  # well past the idle time, with a request every 0.3 s
        while time.monotonic() < until:
            health = supervisor.probe(proxy.url)
            assert health is not None and health.idle_exit_s == 1.5
            time.sleep(0.3)
        # A run that uses the proxy holds it between its own requests (a long tool call, say).
        with supervisor.held(proxy):
            time.sleep(4.0)
            assert proxy.process is not None and proxy.process.poll() is None
        last = time.monotonic()
        assert proxy.process is not None
        assert proxy.process.wait(timeout=15) == 0
        waited = time.monotonic() - last
        assert 1.0 < waited < 6.0, waited  # 1.5 s after the last request (the clock looks every second)
        assert not record.exists()
        assert proxy_processes(settings.port) == []
    finally:
        supervisor.stop(proxy)


# ---------------------------------------------------------------- the real model


def test_idle_exit_never_cuts_a_request_in_flight(proxy_factory: ProxyFactory) -> None:
    """A first request whose prefill alone outlasts the idle time: the stream ends with message_stop,
    and only then does the idle time run out.  The factory checks that no process is left."""
    with proxy_factory(idle_exit=1.0) as proxy, \
            anthropic.Anthropic(base_url=proxy.url, api_key="local", max_retries=0, timeout=300) as sdk:
        started = time.monotonic()
        with sdk.messages.stream(model="smollm2-135m", max_tokens=4,
                                 messages=[{"role": "user", "content": "apple " * 3000 + "\nHow many apples?"}]
                                 ) as stream:
            events = [event.type for event in stream]
        took = time.monotonic() - started
        assert events[-1] == "message_stop"
        assert took > 1.5, f"the request took {took:.1f} s: too short to show anything about a 1 s idle exit"
        assert proxy.process is not None
        assert proxy.process.wait(timeout=30) == 0


def test_keep_warm_leaves_one_proxy_that_the_next_run_reuses(local_model: int) -> None:
    port = local_model
    record_path = state_dir() / "proxies" / f"{port}.json"
    idle = 10
    try:
        first = cli("--agent", "coder", "--task", FRANCE, "--max-tokens", "4", "--temperature", "0",
                    "--keep-warm", str(idle), "--json")
        assert first.returncode == 0, first.stderr
        assert (f"the proxy stays warm at http://127.0.0.1:{port}" in first.stderr
                and f"exits after {idle}s without a request" in first.stderr
                and f"`agentic-flow proxy stop --port {port}`" in first.stderr), first.stderr
        [proxy] = proxy_processes(port)
        tree = [proxy, *proxy.children(recursive=True)]
        assert len(tree) >= 2, "the inference process should run under the proxy"
        record = json.loads(record_path.read_text())
        assert (record["pid"], record["idle_exit"], record["detached"]) == (proxy.pid, idle, True)

        second = cli("--agent", "coder", "--task", FRANCE, "--max-tokens", "4", "--temperature", "0", "--json")
        assert second.returncode == 0, second.stderr
        assert f"using the proxy already running at http://127.0.0.1:{port}" in second.stderr
        assert "stays warm" not in second.stderr  # this run started nothing
        usage = json.loads(second.stdout)["usage"]
        # The agent's system prompt and tools came from the prefix cache the first run left.
        assert usage["cache_read_input_tokens"] > 500 and usage["input_tokens"] < 50, usage
        assert [p.pid for p in proxy_processes(port)] == [proxy.pid]

        status = cli("proxy", "status")
        assert status.returncode == 0 and f"{idle}s" in status.stdout, status.stdout

        # Another model: a clear error, before anything runs; the warm proxy is left as it was.
        other = cli("--agent", "coder", "--task", FRANCE, "--model", "qwen2.5-coder-1.5b", "--max-tokens", "1")
        assert other.returncode == ProxyError.exit_code
        [line] = error_lines(other.stderr)
        assert "serves smollm2-135m, not qwen2.5-coder-1.5b" in line and "--model smollm2-135m" in line

        # Then, with no request for `idle` seconds, it exits by itself: the whole tree, and its record.
        _, alive = psutil.wait_procs(tree, timeout=idle + 20)
        assert [p for p in alive if p.status() != psutil.STATUS_ZOMBIE] == []
        assert proxy_processes(port) == []
        assert not record_path.exists()
    finally:
        for proc in proxy_processes(port):  # only if an assertion failed above
            supervisor.terminate_tree(proc.pid)


def test_keep_warm_zero_leaves_nothing(local_model: int) -> None:
    result = cli("--agent", "coder", "--task", FRANCE, "--max-tokens", "2", "--keep-warm", "0")
    assert result.returncode == 0, result.stderr
    assert "stays warm" not in result.stderr
    assert proxy_processes(local_model) == []
