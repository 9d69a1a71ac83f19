"""Shared fixtures.

Every test runs with HOME and the XDG directories pointed at a temporary folder, so nothing touches
the user's real cache, state or model store.  The real default model is located once, before that
redirection, from the store that `make model` fills.
"""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import anthropic
import openai
import psutil
import pytest

from agentic_flow import settings
from agentic_flow.engine.client import WorkerEngine
from agentic_flow.launcher import supervisor

# A shell starts a background job (`make test &`, `nohup ... &`) with SIGINT ignored, and children inherit
# that: the Ctrl-C tests would find their CLI deaf to SIGINT.  The suite runs with Python's own handler,
# which a child's exec resets to the default.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

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
        "ONNX_EXECUTION_PROVIDERS", "OPENAI_BASE_URL", "OPENAI_API_KEY", "OPENROUTER_BASE_URL",
        "OPENROUTER_API_KEY", "GEMINI_BASE_URL", "GEMINI_API_KEY", "GOOGLE_API_KEY", "AGENTIC_FLOW_UPSTREAM_KEY",
    ):
        monkeypatch.delenv(var, raising=False)
    yield home


def home_env(home: Path) -> dict[str, str]:
    """This process's environment with HOME and the XDG folders in `home` and none of our variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTIC_FLOW_", "ONNX_"))}
    env.update(HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"), XDG_STATE_HOME=str(home / "state"))
    return env


@pytest.fixture(scope="session")
def real_model_dir() -> Path:
    """The installed default model (SmolLM2-135M-Instruct, int4).  `make test` installs it first."""
    if not (_DEFAULT_MODEL / "genai_config.json").is_file():
        pytest.fail(f"the default model is not installed at {_DEFAULT_MODEL}; run `make model`")
    return _DEFAULT_MODEL


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    """An empty workspace folder for the agent tools."""
    root = tmp_path / "ws"
    root.mkdir()
    return root


@pytest.fixture()
def local_model(real_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    """The CLI will start its own proxy for the real model on a free port; returns the port."""
    port = supervisor.free_port()
    monkeypatch.setenv("ONNX_MODEL_PATH", str(real_model_dir))
    monkeypatch.setenv("ONNX_PROXY_PORT", str(port))
    return port


ProxyFactory = Callable[..., AbstractContextManager[supervisor.ProxyProcess]]


@pytest.fixture(scope="session")
def proxy_factory(real_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> ProxyFactory:
    """Start the real proxy process on a free port through the product's launcher:

        with proxy_factory(api_key="k", max_batch=1) as proxy: ...

    Keyword arguments are ProxySettings fields.  On exit the proxy is stopped, and no process of its
    tree may survive."""

    @contextmanager
    def start(**overrides: Any) -> Iterator[supervisor.ProxyProcess]:
        home = tmp_path_factory.mktemp("proxyhome")
        env = home_env(home)
        fields: dict[str, Any] = {"port": supervisor.free_port(), "model": str(real_model_dir),
                                  "model_dir": settings.model_dir(env), **overrides}
        with supervisor.launch(settings.ProxySettings(**fields), deadline_s=120, env=env) as proxy:
            tree = _tree(proxy.pid)
            yield proxy
        # The resource tracker of multiprocessing leaves when its pipe from the proxy closes: a moment.
        _, survivors = psutil.wait_procs([p for p in tree if _alive(p)], timeout=5)
        survivors = [p for p in survivors if _alive(p)]
        assert not survivors, f"processes left running after stop: {survivors}"

    return start


@pytest.fixture(scope="module")
def proxy(proxy_factory: ProxyFactory) -> Iterator[supervisor.ProxyProcess]:
    """One proxy with the default settings, shared by a test module (a module may define its own)."""
    with proxy_factory() as handle:
        yield handle


@pytest.fixture()
def oai(proxy: supervisor.ProxyProcess) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=proxy.url + "/v1", api_key="local", max_retries=0) as sdk:
        yield sdk


@pytest.fixture()
def client(proxy: supervisor.ProxyProcess) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=proxy.url, api_key="local", max_retries=0) as sdk:
        yield sdk  # closed after the test: no pooled connection is left for the GC to find


@pytest.fixture()
async def engine(real_model_dir: Path) -> AsyncIterator[WorkerEngine]:
    """The real engine (inference process and scheduler) on the default model, without the proxy."""
    eng = await WorkerEngine.start(real_model_dir, "smollm2-135m", ("cpu",), 0, 4)
    try:
        yield eng
    finally:
        await eng.close()


def _tree(pid: int | None) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _alive(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
