"""The proxy's handlers and middlewares, served by aiohttp's test server with a fake engine that
implements the real interface.  Exact bytes, every error path, auth, loading and overload."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from agentic_flow.anthropic.validation import MAX_DEPTH
from agentic_flow.engine.base import Completion
from agentic_flow.errors import EngineError
from agentic_flow.proxy.admission import Admission
from agentic_flow.proxy.app import create_app
from agentic_flow.proxy.local_backend import LocalBackend
from agentic_flow.proxy.middlewares import API_KEY, auth_middleware, errors_middleware
from agentic_flow.proxy.state import STATE, ProxyState
from agentic_flow.serving.planning import TOP_K_MAX
from tests.fake_engine import FakeEngine

ClientMaker = Callable[..., Awaitable[TestClient[Any, Any]]]
# /v1/models answers in Anthropic's shape to clients that send this header, in OpenAI's otherwise.
ANTHROPIC_VERSION = {"anthropic-version": "2023-06-01"}
BODY = {"model": "claude-haiku-4-5", "max_tokens": 16, "messages": [{"role": "user", "content": "Hi"}]}


def make_state(engine: FakeEngine | None, running: int = 4, waiting: int = 8) -> ProxyState:
    backend = LocalBackend("fake-model", "/models/fake", ("cpu",), other_models=frozenset({"phi-4-mini"}),
                           engine=engine)
    return ProxyState(backend, Admission(running, waiting))


@pytest.fixture()
def app_client(aiohttp_client: ClientMaker) -> Callable[..., Awaitable[TestClient[Any, Any]]]:
    """A test client for the proxy's app over `engine` (a default FakeEngine); `loaded=False` is a
    proxy whose model is still loading."""
    async def start(engine: FakeEngine | None = None, *, loaded: bool = True, api_key: str | None = None,
                    max_body: int = 1 << 20, running: int = 4, waiting: int = 8) -> TestClient[Any, Any]:
        state = make_state((engine or FakeEngine()) if loaded else None, running, waiting)
        return await aiohttp_client(create_app(state, api_key=api_key, max_body=max_body))
    return start


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Yield to the loop until `condition` holds (readiness by probing, never a fixed sleep)."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.002)


async def error_of(resp: Any, status: int, error_type: str) -> str:
    assert resp.status == status
    body = await resp.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == error_type
    assert body["request_id"] == resp.headers["request-id"]
    return str(body["error"]["message"])


async def test_golden_stream_through_the_handler(app_client: Any) -> None:
    client = await app_client(FakeEngine(["Hel", "lo"], Completion("end_turn", None, 2)))
    resp = await client.post("/v1/messages?beta=true", json={**BODY, "stream": True})
    raw = await resp.read()
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "text/event-stream; charset=utf-8"
    assert resp.headers["Cache-Control"] == "no-cache"
    assert resp.headers["request-id"].startswith("req_")
    msg_id = json.loads(raw.split(b"\n")[1][6:])["message"]["id"]
    expected = (
        'event: message_start\ndata: {"type":"message_start","message":{"id":"' + msg_id + '","type":"message",'
        '"role":"assistant","content":[],"model":"claude-haiku-4-5","stop_reason":null,"stop_sequence":null,'
        '"usage":{"input_tokens":4,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}}}\n\n'
        'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\n'  # noqa: E501 (golden bytes: one SSE event a line)
        'event: ping\ndata: {"type":"ping"}\n\n'
        'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hel"}}\n\n'  # noqa: E501 (golden bytes: one SSE event a line)
        'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"lo"}}\n\n'  # noqa: E501 (golden bytes: one SSE event a line)
        'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n'
        'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":2}}\n\n'  # noqa: E501 (golden bytes: one SSE event a line)
        'event: message_stop\ndata: {"type":"message_stop"}\n\n'
    )
    assert raw.decode() == expected


async def test_non_streaming_body(app_client: Any) -> None:
    engine = FakeEngine(["Hel", "lo"], Completion("stop_sequence", "###", 2))
    client = await app_client(engine)
    resp = await client.post("/v1/messages", json={**BODY, "temperature": 0.5, "stop_sequences": ["###"]})
    body = await resp.json()
    assert resp.status == 200 and resp.headers["request-id"].startswith("req_")
    assert body["content"] == [{"type": "text", "text": "Hello"}]
    assert body["model"] == "claude-haiku-4-5"
    assert body["stop_reason"] == "stop_sequence" and body["stop_sequence"] == "###"
    assert body["usage"]["output_tokens"] == 2 and body["usage"]["cache_read_input_tokens"] == 0
    options = engine.requests[0].options
    assert options.temperature == 0.5 and options.stop_sequences == ("###",) and options.max_tokens == 16
    assert engine.generations[0].closed


async def test_count_tokens(app_client: Any) -> None:
    client = await app_client()
    resp = await client.post("/v1/messages/count_tokens", json={"model": "x", "messages": BODY["messages"]})
    assert resp.status == 200 and await resp.json() == {"input_tokens": 4}


async def test_invalid_json_and_fields(app_client: Any) -> None:
    client = await app_client()
    resp = await client.post("/v1/messages", data=b"{oops", headers={"content-type": "application/json"})
    assert "not valid JSON" in await error_of(resp, 400, "invalid_request_error")
    resp = await client.post("/v1/messages", json={**BODY, "messages": [
        {"role": "user", "content": [{"type": "foo"}]}]})
    assert 'messages.0.content.0.type: unknown block type "foo"' in await error_of(resp, 400, "invalid_request_error")
    resp = await client.post("/v1/messages", json={"model": "x", "messages": BODY["messages"]})
    assert "max_tokens" in await error_of(resp, 400, "invalid_request_error")


async def test_unknown_route_and_wrong_method(app_client: Any) -> None:
    client = await app_client()
    assert "/v1/nothing" in await error_of(await client.get("/v1/nothing"), 404, "not_found_error")
    await error_of(await client.get("/v1/messages"), 405, "invalid_request_error")
    await error_of(await client.delete("/health"), 405, "invalid_request_error")


async def test_body_over_the_limit_is_413(app_client: Any) -> None:
    client = await app_client(max_body=1000)
    big = {**BODY, "messages": [{"role": "user", "content": "x" * 5000}]}
    await error_of(await client.post("/v1/messages", json=big), 413, "request_too_large")


async def test_models_list_and_retrieve(app_client: Any) -> None:
    client = await app_client()
    body = await (await client.get("/v1/models", headers=ANTHROPIC_VERSION)).json()
    assert body["data"] == [
        {
            "type": "model",
            "id": "fake-model",
            "display_name": "fake-model (local, onnxruntime-genai)",
            "created_at": "2024-11-01T00:00:00Z",
            "max_input_tokens": 8192,
            "max_tokens": 2048,
        }
    ]
    assert body["has_more"] is False and body["first_id"] == body["last_id"] == "fake-model"
    assert (await (await client.get("/v1/models?after_id=fake-model", headers=ANTHROPIC_VERSION)).json())["data"] == []
    assert (await (await client.get("/v1/models?before_id=fake-model", headers=ANTHROPIC_VERSION)).json())["data"] == []
    await error_of(await client.get("/v1/models?limit=0", headers=ANTHROPIC_VERSION), 400, "invalid_request_error")
    assert (await (await client.get("/v1/models/fake-model", headers=ANTHROPIC_VERSION)).json())["id"] == "fake-model"
    await error_of(await client.get("/v1/models/claude-opus-9", headers=ANTHROPIC_VERSION), 404, "not_found_error")


async def test_another_installed_model_by_name_is_not_found(app_client: Any) -> None:
    client = await app_client()
    resp = await client.post("/v1/messages", json={**BODY, "model": "phi-4-mini"})
    assert "--model phi-4-mini" in await error_of(resp, 404, "not_found_error")


@pytest.mark.parametrize("headers", [{"x-api-key": "k3y"}, {"Authorization": "Bearer k3y"}])
async def test_auth_accepts_both_header_styles(app_client: Any, headers: dict[str, str]) -> None:
    client = await app_client(api_key="k3y")
    resp = await client.post("/v1/messages", json=BODY, headers={**headers, "anthropic-version": "2023-06-01"})
    assert resp.status == 200


async def test_auth_rejects_missing_and_wrong_keys(app_client: Any) -> None:
    client = await app_client(api_key="k3y")
    await error_of(await client.post("/v1/messages", json=BODY), 401, "authentication_error")
    resp = await client.post("/v1/messages", json=BODY, headers={"x-api-key": "nope"})
    await error_of(resp, 401, "authentication_error")
    assert (await client.get("/health")).status == 200  # health stays open for supervisors


async def test_loading_answers_503(app_client: Any) -> None:
    client = await app_client(loaded=False)
    health = await client.get("/health")
    assert health.status == 503 and (await health.json())["status"] == "loading"
    await error_of(await client.post("/v1/messages", json=BODY), 503, "api_error")


async def test_health_fields(app_client: Any) -> None:
    client = await app_client()
    body = await (await client.get("/health")).json()
    for key in ("status", "model", "model_path", "providers", "loaded", "uptime_seconds",
                "requests_in_flight", "requests_waiting", "version"):
        assert key in body
    assert body["status"] == "ok" and body["loaded"] is True


async def test_full_queue_is_529_at_once(app_client: Any) -> None:
    engine = FakeEngine(["a"] * 50, delay=0.02)
    client = await app_client(engine, running=1, waiting=1)
    admission = client.app[STATE].admission  # type: ignore[index]
    first = asyncio.create_task(client.post("/v1/messages", json=BODY))
    await until(lambda: admission.running == 1)
    second = asyncio.create_task(client.post("/v1/messages", json=BODY))  # waits in the queue
    await until(lambda: admission.waiting == 1)
    health = await (await client.get("/health")).json()
    assert health["requests_in_flight"] == 1 and health["requests_waiting"] == 1
    third = await client.post("/v1/messages", json=BODY)
    assert "busy" in await error_of(third, 529, "overloaded_error")
    assert (await first).status == 200 and (await second).status == 200


async def test_engine_failure_mid_stream_is_an_error_event(app_client: Any) -> None:
    client = await app_client(FakeEngine(["partial"], fail=EngineError("the inference process exited")))
    resp = await client.post("/v1/messages", json={**BODY, "stream": True})
    raw = (await resp.read()).decode()
    assert resp.status == 200
    assert "event: content_block_delta" in raw
    assert raw.rstrip().split("\n\n")[-1].startswith("event: error\n")
    assert "message_stop" not in raw


async def test_unexpected_error_is_500_without_a_trace(app_client: Any, caplog: pytest.LogCaptureFixture) -> None:
    client = await app_client(FakeEngine(fail=ZeroDivisionError("secret detail")))
    resp = await client.post("/v1/messages", json=BODY)
    message = await error_of(resp, 500, "api_error")
    assert "secret" not in message and "Traceback" not in message
    assert "ZeroDivisionError" in caplog.text  # the trace goes to the log


async def test_client_gone_mid_stream_closes_the_generation(app_client: Any) -> None:
    engine = FakeEngine(["tok "] * 500, delay=0.01)
    client = await app_client(engine)
    resp = await client.post("/v1/messages", json={**BODY, "stream": True})
    await resp.content.readuntil(b"content_block_delta")
    resp.close()
    await until(lambda: engine.generations[0].closed)


def test_app_has_the_documented_routes() -> None:
    app = create_app(make_state(FakeEngine()), api_key=None, max_body=100)
    routes = {(r.method, r.resource.canonical) for r in app.router.routes()}  # type: ignore[union-attr]
    assert {("POST", "/v1/messages"), ("POST", "/v1/messages/count_tokens"), ("GET", "/v1/models"),
            ("GET", "/v1/models/{model_id}"), ("GET", "/health")} <= routes
    # The idle clock outermost (it sees every request), then errors wrapping auth: 401s are envelopes.
    assert list(app.middlewares)[1:] == [errors_middleware, auth_middleware]
    assert app.middlewares[0].__name__ == "count_requests"
    assert app[STATE].backend.model_entry()["id"] == "fake-model" and app[API_KEY] == ""


# --- bodies and headers that once gave a 500 (issue 8, items 3-6) -----------------------------------

MESSAGES_PATHS = ["/v1/messages", "/v1/messages/count_tokens"]


def raw_json(text: str) -> bytes:
    """A body written by hand: JSON escapes that no encoder of ours would produce."""
    return text.encode()


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


async def post_raw(client: Any, path: str, body: bytes) -> Any:
    return await client.post(path, data=body, headers={"content-type": "application/json"})


async def test_lone_surrogates_anywhere_are_replaced_and_the_stream_completes(app_client: Any) -> None:
    engine = FakeEngine(["ok"])
    client = await app_client(engine)
    body = raw_json(
        r'{"model":"claude\ud800","max_tokens":16,"stream":true,"system":"sys\udfff",'
        r'"messages":[{"role":"user","content":"a\ud800b \ud83d\ude00"},'
        r'{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"Read",'
        r'"input":{"p\udc00":"\udbff"}}]},'
        r'{"role":"user","content":[{"type":"text","text":"c\udc00"}]}]}'
    )
    resp = await post_raw(client, "/v1/messages", body)
    raw = (await resp.read()).decode()
    assert resp.status == 200
    assert raw.endswith('event: message_stop\ndata: {"type":"message_stop"}\n\n')
    assert "event: error" not in raw
    assert '"model":"claude\ufffd"' in raw
    text = "\n".join(turn.content for turn in engine.requests[0].prompt.turns)
    assert "sys\ufffd" in text and "c\ufffd" in text
    assert "a\ufffdb \U0001f600" in text  # a proper pair stays one emoji
    assert engine.requests[0].prompt.turns[2].calls[0].input == {"p\ufffd": "\ufffd"}


async def test_lone_surrogates_in_count_tokens_and_a_plain_reply(app_client: Any) -> None:
    client = await app_client()
    body = raw_json(r'{"model":"m\ud800","max_tokens":4,"messages":[{"role":"user","content":"\ud800"}]}')
    resp = await post_raw(client, "/v1/messages/count_tokens", body)
    assert resp.status == 200 and (await resp.json())["input_tokens"] > 0
    resp = await post_raw(client, "/v1/messages", body)
    assert resp.status == 200 and (await resp.json())["model"] == "m\ufffd"


@pytest.mark.parametrize("top_k", [49153, 2**31, 2**63 + 1])
async def test_top_k_beyond_the_vocabulary_never_reaches_the_engine(app_client: Any, top_k: int) -> None:
    engine = FakeEngine()
    client = await app_client(engine)
    resp = await client.post("/v1/messages", json={**BODY, "top_k": top_k})
    assert resp.status == 200
    assert engine.requests[0].options.top_k == TOP_K_MAX


@pytest.mark.parametrize("header", [b"x-api-key: k\xff\xfe3y", b"Authorization: Bearer \xc3\x28k3y"])
async def test_api_key_that_is_not_utf8_is_a_401(app_client: Any, header: bytes) -> None:
    client = await app_client(api_key="k3y")
    body = json.dumps(BODY).encode()
    request = (b"POST /v1/messages HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n" + header +
               b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(request)
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 401 ")
    envelope = json.loads(payload)
    assert envelope["error"]["type"] == "authentication_error" and envelope["request_id"].startswith("req_")


UNUSABLE_BODIES = {
    "integer of 5,000 digits": (
        '{"model":"m","max_tokens":' + "9" * 5000 + ',"messages":[{"role":"user","content":"x"}]}'
    ),
    "body nested 1,000 deep": nested(1000),
    "tool input nested 900 deep": (
        '{"model":"m","max_tokens":4,"messages":[{"role":"assistant","content":[{"type":"tool_use","id":"t",'
        '"name":"n","input":{"a":' + nested(900) + '}}]}]}'
    ),
    "metadata nested 201 deep": (
        '{"model":"m","max_tokens":4,"messages":[{"role":"user","content":"x"}],"metadata":{"a":'
        + nested(200) + "}}"
    ),
}


@pytest.mark.parametrize("path", MESSAGES_PATHS)
@pytest.mark.parametrize("body", UNUSABLE_BODIES.values(), ids=UNUSABLE_BODIES.keys())
async def test_json_python_cannot_use_is_a_400(app_client: Any, path: str, body: str) -> None:
    client = await app_client()
    message = await error_of(await post_raw(client, path, body.encode()), 400, "invalid_request_error")
    assert "request body" in message


@pytest.mark.parametrize("path", MESSAGES_PATHS)
async def test_nesting_up_to_the_limit_is_accepted(app_client: Any, path: str) -> None:
    client = await app_client()
    # Six levels lead to the input's value: body, messages, message, content, block, input.
    body = ('{"model":"m","max_tokens":4,"messages":[{"role":"assistant","content":[{"type":"tool_use",'
            '"id":"t","name":"n","input":{"a":' + nested(MAX_DEPTH - 6) + '}}]},'
            '{"role":"user","content":"x"}]}')
    assert (await post_raw(client, path, body.encode())).status == 200
