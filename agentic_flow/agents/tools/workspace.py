"""The workspace: the one folder an agent's tools may read and change.

Every path a model sends is resolved the way the kernel will resolve it (`os.path.realpath`: `..` and
every symbolic link followed, the last one included) and refused unless the result lies inside the
workspace.  Checking the *resolved* path is what stops the three escapes: `../x`, `/etc/passwd`, and a
link planted inside that points out (`ln -s /etc inside/etc`).  Writes go to the resolved path, so a
write through an inside link changes the link's target, and a link pointing out is refused even when
its target does not exist yet.

A workspace that is itself a symbolic link is resolved once, when the Workspace is made: the boundary is
the folder it pointed to then.  Paths spelled through the link's name still work (they resolve into
the same folder); re-pointing the link later does not move the boundary.
"""

from __future__ import annotations

import os
from pathlib import Path

from ...errors import ConfigError
from .result import ToolError


class Workspace:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        real = Path(os.path.realpath(root))
        if not real.is_dir():
            raise ConfigError(f"the workspace {os.fspath(root)!r} is not a folder")
        self.root = real

    def __repr__(self) -> str:
        return f"Workspace({str(self.root)!r})"

    def resolve(self, path: str, field: str = "file_path") -> Path:
        """The real path that `path` names, or ToolError if it lies outside the workspace."""
        if not path.strip():
            raise ToolError(f"field {field!r} is empty")
        if "\0" in path:
            raise ToolError(f"field {field!r} contains a NUL character")
        spelled = Path(path) if os.path.isabs(path) else self.root / path
        real = Path(os.path.realpath(spelled))
        if not self.contains(real):
            raise ToolError(self._outside(path, spelled, real))
        return real

    def contains(self, real: Path) -> bool:
        return real == self.root or real.is_relative_to(self.root)

    def relative(self, real: Path) -> str:
        """How a resolved path is shown to the model and the user: relative to the workspace."""
        if not self.contains(real):
            return str(real)
        return real.relative_to(self.root).as_posix() or "."

    def _outside(self, path: str, spelled: Path, real: Path) -> str:
        lexical = Path(os.path.normpath(spelled))
        if self.contains(lexical):
            # Inside by its spelling, outside once links are followed: a link points out.
            return (
                f"{path!r} resolves through a symbolic link to {real}, which is outside the workspace "
                f"{self.root}; tools may only use paths inside it"
            )
        return f"{path!r} is outside the workspace {self.root}; tools may only use paths inside it"
