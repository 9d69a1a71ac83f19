"""The `agentic-flow` command: the main job (an agent on a task) and the command groups."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from .. import __version__
from ..agents.loop import TESTS_FAILING, LoopResult, RunTimedOut
from ..agents.optimizer import Priority
from ..agents.plan import Plan, TaskOptions, prepare, run_task
from ..agents.tools import PERMISSION_MODES
from ..errors import ConfigError
from ..settings import (
    KEEP_WARM_VARIABLE,
    LoopSettings,
    Provider,
    RunSettings,
    loop_settings,
    run_settings,
)
from . import agents_cmd, models_cmd, proxy_cmd
from .common import EXIT_INTERRUPTED, EXIT_MAX_TURNS, EXIT_TESTS_FAILING, choice, cli_errors, count, err, metavar, out
from .console import ConsoleHooks

app = typer.Typer(
    # No help= here: the main callback's docstring is the --help text, so its examples show.
    add_completion=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(models_cmd.app, name="models")
app.add_typer(proxy_cmd.app, name="proxy")
app.add_typer(agents_cmd.app, name="agents")


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
    model: str | None = typer.Option(None, help="Model id (anthropic, or the upstream's for openai/openrouter/"
                                     "gemini) or local model name/folder (onnx)."),
    upstream: str | None = typer.Option(None, help="Base URL of an OpenAI-compatible server, for --provider "
                                        "openai [env: OPENAI_BASE_URL]."),
    stream: bool = typer.Option(True, "--stream/--no-stream", help="Print text as it arrives."),
    max_tokens: int | None = typer.Option(None, min=1, help="Answer length limit (default: the agent's)."),
    temperature: float | None = typer.Option(None, min=0.0, max=1.0, help="0 is greedy (default: the agent's)."),
    timeout: float = typer.Option(600.0, min=1.0, help="Total seconds for the run: every call and tool."),
    workspace: str | None = typer.Option(None, help="The folder the agent's tools may use (default: the "
                                         "current folder) [env: AGENTIC_FLOW_WORKSPACE]."),
    permission_mode: str | None = typer.Option(
        None, metavar="[" + "|".join(PERMISSION_MODES) + "]",
        help="Who may change files and run commands (default: ask) [env: AGENTIC_FLOW_PERMISSION_MODE]."),
    allow_tools: str | None = typer.Option(None, metavar="NAMES", help="Tools allowed without asking, e.g. "
                                           "Bash,Write [env: AGENTIC_FLOW_ALLOW_TOOLS]."),
    tools: str | None = typer.Option(None, metavar="NAMES", help="This run's tools, fewer than the agent's, "
                                     "e.g. Read,Grep (\"\" for none)."),
    max_turns: int | None = typer.Option(None, parser=count(1), metavar="N",
                                         help="Model calls at most (default 20) [env: AGENTIC_FLOW_MAX_TURNS]."),
    tool_choice: str | None = typer.Option(None, metavar="auto|any|TOOL",
                                           help="Make the first turn call a tool (any) or this tool (free "
                                                "workflow)."),
    workflow: str | None = typer.Option(None, metavar="auto|guided|free",
                                        help="guided: one tool call a turn, Finish ends, the tests run after "
                                             "each change; free: the model decides; auto (default): guided on "
                                             "the local model [env: AGENTIC_FLOW_WORKFLOW]."),
    verify: str | None = typer.Option(None, metavar="CMD", help="The command that checks the work (guided "
                                      "runs; default: the workspace's tests) [env: AGENTIC_FLOW_VERIFY]."),
    keep_warm: str | None = typer.Option(
        None, "--keep-warm", metavar="DURATION",
        help=f"Leave the local proxy this run starts running until it has had no request for DURATION "
             f"(300, 90s, 5m, 1h; 0: stop it after the run), so the next run starts warm [env: {KEEP_WARM_VARIABLE}]."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show resolved settings, choices and timings."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object (text, tool calls, usage)."),
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
      agentic-flow --agent coder --task "Create hello.py that prints hello world" --permission-mode acceptEdits
      git diff | agentic-flow --agent reviewer --json
      agentic-flow --agent coder --task "Add a docstring to main.py" --keep-warm 5m   # the next run starts warm

    Exit codes: 0 done, 1 agent or API error (or --timeout), 2 usage, 3 model, 5 proxy, 6 port in use,
    7 stopped at --max-turns, 8 done but the tests fail, 130 interrupted.
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
        settings = run_settings(provider=provider, model=model, agents_dir=agents_dir, upstream=upstream,
                                keep_warm=keep_warm)
        loop = loop_settings(workspace=workspace, permission_mode=permission_mode, allow_tools=allow_tools,
                             tools=tools, max_turns=max_turns, tool_choice=tool_choice, workflow=workflow,
                             verify=verify)
        hooks = ConsoleHooks(show_text=not json_out)
        the_plan = prepare(opts, settings, Path.cwd(), hooks, loop.tools)
        if verbose:
            _explain(settings, loop, the_plan)
        try:
            result = run_task(opts, settings, the_plan, hooks, loop)
        except RunTimedOut as timed_out:
            if json_out:  # a script still learns what was done before the time ran out
                print(json.dumps(_result_json(timed_out.partial, the_plan), ensure_ascii=False))
            raise
        _report(result, the_plan, hooks, json_out=json_out, verbose=verbose)
        if result.stopped_at_max_turns:
            err.print(f"stopped after {result.turns} turns (--max-turns); the task may be unfinished",
                      highlight=False)
            raise typer.Exit(EXIT_MAX_TURNS)
        if result.outcome == TESTS_FAILING:
            err.print(f"the agent finished but the tests still fail ({result.verifications[-1].summary})",
                      highlight=False)
            raise typer.Exit(EXIT_TESTS_FAILING)


def _report(result: LoopResult, the_plan: Plan, hooks: ConsoleHooks, *, json_out: bool, verbose: bool) -> None:
    if json_out:
        print(json.dumps(_result_json(result, the_plan), ensure_ascii=False))
    elif not hooks.text_last and result.text.strip():
        # The run ended on a tool's line: a guided run's Finish summary, or the loop's own "the tests
        # pass", was never streamed as text.  The summary still belongs on stdout.
        print(result.text.strip())
    elif hooks.tty or not result.text.endswith("\n"):
        print()
    if verbose:
        t = result.timings
        first = t.first_token_s if t.first_token_s is not None else "-"
        err.print(f"{result.usage.input_tokens} input tokens (and {result.usage.cache_read_input_tokens} read "
                  f"from the cache), {result.usage.output_tokens} output tokens, "
                  f"first token {first} s, total {t.total_s:.2f} s, {result.turns} turns, "
                  f"{len(result.tool_calls)} tool calls, stop reason {result.stop_reason}", highlight=False)


def _explain(settings: RunSettings, loop: LoopSettings, the_plan: Plan) -> None:
    table = Table("setting", "value", "from", title="resolved settings")
    for row in settings.explain():
        table.add_row(*row)
    for row in loop.explain() if the_plan.tools else ():
        table.add_row(*row)
    table.add_row("tools", ",".join(the_plan.tools) or "(none: one call, text only)", "agent file, --tools")
    table.add_row("agent", f"{the_plan.agent.name} ({the_plan.agent.source})", the_plan.agent.folder)
    table.add_row("provider (final)", the_plan.provider.value, the_plan.provider.source)
    table.add_row("model (final)", the_plan.model, the_plan.model_source)
    err.print(table)
    if the_plan.choice is not None:
        err.print(the_plan.choice.explanation, highlight=False)


def _result_json(result: LoopResult, the_plan: Plan) -> dict[str, Any]:
    return {
        "agent": the_plan.agent.name,
        "provider": the_plan.provider.value,
        "model": result.model,
        "text": result.text,
        "stop_reason": result.stop_reason,
        "turns": result.turns,
        "outcome": result.outcome,
        "verifications": [v.to_json() for v in result.verifications],
        "files_changed": list(result.files_changed),
        "retries": [r.to_json() for r in result.retries],
        "tool_calls": [
            {"name": call.name, "input": call.input, "summary": call.summary, "is_error": call.is_error,
             "duration_s": round(call.duration_s, 3)}
            for call in result.tool_calls
        ],
        "usage": {"input_tokens": result.usage.input_tokens, "output_tokens": result.usage.output_tokens,
                  "cache_read_input_tokens": result.usage.cache_read_input_tokens},
        "timings": {"first_token_s": result.timings.first_token_s, "total_s": result.timings.total_s},
        "request_id": result.request_id,
    }


@app.command("claude-code", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def claude_code(
    ctx: typer.Context,
    model: str | None = typer.Option(None, help="Local model (catalog name or folder); default: ONNX_MODEL_PATH, "
                                                "else the best installed tool-capable model."),
    keep_warm: str | None = typer.Option(
        None, "--keep-warm", metavar="DURATION",
        help=f"Leave the proxy running until it has had no request for DURATION (5m, 1h) "
             f"[env: {KEEP_WARM_VARIABLE}]."),
) -> None:
    """Run Claude Code (the `claude` CLI) on the local model: start or reuse the proxy, point Claude Code
    at it (model names, context and output limits), pass every other argument through, and stop the
    proxy afterwards.

    Example: agentic-flow claude-code -p "Create hello.py that prints hello world" --permission-mode acceptEdits
    """
    with cli_errors():
        from ..agents.claude_code import run_claude_code

        settings = run_settings(provider=Provider.ONNX, keep_warm=keep_warm)
        code = run_claude_code(ctx.args, settings, ConsoleHooks(show_text=False), model)
        raise typer.Exit(code)


def run() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(EXIT_INTERRUPTED)



