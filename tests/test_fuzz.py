"""Property-based fuzzing of the real proxy process with the real default model (issue 8).

Every generated body (tests/fuzz_bodies.py) goes to both /v1/messages and /v1/messages/count_tokens.
Whatever it is, the answer is never a 5xx; an error is Anthropic's envelope with a request id (the
`request-id` header, and the same id in the body); a 200 stream carries no `error` event; and at the
end the proxy process is alive and /health says 200.

FUZZ_EXAMPLES sets the number of bodies (2,000 by default; `make fuzz` runs 20,000).
"""

from __future__ import annotations

import http.client
import json
import os
import time
from collections.abc import Iterator
from typing import Any

import psutil
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentic_flow.anthropic.errors import error_type_for
from agentic_flow.launcher import supervisor
from tests.conftest import ProxyFactory
from tests.fuzz_bodies import HOSTILE_SCHEMAS, bodies, chat_bodies

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "2000"))
KEY = "fuzz-key"
MAX_BODY = 2 * 1024 * 1024  # small, so that oversized bodies are cheap to send
STREAM_EVENTS = 12  # a stream is read this far, then dropped: huge max_tokens must not run for minutes

pytestmark = pytest.mark.model


class Client:
    """One keep-alive connection, opened again whenever the server closed it."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.host, self.port = host, int(port)
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)

    def post(self, path: str, body: bytes, headers: dict[str, Any]) -> tuple[int, http.client.HTTPMessage, bytes]:
        self.conn.request("POST", path, body=body, headers={"content-type": "application/json", **headers})
        response = self.conn.getresponse()
        if response.headers.get_content_type() == "text/event-stream":
            data = _read_some_events(response)
            self.reconnect()  # the rest of the stream is not wanted: dropping it cancels the generation
        else:
            data = response.read()
            if response.will_close:
                self.reconnect()
        return response.status, response.headers, data

    def reconnect(self) -> None:
        self.conn.close()
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)


def _read_some_events(response: http.client.HTTPResponse) -> bytes:
    data = b""
    while data.count(b"\n\n") < STREAM_EVENTS and b"event: message_stop" not in data:
        chunk = response.read1(65536)
        if not chunk:
            break
        data += chunk
    return data


def auth_headers(choice: int) -> dict[str, Any]:
    """Mostly the right key; sometimes none, a wrong one, one that is not UTF-8, or the Bearer form."""
    forms: list[dict[str, Any]] = [{"x-api-key": KEY}] * 10 + [
        {"authorization": f"Bearer {KEY}"}, {}, {"x-api-key": b"\xff\xfe\x80"}, {"x-api-key": " "},
        {"authorization": "Basic Zm9v"}, {"x-api-key": "wrong"},
    ]
    return forms[choice]


def check_answer(path: str, status: int, headers: http.client.HTTPMessage, data: bytes) -> None:
    assert status < 500, (path, status, data[:500])
    request_id = headers.get("request-id", "")
    assert request_id.startswith("req_"), (path, status, dict(headers))
    if status >= 400:
        envelope = json.loads(data)
        assert envelope["type"] == "error" and envelope["request_id"] == request_id, envelope
        assert envelope["error"]["type"] == error_type_for(status), envelope
        assert isinstance(envelope["error"]["message"], str) and envelope["error"]["message"], envelope
    elif headers.get_content_type() == "text/event-stream":
        assert data.startswith(b"event: message_start\n"), data[:300]
        assert b"event: error" not in data, data[-500:]
    elif path.endswith("count_tokens"):
        assert json.loads(data)["input_tokens"] > 0
    else:
        assert json.loads(data)["type"] == "message"


def _issue_bodies() -> dict[str, bytes]:
    """The bodies issue 8 found taking the proxy down or answering 500, exactly as reported."""
    msg = '{"role":"user","content":%s}'
    return {
        "count_lone_surrogate": b'{"model":"x","messages":[{"role":"user","content":"\\ud800"}]}',
        "system_surrogate": b'{"model":"m","max_tokens":2,"system":"\\udfff","messages":[%s]}'
        % (msg % '"hi"').encode(),
        "model_surrogate": b'{"model":"\\ud800","max_tokens":2,"messages":[%s]}' % (msg % '"hi"').encode(),
        "model_surrogate_stream": b'{"model":"\\ud800","max_tokens":2,"stream":true,"messages":[%s]}'
        % (msg % '"hi"').encode(),
        "tool_input_surrogate": (
            b'{"model":"m","max_tokens":2,"stream":true,"messages":[{"role":"assistant","content":'
            b'[{"type":"tool_use","id":"t","name":"n","input":{"a":"\\ud800"}}]},'
            b'{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":"ok"}]}]}'
        ),
        "top_k_vocabulary": b'{"model":"m","max_tokens":2,"top_k":49153,"messages":[%s]}' % (msg % '"hi"').encode(),
        "top_k_int32": b'{"model":"m","max_tokens":2,"top_k":2147483648,"messages":[%s]}' % (msg % '"hi"').encode(),
        "integer_4301_digits": b'{"model":"m","max_tokens":'
        + b"1" * 4301
        + b',"messages":[%s]}' % (msg % '"hi"').encode(),
        "nested_1000": b'{"model":"m","max_tokens":2,"metadata":' + b"[" * 1000 + b"]" * 1000 + b',"messages":[]}',
    }


ISSUE_BODIES = _issue_bodies()


@pytest.mark.parametrize("body", ISSUE_BODIES.values(), ids=ISSUE_BODIES.keys())
def test_the_bodies_of_issue_8_get_no_5xx_and_inference_stays_up(fuzzed_proxy: supervisor.ProxyProcess,
                                                                 body: bytes) -> None:
    client = Client(fuzzed_proxy.url)
    try:
        for path in ("/v1/messages", "/v1/messages/count_tokens"):
            check_answer(path, *client.post(path, body, {"x-api-key": KEY}))
        # The inference process still answers: a count goes through it.
        ok = b'{"model":"m","messages":[{"role":"user","content":"hi"}]}'
        status, _, data = client.post("/v1/messages/count_tokens", ok, {"x-api-key": KEY})
        assert status == 200 and json.loads(data)["input_tokens"] > 0
    finally:
        client.conn.close()
    health = supervisor.probe(fuzzed_proxy.url)
    assert health is not None and health.status.http_status == 200, health


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("schema", HOSTILE_SCHEMAS.values(), ids=HOSTILE_SCHEMAS.keys())
def test_hostile_output_schemas_get_no_5xx(fuzzed_proxy: supervisor.ProxyProcess, schema: Any, stream: bool) -> None:
    """Structured output on both APIs: a 400 naming the field, or a reply; never a 5xx, and no stream
    that fails after its start (a refused grammar is a 400 before it)."""
    client = Client(fuzzed_proxy.url)
    ask = [{"role": "user", "content": "hi"}]
    anthropic_body = {"model": "m", "max_tokens": 2, "stream": stream, "messages": ask,
                      "output_config": {"format": {"type": "json_schema", "schema": schema}}}
    openai_body = {"model": "m", "max_tokens": 2, "stream": stream, "messages": ask, "response_format": {
        "type": "json_schema", "json_schema": {"name": "x", "schema": schema, "strict": True}}}
    try:
        check_answer("/v1/messages", *client.post("/v1/messages", json.dumps(anthropic_body).encode(),
                                                  {"x-api-key": KEY}))
        status, _, data = client.post("/v1/chat/completions", json.dumps(openai_body).encode(),
                                      {"authorization": f"Bearer {KEY}"})
        assert status < 500, (status, data[:500])
        if status >= 400:
            assert "response_format" in json.loads(data)["error"]["message"], data[:500]
        elif stream:
            assert b'"error"' not in data, data[-500:]
    finally:
        client.conn.close()


@pytest.fixture(scope="module")
def fuzzed_proxy(proxy_factory: ProxyFactory) -> Iterator[supervisor.ProxyProcess]:
    with proxy_factory(api_key=KEY, max_body=MAX_BODY) as proxy:
        yield proxy


def test_fuzzed_bodies_never_get_a_5xx_and_the_proxy_survives(fuzzed_proxy: supervisor.ProxyProcess) -> None:
    client = Client(fuzzed_proxy.url)
    sent: list[int] = []

    # database=None: nothing is written to the working tree; a failure prints its example and seed.
    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(body=bodies(), auth=st.integers(0, 15))
    def one(body: bytes, auth: int) -> None:
        headers = {"anthropic-version": "2023-06-01", **auth_headers(auth)}
        for path in ("/v1/messages", "/v1/messages/count_tokens"):
            check_answer(path, *client.post(path, body, headers))
        sent.append(1)

    started = time.monotonic()
    try:
        one()
    finally:
        client.conn.close()
    elapsed = time.monotonic() - started
    print(f"\nfuzz: {len(sent)} bodies to 2 endpoints in {elapsed:.1f} s")
    assert len(sent) >= EXAMPLES
    assert psutil.Process(fuzzed_proxy.pid).is_running()
    health = supervisor.probe(fuzzed_proxy.url)
    assert health is not None and health.status.http_status == 200, health


def check_chat_answer(status: int, headers: http.client.HTTPMessage, data: bytes, body: bytes) -> None:
    assert status < 500, (status, body[:500], data[:500])
    if status >= 400:
        error = json.loads(data)["error"]
        assert isinstance(error["message"], str) and error["message"] and "param" in error, error
    elif headers.get_content_type() == "text/event-stream":
        assert data.startswith(b"data: {"), data[:300]
        assert b'"error"' not in data, (body[:500], data[-500:])
    else:
        answer = json.loads(data)
        asked = json.loads(body).get("n") or 1
        assert answer["object"] == "chat.completion" and len(answer["choices"]) == asked, answer


def test_fuzzed_chat_completions_with_n_and_logprobs_never_get_a_5xx(fuzzed_proxy: supervisor.ProxyProcess) -> None:
    client = Client(fuzzed_proxy.url)
    sent: list[int] = []

    @settings(max_examples=max(EXAMPLES // 10, 50), deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(body=chat_bodies())
    def one(body: bytes) -> None:
        check_chat_answer(*client.post("/v1/chat/completions", body, {"authorization": f"Bearer {KEY}"}), body)
        sent.append(1)

    try:
        one()
    finally:
        client.conn.close()
    assert len(sent) >= max(EXAMPLES // 10, 50)
    health = supervisor.probe(fuzzed_proxy.url)
    assert health is not None and health.status.http_status == 200, health
