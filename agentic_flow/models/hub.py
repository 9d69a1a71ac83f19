"""Download one folder of a Hugging Face hub repository, resumably.

huggingface_hub 2.x lists the repository (repo info, tree) and builds the resolve URLs, but we stream
the files ourselves: its own downloader writes each file to a process-unique temporary name and
deletes it on failure, so an interrupted multi-gigabyte transfer would start over from zero.  Here a
partial file survives a failed run (under `partial_dir`, keyed by commit) and the next run asks for
the rest with a Range request.  Every finished file is checked against the hub's own checksum
(LFS sha256, or the git blob sha1) before it counts as done, so a resumed file cannot be silently
corrupt.  A network failure is not retried in-process: it ends the run with a message that says to
run the same pull again, which continues where this one stopped.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import httpx2
from huggingface_hub import HfApi, RepoFile, constants, hf_hub_url
from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled
from huggingface_hub.utils import build_hf_headers, filter_repo_objects, get_session, hf_raise_for_status

from ..errors import ModelError

ByteProgress = Callable[[int, int], None]  # (bytes done, bytes total) over the whole folder
CHUNK = 1024 * 1024
PART_SUFFIX = ".part"
LIBRARY = "agentic-flow"


@dataclass(frozen=True)
class RemoteFile:
    repo_path: str  # path inside the repository
    local_path: str  # path inside the model folder: the subfolder prefix removed
    size: int
    sha256: str | None  # LFS files: sha256 of the content
    git_sha1: str  # the git blob id (of the LFS pointer, for LFS files)


def download_folder(
    repo_id: str,
    subfolder: str,
    dest: Path,
    *,
    partial_dir: Path,
    endpoint: str | None = None,
    revision: str | None = None,
    token: str | bool | None = None,
    on_bytes: ByteProgress | None = None,
) -> str:
    """Fetch every file under `subfolder` into `dest`, flattened; return the commit it came from.

    `endpoint` None means the library's default (https://huggingface.co).  `partial_dir` keeps
    unfinished and finished files between runs; the caller removes it once the model is installed.
    """
    try:
        commit, files = list_folder(repo_id, subfolder, endpoint=endpoint, revision=revision, token=token)
        cache = partial_dir / commit
        _drop_other_commits(partial_dir, keep=cache)
        counter = _Counter(sum(f.size for f in files), on_bytes)
        headers = build_hf_headers(token=token, library_name=LIBRARY)
        # Byte ranges must count raw file bytes, never a compressed encoding of them.
        headers["Accept-Encoding"] = "identity"
        for remote in files:
            url = hf_hub_url(repo_id, remote.repo_path, revision=commit, endpoint=endpoint)
            _fetch(url, headers, cache / remote.local_path, remote, counter)
    except OfflineModeIsEnabled:
        raise ModelError("cannot download: HF_HUB_OFFLINE is set; unset it to reach the model hub") from None
    except HfHubHTTPError as err:
        raise ModelError(f"the model hub refused the download of {repo_id}: {_first_line(err)}") from None
    except httpx2.HTTPError as err:
        raise ModelError(
            f"the download of {repo_id} stopped ({type(err).__name__}: {_first_line(err)}); "
            "run the same pull again to continue where it stopped"
        ) from None
    for remote in files:
        target = dest / remote.local_path
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(cache / remote.local_path, target)
    return commit


def list_folder(
    repo_id: str,
    subfolder: str,
    *,
    endpoint: str | None = None,
    revision: str | None = None,
    token: str | bool | None = None,
) -> tuple[str, list[RemoteFile]]:
    """The commit that `revision` points to, and the files under `subfolder` at that commit."""
    api = HfApi(endpoint=endpoint, token=token, library_name=LIBRARY)
    commit = api.model_info(repo_id, revision=revision).sha
    if commit is None:
        raise ModelError(f"the model hub did not say which commit {repo_id} is at")
    prefix = subfolder.strip("/") + "/"
    entries = {
        entry.path: entry
        for entry in api.list_repo_tree(repo_id, path_in_repo=prefix.rstrip("/"), recursive=True,
                                        revision=commit)
        if isinstance(entry, RepoFile)
    }
    # The same filter snapshot_download applies to its allow_patterns.
    selected = filter_repo_objects(sorted(entries), allow_patterns=[prefix + "*"])
    files = [_remote_file(entries[path], prefix) for path in selected]
    if not files:
        raise ModelError(f"{repo_id} has no files under {prefix} at commit {commit}")
    return commit, files


def _remote_file(entry: RepoFile, prefix: str) -> RemoteFile:
    local = entry.path[len(prefix):]
    # Never let a listing write outside the model folder.
    if PurePosixPath(local).is_absolute() or ".." in PurePosixPath(local).parts:
        raise ModelError(f"refusing a hub file with an unsafe path: {entry.path!r}")
    return RemoteFile(
        repo_path=entry.path,
        local_path=local,
        size=entry.size,
        sha256=entry.lfs.sha256 if entry.lfs is not None else None,
        git_sha1=entry.blob_id,
    )


# ---------------------------------------------------------------- one file

class _Counter:
    """Bytes done across the folder, reported to the caller's callback."""

    def __init__(self, total: int, callback: ByteProgress | None) -> None:
        self.total = total
        self.done = 0
        self.callback = callback

    def add(self, count: int) -> None:
        self.done += count
        if self.callback is not None:
            self.callback(self.done, self.total)


