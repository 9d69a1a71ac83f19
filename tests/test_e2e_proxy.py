"""End to end: the real proxy process, the real default model, the official anthropic SDK as client."""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
import urllib.request

import anthropic
import pytest

from agentic_flow.launcher import supervisor
from tests.conftest import ProxyFactory
from tests.raw_http import read_to_end, start_stream

# anthropic 2.x no longer has a temperature argument: greedy decoding goes in the body.
GREEDY = {"temperature": 0}
FRANCE = [{"role": "user", "content": "What is the capital of France?"}]


def test_create_greedy_answer_mentions_paris(client: anthropic.Anthropic) -> None:
    msg = client.messages.create(model="my-local-alias", max_tokens=40, extra_body=GREEDY, messages=FRANCE)
    assert msg.id.startswith("msg_")
    assert msg.model == "my-local-alias"  # the requested name is echoed
    assert msg.role == "assistant" and msg.type == "message"
    text = msg.content[0].text  # type: ignore[union-attr]
    assert "Paris" in text
    assert msg.stop_reason in ("end_turn", "max_tokens")
    assert msg.usage.input_tokens > 10 and 0 < msg.usage.output_tokens <= 40


def test_stream_text_matches_final_message(client: anthropic.Anthropic) -> None:
    with client.messages.stream(model="m", max_tokens=30, extra_body=GREEDY, messages=FRANCE) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(pieces) > 3  # streamed as tokens arrive, not in one piece at the end
    assert "".join(pieces) == final.content[0].text  # type: ignore[union-attr]
    assert "Paris" in final.content[0].text  # type: ignore[union-attr]
    # A prompt seen before is read from the prefix cache: Anthropic counts those tokens apart.
    usage = final.usage
    assert usage.output_tokens > 0 and usage.input_tokens + (usage.cache_read_input_tokens or 0) > 10
    assert usage.input_tokens >= 2  # the last two prompt tokens are always read again (MIN_APPEND)


def test_stream_and_create_agree_on_greedy_text(client: anthropic.Anthropic) -> None:
    made = client.messages.create(model="m", max_tokens=25, extra_body=GREEDY, messages=FRANCE)
    with client.messages.stream(model="m", max_tokens=25, extra_body=GREEDY, messages=FRANCE) as stream:
        streamed = stream.get_final_message()
    assert made.content[0].text == streamed.content[0].text  # type: ignore[union-attr]
    assert made.usage.output_tokens == streamed.usage.output_tokens


def test_stop_sequence_stops_and_is_reported(client: anthropic.Anthropic) -> None:
    msg = client.messages.create(model="m", max_tokens=60, extra_body=GREEDY, messages=FRANCE,
                                 stop_sequences=["Paris"])
    assert msg.stop_reason == "stop_sequence"
    assert msg.stop_sequence == "Paris"
    assert "Paris" not in msg.content[0].text  # type: ignore[union-attr]
    assert msg.content[0].text.startswith("The capital of France is")  # type: ignore[union-attr]


def test_max_tokens_is_honoured_exactly(client: anthropic.Anthropic) -> None:
    msg = client.messages.create(model="m", max_tokens=7, extra_body=GREEDY, messages=FRANCE)
    assert msg.stop_reason == "max_tokens"
    assert msg.usage.output_tokens == 7


def test_count_tokens_matches_usage(client: anthropic.Anthropic) -> None:
    counted = client.messages.count_tokens(model="m", messages=FRANCE, system="Be brief.")
    msg = client.messages.create(model="m", max_tokens=3, messages=FRANCE, system="Be brief.")
    # count_tokens counts the whole prompt; usage splits it into what was read and what came from cache.
    assert counted.input_tokens == msg.usage.input_tokens + (msg.usage.cache_read_input_tokens or 0) > 0


def test_prefill_is_continued(client: anthropic.Anthropic) -> None:
    msg = client.messages.create(model="m", max_tokens=10, extra_body=GREEDY, messages=[
        *FRANCE, {"role": "assistant", "content": "The capital of France is"}])
    assert "Paris" in msg.content[0].text  # type: ignore[union-attr]
    assert not msg.content[0].text.startswith("The capital")  # type: ignore[union-attr]


def test_models_list_paging_and_retrieve(client: anthropic.Anthropic) -> None:
    models = list(client.models.list(limit=1))
    assert [m.id for m in models] == ["smollm2-135m"]
    model_id = models[0].id
    got = client.models.retrieve(model_id)
    assert got.id == model_id and got.type == "model" and got.display_name
    with pytest.raises(anthropic.NotFoundError):
        client.models.retrieve("no-such-model")


