"""The model store (resolve, install, list, remove) and the `models` commands.

Installs use a builder that copies the real default model instead of converting it (40 s); the
conversion itself is exercised by `make model`."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner, Result

from agentic_flow.cli import models_cmd
from agentic_flow.errors import ConfigError, ModelError, ModelNotInstalled, VerifyError
from agentic_flow.models import store
from agentic_flow.models.catalog import CatalogEntry
from agentic_flow.models.store import InstallProgress
from agentic_flow.models.verify import MANIFEST_FILE

NAME = "smollm2-135m"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "store"


class CopyBuilder:
    """Writes the real model into the install's output folder, counting calls and steps."""

    def __init__(self, source: Path, damage: Callable[[Path], None] | None = None) -> None:
        self.source = source
        self.damage = damage
        self.calls = 0

    def __call__(self, entry: CatalogEntry, out_dir: Path, work_dir: Path, progress: InstallProgress) -> None:
        self.calls += 1
        progress.step(f"copying {entry.name}")
        (work_dir / "scratch").write_text("scratch files must not end up in the model")
        fresh = shutil.ignore_patterns(MANIFEST_FILE)  # a new build has no manifest yet
        shutil.copytree(self.source, out_dir, dirs_exist_ok=True, ignore=fresh)
        if self.damage is not None:
            self.damage(out_dir)


def leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name.startswith("."))


def install_copy(root: Path, source: Path) -> Path:
    return store.install(NAME, builder=CopyBuilder(source), store=root).path


# ---------------------------------------------------------------- resolve


def test_resolve_an_existing_folder_path(real_model_dir: Path) -> None:
    assert store.resolve(str(real_model_dir)) == real_model_dir.resolve()


def test_resolve_an_installed_name(root: Path, real_model_dir: Path) -> None:
    install_copy(root, real_model_dir)
    assert store.resolve(NAME, store=root) == root / NAME


