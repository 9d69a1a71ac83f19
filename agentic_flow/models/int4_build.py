"""GGUF to int4 ONNX in one child process, one layer at a time: a few GB of memory, not 15.

The plain path (de-quantize the whole GGUF to a float32 Hugging Face folder, then run the
onnxruntime-genai builder on it) held the float32 model twice in each step: the 1.5B coder peaked at
15 GB.  This module drives the same code on the same numbers, in a different order:

1. The model is created on the meta device (no memory).  Each weight is de-quantized only when the
   builder reaches its layer, with the very code transformers' GGUF loader runs (gguf's `dequantize`,
   then the architecture's tensor processor), so the float32 values are bit for bit the ones
   `from_pretrained(gguf_file=...)` gives.
2. The builder is the onnxruntime-genai builder, run as its own command line would run it (`runpy`),
   with one change: its `load_weights` returns that lazy model, whose `modules()` loads a layer as the
   builder reaches it, and after the builder has made the layer's ONNX nodes, writes the layer's
   float weights to a spill file (`work/spill.bin`) and frees them.  The graph keeps each spilled
   weight as an external tensor on that file, so the builder's int4 pass (MatMulNBitsQuantizer, run
   unchanged) reads one weight at a time from disk.
3. The tokenizer, config.json and generation_config.json the builder reads are written as
   `save_pretrained` writes them; no float weights are written but the spill file.

The output files are byte for byte the plain path's (tests/test_convert.py checks the 135M model;
docs/models.md has the measurements for the coders).  Run as
`python -m agentic_flow.models.int4_build GGUF OUT_DIR WORK_DIR [--tie-embeddings]`.
"""

from __future__ import annotations

import argparse
import os
import runpy
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SPILL_FILE = "spill.bin"
SPILL_MIN_BYTES = 1 << 16  # smaller tensors (norms, biases) stay in memory: a few MB in all
ALIGN = 64


class GgufWeights:
    """The GGUF's tensors under their Hugging Face names, de-quantized on demand."""

    def __init__(self, gguf: Path, tie_embeddings: bool) -> None:
        import torch  # type: ignore[import-not-found]
        from gguf import GGUFReader  # type: ignore[import-not-found]
        from transformers import AutoConfig, AutoModelForCausalLM  # type: ignore[import-not-found]
        from transformers.modeling_gguf_pytorch_utils import (  # type: ignore[import-not-found]
            TENSOR_PROCESSORS,
            TensorProcessor,
            get_gguf_hf_weights_map,
            load_gguf_checkpoint,
            read_field,
        )

        self.reader = GGUFReader(str(gguf))
        parsed = load_gguf_checkpoint(str(gguf), return_tensors=False)
        config = AutoConfig.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        architecture = read_field(self.reader, "general.architecture")[0]
        self.processor = TENSOR_PROCESSORS.get(architecture, TensorProcessor)(config=parsed.get("config", {}))
        gguf_to_hf = get_gguf_hf_weights_map(model, self.processor)
        self.tensors = {gguf_to_hf[t.name]: t for t in self.reader.tensors if t.name in gguf_to_hf}
        self.mapping = gguf_to_hf
        # The GGUF stores a separate output matrix: the plain path copies lm_head into embed_tokens
        # and ties them, as the output matrix is the better-kept copy (convert.py).
        if tie_embeddings and "lm_head.weight" in self.tensors:
            self.tensors["model.embed_tokens.weight"] = self.tensors["lm_head.weight"]
            config.tie_word_embeddings = True
        if "lm_head.weight" not in self.tensors and "model.embed_tokens.weight" in self.tensors:
            self.tensors["lm_head.weight"] = self.tensors["model.embed_tokens.weight"]  # tied in the file
        model.config = config
        model.tie_weights()
        self.model = model
        self.prefix = {id(m): name for name, m in model.named_modules(remove_duplicate=False)}

    def load(self, name: str) -> Any:
        """One weight as a float32 torch tensor, exactly as transformers' GGUF loader makes it."""
        import numpy as np
        import torch
        from gguf import dequantize

        tensor = self.tensors[name]
        weights = dequantize(tensor.data, tensor.tensor_type)
        result = self.processor.process(weights=weights, name=tensor.name, tensor_key_mapping=self.mapping,
                                        parsed_parameters={"tensors": {}, "config": {}})
        return torch.from_numpy(np.copy(result.weights)).to(torch.float32)

    def save_metadata(self, gguf: Path, hf_dir: Path) -> None:
        """What the builder reads besides the weights, written as save_pretrained writes it."""
        from transformers import AutoTokenizer

        AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name).save_pretrained(str(hf_dir))
        config = self.model.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        config.architectures = [type(self.model).__name__]
        config.dtype = "float32"
        config.save_pretrained(str(hf_dir))
        if self.model.can_generate():
            self.model.generation_config.save_pretrained(str(hf_dir))


