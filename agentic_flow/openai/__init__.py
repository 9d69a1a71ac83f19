"""OpenAI Chat Completions, both ways.

- SERVE: an OpenAI client talks to our neutral core.  `serve_request` decodes a Chat Completions request
  into the neutral `chat.Request`; `serve_response` encodes the core's neutral answer or events as a
  `chat.completion` or `chat.completion.chunk` stream.
- UPSTREAM: our Anthropic proxy fronts an OpenAI-compatible engine (vLLM, Ray Serve, OpenRouter,
  Gemini...).  `upstream_request` turns an Anthropic request dict into a Chat Completions request;
  `upstream_response` turns the engine's answer back into an Anthropic message or event stream;
  `upstream` is the pooled HTTP client.

On the UPSTREAM side the Anthropic request and answer are plain wire JSON (dicts), so this package does
not depend on how the proxy types that protocol; it imports nothing of the engine or of tool use.
`types` holds the OpenAI wire types (pydantic), `sse` the OpenAI SSE framing, `errors` the status <->
error-type tables of both APIs.
"""