def test_a_catalog_name_is_not_shadowed_by_a_folder_in_the_cwd(root: Path, real_model_dir: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    install_copy(root, real_model_dir)
    (tmp_path / NAME).mkdir()
    monkeypatch.chdir(tmp_path)
    assert store.resolve(NAME, store=root) == root / NAME
    assert store.resolve(f"./{NAME}", store=root) == (tmp_path / NAME).resolve()


def test_resolve_a_name_that_is_not_installed_says_how_to_pull(root: Path) -> None:
    with pytest.raises(ModelNotInstalled, match="`agentic-flow models pull phi-4-mini`"):
        store.resolve("phi-4-mini", store=root)


def test_resolve_unknown_names_and_paths(root: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="Did you mean 'phi-4-mini'"):
        store.resolve("phi4-mini", store=root)
    with pytest.raises(ConfigError, match="does not exist"):
        store.resolve(str(tmp_path / "no-such-folder"), store=root)
    (tmp_path / "model.onnx").write_bytes(b"")
    with pytest.raises(ConfigError, match="is a file"):
        store.resolve(str(tmp_path / "model.onnx"), store=root)


def test_store_defaults_to_the_settings_location(monkeypatch: pytest.MonkeyPatch, root: Path) -> None:
    monkeypatch.setenv("AGENTIC_FLOW_MODEL_DIR", str(root))
    assert store.model_path(NAME) == root / NAME


# ---------------------------------------------------------------- install


def test_install_verifies_writes_a_manifest_and_is_idempotent(root: Path, real_model_dir: Path) -> None:
    builder = CopyBuilder(real_model_dir)
    steps: list[str] = []

    class Steps:
        def step(self, text: str) -> None:
            steps.append(text)

        def transfer(self, done: int, total: int) -> None:
            raise AssertionError("a copy transfers no bytes")

    first = store.install(NAME, builder=builder, store=root, progress=Steps())
    assert first.changed and first.path == root / NAME
    assert steps == [f"copying {NAME}", "verifying the model files"]
    manifest = json.loads((first.path / MANIFEST_FILE).read_text())
    assert manifest["name"] == NAME
    assert manifest["files"]["model.onnx.data"] == (real_model_dir / "model.onnx.data").stat().st_size
    assert not (first.path / "scratch").exists()
    assert leftovers(root) == []

    again = store.install(NAME, builder=builder, store=root)
    assert not again.changed and builder.calls == 1

    forced = store.install(NAME, builder=builder, store=root, force=True)
    assert forced.changed and builder.calls == 2
    assert store.check(NAME, store=root).ok
    assert leftovers(root) == []


def test_a_model_installed_by_an_older_recipe_is_brought_up_to_date_in_place(root: Path, real_model_dir: Path,
                                                                              tmp_path: Path) -> None:
    from agentic_flow.models.prune import prune_lm_head
    from agentic_flow.models.tail_logits import has_tail_logits
    from agentic_flow.models.verify import read_manifest, write_manifest
    from tests.test_prune import unpruned_copy

    builder = CopyBuilder(unpruned_copy(real_model_dir, tmp_path / "plain"))
    path = store.install(NAME, builder=builder, store=root).path
    manifest = json.loads((path / MANIFEST_FILE).read_text())
    assert manifest["build"] == 3 and store.installed_build(path) == 3
    # As an install of build 1 left it: the builder's graph, no "build" in the manifest.
    del manifest["build"]
    (path / MANIFEST_FILE).write_text(json.dumps(manifest))
    assert store.installed_build(path) == 1 and not has_tail_logits(path)
    data = (path / "model.onnx.data").stat().st_ino

    updated = store.install(NAME, builder=builder, store=root)
    assert updated.changed and builder.calls == 1  # no rebuild
    assert has_tail_logits(path)
    assert store.installed_build(path) == 3 and store.check(NAME, store=root).ok
    assert (path / "model.onnx.data").stat().st_ino == data  # the weights were not rewritten
    assert not store.install(NAME, builder=builder, store=root).changed
    assert leftovers(root) == [] and not list(path.glob("*.tmp"))

    # From build 2 (the last-token pass of models/prune.py) as well, still without a rebuild.
    shutil.copytree(unpruned_copy(path, tmp_path / "again"), path, dirs_exist_ok=True)
    assert prune_lm_head(path) and not has_tail_logits(path)
    write_manifest(path, {**read_manifest(path), "build": 2})  # the sizes of build 2's graph
    assert store.install(NAME, builder=builder, store=root).changed and builder.calls == 1
    assert has_tail_logits(path) and store.installed_build(path) == 3 and store.check(NAME, store=root).ok


def test_a_damaged_install_is_rebuilt_without_force(root: Path, real_model_dir: Path) -> None:
    builder = CopyBuilder(real_model_dir)
    path = store.install(NAME, builder=builder, store=root).path
    (path / "tokenizer.json").unlink()
    assert store.install(NAME, builder=builder, store=root).changed
    assert builder.calls == 2 and (path / "tokenizer.json").is_file()


def test_a_failing_builder_leaves_no_model_and_no_temporary_folder(root: Path, real_model_dir: Path) -> None:
    def fail_half_way(out_dir: Path) -> None:
        raise ModelError("the converter crashed")

    with pytest.raises(ModelError, match="the converter crashed"):
        store.install(NAME, builder=CopyBuilder(real_model_dir, fail_half_way), store=root)
    assert not (root / NAME).exists()
    assert leftovers(root) == []


def test_ctrl_c_during_install_cleans_up(root: Path, real_model_dir: Path) -> None:
    def interrupt(out_dir: Path) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        store.install(NAME, builder=CopyBuilder(real_model_dir, interrupt), store=root)
    assert list(root.iterdir()) == []


def test_a_build_that_fails_verification_is_not_installed(root: Path, real_model_dir: Path) -> None:
    def truncate(out_dir: Path) -> None:
        with open(out_dir / "model.onnx.data", "r+b") as handle:
            handle.truncate(1000)

    with pytest.raises(VerifyError, match=re.escape("model.onnx.data is truncated")) as caught:
        store.install(NAME, builder=CopyBuilder(real_model_dir, truncate), store=root)
    assert "agentic-flow models pull smollm2-135m --force" in str(caught.value)
    assert list(root.iterdir()) == []


def test_a_failed_reinstall_keeps_the_old_model(root: Path, real_model_dir: Path) -> None:
    install_copy(root, real_model_dir)

    def fail(out_dir: Path) -> None:
        raise ModelError("boom")

    with pytest.raises(ModelError):
        store.install(NAME, builder=CopyBuilder(real_model_dir, fail), store=root, force=True)
    assert store.check(NAME, store=root).ok


def test_a_stale_temporary_folder_is_never_a_model_and_is_cleaned(root: Path, real_model_dir: Path) -> None:
    # What a crash (kill -9) during an install leaves behind: a complete-looking copy in a temp folder.
    stale = root / f".tmp-{NAME}-k3j_x9q2" / "model"
    shutil.copytree(real_model_dir, stale)
    other = root / ".tmp-phi-4-mini-abc12345"
    other.mkdir()
    with pytest.raises(ModelNotInstalled):
        store.resolve(NAME, store=root)
    assert not any(row.installed for row in store.list_models(store=root))

    install_copy(root, real_model_dir)
    assert leftovers(root) == [".tmp-phi-4-mini-abc12345"]  # another model's leftovers wait for its own pull


def test_a_running_install_of_the_same_model_is_refused(root: Path, real_model_dir: Path) -> None:
    root.mkdir()
    (root / f".lock-{NAME}").write_text(json.dumps({"pid": os.getppid()}))  # a live process holds it
    with pytest.raises(ModelError, match=f"another install or removal of {NAME} is running"):
        install_copy(root, real_model_dir)


def test_a_lock_left_by_a_dead_process_is_taken_over(root: Path, real_model_dir: Path) -> None:
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)
    root.mkdir()
    (root / f".lock-{NAME}").write_text(json.dumps({"pid": int(finished.stdout)}))
    assert install_copy(root, real_model_dir) == root / NAME
    assert leftovers(root) == []


