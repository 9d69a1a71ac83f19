"""Faults of the inference process seen from outside: the real proxy process, the real model, SIGKILL
of the inference process (found as a child of the proxy with psutil)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

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
