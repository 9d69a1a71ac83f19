"""What an install checks before it starts (models/resources.py, store.install) and how it reports
progress in a log: too little memory or disk, a read-only store, plain lines when not on a terminal."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner, Result

from agentic_flow.cli import models_cmd
from agentic_flow.errors import ModelError
from agentic_flow.models import catalog, resources, store
from agentic_flow.models.catalog import CatalogEntry
from agentic_flow.models.resources import GB, NotEnoughResources, Room
from agentic_flow.models.store import InstallProgress
from agentic_flow.models.verify import MANIFEST_FILE

CODER = catalog.get("qwen2.5-coder-1.5b")
AGENTIC_FLOW = str(Path(sys.executable).parent / "agentic-flow")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def cli(root: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    monkeypatch.setenv("AGENTIC_FLOW_MODEL_DIR", str(root))
    main = typer.Typer()
    main.add_typer(models_cmd.app, name="models")
    runner = CliRunner()
    return lambda *args: runner.invoke(main, ["models", *args])


def copy_builder(source: Path) -> Callable[[CatalogEntry, Path, Path, InstallProgress], None]:
    def build(entry: CatalogEntry, out_dir: Path, work_dir: Path, progress: InstallProgress) -> None:
        progress.step(f"copying {entry.name}")
        progress.transfer(2_500_000, 2_500_000)
        shutil.copytree(source, out_dir, dirs_exist_ok=True, ignore=shutil.ignore_patterns(MANIFEST_FILE))
    return build


def test_too_little_memory_names_the_need_the_room_and_a_smaller_model(root: Path) -> None:
    with pytest.raises(NotEnoughResources) as caught:
        resources.check(CODER, root, Room(memory=int(4.5 * GB), disk=100 * GB))
    message = str(caught.value)
    assert f"needs about {CODER.install_memory / GB:.1f} GB of free memory" in message
    assert "4.5 GB is available now" in message
    assert "or install qwen2.5-coder-0.5b" in message and "--skip-checks" in message
    resources.check(CODER, root, Room(memory=CODER.install_memory, disk=100 * GB))  # just enough


def test_too_little_disk_counts_what_an_earlier_pull_left(root: Path) -> None:
    short = Room(memory=100 * GB, disk=CODER.install_disk - 2 * GB)
    with pytest.raises(NotEnoughResources, match=r"writes about .* GB to .* and .* GB is free there"):
        resources.check(CODER, root, short)
    resources.check(CODER, root, short, already=2 * GB)  # the joined GGUF from a pull that stopped


def test_pull_refuses_up_front_when_memory_is_short(cli: Callable[..., Result], root: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # No machine running the tests is short of memory: make the entry need more than any has.
    huge = replace(CODER, install_memory=10**15)
    monkeypatch.setitem(catalog.CATALOG, CODER.name, huge)
    result = cli("pull", CODER.name)
    assert result.exit_code == ModelError.exit_code, result.output
    assert "of free memory at its peak" in result.stderr and "nothing was started" in result.stderr
    assert sorted(p.name for p in root.iterdir()) == []  # no download, no temporary folder, no lock


def test_a_read_only_store_is_a_clear_error(cli: Callable[..., Result], tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    if os.geteuid() == 0:  # root writes through permission bits: use a file system that refuses it
        locked = Path("/sys/kernel/agentic-flow-store")
        if not Path("/sys/kernel").is_dir():
            pytest.skip("no read-only file system to try as root")
    else:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
    monkeypatch.setenv("AGENTIC_FLOW_MODEL_DIR", str(locked))
    result = cli("pull", "smollm2-135m")
    assert result.exit_code == ModelError.exit_code
    assert f"the model store {locked} is not writable" in result.stderr
    assert "AGENTIC_FLOW_MODEL_DIR" in result.stderr and "Traceback" not in result.output


def test_an_installed_model_in_a_read_only_store_is_used_as_it_is(tmp_path: Path, real_model_dir: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root writes through permission bits")
    root = tmp_path / "store"
    store.install("smollm2-135m", builder=copy_builder(real_model_dir), store=root)
    root.chmod(0o500)
    try:
        result = store.install("smollm2-135m", store=root)
        assert not result.changed
    finally:
        root.chmod(0o700)


def test_progress_in_a_log_is_one_plain_line_per_step(cli: Callable[..., Result], root: Path,
                                                      real_model_dir: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # CliRunner's stderr is not a terminal, as in CI, a pipe or nohup.
    monkeypatch.setattr(store, "_default_builder", lambda *args: copy_builder(real_model_dir))
    result = cli("pull", "smollm2-135m")
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert [line.split(" (")[0] for line in lines] == ["done: copying smollm2-135m", "done: verifying the model files"]
    assert lines[0].endswith(" s, 2.5 MB)") and "━" not in result.stderr and "✓" not in result.stderr


@pytest.mark.skipif(os.environ.get("AGENTIC_FLOW_TEST_CONVERT") != "1",
                    reason="starts a real conversion (1 GB): set AGENTIC_FLOW_TEST_CONVERT=1")
def test_ctrl_c_during_a_real_conversion_leaves_nothing_half_installed(tmp_path: Path) -> None:
    root = tmp_path / "store"
    env = {**os.environ, "AGENTIC_FLOW_MODEL_DIR": str(root)}
    pull = subprocess.Popen([AGENTIC_FLOW, "models", "pull", "smollm2-135m"], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 600
    # Poll until the conversion child has written its first files: the install is half way.
    while not list(root.glob(".tmp-smollm2-135m-*/work/hf/*")):
        assert pull.poll() is None, pull.communicate()
        assert time.monotonic() < deadline, "the conversion did not start"
        time.sleep(0.2)
    os.killpg(pull.pid, signal.SIGINT)  # what Ctrl-C on a terminal does: the whole process group
    _, stderr = pull.communicate(timeout=120)
    assert pull.returncode == 130, stderr
    assert "stopped: converting" in stderr and "interrupted" in stderr
    assert sorted(p.name for p in root.iterdir()) == []  # no model, no temporary folder, no lock