def test_install_rejects_unknown_names(root: Path, real_model_dir: Path) -> None:
    with pytest.raises(
        ConfigError, match=re.escape("Known models: smollm2-135m, qwen2.5-coder-0.5b, qwen2.5-coder-1.5b, phi-4-mini")
    ):
        store.install("llama", builder=CopyBuilder(real_model_dir), store=root)


# ---------------------------------------------------------------- list and remove


def test_list_reports_each_catalog_model(root: Path, real_model_dir: Path) -> None:
    install_copy(root, real_model_dir)
    rows = {row.name: row for row in store.list_models(store=root)}
    assert set(rows) == {NAME, "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b", "phi-4-mini"}
    assert rows[NAME].installed and rows[NAME].path == root / NAME
    assert rows[NAME].size_on_disk == sum(p.stat().st_size for p in (root / NAME).iterdir())
    assert not rows["phi-4-mini"].installed and rows["phi-4-mini"].size_on_disk is None
    assert "Hugging Face" in rows["phi-4-mini"].source
    assert store.installed_names(store=root) == [NAME]


def test_catalog_name_for_a_store_folder(root: Path, real_model_dir: Path) -> None:
    path = install_copy(root, real_model_dir)
    assert store.catalog_name_for(path, store=root) == NAME
    assert store.catalog_name_for(real_model_dir.parent.parent, store=root) is None


def test_remove(root: Path, real_model_dir: Path) -> None:
    install_copy(root, real_model_dir)
    (root / ".partial-smollm2-135m").mkdir()
    assert store.remove(NAME, store=root) == root / NAME
    assert list(root.iterdir()) == []
    with pytest.raises(ModelNotInstalled, match="nothing to remove"):
        store.remove(NAME, store=root)
    with pytest.raises(ConfigError):
        store.remove("nope", store=root)


