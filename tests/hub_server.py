"""A real HTTP server on 127.0.0.1 that speaks the part of the Hugging Face hub protocol that
huggingface_hub 2.4.0 uses to list and fetch a repository:

- GET  /api/models/{repo}[/revision/{rev}]          repo info; `sha` is the commit
- GET  /api/models/{repo}/tree/{rev}[/{path}]        tree listing (`recursive`), LFS entries carry sha256
- HEAD/GET /{repo}/resolve/{rev}/{path}              X-Repo-Commit, ETag, Content-Length; LFS files answer
                                                     302 to a content URL, with X-Linked-Etag/X-Linked-Size
- GET  /cdn/{sha256}                                 the LFS content; honours `Range: bytes=N-` with 206

Errors carry the hub's X-Error-Code header (RepoNotFound, RevisionNotFound, EntryNotFound), which
huggingface_hub turns into its typed exceptions.  Switches make the next transfer of a file stop
half way (the connection closes early) or deliver one corrupted byte; every request is recorded.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import unquote, urlsplit

LFS_THRESHOLD = 1024 * 1024  # files at least this big are stored in LFS, like on the real hub
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass(frozen=True)
class HubFile:
    path: str
    source: Path
    size: int
    git_sha1: str
    sha256: str | None  # set for LFS files

    @classmethod
    def build(cls, path: str, source: Path) -> HubFile:
        data = source.read_bytes()
        lfs = len(data) >= LFS_THRESHOLD
        sha256 = hashlib.sha256(data).hexdigest() if lfs else None
        # For LFS files git stores a pointer file; its blob id is what the tree lists as `oid`.
        blob = _lfs_pointer(sha256, len(data)) if sha256 else data
        git_sha1 = hashlib.sha1(f"blob {len(blob)}\0".encode() + blob).hexdigest()
        return cls(path, source, len(data), git_sha1, sha256)

    def tree_entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"type": "file", "path": self.path, "size": self.size, "oid": self.git_sha1}
        if self.sha256:
            entry["lfs"] = {"oid": self.sha256, "size": self.size, "pointerSize": 134}
        return entry


def _lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


@dataclass(frozen=True)
class Seen:
    method: str
    path: str  # the request path, unquoted
    range: str | None


class LocalHub:
    """Serve `files` ({repo path: local file}) as the repository `repo_id` at commit COMMIT."""

    def __init__(self, repo_id: str, files: dict[str, Path]) -> None:
        self.repo_id = repo_id
        self.files = {path: HubFile.build(path, source) for path, source in files.items()}
        self.by_sha = {f.sha256: f for f in self.files.values() if f.sha256}
        self.seen: list[Seen] = []
        self.break_next: set[str] = set()
        self.corrupt_next: set[str] = set()
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)

    def byte_requests(self, path: str) -> list[Seen]:
        """The GETs that asked for the bytes of the repo file `path` (at its content URL for LFS)."""
        hub_file = self.files[path]
        if hub_file.sha256:
            urls = {f"/cdn/{hub_file.sha256}"}
        else:
            urls = {f"/{self.repo_id}/resolve/{revision}/{path}" for revision in ("main", COMMIT)}
        return [s for s in self.seen if s.method == "GET" and s.path in urls]

    # ------------------------------------------------------------ routing

    def route(self, handler: _Handler) -> None:
        path = unquote(urlsplit(handler.path).path)
        range_header = handler.headers.get("Range")
        prefix = f"/api/models/{self.repo_id}"
        with self.lock:
            self.seen.append(Seen(handler.command, path, range_header))
        if path.startswith("/cdn/"):
            return self._content(handler, path, range_header)
        if path.startswith("/api/models/"):
            if not path.startswith(prefix):
                return _error(handler, 404, "RepoNotFound")
            return self._api(handler, path[len(prefix):])
        resolve = f"/{self.repo_id}/resolve/"
        if path.startswith(resolve):
            revision, _, file_path = path[len(resolve):].partition("/")
            return self._resolve(handler, revision, file_path)
        return _error(handler, 404, "RepoNotFound")

    def _api(self, handler: _Handler, rest: str) -> None:
        if rest in ("", "/revision/main", f"/revision/{COMMIT}"):
            siblings = [{"rfilename": p} for p in self.files]
            return _json(handler, {"id": self.repo_id, "sha": COMMIT, "siblings": siblings})
        if rest.startswith("/tree/"):
            revision, _, folder = rest[len("/tree/"):].partition("/")
            if revision not in ("main", COMMIT):
                return _error(handler, 404, "RevisionNotFound")
            recursive = "recursive=true" in (urlsplit(handler.path).query or "").lower()
            return _json(handler, self._tree(folder.strip("/"), recursive))
        return _error(handler, 404, "RevisionNotFound")

    def _tree(self, folder: str, recursive: bool) -> list[dict[str, Any]]:
        prefix = f"{folder}/" if folder else ""
        entries: list[dict[str, Any]] = []
        folders: set[str] = set()
        for path, hub_file in sorted(self.files.items()):
            if not path.startswith(prefix):
                continue
            rest = path[len(prefix):]
            if "/" in rest:
                folders.add(prefix + rest.split("/")[0])
                if not recursive:
                    continue
            entries.append(hub_file.tree_entry())
        entries += [{"type": "directory", "path": f, "oid": "f" * 40} for f in sorted(folders)]
        return entries

    def _resolve(self, handler: _Handler, revision: str, file_path: str) -> None:
        if revision not in ("main", COMMIT):
            return _error(handler, 404, "RevisionNotFound")
        hub_file = self.files.get(file_path)
        if hub_file is None:
            return _error(handler, 404, "EntryNotFound")
        range_header = handler.headers.get("Range")
        handler.send_response(302 if hub_file.sha256 else 206 if range_header else 200)
        handler.send_header("X-Repo-Commit", COMMIT)
        handler.send_header("ETag", f'"{hub_file.git_sha1}"')
        if not hub_file.sha256:
            return self._send_bytes(handler, hub_file, range_header)
        # Like the real hub: LFS content lives elsewhere; the linked headers describe it.
        handler.send_header("X-Linked-Etag", f'"{hub_file.sha256}"')
        handler.send_header("X-Linked-Size", str(hub_file.size))
        handler.send_header("Location", f"{self.url}/cdn/{hub_file.sha256}")
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    def _content(self, handler: _Handler, path: str, range_header: str | None) -> None:
        hub_file = self.by_sha.get(path[len("/cdn/"):])
        if hub_file is None:
            return _error(handler, 404, "EntryNotFound")
        handler.send_response(206 if range_header else 200)
        self._send_bytes(handler, hub_file, range_header)

    # ------------------------------------------------------------ bytes

    def _send_bytes(self, handler: _Handler, hub_file: HubFile, range_header: str | None) -> None:
        """The body (status line already sent): the file from the Range start, maybe cut or corrupted."""
        start = _range_start(range_header)
        data = hub_file.source.read_bytes()[start:]
        if range_header:
            handler.send_header("Content-Range", f"bytes {start}-{hub_file.size - 1}/{hub_file.size}")
        handler.send_header("Accept-Ranges", "bytes")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        if handler.command == "HEAD":
            return
        with self.lock:
            stop_early = hub_file.path in self.break_next
            corrupt = hub_file.path in self.corrupt_next
            self.break_next.discard(hub_file.path)
            self.corrupt_next.discard(hub_file.path)
        if corrupt:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        if stop_early:
            handler.wfile.write(data[: len(data) // 2])
            handler.wfile.flush()
            handler.close_connection = True  # the client sees the body end too soon
            return
        handler.wfile.write(data)


class _Handler(BaseHTTPRequestHandler):
    hub: LocalHub
    # HTTP/1.0: one request per connection, so no idle keep-alive socket outlives a test.
    protocol_version = "HTTP/1.0"

    def do_GET(self) -> None:
        self.hub.route(self)

    def do_HEAD(self) -> None:
        self.hub.route(self)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean; `LocalHub.seen` records every request


def _handler_for(hub: LocalHub) -> type[_Handler]:
    return type("BoundHandler", (_Handler,), {"hub": hub})


def _range_start(header: str | None) -> int:
    if not header:
        return 0
    unit, _, spec = header.partition("=")
    assert unit.strip() == "bytes" and spec.endswith("-"), f"unsupported Range {header!r}"
    return int(spec[:-1])


def _json(handler: _Handler, payload: object) -> None:
    body = json.dumps(payload).encode()
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(body)


def _error(handler: _Handler, status: int, code: str) -> None:
    body = json.dumps({"error": f"{code} (local test hub)"}).encode()
    handler.send_response(status)
    handler.send_header("X-Error-Code", code)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(body)
