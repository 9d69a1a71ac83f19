"""Faults of the inference process seen from outside: the real proxy process, the real model, SIGKILL
of the inference process (found as a child of the proxy with psutil)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import anthropic
import psutil

from agentic_flow.launcher import supervisor
from tests.conftest import ProxyFactory
from tests.raw_http import read_to_end, start_stream

FRANCE = [{"role": "user", "content": "What is the capital of France?"}]


def inference_process(handle: supervisor.ProxyProcess) -> psutil.Process:
    children = [c for c in psutil.Process(handle.pid).children() if "resource_tracker" not in " ".join(c.cmdline())]
    assert len(children) == 1, children
    return children[0]


def health(url: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(url + "/health", timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def wait_in_flight(url: str, deadline_s: float = 30) -> None:
    """Until the proxy has a request running: it has then been handed to the inference process (the
    admission slot and the send to the process happen in one step of the event loop)."""
    deadline = time.monotonic() + deadline_s
    while health(url)[1]["requests_in_flight"] == 0:
        assert time.monotonic() < deadline, "the request never started"
        time.sleep(0.01)


def post_in_thread(url: str, body: dict[str, Any]) -> tuple[threading.Thread, dict[str, Any]]:
    """POST /v1/messages (non-streaming) from a thread; the dict gets `status` and `body` when it ends."""
    out: dict[str, Any] = {}

    def post() -> None:
        request = urllib.request.Request(url + "/v1/messages", json.dumps(body).encode(),
                                         {"content-type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                out.update(status=response.status, body=json.loads(response.read()))
        except urllib.error.HTTPError as exc:
            out.update(status=exc.code, body=json.loads(exc.read()))

    thread = threading.Thread(target=post, daemon=True)
    thread.start()
    return thread, out


STORY = {"model": "m", "max_tokens": 300, "temperature": 0,
         "messages": [{"role": "user", "content": "Write a very long story about a dragon."}]}


def wait_for_status(url: str, wanted: str, deadline_s: float) -> list[str]:
    """Poll /health until it says `wanted`; return every status seen on the way."""
    seen: list[str] = []
    deadline = time.monotonic() + deadline_s
    while True:
        code, body = health(url)
        status = str(body["status"])
        if not seen or seen[-1] != status:
            seen.append(status)
        if status == wanted:
            assert code == (200 if wanted == "ok" else 503), (code, body)
            return seen
        assert time.monotonic() < deadline, f"/health went {seen}, never {wanted}"
        time.sleep(0.02)


# Measured on the 2-core CI-like machine: 1.3-2.5 s from the kill to /health ok (the model reload);
# docs/architecture.md states the bound this test holds.
RECOVERY_BOUND_S = 20


def test_sigkill_mid_stream_gives_an_error_event_then_the_proxy_serves_again(proxy_factory: ProxyFactory) -> None:
    with proxy_factory() as handle:
        victim = inference_process(handle)
        with start_stream(handle.url, 4000) as sock:
            killed = time.monotonic()
            victim.kill()
            rest = read_to_end(sock)
        assert b"event: error" in rest and b'"type":"api_error"' in rest, rest[-400:]
        assert b"message_stop" not in rest  # the client sees a failure, not a short answer
        seen = wait_for_status(handle.url, "ok", RECOVERY_BOUND_S)
        recovery = time.monotonic() - killed
        assert seen[0] == "restarting", seen
        print(f"recovered {recovery:.2f} s after SIGKILL; /health went {seen}")
        assert inference_process(handle).pid != victim.pid
        with anthropic.Anthropic(base_url=handle.url, api_key="x", max_retries=0) as client:
            reply = client.messages.create(model="m", max_tokens=20, messages=FRANCE,  # type: ignore[arg-type]
                                           extra_body={"temperature": 0})
        assert "Paris" in reply.content[0].text  # type: ignore[union-attr]


def test_a_request_while_restarting_is_refused_as_overloaded(proxy_factory: ProxyFactory) -> None:
    with proxy_factory() as handle:
        inference_process(handle).kill()
        wait_for_status(handle.url, "restarting", 10)
        with anthropic.Anthropic(base_url=handle.url, api_key="x", max_retries=0) as client:
            try:
                client.messages.create(model="m", max_tokens=5, messages=FRANCE)  # type: ignore[arg-type]
            except anthropic.APIStatusError as exc:
                assert exc.status_code == 529 and "restarting" in str(exc)
            # (a reload faster than this request is not an error: then it was served)
        wait_for_status(handle.url, "ok", RECOVERY_BOUND_S)


def test_an_inference_process_that_keeps_dying_stops_the_proxy_non_zero(proxy_factory: ProxyFactory) -> None:
    with proxy_factory() as handle:
        assert handle.process is not None
        for _ in range(4):
            inference_process(handle).kill()
            wait_for_status(handle.url, "restarting", 10)
            wait_for_status(handle.url, "ok", RECOVERY_BOUND_S)
        inference_process(handle).kill()  # the fifth death within a minute
        assert handle.process.wait(timeout=30) == 4  # EngineError's exit code
        log = handle.log_path.read_text() if handle.log_path else ""
        assert "error: the inference process died (exit code -9); 5 failures within 60 s" in log, log[-2000:]


def test_sigkill_during_a_non_streaming_request_is_re_run_and_it_succeeds(proxy_factory: ProxyFactory) -> None:
    with proxy_factory() as handle:
        thread, out = post_in_thread(handle.url, STORY)
        wait_in_flight(handle.url)
        inference_process(handle).kill()
        thread.join(timeout=120)
        assert not thread.is_alive()
        assert out["status"] == 200, out
        assert out["body"]["stop_reason"] == "max_tokens" and out["body"]["usage"]["output_tokens"] == 300
        log = handle.log_path.read_text() if handle.log_path else ""
        assert "re-running a request" in log, log[-2000:]


def test_three_deaths_in_a_row_fail_the_request_cleanly(proxy_factory: ProxyFactory) -> None:
    with proxy_factory() as handle:
        thread, out = post_in_thread(handle.url, {**STORY, "max_tokens": 4000})
        wait_in_flight(handle.url)
        for _ in range(3):  # the first death re-runs the request, the second fails it, the third finds none
            inference_process(handle).kill()
            wait_for_status(handle.url, "restarting", 10)
            wait_for_status(handle.url, "ok", RECOVERY_BOUND_S)
        thread.join(timeout=30)
        assert not thread.is_alive(), "the request hangs"
        assert out["status"] == 500, out
        assert out["body"]["type"] == "error" and out["body"]["error"]["type"] == "api_error", out
        assert "died" in out["body"]["error"]["message"]
        assert health(handle.url)[1]["requests_in_flight"] == 0
        with anthropic.Anthropic(base_url=handle.url, api_key="x", max_retries=0) as client:
            reply = client.messages.create(model="m", max_tokens=20, messages=FRANCE,  # type: ignore[arg-type]
                                           extra_body={"temperature": 0})
        assert "Paris" in reply.content[0].text  # type: ignore[union-attr]


AGENTIC_FLOW = str(Path(sys.executable).parent / "agentic-flow")


def test_an_agent_run_survives_a_sigkill_of_the_inference_process(proxy_factory: ProxyFactory) -> None:
    """The agent's call is not streamed (--no-stream), so the proxy re-runs it whole on the new process
    and the run finishes as if nothing happened.  (A streamed turn that already showed text fails
    with an error event: the agent loop's own retry of a failed turn covers that.)"""
    with proxy_factory() as handle:
        run = subprocess.Popen(
            [AGENTIC_FLOW, "--agent", "coder", "--tools", "", "--no-stream", "--json", "--max-tokens", "200",
             "--temperature", "0", "--task", "Write a Python function that reverses a string."],
            env={**os.environ, "ONNX_PROXY_URL": handle.url}, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        try:
            wait_in_flight(handle.url)
            inference_process(handle).kill()
            out, err = run.communicate(timeout=180)
        finally:
            run.kill()
        assert run.returncode == 0, err[-2000:]
        result = json.loads(out)
        assert "def " in result["text"] and result["turns"] == 1, result
        assert "re-running a request" in (handle.log_path.read_text() if handle.log_path else "")
