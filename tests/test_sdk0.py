"""The 0.x official SDK against the real proxy.  It cannot share a venv with the 2.x SDK, so `make test`
installs it into .venv-sdk0 and this test runs a small client script with that interpreter."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import ProxyFactory

SDK0_PYTHON = Path(__file__).resolve().parents[1] / ".venv-sdk0" / "bin" / "python"
CLIENT = Path(__file__).with_name("sdk0_client.py")


def test_anthropic_0x_sdk(proxy_factory: ProxyFactory) -> None:
    if not SDK0_PYTHON.exists():
        pytest.skip("the 0.x SDK venv is missing: `make test` creates .venv-sdk0")
    version = subprocess.run([str(SDK0_PYTHON), "-c", "import anthropic; print(anthropic.__version__)"],
                             capture_output=True, text=True, check=True).stdout.strip()
    assert version.startswith("0."), version
    with proxy_factory() as handle:
        result = subprocess.run([str(SDK0_PYTHON), str(CLIENT), handle.url], capture_output=True, text=True,
                                timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(": ", 1) for line in result.stdout.strip().splitlines())
    assert lines["create"].startswith("claude-3-5-haiku-latest max_tokens ") and "Paris" in lines["create"]
    assert "Paris" in lines["stream"] and lines["stream"].endswith("max_tokens 20")
    assert int(lines["count"]) > 0
    assert lines["models"] == "['smollm2-135m']"
    assert lines["bad request ok"] == "400"