class Spill:
    """Float weights the builder has turned into graph initializers, moved to one file on disk."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.file = open(folder / SPILL_FILE, "wb")  # noqa: SIM115 - open for the builder's whole run
        self.offset = 0
        self.spilled: set[str] = set()

    def spill(self, graph: Any) -> None:
        """Write every large in-memory initializer of `graph` to the file; the graph then reads it there."""
        import onnx_ir as ir  # type: ignore[import-not-found]

        for name, value in graph.initializers.items():
            tensor = value.const_value
            if name in self.spilled or tensor is None or isinstance(tensor, ir.ExternalTensor):
                continue
            if tensor.nbytes < SPILL_MIN_BYTES:
                continue
            data = tensor.tobytes()
            pad = -self.offset % ALIGN
            self.file.write(b"\0" * pad + data)
            self.offset += pad
            self.file.flush()
            # Relative to the working folder: the int4 pass reads external data from the current directory.
            value.const_value = ir.ExternalTensor(SPILL_FILE, self.offset, len(data), tensor.dtype,
                                                  shape=tensor.shape, name=tensor.name, base_dir=str(self.folder))
            self.offset += len(data)
            self.spilled.add(name)


def lazy_modules(weights: GgufWeights, builder: Any, spill: Spill) -> Iterator[Any]:
    """`model.modules()` in its usual order, each unit's weights loaded as the builder reaches it and
    spilled when it moves on.  A unit is a decoder layer, or a module with its own parameters outside
    one (the embedding, the final norm, the LM head)."""
    import torch

    model = weights.model
    inside_layer: set[int] = set()
    for module in torch.nn.Module.modules(model):
        unit = id(module) not in inside_layer and (
            builder.is_layer(module) or any(True for _ in module.parameters(recurse=False)))
        if builder.is_layer(module):
            inside_layer.update(id(m) for m in torch.nn.Module.modules(module))
        if unit:
            _load(module, weights)
        yield module
        if unit:
            spill.spill(builder.model.graph)
            _unload(module)


def _load(module: Any, weights: GgufWeights) -> None:
    import torch

    for sub in torch.nn.Module.modules(module):
        for attr, param in list(sub.named_parameters(recurse=False)):
            if param.is_meta:
                name = f"{weights.prefix[id(sub)]}.{attr}".lstrip(".")
                if name not in weights.tensors:
                    raise KeyError(f"the GGUF file has no tensor for the parameter {name}")
                sub._parameters[attr] = torch.nn.Parameter(weights.load(name), requires_grad=False)


def _unload(module: Any) -> None:
    import torch

    for sub in torch.nn.Module.modules(module):
        for attr, param in list(sub.named_parameters(recurse=False)):
            sub._parameters[attr] = torch.nn.Parameter(
                torch.empty(param.shape, dtype=param.dtype, device="meta"), requires_grad=False)


def build(gguf: Path, out_dir: Path, work_dir: Path, tie_embeddings: bool) -> None:
    import onnxruntime_genai.models  # noqa: F401  # puts the builder's folder on sys.path

    # The builder imports its classes as the top-level `builders` package: patch that one.
    from builders import base  # type: ignore[import-not-found]

    weights = GgufWeights(gguf, tie_embeddings)
    hf_dir = work_dir / "hf"
    weights.save_metadata(gguf, hf_dir)
    spill = Spill(work_dir)

    def load_weights(self: Any, input_path: str) -> Any:
        model = weights.model
        model.modules = lambda: lazy_modules(weights, self, spill)
        return model

    base.Model.load_weights = load_weights
    os.chdir(work_dir)  # the int4 pass resolves the spill file's relative location from here
    argv = ["-i", str(hf_dir), "-o", str(out_dir), "-p", "int4", "-e", "cpu", "-c", str(work_dir / "cache")]
    if tie_embeddings:
        argv += ["--extra_options", "shared_embeddings=true"]
    sys.argv = ["onnxruntime_genai.models.builder", *argv]
    runpy.run_module("onnxruntime_genai.models.builder", run_name="__main__", alter_sys=True)
    spill.file.close()
    (work_dir / SPILL_FILE).unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description="GGUF to int4 ONNX, one layer at a time.")
    parser.add_argument("gguf", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("work_dir", type=Path)
    parser.add_argument("--tie-embeddings", action="store_true")
    args = parser.parse_args()
    build(args.gguf.resolve(), args.out_dir.resolve(), args.work_dir.resolve(), args.tie_embeddings)


if __name__ == "__main__":
    main()