# ---------------------------------------------------------------- the `models` commands


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, root: Path) -> Callable[..., Result]:
    monkeypatch.setenv("AGENTIC_FLOW_MODEL_DIR", str(root))
    main = typer.Typer()
    main.add_typer(models_cmd.app, name="models")
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None) -> Result:
        return runner.invoke(main, ["models", *args], input=input)

    return invoke


def test_cli_list_and_path(cli: Callable[..., Result], root: Path, real_model_dir: Path) -> None:
    install_copy(root, real_model_dir)
    listed = cli("list")
    assert listed.exit_code == 0, listed.output
    line = next(line for line in listed.stdout.splitlines() if NAME in line)
    assert "yes" in line and "MB" in line and "tests and demos" in line
    coder = next(line for line in listed.stdout.splitlines() if "qwen2.5-coder-1.5b" in line)
    assert "~982.0 MB" in coder and "~8.5" in coder and "agents" in coder  # size, tok/s, use for
    assert "phi-4-mini" in listed.stdout and f"Models live in {root}" in listed.stdout

    found = cli("path", NAME)
    assert found.exit_code == 0 and found.stdout.strip() == str(root / NAME)

    missing = cli("path", "phi-4-mini")
    assert missing.exit_code == ModelNotInstalled.exit_code
    assert missing.stdout == ""
    assert "agentic-flow models pull phi-4-mini" in missing.stderr


def test_cli_verify(cli: Callable[..., Result], root: Path, real_model_dir: Path, tmp_path: Path) -> None:
    install_copy(root, real_model_dir)
    ok = cli("verify")  # the default model
    assert ok.exit_code == 0 and ok.stdout.strip() == f"OK {root / NAME}"

    broken = tmp_path / "broken"
    shutil.copytree(real_model_dir, broken)
    (broken / "tokenizer.json").unlink()
    (broken / "genai_config.json").write_text("not json")
    failed = cli("verify", str(broken))
    assert failed.exit_code == VerifyError.exit_code
    assert "2 problems" in failed.stderr
    assert "tokenizer.json is missing" in failed.stderr
    assert "genai_config.json is not valid JSON" in failed.stderr

    unknown = cli("verify", "smollm")
    assert unknown.exit_code == ConfigError.exit_code and "Did you mean 'smollm2-135m'" in unknown.stderr


def test_cli_pull_of_an_installed_model_does_nothing(cli: Callable[..., Result], root: Path,
                                                     real_model_dir: Path) -> None:
    install_copy(root, real_model_dir)
    before = (root / NAME / MANIFEST_FILE).read_text()
    result = cli("pull", NAME)
    assert result.exit_code == 0, result.output
    assert "already installed and verified" in result.stdout
    assert (root / NAME / MANIFEST_FILE).read_text() == before


def test_cli_rm_asks_first(cli: Callable[..., Result], root: Path, real_model_dir: Path) -> None:
    install_copy(root, real_model_dir)
    declined = cli("rm", NAME, input="n\n")
    assert declined.exit_code == 1 and (root / NAME).is_dir()
    removed = cli("rm", NAME, "--yes")
    assert removed.exit_code == 0 and not (root / NAME).exists()
    again = cli("rm", NAME, "--yes")
    assert again.exit_code == ModelNotInstalled.exit_code and "nothing to remove" in again.stderr


def test_verify_command_defaults_to_onnx_model_path(real_model_dir: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from agentic_flow.cli.models_cmd import app

    broken = tmp_path / "broken"
    broken.mkdir()
    monkeypatch.setenv("ONNX_MODEL_PATH", str(broken))
    result = CliRunner().invoke(app, ["verify"])
    assert result.exit_code == VerifyError.exit_code
    assert "genai_config.json" in result.output
