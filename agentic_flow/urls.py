"""The one check of an http(s) base URL given by the user (ONNX_PROXY_URL, ANTHROPIC_BASE_URL,
--upstream and the providers' variables): a bad one is a ConfigError naming where it came from, never a
ValueError from deep in urllib (`http://[::1` used to end the CLI with a traceback)."""

from __future__ import annotations

from urllib.parse import SplitResult, urlsplit

from .errors import ConfigError


def split_http_url(raw: str, what: str) -> SplitResult:
    """`raw` split, once it is known to be http(s)://host[:port][/path] that a client can connect to."""
    problem = _problem(raw)
    if problem is not None:
        raise ConfigError(f"{raw!r} ({what}) is not an http:// or https:// URL: {problem}")
    return urlsplit(raw)


def _problem(raw: str) -> str | None:
    if not raw.isascii() or not raw.isprintable() or any(c.isspace() for c in raw):
        return "it holds spaces, control or non-ASCII characters"
    try:
        parts = urlsplit(raw)
        port = parts.port  # parsed lazily: a bad port raises only here
        host = parts.hostname
    except ValueError as exc:  # an unclosed [, a port that is no number or out of range, a bad IPv6
        return str(exc)
    if parts.scheme not in ("http", "https"):
        return "the scheme must be http or https"
    if not host:
        return "there is no host"
    if port == 0:
        return "port 0"
    if parts.username is not None or parts.password is not None:
        return "credentials belong in the API key, not the URL"
    return None
