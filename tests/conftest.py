"""Shared fixtures.

Every test runs with HOME and the XDG directories pointed at a temporary folder, so nothing touches
the user's real cache, state or model store.  The real default model is located once, before that
redirection, from the store that `make model` fills.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agentic_flow import settings

_REAL_MODEL_DIR = settings.model_dir()
_DEFAULT_MODEL = _REAL_MODEL_DIR / settings.DEFAULT_MODEL


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / ".local" / "state"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for var in (
        "AGENTIC_FLOW_MODEL_DIR", "ONNX_MODEL_PATH", "ONNX_PROXY_PORT", "ONNX_PROXY_URL", "PROVIDER",
        "USE_ONNX", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "AGENTS_DIR", "AGENTIC_FLOW_API_KEY",
        "ONNX_EXECUTION_PROVIDERS",
    ):
        monkeypatch.delenv(var, raising=False)
    yield home


@pytest.fixture(scope="session")
def real_model_dir() -> Path:
    """The installed default model (SmolLM2-135M-Instruct, int4).  `make test` installs it first."""
    if not (_DEFAULT_MODEL / "genai_config.json").is_file():
        pytest.fail(f"the default model is not installed at {_DEFAULT_MODEL}; run `make model`")
    return _DEFAULT_MODEL
