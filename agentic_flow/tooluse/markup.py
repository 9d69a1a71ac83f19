"""The two ways a call is written in generated text, shared by the renderer, the grammar and the parser.

Qwen2.5 is trained on Hermes-style tags (`<tool_call>` is a single token in its vocabulary), but left free
the Qwen2.5-Coder models write a fenced ```json block instead (measured: docs/models.md): the grammar accepts both, the
parser reads both, and the renderer writes history in the tag form the template uses.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

TAG_OPEN = "<tool_call>"
TAG_CLOSE = "</tool_call>"
FENCE_OPEN = "```json"
FENCE_CLOSE = "```"
OPENERS = {TAG_OPEN: TAG_CLOSE, FENCE_OPEN: FENCE_CLOSE}
RESPONSE_OPEN = "<tool_response>"
RESPONSE_CLOSE = "</tool_response>"

# The separators of Python's json.dumps, which is also what the chat template's `tojson` writes: the grammar
# makes the model write calls exactly the way its history shows them.
ITEM_SEPARATOR = ", "
KEY_SEPARATOR = ": "


def call_json(name: str, arguments: Mapping[str, object]) -> str:
    return json.dumps({"name": name, "arguments": arguments}, ensure_ascii=False)


def tagged_call(name: str, arguments: Mapping[str, object]) -> str:
    return f"{TAG_OPEN}\n{call_json(name, arguments)}\n{TAG_CLOSE}"