def test_bad_requests_raise_bad_request_error(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as info:
        client.messages.create(model="m", max_tokens=0, messages=FRANCE)
    assert "max_tokens" in str(info.value)
    with pytest.raises(anthropic.BadRequestError) as info:
        client.messages.create(model="m", max_tokens=5, messages=[
            {"role": "user", "content": [{"type": "foo", "text": "x"}]}])  # type: ignore[list-item]
    assert "messages.0.content.0.type" in str(info.value)


def test_prompt_longer_than_context_names_both_numbers(client: anthropic.Anthropic) -> None:
    long = [{"role": "user", "content": "Summarize: " + "lorem ipsum " * 4500}]
    with pytest.raises(anthropic.BadRequestError) as info:
        client.messages.create(model="m", max_tokens=100, messages=long)
    counted = client.messages.count_tokens(model="m", messages=long).input_tokens
    message = str(info.value)
    assert f"{counted} tokens > 8192" in message


def test_unknown_route_is_not_found(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError):
        client.get("/v1/nothing-here", cast_to=object)


# ------------------------------------------------------------------ raw HTTP

def _post(
    url: str, body: dict[str, object], headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"content-type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def _events(raw: bytes) -> list[tuple[str, dict[str, object]]]:
    events = []
    for block in raw.decode().strip().split("\n\n"):
        lines = block.split("\n")
        assert lines[0].startswith("event: ") and lines[1].startswith("data: "), block
        name, data = lines[0][7:], json.loads(lines[1][6:])
        assert data["type"] == name
        events.append((name, data))
    return events


def test_raw_sse_event_sequence_and_headers(proxy: supervisor.ProxyProcess) -> None:
    status, headers, raw = _post(f"{proxy.url}/v1/messages?beta=true", {
        "model": "claude-haiku-4-5", "max_tokens": 12, "stream": True, "messages": FRANCE,
        "temperature": 0}, {"x-api-key": "anything", "anthropic-version": "2023-06-01"})
    assert status == 200
    assert headers["Content-Type"].startswith("text/event-stream")
    assert headers["Cache-Control"] == "no-cache" and headers["X-Accel-Buffering"] == "no"
    assert headers["request-id"].startswith("req_")
    names = [n for n, _ in _events(raw)]
    deltas = names.count("content_block_delta")
    assert names == ["message_start", "content_block_start", "ping", *["content_block_delta"] * deltas,
                     "content_block_stop", "message_delta", "message_stop"]
    assert deltas >= 3
    events = dict(_events(raw))
    usage = events["message_start"]["message"]["usage"]  # type: ignore[index]
    assert usage["input_tokens"] + usage["cache_read_input_tokens"] > 10
    assert events["content_block_start"]["content_block"] == {"type": "text", "text": ""}
    assert events["message_delta"]["usage"]["output_tokens"] == 12  # type: ignore[index]
    assert events["message_delta"]["delta"]["stop_reason"] == "max_tokens"  # type: ignore[index]


def test_unknown_and_claude_code_fields_are_accepted(proxy: supervisor.ProxyProcess) -> None:
    body = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 5,
        "stream": False,
        "system": [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "system", "content": "Extra system text."},
            {"role": "user", "content": [{"type": "text", "text": "Hi", "cache_control": {"type": "ephemeral"}}]},
        ],
        "thinking": {"type": "adaptive", "display": "omitted"},
        "output_config": {"effort": "low"},
        "context_management": {"edits": []},
        "metadata": {"user_id": "u"},
        "service_tier": "auto",
        "tools": [{"name": "Read", "description": "read a file", "input_schema": {"type": "object"}}],
        "brand_new_field": {"x": 1},
    }
    status, _headers, raw = _post(f"{proxy.url}/v1/messages?beta=true", body,
                                 {"authorization": "Bearer x", "anthropic-version": "2026-10-21",
                                  "anthropic-beta": "a,b"})
    assert status == 200, raw
    assert json.loads(raw)["content"][0]["type"] == "text"


def test_error_envelope_on_invalid_json(proxy: supervisor.ProxyProcess) -> None:
    req = urllib.request.Request(f"{proxy.url}/v1/messages", data=b"{not json", method="POST")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req, timeout=10)
    body = json.loads(info.value.read())
    assert info.value.code == 400
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert body["request_id"].startswith("req_")


def test_wrong_method_is_405_in_envelope(proxy: supervisor.ProxyProcess) -> None:
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(f"{proxy.url}/v1/messages", timeout=10)
    assert info.value.code == 405
    assert json.loads(info.value.read())["type"] == "error"


def _health(url: str) -> dict[str, object]:
    with urllib.request.urlopen(f"{url}/health", timeout=5) as resp:
        return json.loads(resp.read())  # type: ignore[no-any-return]


def test_disconnect_mid_stream_frees_the_generation(proxy: supervisor.ProxyProcess) -> None:
    sock = start_stream(proxy.url, 2000, deltas=3)
    assert _health(proxy.url)["requests_in_flight"] == 1
    sock.close()
    deadline = time.monotonic() + 10
    while _health(proxy.url)["requests_in_flight"] != 0:
        assert time.monotonic() < deadline, "the generation kept running after the client left"
        time.sleep(0.02)


