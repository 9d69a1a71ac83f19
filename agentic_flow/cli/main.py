"""The `agentic-flow` command: the main job (an agent on a task) and the command groups."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from .. import __version__
from ..errors import ConfigError
from ..proxy.health import Health
from ..agents.client import AgentResult
from ..agents.optimizer import Priority
from ..settings import Provider, RunSettings, run_settings
from ..agents.plan import Hooks, Plan, TaskOptions, prepare, run_task
from . import agents_cmd, models_cmd, proxy_cmd
from .common import EXIT_INTERRUPTED, choice, cli_errors, err, metavar, out

app = typer.Typer(
    # No help= here: the main callback's docstring is the --help text, so its examples show.
    add_completion=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(models_cmd.app, name="models")
app.add_typer(proxy_cmd.app, name="proxy")
app.add_typer(agents_cmd.app, name="agents")


class ConsoleHooks(Hooks):
    """Text to stdout as it arrives (rich on a terminal, plain when piped); everything else to stderr."""

    def __init__(self, show_text: bool) -> None:
        self.show_text = show_text
        self.tty = sys.stdout.isatty()

    def text(self, delta: str) -> None:
        if not self.show_text:
            return
        if self.tty:
            out.print(delta, end="", markup=False, highlight=False, soft_wrap=True)
        else:
            sys.stdout.write(delta)
            sys.stdout.flush()

    def notice(self, message: str) -> None:
        err.print(message, highlight=False, markup=False)

    @contextmanager
    def loading(self, message: str) -> Iterator[Callable[[Health], None]]:
        with err.status(message) as status:
            yield lambda health: status.update(f"{message} ({health.status.value})")


def read_task(task: str | None) -> str | None:
    """--task TEXT, --task - (stdin), or piped stdin when --task is absent."""
    if task == "-" or (task is None and not sys.stdin.isatty()):
        text = sys.stdin.read().strip()
        if not text and task == "-":
            raise ConfigError("--task - was given but standard input is empty")
        return text or None
    return task


@app.callback(invoke_without_command=True)
def main(
    ctx: typer.Context,
    agent: str | None = typer.Option(None, "--agent", "-a", help="Agent to run (see `agentic-flow agents list`)."),
    task: str | None = typer.Option(None, "--task", "-t", help="The task; `-` or piped input reads stdin."),
    provider: Provider | None = typer.Option(None, parser=choice(Provider, "provider", "providers"),
                                             metavar=metavar(Provider), help="[env: PROVIDER, USE_ONNX]."),
    model: str | None = typer.Option(None, help="Model id (anthropic) or local model name/folder (onnx)."),
    stream: bool = typer.Option(True, "--stream/--no-stream", help="Print text as it arrives."),
    max_tokens: int | None = typer.Option(None, min=1, help="Answer length limit (default: the agent's)."),
    temperature: float | None = typer.Option(None, min=0.0, max=1.0, help="0 is greedy (default: the agent's)."),
    timeout: float = typer.Option(600.0, min=1.0, help="Total seconds for the API call, retries included."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show resolved settings, choices and timings."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object (text, usage, timings)."),
    optimize: bool = typer.Option(False, "--optimize", help="Choose provider and model by --priority."),
    priority: Priority = typer.Option(Priority.BALANCED.value, "--priority", "--optimize-priority",
                                      parser=choice(Priority, "priority", "priorities"),
                                      metavar=metavar(Priority), help="Optimizer priority."),
    max_cost: float | None = typer.Option(None, min=0.0, help="Optimizer: most USD the task may cost."),
    agents_dir: str | None = typer.Option(None, help="Folder of agent files, searched first [env: AGENTS_DIR]."),
    list_agents: bool = typer.Option(False, "--list", help="List the agents and exit."),
    version: bool = typer.Option(False, "--version", help="Print the version and exit."),
) -> None:
    """Run AI agents on the Anthropic API, or free and offline on a local ONNX model.

    Run an agent on a task (the task may also be piped on stdin):

    \b
      agentic-flow --agent coder --task "Write a function that reverses a string" --provider onnx
      git diff | agentic-flow --agent reviewer --json
    """
    if ctx.invoked_subcommand is not None:
        return
    if version:
        out.print(__version__)
        return
    with cli_errors():
        if list_agents:
            agents_cmd.print_agents(Path(agents_dir) if agents_dir else None)
            return
        text = read_task(task)
        if agent is None or not text:
            err.print(ctx.get_help(), highlight=False)
            err.print("error: --agent and --task are required (or pipe the task on stdin)")
            raise typer.Exit(2)
        opts = TaskOptions(agent, text, stream, max_tokens, temperature, timeout, optimize, priority, max_cost)
        settings = run_settings(provider=provider, model=model, agents_dir=agents_dir)
        hooks = ConsoleHooks(show_text=not json_out)
        the_plan = prepare(opts, settings, Path.cwd(), hooks)
        if verbose:
            _explain(settings, the_plan)
        result = run_task(opts, settings, the_plan, hooks)
        _report(result, the_plan, hooks, json_out=json_out, verbose=verbose)


def _report(result: AgentResult, the_plan: Plan, hooks: ConsoleHooks, *, json_out: bool, verbose: bool) -> None:
    if json_out:
        print(json.dumps(_result_json(result, the_plan), ensure_ascii=False))
    elif hooks.tty or not result.text.endswith("\n"):
        print()
    if verbose:
        t = result.timings
        first = t.first_token_s if t.first_token_s is not None else "-"
        err.print(f"{result.usage.input_tokens} input tokens, {result.usage.output_tokens} output tokens, "
                  f"first token {first} s, total {t.total_s:.2f} s, stop reason {result.stop_reason}",
                  highlight=False)


def _explain(settings: RunSettings, the_plan: Plan) -> None:
    table = Table("setting", "value", "from", title="resolved settings")
    for row in settings.explain():
        table.add_row(*row)
    table.add_row("agent", f"{the_plan.agent.name} ({the_plan.agent.source})", the_plan.agent.folder)
    table.add_row("provider (final)", the_plan.provider.value, the_plan.provider.source)
    table.add_row("model (final)", the_plan.model, "")
    err.print(table)
    if the_plan.choice is not None:
        err.print(the_plan.choice.explanation, highlight=False)


def _result_json(result: AgentResult, the_plan: Plan) -> dict[str, Any]:
    return {
        "agent": the_plan.agent.name,
        "provider": the_plan.provider.value,
        "model": result.model,
        "text": result.text,
        "stop_reason": result.stop_reason,
        "usage": {"input_tokens": result.usage.input_tokens, "output_tokens": result.usage.output_tokens},
        "timings": {"first_token_s": result.timings.first_token_s, "total_s": result.timings.total_s},
        "request_id": result.request_id,
    }


@app.command("claude-code", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def claude_code(
    ctx: typer.Context,
    model: str | None = typer.Option(None, help="Local model (catalog name or folder); default: ONNX_MODEL_PATH, "
                                                "else the best installed tool-capable model."),
) -> None:
    """Run Claude Code (the `claude` CLI) on the local model: start or reuse the proxy, point Claude Code
    at it (model names, context and output limits), pass every other argument through, and stop the
    proxy afterwards.

    Example: agentic-flow claude-code -p "Create hello.py that prints hello world" --permission-mode acceptEdits
    """
    with cli_errors():
        from ..agents.claude_code import run_claude_code

        settings = run_settings(provider=Provider.ONNX)
        code = run_claude_code(ctx.args, settings, ConsoleHooks(show_text=False), model)
        raise typer.Exit(code)


def run() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(EXIT_INTERRUPTED)



