"""OpenAI Chat Completions, both ways.

- SERVE: an OpenAI client talks to our Anthropic-shaped core.  `serve_request` turns a Chat Completions
  request into an Anthropic Messages request dict; `serve_response` turns the core's Anthropic message
  or event stream back into a `chat.completion` or `chat.completion.chunk` stream.
- UPSTREAM: our Anthropic proxy fronts an OpenAI-compatible engine (vLLM, Ray Serve, OpenRouter,
  Gemini...).  `upstream_request` turns an Anthropic request dict into a Chat Completions request;
  `upstream_response` turns the engine's answer back into an Anthropic message or event stream;
  `upstream` is the pooled HTTP client.

The Anthropic side is always the plain wire JSON (dicts), so this package does not depend on how the
proxy types its own protocol.  `types` holds the OpenAI wire types (pydantic), `sse` the OpenAI SSE
framing and parser, `errors` the status <-> error-type tables of both APIs.
"""
