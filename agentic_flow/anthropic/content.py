"""The content blocks of a request body, modelled with pydantic: a union discriminated on `type`.

Each model is strict and ignores unknown fields (see `requests`), and knows the frozen dataclass of
`types` it becomes (`typed()`).  Union tags carry a "=" so that error paths can leave them out
(`validation`): a missing `text` is `messages.0.content.1.text`, not `...content.1.=text.text`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag
from pydantic_core import PydanticCustomError

from . import types as t
from .validation import NOT_A_STRING_TAG


class Wire(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


def type_tag(value: Any) -> str | None:
    """The union member to validate `value` as: its "type", marked; None when it has none."""
    if not isinstance(value, dict) or value.get("type") is None:
        return None
    kind = value["type"]
    return "=" + kind if isinstance(kind, str) else NOT_A_STRING_TAG


# `union` builds each discriminated union at run time, which a type checker cannot follow; under
# TYPE_CHECKING each alias is the plain union of the same members.
def union(tag: Callable[[Any], str | None], *members: tuple[str, type]) -> Any:
    choices = tuple(Annotated[model, Tag("=" + name)] for name, model in members)
    return Annotated[Union[choices], Discriminator(tag)]  # noqa: UP007 (a tuple of members)


def text_list(value: Any) -> Any:
    """A string where a list of blocks may stand: one text block."""
    return [{"type": "text", "text": value}] if isinstance(value, str) else value


NonEmptyStr = Annotated[str, Field(min_length=1)]
UnitFloat = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]  # NaN and infinity are refused
JsonObject = dict[str, Any]


# --- content blocks ----------------------------------------------------------------------------


class TextParam(Wire):
    type: Literal["text"]
    text: str

    def typed(self) -> t.TextBlock:
        return t.TextBlock(self.text)


class Base64ImageSource(Wire):
    type: Literal["base64"]
    media_type: Literal["image/jpeg", "image/png", "image/gif", "image/webp"]
    data: str


class UrlSource(Wire):
    type: Literal["url"]
    url: str


class FileSource(Wire):
    type: Literal["file"]
    file_id: str


if TYPE_CHECKING:
    ImageSource = Base64ImageSource | UrlSource | FileSource
else:
    ImageSource = union(type_tag, ("base64", Base64ImageSource), ("url", UrlSource), ("file", FileSource))


class ImageParam(Wire):
    type: Literal["image"]
    source: ImageSource

    def typed(self) -> t.ImageBlock:
        return t.ImageBlock(self.source.type)


class Base64DocumentSource(Wire):  # a PDF
    type: Literal["base64"]
    data: str


class TextDocumentSource(Wire):
    type: Literal["text"]
    data: str


if TYPE_CHECKING:
    DocumentContentItem = TextParam | ImageParam
else:
    DocumentContentItem = union(type_tag, ("text", TextParam), ("image", ImageParam))


class ContentDocumentSource(Wire):
    type: Literal["content"]
    content: Annotated[list[DocumentContentItem], BeforeValidator(text_list)]


if TYPE_CHECKING:
    DocumentSource = (
        Base64DocumentSource | TextDocumentSource | ContentDocumentSource | UrlSource | FileSource
    )
else:
    DocumentSource = union(
        type_tag, ("base64", Base64DocumentSource), ("text", TextDocumentSource),
        ("content", ContentDocumentSource), ("url", UrlSource), ("file", FileSource),
    )


class DocumentParam(Wire):
    type: Literal["document"]
    source: DocumentSource
    title: str | None = None

    def typed(self) -> t.DocumentBlock:
        source = self.source
        text: str | None = None
        if isinstance(source, TextDocumentSource):
            text = source.data
        elif isinstance(source, ContentDocumentSource):
            texts = [part.text for part in source.content if isinstance(part, TextParam)]
            text = "\n\n".join(texts) if len(texts) == len(source.content) else None
        return t.DocumentBlock(source.type, text, self.title)


class ToolUseParam(Wire):
    type: Literal["tool_use"]
    id: str
    name: str
    input: JsonObject

    def typed(self) -> t.ToolUseBlock:
        return t.ToolUseBlock(self.id, self.name, self.input)


class ToolReferenceParam(Wire):
    """What a tool search returns (Claude Code's ToolSearch): a tool found, by name."""

    type: Literal["tool_reference"]
    tool_name: NonEmptyStr

    def typed(self) -> t.ToolReferenceBlock:
        return t.ToolReferenceBlock(self.tool_name)


if TYPE_CHECKING:
    ToolResultItem = TextParam | ImageParam | DocumentParam | ToolReferenceParam
else:
    ToolResultItem = union(
        type_tag, ("text", TextParam), ("image", ImageParam), ("document", DocumentParam),
        ("tool_reference", ToolReferenceParam),
    )


class ToolResultParam(Wire):
    type: Literal["tool_result"]
    tool_use_id: str
    content: Annotated[list[ToolResultItem], BeforeValidator(text_list)] | None = None
    is_error: bool | None = None

    def typed(self) -> t.ToolResultBlock:
        content = tuple(item.typed() for item in self.content or ())
        return t.ToolResultBlock(self.tool_use_id, content, bool(self.is_error))


class ThinkingParam(Wire):
    type: Literal["thinking"]
    thinking: str
    signature: str

    def typed(self) -> t.ThinkingBlock:
        return t.ThinkingBlock(self.thinking, self.signature)


class RedactedThinkingParam(Wire):
    type: Literal["redacted_thinking"]
    data: str

    def typed(self) -> t.RedactedThinkingBlock:
        return t.RedactedThinkingBlock(self.data)


if TYPE_CHECKING:
    ContentBlockParam = (
        TextParam | ImageParam | DocumentParam | ToolUseParam | ToolResultParam | ThinkingParam
        | RedactedThinkingParam
    )
else:
    ContentBlockParam = union(
        type_tag, ("text", TextParam), ("image", ImageParam), ("document", DocumentParam),
        ("tool_use", ToolUseParam), ("tool_result", ToolResultParam), ("thinking", ThinkingParam),
        ("redacted_thinking", RedactedThinkingParam),
    )
Blocks = Annotated[list[ContentBlockParam], BeforeValidator(text_list)]


class MessageParam(Wire):
    role: t.MessageRole
    content: Blocks

    def typed(self) -> t.Message:
        return t.Message(self.role, tuple(block.typed() for block in self.content))


def some_messages(messages: list[MessageParam]) -> list[MessageParam]:
    if not messages:
        raise PydanticCustomError("too_short", "at least one message is required")
    return messages