def test_health_answers_quickly_during_a_long_generation(proxy: supervisor.ProxyProcess) -> None:
    with anthropic.Anthropic(base_url=proxy.url, api_key="x", max_retries=0) as client:
        worker = threading.Thread(target=lambda: client.messages.create(
            model="m", max_tokens=300, messages=[{"role": "user", "content": "Tell me a long story."}]))
        worker.start()
        try:
            deadline = time.monotonic() + 30
            while _health(proxy.url)["requests_in_flight"] == 0:  # the generation is running from here
                assert time.monotonic() < deadline, "the generation never started"
                time.sleep(0.01)
            started = time.perf_counter()
            health = _health(proxy.url)
            elapsed = time.perf_counter() - started
            assert health["status"] == "ok" and health["loaded"] is True
            assert elapsed < 1.0  # generous bound for a shared machine; the benchmark reports the real figure
        finally:
            worker.join()


# ------------------------------------------------------------------ separate proxies

def test_required_api_key(proxy_factory: ProxyFactory) -> None:
    with proxy_factory(api_key="s3cret") as handle:
        bad = anthropic.Anthropic(base_url=handle.url, api_key="wrong", max_retries=0)
        with bad, pytest.raises(anthropic.AuthenticationError):
            bad.messages.create(model="m", max_tokens=2, messages=FRANCE)
        with anthropic.Anthropic(base_url=handle.url, api_key="s3cret", max_retries=0) as good:
            assert good.messages.create(model="m", max_tokens=2, messages=FRANCE).usage.output_tokens == 2
        status, _, raw = _post(f"{handle.url}/v1/messages", {"model": "m", "max_tokens": 2, "messages": FRANCE})
        assert status == 401 and json.loads(raw)["error"]["type"] == "authentication_error"
        status, _, _ = _post(f"{handle.url}/v1/messages", {"model": "m", "max_tokens": 2, "messages": FRANCE},
                             {"x-api-key": "s3cret"})
        assert status == 200


def test_full_queue_is_overloaded_error(proxy_factory: ProxyFactory) -> None:
    with (
        proxy_factory(max_batch=1, max_queue=0) as handle,
        anthropic.Anthropic(base_url=handle.url, api_key="x", max_retries=0) as client,
    ):
        long = [{"role": "user", "content": "Write a very long essay about the sea."}]
        streams = [client.messages.stream(model="m", max_tokens=400, messages=long) for _ in range(2)]
        entered = [s.__enter__() for s in streams]  # two running: the engine's whole capacity here
        try:
            for s in entered:
                next(iter(s.text_stream))
            with pytest.raises(anthropic.OverloadedError) as info:
                client.messages.create(model="m", max_tokens=5, messages=FRANCE)
            assert info.value.status_code == 529
            assert "overloaded" in str(info.value).lower() or "busy" in str(info.value).lower()
        finally:
            for s in streams:
                s.__exit__(None, None, None)


def test_sigterm_lets_the_in_flight_stream_finish_then_exits_0(proxy_factory: ProxyFactory) -> None:
    with proxy_factory() as handle:
        assert handle.process is not None
        with start_stream(handle.url, 150) as sock:
            handle.process.send_signal(signal.SIGTERM)
            rest = read_to_end(sock)
        # finished, not cut off: the last event, then the end of the chunked body
        assert rest.endswith(b'event: message_stop\ndata: {"type":"message_stop"}\n\n\r\n0\r\n\r\n')
        assert b'"output_tokens":150' in rest
        assert handle.process.wait(timeout=30) == 0
        with pytest.raises(OSError):  # and it no longer accepts connections
            socket.create_connection(("127.0.0.1", int(handle.url.rsplit(":", 1)[1])), timeout=2)


def test_a_stream_cut_at_the_end_of_the_grace_period_ends_with_an_error_event(proxy_factory: ProxyFactory) -> None:
    with proxy_factory(grace_seconds=0.5) as handle:
        assert handle.process is not None
        with start_stream(handle.url, 4000) as sock:
            handle.process.send_signal(signal.SIGTERM)
            rest = read_to_end(sock)
        assert b"message_stop" not in rest
        # an error event, then a well-formed end of the chunked body: the client knows it was cut
        assert b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error"' in rest
        assert rest.endswith(b"\n\n\r\n0\r\n\r\n")
        assert handle.process.wait(timeout=30) == 0


def test_a_second_signal_exits_at_once(proxy_factory: ProxyFactory) -> None:
    with proxy_factory() as handle:
        assert handle.process is not None
        with start_stream(handle.url, 4000):
            handle.process.send_signal(signal.SIGTERM)
            _wait_for_log(handle, "shutting down")  # the first signal was handled: the next one is a second
            handle.process.send_signal(signal.SIGINT)
            assert handle.process.wait(timeout=5) != 0


def _wait_for_log(handle: supervisor.ProxyProcess, text: str, timeout: float = 10.0) -> None:
    assert handle.log_path is not None
    deadline = time.monotonic() + timeout
    while text not in handle.log_path.read_text(errors="replace"):
        assert time.monotonic() < deadline, f"{text!r} never appeared in the proxy's log"
        time.sleep(0.02)
