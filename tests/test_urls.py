"""Every URL the user gives (ONNX_PROXY_URL, ANTHROPIC_BASE_URL, --upstream) is either accepted or
refused with one line and exit code 2: a property over URL-ish strings, since urllib raises ValueError
for some (an unclosed `[`, a port out of range) and that used to end the CLI with a traceback."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from agentic_flow.cli.main import app
from agentic_flow.errors import ConfigError
from agentic_flow.settings import proxy_settings, run_settings

SCHEMES = ["http://", "https://", "HTTP://", "ftp://", "", "http:/", "http:", "//", "http://user:pw@"]
HOSTS = ["127.0.0.1", "localhost", "[::1]", "[::1", "::1]", "[zz]", "[::1]x", "", " ", "a b", "é", "\x00",
         "h%zz", "256.1.1.1", "[fe80::1%eth0]", "-", "."]
PORTS = ["", ":", ":0", ":1", ":3001", ":65535", ":65536", ":99999", ":abc", ":-1", ": 80", ":8O", "::"]
PATHS = ["", "/", "/v1", "/v1/", "/v1/chat/completions", "?q=1", "#x", "/%zz", "/\n", "\t", "/[", "]"]

url_ish = st.one_of(
    st.builds(lambda *parts: "".join(parts), st.sampled_from(SCHEMES), st.sampled_from(HOSTS),
              st.sampled_from(PORTS), st.sampled_from(PATHS)),
    st.builds(lambda head, tail: head + tail, st.sampled_from(SCHEMES), st.text(max_size=30)),
    st.text(max_size=40),
)

runner = CliRunner()
CASES = {
    "ONNX_PROXY_URL": (["--agent", "coder", "--task", "x", "--provider", "onnx"], "ONNX_PROXY_URL"),
    "ANTHROPIC_BASE_URL": (["--agent", "coder", "--task", "x", "--provider", "anthropic"], "ANTHROPIC_BASE_URL"),
}


def _resolves(name: str, url: str) -> bool:
    """True when the settings accept `url`; a ConfigError is a refusal, anything else fails the test."""
    try:
        if name == "--upstream":
            proxy_settings(provider="openai", upstream=url, env={"OPENAI_API_KEY": "k"})
        else:
            run_settings(env={name: url, "ANTHROPIC_API_KEY": "k"})
    except ConfigError:
        return False
    return True


def _assert_one_line_exit_2(args: list[str], env: dict[str, str]) -> None:
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output and not isinstance(result.exception, ValueError)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr


@pytest.mark.parametrize("variable", CASES)
@settings(max_examples=100, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(url=url_ish)
def test_a_url_variable_is_accepted_or_refused_in_one_line(variable: str, url: str) -> None:
    if "\x00" in url:  # an environment variable cannot hold NUL: the settings see it, the shell never does
        assert not _resolves(variable, url)
        return
    if not _resolves(variable, url):
        args, _ = CASES[variable]
        _assert_one_line_exit_2(args, {variable: url, "ANTHROPIC_API_KEY": "k"})


@settings(max_examples=100, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(url=url_ish)
def test_an_upstream_url_is_accepted_or_refused_in_one_line(url: str) -> None:
    if not _resolves("--upstream", url) and "\x00" not in url:
        _assert_one_line_exit_2(["--agent", "coder", "--task", "x", "--provider", "openai", "--upstream", url],
                                {"OPENAI_API_KEY": "k"})


@pytest.mark.parametrize("url", ["http://[::1", "http://127.0.0.1:99999", "http://h:abc", "http://[zz]:3"])
def test_the_urls_urllib_raises_on_are_one_line_errors(url: str) -> None:
    _assert_one_line_exit_2(["--agent", "coder", "--task", "x", "--provider", "onnx"], {"ONNX_PROXY_URL": url})


def test_the_usual_urls_are_accepted() -> None:
    for url in ("http://127.0.0.1:3001", "http://[::1]:3001/", "https://api.anthropic.com", "http://localhost"):
        assert _resolves("ONNX_PROXY_URL", url) and _resolves("ANTHROPIC_BASE_URL", url), url
    assert _resolves("--upstream", "http://127.0.0.1:8000/v1/chat/completions")
