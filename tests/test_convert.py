"""The conversion (models/int4_build.py) builds the same model as the plain path did before it.

The plain path (de-quantize the whole GGUF to a float32 Hugging Face folder, then run the builder on
it) built the default model with the weights and graph hashed below; the layer-at-a-time path must
write the same bytes, and so answer the same greedy text.  The files are compared, not a tolerance:
`model.onnx` only differs in `producer_version`, which the builder stamps with the git commit of the
checkout around the virtual environment.

The installed default model is checked on every run (`make test` installs it through the current
path).  Converting it again here costs a minute of CPU and about 1.2 GB, so that test is opt-in:
AGENTIC_FLOW_TEST_CONVERT=1.  docs/models.md has the same comparison for the Qwen coders.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import anthropic
import pytest

from agentic_flow.models import store
from agentic_flow.models.convert import missing_convert_modules

# SmolLM2-135M-Instruct, build 2 (int4 + the last-token LM head), from the plain path.
DATA_SHA256 = "59a4e9c8323f9eb0d7ae495466594bdf9efe3155d014963e2aade1cd97d848ea"
GRAPH_SHA256 = "2eb56b022023a50a664809ff21d8b91cac759a78896df776e5abe0718a5dac67"  # build 3; producer_version cleared

# Greedy answers of the plain path's build through the proxy (max_tokens 24, temperature 0).
GREEDY = {
    "What is the capital of France?":
        "The capital of France is Paris, capital of the French language, culture, and culture. It's a city that's",
    "Write a Python function that adds two numbers.":
        '```python\ndef add_numbers(num1, num2):\n    """\n    Function to add two numbers.\n   ',
    "Name three colours.": "The three colours are:\n\n1. Red\n2. Blue\n3. Green",
}


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def graph_sha256(model_dir: Path) -> str:
    import onnx

    model = onnx.load(str(model_dir / "model.onnx"), load_external_data=False)
    model.producer_version = ""
    return hashlib.sha256(model.SerializeToString(deterministic=True)).hexdigest()


def test_the_installed_default_model_is_the_plain_paths_build(real_model_dir: Path) -> None:
    assert file_sha256(real_model_dir / "model.onnx.data") == DATA_SHA256
    assert graph_sha256(real_model_dir) == GRAPH_SHA256


@pytest.mark.parametrize("prompt", sorted(GREEDY))
def test_greedy_answers_are_the_plain_paths(client: anthropic.Anthropic, prompt: str) -> None:
    reply = client.messages.create(model="smollm2-135m", max_tokens=24, extra_body={"temperature": 0},
                                   messages=[{"role": "user", "content": prompt}])
    assert reply.content[0].type == "text"
    assert reply.content[0].text == GREEDY[prompt]


@pytest.mark.skipif(os.environ.get("AGENTIC_FLOW_TEST_CONVERT") != "1",
                    reason="converts the default model (a minute, 1.2 GB): set AGENTIC_FLOW_TEST_CONVERT=1")
@pytest.mark.skipif(bool(missing_convert_modules()), reason="needs the convert extra")
def test_converting_again_writes_the_same_bytes(tmp_path: Path) -> None:
    installed = store.install("smollm2-135m", store=tmp_path / "store").path
    assert file_sha256(installed / "model.onnx.data") == DATA_SHA256
    assert graph_sha256(installed) == GRAPH_SHA256
    assert [p.name for p in (tmp_path / "store").iterdir() if p.name.startswith(".")] == []
