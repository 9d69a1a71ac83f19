"""The neutral serving core: a request of either API planned and generated, read as `chat` events.

- `generation`: a running engine generation read as `chat` events (text, tool calls, usage, stop),
  with the tool-call parser, the stop sequences of guided requests, the overlong-call cut and pings;
  `collect` gathers them into one `chat.Answer` for a non-streaming reply.
- `planning`: a neutral `chat.Request` turned into the engine's `GenerationRequest`: sampling and
  the tool-use guidance (strict grammar and its fallback), planned once here.
The `Backend` protocol the views talk to (the local engine, driven through this package, or an upstream
server) is in proxy/backend.py.

`anthropic/` and `openai/` encode the events; they import nothing of the engine or of tooluse.  This
file imports nothing, so that importing `serving.x` loads only x.
"""
