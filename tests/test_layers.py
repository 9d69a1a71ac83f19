"""The layering the architecture promises (docs/architecture.md), checked on the imports themselves:
the wire packages encode and decode, and load nothing of the engine, of tool use or of serving."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import agentic_flow

WIRE_PACKAGES = ("anthropic", "openai")
FORBIDDEN = ("agentic_flow.engine", "agentic_flow.tooluse", "agentic_flow.serving", "agentic_flow.proxy")
ROOT = Path(agentic_flow.__file__).parent


def imported_modules(path: Path, package: str) -> set[str]:
    """Every module a file imports, relative imports resolved against its package."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join([*base, node.module] if node.module else base)
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def test_wire_packages_import_nothing_of_the_engine_tooluse_or_serving() -> None:
    offenders = []
    for wire in WIRE_PACKAGES:
        for path in sorted((ROOT / wire).glob("*.py")):
            for name in imported_modules(path, f"agentic_flow.{wire}"):
                if name.startswith(FORBIDDEN):
                    offenders.append(f"{wire}/{path.name}: {name}")
    assert offenders == []


def test_the_static_check_sees_a_relative_import() -> None:
    """The control: the proxy's local backend does import the engine, and the check finds it."""
    names = imported_modules(ROOT / "proxy" / "local_backend.py", "agentic_flow.proxy")
    assert "agentic_flow.engine.base" in names and "agentic_flow.serving.generation" in names


def test_loading_every_wire_module_loads_no_engine() -> None:
    """At run time too (a package __init__ could pull a forbidden module in): import every module of
    both wire packages, and the agent's HTTP client, in a fresh interpreter."""
    modules = [f"agentic_flow.{wire}.{m.name}" for wire in WIRE_PACKAGES
               for m in pkgutil.iter_modules([str(ROOT / wire)])] + ["agentic_flow.agents.client"]
    code = (f"import importlib, sys\nfor m in {modules!r}: importlib.import_module(m)\n"
            f"print(sorted(n for n in sys.modules if n.startswith({FORBIDDEN!r})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert len(modules) > 10