def _fetch(url: str, headers: dict[str, str], target: Path, remote: RemoteFile, counter: _Counter) -> None:
    """Bring `target` to the complete, checked file, continuing a `.part` left by an earlier run."""
    if target.is_file() and target.stat().st_size == remote.size:
        counter.add(remote.size)  # finished (and checked) by an earlier run
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + PART_SUFFIX)
    have = part.stat().st_size if part.is_file() else 0
    if have > remote.size:
        have = 0  # cannot be a prefix of this file
    if have < remote.size:
        _stream(url, headers, part, have, counter)
    else:
        counter.add(have)
    _check_content(part, remote)
    os.replace(part, target)


def _stream(url: str, headers: dict[str, str], part: Path, have: int, counter: _Counter) -> None:
    request_headers = dict(headers)
    if have:
        request_headers["Range"] = f"bytes={have}-"
    timeout = httpx2.Timeout(constants.HF_HUB_DOWNLOAD_TIMEOUT)
    with get_session().stream("GET", url, headers=request_headers, timeout=timeout,
                              follow_redirects=True) as response:
        hf_raise_for_status(response)
        if have and response.status_code != 206:
            have = 0  # the server ignored the Range header and sends the whole file
        counter.add(have)
        with open(part, "ab" if have else "wb") as out:
            for chunk in response.iter_bytes(CHUNK):
                out.write(chunk)
                counter.add(len(chunk))


def _check_content(part: Path, remote: RemoteFile) -> None:
    actual = part.stat().st_size
    if actual != remote.size:
        part.unlink()
        raise ModelError(
            f"{remote.repo_path}: received {actual} bytes, the hub lists {remote.size}; run the pull again"
        )
    if remote.sha256 is not None:
        digest, expected = _sha256(part), remote.sha256
    else:
        digest, expected = _git_blob_sha1(part, remote.size), remote.git_sha1
    if digest != expected:
        part.unlink()  # a corrupt prefix would poison every later resume
        raise ModelError(
            f"{remote.repo_path}: checksum mismatch (got {digest}, the hub lists {expected}); "
            "the file was discarded, run the pull again"
        )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _git_blob_sha1(path: Path, size: int) -> str:
    digest = hashlib.sha1(f"blob {size}\0".encode())
    digest.update(path.read_bytes())  # only small (non-LFS) files take this path
    return digest.hexdigest()


def _drop_other_commits(partial_dir: Path, keep: Path) -> None:
    """Partial files from another commit cannot be resumed against this one."""
    if partial_dir.is_dir():
        for child in partial_dir.iterdir():
            if child != keep:
                shutil.rmtree(child) if child.is_dir() else child.unlink()


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
