"""`agentic-flow agents list|show`: the agents that can be run, and where each comes from."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .. import settings
from ..agents.loader import AgentCatalog, AgentSpec, default_search_dirs, discover
from .common import cli_errors, out

app = typer.Typer(help="List and inspect agents (system prompts with defaults).", no_args_is_help=True)

AgentsDir = Annotated[
    Path | None,
    typer.Option(
        "--agents-dir",
        help="Folder of agent .md files, searched first (then AGENTS_DIR, ./.claude/agents, the builtins).",
        show_default=False,
    ),
]


def load_catalog(
    agents_dir: Path | None, *, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> AgentCatalog:
    """The agents visible from `cwd`: --agents-dir, then AGENTS_DIR, then ./.claude/agents, then builtin."""
    env = settings.environ() if env is None else env
    env_dir = settings.pick(None, "", env, "AGENTS_DIR", None).value
    dirs = default_search_dirs(agents_dir, Path(env_dir) if env_dir else None, cwd or Path.cwd())
    return discover(dirs)


def warn_problems(catalog: AgentCatalog) -> None:
    """Malformed agent files, one warning line each on stderr (plain text: paths may hold brackets)."""
    for problem in catalog.problems:
        typer.echo(f"warning: skipped agent file {problem}", err=True)


def print_agents(agents_dir: Path | None, console: Console = out) -> None:
    """Print the agents grouped by folder, and warn about files that were skipped (also for `--list`)."""
    catalog = load_catalog(agents_dir)
    console.print(agents_table(catalog))
    warn_problems(catalog)


def agents_table(catalog: AgentCatalog) -> Table:
    table = Table(title="Agents (first folder wins)", show_lines=False)
    table.add_column("name", style="bold", no_wrap=True)
    table.add_column("description")
    table.add_column("source", overflow="fold", style="dim")
    folders = _group_by_folder([*catalog.agents.values(), *catalog.shadowed])
    for i, (label, specs) in enumerate(folders.items()):
        if i:
            table.add_section()
        table.add_row(Text(f"[{label}]", style="cyan"), "", "")
        for spec in sorted(specs, key=lambda s: s.name):
            table.add_row(*_row(catalog, spec))
    return table


def _group_by_folder(specs: list[AgentSpec]) -> dict[str, list[AgentSpec]]:
    groups: dict[str, list[AgentSpec]] = {}
    for spec in specs:
        groups.setdefault(spec.folder, []).append(spec)
    return groups


def _row(catalog: AgentCatalog, spec: AgentSpec) -> tuple[Text, Text, Text]:
    source = Text(_display_path(spec.source))
    winner = catalog.overrider_of(spec)
    if winner is not None:
        note = f" (overridden by {winner.folder})"
        return Text(spec.name, style="strike"), Text(spec.description + note), source
    return Text(spec.name), Text(spec.description), source


def _display_path(path: Path) -> str:
    """Relative to the current folder when inside it, else with ~ for the home folder."""
    for base, prefix in ((Path.cwd(), ""), (Path.home(), "~/")):
        if path.is_relative_to(base):
            return prefix + str(path.relative_to(base))
    return str(path)


@app.command("list")
def list_command(agents_dir: AgentsDir = None) -> None:
    """List the agents you can run, grouped by the folder they come from.

    A project's agent (in ./.claude/agents) overrides a builtin one of the same name.

    Example: agentic-flow agents list --agents-dir ./my-agents
    """
    with cli_errors():
        print_agents(agents_dir)


@app.command("show")
def show_command(
    name: Annotated[str, typer.Argument(help="The agent's name, e.g. coder.")],
    agents_dir: AgentsDir = None,
) -> None:
    """Print an agent's file: its front matter and system prompt (and, on stderr, its tools).

    The output is a valid agent file, so it is a starting point for your own version.

    Example: agentic-flow agents show coder > .claude/agents/coder.md
    """
    with cli_errors():
        spec = load_catalog(agents_dir).get(name)
    text = spec.source.read_text(encoding="utf-8").replace("\r\n", "\n")
    typer.echo(f"# {spec.name} from {spec.source} ({spec.folder})", err=True)
    typer.echo(f"# tools: {', '.join(spec.tools) or 'none (one call, text only)'}", err=True)
    typer.echo(text.rstrip("\n"))
