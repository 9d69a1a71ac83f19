"""The Anthropic Messages API wire format, in one package, both directions.

- `types`: the typed request the proxy works with (frozen dataclasses: messages, content blocks, tools).
- `requests`: request bodies validated with pydantic at the trust boundary and turned into `types`;
  `decode_body` reads the raw JSON; every refusal is an `InvalidRequest` naming the field's path.
- `responses`: response bodies and stream events (pydantic models), used to write them and to read them.
- `convert`: a validated request decoded into the neutral `chat.Request` (with `client_tools`, the
  documented schemas of Anthropic's versioned client tools).
- `sse`: server-sent events: the encoder of the neutral `chat` events the proxy streams with, and the
  decoder the agent client and the benchmark read with.
- `errors`: the one table between HTTP statuses and Anthropic's error types, and the error envelope.

The package imports nothing from the rest of the project except the exception tree and the neutral
vocabulary (`agentic_flow.chat`), so both the server and the clients can use it without loading the
engine or tool use (tests/test_layers.py).
"""
