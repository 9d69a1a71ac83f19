"""Is there room to install a model?  Checked before any download or conversion starts.

A conversion that runs out of memory is killed by the kernel half way, minutes in, with no message
of ours; one that runs out of disk fails the same way.  So `store.install` asks first: the free
memory (psutil's `available`: what can be had without swapping) against the entry's measured peak,
and the free disk under the store against what the install writes while it runs.  The figures are
in catalog.py, measured as docs/models.md says.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import psutil

from ..errors import ModelError
from .catalog import CATALOG, CatalogEntry

GB = 1000**3


class NotEnoughResources(ModelError):
    """Too little free memory or disk for an install; nothing was started."""


@dataclass(frozen=True)
class Room:
    memory: int  # bytes of memory available now
    disk: int  # bytes free on the store's filesystem


def room_now(root: Path) -> Room:
    return Room(memory=psutil.virtual_memory().available, disk=shutil.disk_usage(_existing(root)).free)


def check(entry: CatalogEntry, root: Path, room: Room, already: int = 0) -> None:
    """Raise NotEnoughResources naming what is short; `already`: bytes an earlier, unfinished pull
    left in the store (they count as written)."""
    problems = []
    if entry.install_memory and room.memory < entry.install_memory:
        smaller = _smaller(entry, room.memory)
        problems.append(
            f"installing {entry.name} needs about {_gb(entry.install_memory)} of free memory at its peak, "
            f"and {_gb(room.memory)} is available now: close other programs and try again"
            + (f", or install {smaller.name} (needs {_gb(smaller.install_memory)})" if smaller else ""))
    disk_needed = max(entry.install_disk - already, 0)
    if room.disk < disk_needed:
        problems.append(
            f"installing {entry.name} writes about {_gb(disk_needed)} to {root} while it runs "
            f"({_gb(entry.approx_size)} once installed), and {_gb(room.disk)} is free there: free some "
            "space or set AGENTIC_FLOW_MODEL_DIR to a folder on a bigger disk")
    if problems:
        raise NotEnoughResources("; ".join(problems) + " (nothing was started; `models pull --skip-checks` "
                                 "tries anyway)")


def _smaller(entry: CatalogEntry, memory: int) -> CatalogEntry | None:
    """The strongest other installable-here model that fits in `memory`, if any."""
    fits = [e for e in CATALOG.values()
            if e.name != entry.name and e.install_memory and e.install_memory <= memory and e.rank < entry.rank]
    return max(fits, key=lambda e: e.rank) if fits else None


def _existing(path: Path) -> Path:
    """The nearest folder that exists (the store may not exist yet)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _gb(count: int) -> str:
    return f"{count / GB:.1f} GB"
