"""Run by tests/test_sdk0.py with the 0.x anthropic SDK (its own venv, made by `make test`):
the older client sends x-api-key and anthropic-version 2023-06-01 and still accepts `temperature`."""

import sys

import anthropic

url = sys.argv[1]
c = anthropic.Anthropic(base_url=url, api_key="x", max_retries=0)
m = c.messages.create(
    model="claude-3-5-haiku-latest",
    max_tokens=20,
    temperature=0,
    messages=[{"role": "user", "content": "What is the capital of France?"}],
)
print("create:", m.model, m.stop_reason, m.usage.input_tokens, m.usage.output_tokens, repr(m.content[0].text[:40]))
with c.messages.stream(
    model="x", max_tokens=20, temperature=0, messages=[{"role": "user", "content": "What is the capital of France?"}]
) as s:
    t = "".join(s.text_stream)
    f = s.get_final_message()
print("stream:", repr(t[:40]), f.stop_reason, f.usage.output_tokens)
print("count:", c.messages.count_tokens(model="x", messages=[{"role":"user","content":"hi"}]).input_tokens)
print("models:", [x.id for x in c.models.list()])
try:
    c.messages.create(model="x", max_tokens=0, messages=[{"role":"user","content":"hi"}])
except anthropic.BadRequestError as e:
    print("bad request ok:", e.status_code)
