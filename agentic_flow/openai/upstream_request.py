"""UPSTREAM direction, request: an Anthropic Messages request dict -> a Chat Completions request.

The input has already passed the proxy's Anthropic validation, so this module trusts its shape and
only refuses what an OpenAI-compatible engine cannot take (`UnsupportedForUpstream`, a 400):
PDF/URL/file documents, images inside tool results, and Anthropic's server tools (web search...).

- `system` (string or text blocks) -> one leading system message;
- user blocks: text -> text parts, images -> `image_url` parts (base64 as a data URL), text documents
  -> text parts; `tool_result` blocks -> `tool` messages placed before the rest of that user turn
  (OpenAI wants them right after the assistant's tool_calls); `is_error` prefixes "Error: ";
- assistant blocks: text -> content, `tool_use` -> `tool_calls` (input serialised to JSON), thinking
  blocks dropped (Chat Completions has no place for them);
- tool_choice: auto->"auto", any->"required", tool->named, none->"none";
  `disable_parallel_tool_use` -> `parallel_tool_calls: false`;
- a stream asks for `stream_options.include_usage`, so the last chunk carries the usage.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..errors import InvalidRequestError

Json = dict[str, Any]
_CANNOT = "cannot be sent to an OpenAI-compatible upstream"


class UnsupportedForUpstream(InvalidRequestError):
    """Valid Anthropic input that the OpenAI wire format cannot carry."""


def to_openai_request(body: Mapping[str, Any], *, model: str | None = None, send_top_k: bool = True) -> Json:
    """`model` overrides the client's model name (the upstream's name for it); `send_top_k` is False
    for hosts that reject unknown sampling fields (Gemini)."""
    messages: list[Json] = _system(body.get("system"))
    for i, message in enumerate(body.get("messages", [])):
        if message.get("role") == "assistant":
            messages.append(_assistant(message.get("content"), f"messages.{i}"))
        else:
            messages.extend(_user(message.get("content"), f"messages.{i}"))
    request: Json = {"model": model or body["model"], "messages": messages, "max_tokens": body["max_tokens"]}
    for key in ("temperature", "top_p"):
        if body.get(key) is not None:
            request[key] = body[key]
    if send_top_k and body.get("top_k") is not None:
        request["top_k"] = body["top_k"]
    if body.get("stop_sequences"):
        request["stop"] = list(body["stop_sequences"])
    if body.get("tools"):
        request["tools"] = [_tool(tool, f"tools.{i}") for i, tool in enumerate(body["tools"])]
        request.update(_tool_choice(body.get("tool_choice")))
    if body.get("stream"):
        request["stream"] = True
        request["stream_options"] = {"include_usage": True}
    return request


def _system(system: str | list[Json] | None) -> list[Json]:
    if not system:
        return []
    text = system if isinstance(system, str) else "\n\n".join(block["text"] for block in system)
    return [{"role": "system", "content": text}] if text else []


def _blocks(content: str | list[Json] | None) -> list[Mapping[str, Any]]:
    return [{"type": "text", "text": content}] if isinstance(content, str) else list(content or [])


def _user(content: str | list[Json] | None, path: str) -> list[Json]:
    tool_messages: list[Json] = []
    parts: list[Json] = []
    for j, block in enumerate(_blocks(content)):
        block_path = f"{path}.content.{j}"
        if block["type"] == "tool_result":
            tool_messages.append(_tool_message(block, block_path))
        elif block["type"] not in ("thinking", "redacted_thinking"):
            parts.append(_user_part(block, block_path))
    if not parts:
        return tool_messages
    # A turn of plain text stays a string: the widest-supported form (some hosts reject part arrays).
    if all(part["type"] == "text" for part in parts):
        return [*tool_messages, {"role": "user", "content": "".join(part["text"] for part in parts)}]
    return [*tool_messages, {"role": "user", "content": parts}]


def _user_part(block: Mapping[str, Any], path: str) -> Json:
    kind = block["type"]
    if kind == "text":
        return {"type": "text", "text": block["text"]}
    if kind == "image":
        return {"type": "image_url", "image_url": {"url": _image_url(block["source"], path)}}
    if kind == "document" and block["source"].get("type") == "text":
        return {"type": "text", "text": block["source"]["data"]}
    source = block.get("source", {}).get("type")
    raise UnsupportedForUpstream(f"{path}: a {kind} block ({source} source) {_CANNOT}")


def _image_url(source: Mapping[str, Any], path: str) -> str:
    if source["type"] == "base64":
        return f"data:{source['media_type']};base64,{source['data']}"
    if source["type"] == "url":
        return str(source["url"])
    raise UnsupportedForUpstream(f"{path}.source: a {source['type']} image {_CANNOT}")


def _tool_message(block: Mapping[str, Any], path: str) -> Json:
    texts: list[str] = []
    for k, item in enumerate(_blocks(block.get("content"))):
        if item["type"] != "text":
            raise UnsupportedForUpstream(
                f"{path}.content.{k}: only text tool results can be sent to an OpenAI-compatible upstream"
            )
        texts.append(item["text"])
    text = "".join(texts)
    return {"role": "tool", "tool_call_id": block["tool_use_id"],
            "content": f"Error: {text}" if block.get("is_error") else text}


def _assistant(content: str | list[Json] | None, path: str) -> Json:
    texts: list[str] = []
    calls: list[Json] = []
    for block in _blocks(content):
        if block["type"] == "text":
            texts.append(block["text"])
        elif block["type"] == "tool_use":
            arguments = json.dumps(block.get("input") or {}, ensure_ascii=False)
            calls.append({"id": block["id"], "type": "function",
                          "function": {"name": block["name"], "arguments": arguments}})
    message: Json = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if calls:
        message["tool_calls"] = calls
    return message


def _tool(tool: Mapping[str, Any], path: str) -> Json:
    if tool.get("type") not in (None, "custom"):
        raise UnsupportedForUpstream(
            f"{path}: Anthropic's server tool {tool['type']!r} is not available upstream"
        )
    function: Json = {"name": tool["name"], "parameters": tool.get("input_schema") or {"type": "object"}}
    if tool.get("description"):
        function["description"] = tool["description"]
    return {"type": "function", "function": function}


def _tool_choice(choice: Mapping[str, Any] | None) -> Json:
    if not choice:
        return {}
    kind = choice["type"]
    result: Json = {}
    if kind == "tool":
        result["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    else:
        result["tool_choice"] = {"auto": "auto", "any": "required", "none": "none"}[kind]
    if choice.get("disable_parallel_tool_use") and kind != "none":
        result["parallel_tool_calls"] = False
    return result
