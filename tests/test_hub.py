"""Downloading a hub model folder through huggingface_hub's real HTTP code against a local hub
(tests/hub_server.py) that serves the real default model under the phi-4-mini catalog entry's
repository and subfolder."""

from __future__ import annotations

import filecmp
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import huggingface_hub.constants
import pytest
import typer
from typer.testing import CliRunner

from agentic_flow.cli import models_cmd
from agentic_flow.errors import ModelError, ModelNotInstalled
from agentic_flow.models import catalog, hub, store
from agentic_flow.models.verify import MANIFEST_FILE

# tests/ is not a package; the local hub lives next to this file.
sys.path.insert(0, str(Path(__file__).parent))
from hub_server import COMMIT, LocalHub

ENTRY = catalog.get("phi-4-mini")
assert ENTRY.repo_id is not None and ENTRY.subfolder is not None
REPO, SUB = ENTRY.repo_id, ENTRY.subfolder
DATA = f"{SUB}/model.onnx.data"


@pytest.fixture
def local_hub(real_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalHub]:
    # conftest sets HF_HUB_OFFLINE=1 so no test reaches the real hub; huggingface_hub reads it once,
    # at import, into this constant.  Only this loopback server is reachable here.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    files = {f"{SUB}/{item.name}": item for item in real_model_dir.iterdir() if item.name != MANIFEST_FILE}
    readme = tmp_path / "README.md"
    readme.write_text("# not part of the model folder\n")
    files["README.md"] = readme
    files["cuda/cuda-int4/genai_config.json"] = real_model_dir / "genai_config.json"
    with LocalHub(REPO, files) as server:
        yield server


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "store"


class Recorder:
    def __init__(self) -> None:
        self.steps: list[str] = []
        self.transfers: list[tuple[int, int]] = []

    def step(self, text: str) -> None:
        self.steps.append(text)

    def transfer(self, done: int, total: int) -> None:
        self.transfers.append((done, total))


def model_files(real_model_dir: Path) -> list[Path]:
    return [item for item in real_model_dir.iterdir() if item.name != MANIFEST_FILE]


def test_pull_fetches_the_subfolder_flat_and_verifies(local_hub: LocalHub, root: Path,
                                                      real_model_dir: Path) -> None:
    progress = Recorder()
    result = store.install("phi-4-mini", endpoint=local_hub.url, store=root, progress=progress)

    assert result.changed and result.path == root / "phi-4-mini"
    expected = {p.name for p in model_files(real_model_dir)} | {MANIFEST_FILE}
    assert {p.name for p in result.path.iterdir()} == expected
    assert filecmp.cmp(result.path / "model.onnx.data", real_model_dir / "model.onnx.data", shallow=False)
    assert store.check("phi-4-mini", store=root).ok
    assert sorted(p.name for p in root.iterdir()) == ["phi-4-mini"]  # no temporary or partial folders

    total = sum(p.stat().st_size for p in model_files(real_model_dir))
    assert progress.transfers[-1] == (total, total)
    assert [done for done, _ in progress.transfers] == sorted(done for done, _ in progress.transfers)
    assert not any("README" in seen.path or "/cuda/" in seen.path for seen in local_hub.seen)


def test_an_interrupted_transfer_fails_cleanly_and_the_next_run_resumes(
    local_hub: LocalHub, root: Path, real_model_dir: Path
) -> None:
    local_hub.break_next.add(DATA)
    with pytest.raises(ModelError, match="run the same pull again to continue where it stopped"):
        store.install("phi-4-mini", endpoint=local_hub.url, store=root)

    # Nothing that looks installed; the partial bytes are kept for the next run.
    with pytest.raises(ModelNotInstalled):
        store.resolve("phi-4-mini", store=root)
    assert not [p for p in root.iterdir() if p.name.startswith(".tmp-")]
    part = root / ".partial-phi-4-mini" / COMMIT / ("model.onnx.data" + hub.PART_SUFFIX)
    kept = part.stat().st_size
    assert 0 < kept < (real_model_dir / "model.onnx.data").stat().st_size

    progress = Recorder()
    result = store.install("phi-4-mini", endpoint=local_hub.url, store=root, progress=progress)

    ranges = [seen.range for seen in local_hub.byte_requests(DATA)]
    assert ranges == [None, f"bytes={kept}-"]  # first run from 0, second run from where it stopped
    assert len(local_hub.byte_requests(f"{SUB}/genai_config.json")) == 1  # finished files are kept
    assert filecmp.cmp(result.path / "model.onnx.data", real_model_dir / "model.onnx.data", shallow=False)
    assert store.check("phi-4-mini", store=root).ok
    assert sorted(p.name for p in root.iterdir()) == ["phi-4-mini"]


def test_a_corrupted_transfer_is_caught_by_the_checksum_and_discarded(
    local_hub: LocalHub, root: Path, real_model_dir: Path
) -> None:
    local_hub.corrupt_next.add(DATA)
    with pytest.raises(ModelError, match=re.escape("model.onnx.data: checksum mismatch")):
        store.install("phi-4-mini", endpoint=local_hub.url, store=root)
    assert not (root / ".partial-phi-4-mini" / COMMIT / ("model.onnx.data" + hub.PART_SUFFIX)).exists()

    result = store.install("phi-4-mini", endpoint=local_hub.url, store=root)
    assert local_hub.byte_requests(DATA)[-1].range is None  # the bad file was fetched afresh
    assert filecmp.cmp(result.path / "model.onnx.data", real_model_dir / "model.onnx.data", shallow=False)


def test_hub_errors_become_model_errors(local_hub: LocalHub, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ModelError, match="the model hub refused the download of nobody/nothing"):
        hub.download_folder("nobody/nothing", SUB, tmp_path / "out", partial_dir=tmp_path / "p",
                            endpoint=local_hub.url)
    with pytest.raises(ModelError, match=f"has no files under no-such-folder/ at commit {COMMIT}"):
        hub.download_folder(REPO, "no-such-folder", tmp_path / "out", partial_dir=tmp_path / "p",
                            endpoint=local_hub.url)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelError, match="HF_HUB_OFFLINE is set"):
        hub.download_folder(REPO, SUB, tmp_path / "out", partial_dir=tmp_path / "p", endpoint=local_hub.url)
    assert not (tmp_path / "out").exists()


def test_cli_pull_downloads_with_a_progress_bar(local_hub: LocalHub, root: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTIC_FLOW_MODEL_DIR", str(root))
    main = typer.Typer()
    main.add_typer(models_cmd.app, name="models")
    result = CliRunner().invoke(main, ["models", "pull", "phi-4-mini", "--endpoint", local_hub.url])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"Installed phi-4-mini in {root / 'phi-4-mini'}"
    assert "done: downloading phi-4-mini" in result.stderr and "done: verifying the model files" in result.stderr
    assert "90.0 MB)" in result.stderr  # the bytes the step moved
