"""The main job: run one agent on one task, on the provider the settings resolved.

An agent with tools runs the agent loop (`loop.run_loop`) in the workspace, under the permission mode;
an agent without tools makes one call and answers with text.

With the onnx provider the local proxy is reused when one is healthy on the port, or started as a
supervised child and stopped again when the task ends, fails or is interrupted."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import ConfigError
from ..launcher import supervisor
from ..models import catalog, store
from ..proxy.health import Health
from ..settings import (
    DEFAULT_MODEL,
    LoopSettings,
    Origin,
    Provider,
    ProxySettings,
    Resolved,
    RunSettings,
    show_duration,
)
from . import optimizer
from .client import AgentRun
from .loader import AgentSpec, default_search_dirs, discover
from .loop import Guide, LoopHooks, LoopResult, run_loop, tool_choice_param
from .tools import TOOL_CLASSES, Permissions, Tool, Workspace, build_tools, check_tool_names
from .verify import find_check

DEFAULT_ANTHROPIC_MODEL = "claude-sonnet-4-5"
LOCAL_PLACEHOLDER_KEY = "agentic-flow-local"
# Claude Code's agent files name models by alias; `inherit` means "whatever the caller uses".
CLAUDE_ALIASES: dict[str, str | None] = {
    "sonnet": "claude-sonnet-4-5", "opus": "claude-opus-4-5", "haiku": "claude-haiku-4-5", "inherit": None,
}


@dataclass(frozen=True)
class TaskOptions:
    agent: str
    task: str
    stream: bool = True
    max_tokens: int | None = None
    temperature: float | None = None
    timeout: float = 600.0
    optimize: bool = False
    priority: optimizer.Priority = optimizer.Priority.BALANCED
    max_cost: float | None = None


@dataclass(frozen=True)
class Plan:
    """What will run, decided before anything starts."""

    agent: AgentSpec
    provider: Resolved[Provider]
    model: str
    choice: optimizer.Choice | None
    local: ProxySettings | None = None  # the local proxy to reuse or start (None: the API, ONNX_PROXY_URL)
    tools: tuple[str, ...] = ()  # the agent's tools for this run (none: one call, text only)
    model_source: str = ""  # why this model, for --verbose
    model_notice: str | None = None  # one line for the user when the model was chosen for them

    @property
    def local_by_default(self) -> bool:
        """Nothing asked for the local model: it runs because no API key is set."""
        return self.provider.value is Provider.ONNX and self.provider.origin is Origin.DEFAULT


class Hooks(LoopHooks):
    """How the task talks to the user; the CLI supplies a rich implementation."""

    def notice(self, message: str) -> None: ...

    @contextmanager
    def loading(self, message: str) -> Iterator[Callable[[Health], None]]:
        yield lambda health: None

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Held while a permission question is on screen."""
        yield


def find_agent(name: str, settings: RunSettings, cwd: Path,
               on_problem: Callable[[str], None] | None = None) -> AgentSpec:
    """--agents-dir, then AGENTS_DIR, then ./.claude/agents, then the builtins (as `agents list`).
    A malformed agent file is reported through `on_problem` (with its path) and skipped."""
    chosen = settings.agents_dir
    flag = Path(chosen.value) if chosen.value and chosen.source.startswith("flag") else None
    env = Path(settings.agents_env_dir) if settings.agents_env_dir else None
    agents = discover(default_search_dirs(flag, env, cwd))
    if on_problem is not None:
        for problem in agents.problems:
            on_problem(f"warning: skipped agent file {problem}")
    return agents.get(name)


def prepare(opts: TaskOptions, settings: RunSettings, cwd: Path, hooks: Hooks,
            chosen_tools: tuple[str, ...] | None = None) -> Plan:
    """Find the agent (a malformed agent file is a notice, not a failure) and plan the run;
    `chosen_tools` (--tools) narrows the agent's tools."""
    agent = find_agent(opts.agent, settings, cwd, on_problem=hooks.notice)
    tools = agent_tools(agent, chosen_tools, hooks.notice)
    the_plan = replace(plan(opts, settings, agent, needs_tools=bool(tools)), tools=tools)
    if the_plan.local_by_default:
        hooks.notice("no ANTHROPIC_API_KEY: running on the local model (--provider onnx)")
    if the_plan.model_notice:
        hooks.notice(the_plan.model_notice)
    return the_plan


def agent_tools(agent: AgentSpec, chosen: tuple[str, ...] | None, notice: Callable[[str], None]) -> tuple[str, ...]:
    """The agent's tools that exist here (Claude Code's others, like WebFetch, are skipped with a notice),
    narrowed to `chosen` when given: a run may take tools away from an agent, never add them."""
    unknown = [name for name in agent.tools if name not in TOOL_CLASSES]
    if unknown:
        notice(f"agent {agent.name}: skipped tools this project does not have: {', '.join(unknown)}")
    own = tuple(name for name in agent.tools if name in TOOL_CLASSES)
    if chosen is None:
        return own
    for name in check_tool_names(chosen, "tool in --tools"):
        if name not in own:
            raise ConfigError(f"--tools {name}: the {agent.name} agent does not have it "
                              f"(its tools: {', '.join(own) or 'none'})")
    return tuple(check_tool_names(chosen))


def plan(opts: TaskOptions, settings: RunSettings, agent: AgentSpec, *, needs_tools: bool | None = None) -> Plan:
    """Provider and model, decided once: the flag or agent's model, or the optimizer's choice.
    `needs_tools`: the run has tools (default: the agent does); on the local model that picks the
    best installed tool-capable model unless --model, the agent or ONNX_MODEL_PATH names one."""
    needs_tools = bool(agent.tools) if needs_tools is None else needs_tools
    provider = settings.provider
    model = settings.model.value or agent.model
    model = CLAUDE_ALIASES.get(model, model) if model else None
    explicit = settings.model.value is not None and not opts.optimize
    choice = None
    if opts.optimize:
        available = {"onnx"} | ({"anthropic"} if settings.anthropic_api_key.value else set())
        installed = set(store.installed_names(store=settings.proxy.model_dir))
        choice = optimizer.choose(
            opts.priority, opts.max_cost, available, optimizer.estimate_tokens(agent.prompt + opts.task),
            opts.max_tokens or agent.max_tokens or 1024, installed_local=installed or {DEFAULT_MODEL},
            needs_tools=needs_tools,
        )
        provider = Resolved(Provider(choice.profile.provider), f"--optimize --priority {opts.priority}",
                            Origin.CHOSEN)
        model = choice.profile.model_id
        if provider.value is Provider.ONNX and model not in installed:
            # Nothing in the store: the local model is the configured one (ONNX_MODEL_PATH may be a folder).
            model = settings.proxy.model
    if provider.value.upstream:
        return _upstream_plan(agent, provider, settings, choice, model)
    if provider.value is Provider.ANTHROPIC:
        if not settings.anthropic_api_key.value:
            raise ConfigError("ANTHROPIC_API_KEY is not set: set it, or run on the local model with --provider onnx")
        if not (explicit and model):  # --model goes to the API as given: ANTHROPIC_BASE_URL may serve others
            model = model if model and not _is_local_name(model) else DEFAULT_ANTHROPIC_MODEL
        return Plan(agent, provider, model, choice)
    notice = None
    if model and _is_local_name(model):
        source = (f"--optimize --priority {opts.priority}" if choice is not None
                  else "flag --model" if settings.model.value else f"the {agent.name} agent's file")
    else:  # the optimizer has chosen already: its pick stands
        model, source, notice = default_local_model(settings, needs_tools and choice is None)
    local = None if settings.proxy_url.value else replace(settings.proxy, model=model,
                                                          idle_exit=settings.keep_warm.value)
    return Plan(agent, provider, model, choice, local, model_source=source, model_notice=notice)


def default_local_model(settings: RunSettings, needs_tools: bool) -> tuple[str, str, str | None]:
    """(model, source, notice) when neither --model nor the agent names a local model.

    ONNX_MODEL_PATH wins; an agent without tools runs on the configured default (the quick one); an
    agent with tools runs on the best installed tool-capable model, as `claude-code` does, with a
    notice saying which and why.  A proxy someone else runs (ONNX_PROXY_URL) serves what it loaded.
    """
    configured = settings.proxy.model
    source = settings.proxy_sources.get("model", "default")
    if source != "default" or not needs_tools or settings.proxy_url.value:
        return configured, source, None
    if catalog.is_known(configured) and catalog.get(configured).tool_use:
        return configured, source, None
    best = store.best_installed(tool_use=True, store=settings.proxy.model_dir)
    if best is None:
        strongest = catalog.best_of((e.name for e in catalog.CATALOG.values() if e.kind == "convert"),
                                    tool_use=True)
        return configured, source, (
            f"no tool-capable model is installed: the agent's tools run on {configured}, which is too small "
            f"to use them well; install one with `agentic-flow models pull {strongest}`")
    return best, "the best installed tool-capable model", (
        f"model: {best}, the best installed tool-capable model (the agent has tools; "
        "--model or ONNX_MODEL_PATH picks another)")


def _upstream_plan(agent: AgentSpec, provider: Resolved[Provider], settings: RunSettings,
                   choice: optimizer.Choice | None, model: str | None) -> Plan:
    """The proxy in upstream mode (openai, openrouter, gemini) carries the agent's requests; --model
    (ProxySettings.upstream_model) names the upstream's model, else the agent's model is sent as is."""
    name = settings.proxy.upstream_model or model
    if not name:
        raise ConfigError(f"--provider {provider.value} needs --model: the upstream's model name")
    local = None if settings.proxy_url.value else replace(settings.proxy, idle_exit=settings.keep_warm.value)
    return Plan(agent, provider, name, choice, local)


def _is_local_name(model: str) -> bool:
    return not model.startswith("claude")


def run_task(opts: TaskOptions, settings: RunSettings, the_plan: Plan, hooks: Hooks,
             loop: LoopSettings | None = None) -> LoopResult:
    """Run the plan: the loop with the plan's tools (checked before any proxy starts), or one call."""
    tools = make_tools(the_plan, loop, hooks)
    choice = tool_choice_param(loop.tool_choice if loop else None, tools)
    turns = loop.max_turns.value if loop else 1
    guide = make_guide(the_plan, loop, tools, hooks)

    def go(run: AgentRun) -> LoopResult:
        return asyncio.run(run_loop(run, tools, hooks, max_turns=turns, tool_choice=choice, guide=guide))

    spec = the_plan.agent
    run = AgentRun(
        base_url=settings.anthropic_base_url.value, api_key=settings.anthropic_api_key.value,
        model=the_plan.model, system=spec.prompt, task=opts.task,
        max_tokens=opts.max_tokens or spec.max_tokens or 1024,
        temperature=opts.temperature if opts.temperature is not None else spec.temperature,
        stream=opts.stream, timeout=opts.timeout,
    )
    if the_plan.provider.value is Provider.ANTHROPIC:
        return go(run)
    if the_plan.local is None:  # ONNX_PROXY_URL: a proxy someone else runs
        run = replace(run, base_url=str(settings.proxy_url.value),
                      api_key=settings.proxy.api_key or LOCAL_PLACEHOLDER_KEY)
        return go(run)
    with local_proxy(the_plan.local, hooks) as url:
        run = replace(run, base_url=url, api_key=the_plan.local.api_key or LOCAL_PLACEHOLDER_KEY)
        return go(run)


def make_tools(the_plan: Plan, loop: LoopSettings | None, hooks: Hooks) -> dict[str, Tool]:
    if not the_plan.tools:
        return {}
    if loop is None:
        raise ConfigError(f"the {the_plan.agent.name} agent has tools: its run needs loop settings")
    permissions = Permissions(mode=loop.permission_mode.value,  # type: ignore[arg-type]  # checked in settings
                              allow_tools=frozenset(loop.allow_tools.value), pause=hooks.paused)
    workspace = Workspace(loop.workspace.value)
    if {"Write", "Edit"} & set(the_plan.tools) and not os.access(workspace.root, os.W_OK):
        hooks.notice(f"the workspace {workspace.root} is read-only: Write and Edit will fail "
                     "(choose another with --workspace)")
    return build_tools(the_plan.tools, workspace, permissions, numbered_reads=not guided(the_plan, loop))


def guided(the_plan: Plan, loop: LoopSettings) -> bool:
    """--workflow (or AGENTIC_FLOW_WORKFLOW), else the agent file's `workflow:`, else auto: on the local
    model the catalog entry's choice (guided for the Qwen coders: a 1.5B left free changed nothing in 16
    of 16 coding exercises; free for the 135M), guided for a model folder outside the catalog; free on the
    Anthropic API and upstream servers, whose models act well on their own."""
    chosen = loop.workflow.value
    if chosen == "auto" and loop.workflow.origin is Origin.DEFAULT and the_plan.agent.workflow:
        chosen = the_plan.agent.workflow
    if chosen != "auto":
        return chosen == "guided"
    if the_plan.provider.value is not Provider.ONNX:
        return False
    from ..models import catalog

    name = Path(the_plan.model).name  # a store folder is named after its catalog entry
    return catalog.get(name).agent_workflow == "guided" if catalog.is_known(name) else True


def make_guide(the_plan: Plan, loop: LoopSettings | None, tools: dict[str, Tool], hooks: Hooks) -> Guide | None:
    if not tools or loop is None or not guided(the_plan, loop):
        return None
    context = next(iter(tools.values())).context
    check = find_check(context.workspace.root, loop.verify.value)
    if check is None:
        hooks.notice("no tests in the workspace yet: the agent's work is checked once it has some "
                     "(--verify CMD names a check)")
    elif not check.consented and loop.permission_mode.value != "bypassPermissions":
        hooks.notice(f"the tests ({check.source}) run after each change with `{check.command}`, "
                     "if you allow it (--verify CMD allows a named check)")
    return Guide(context, check)


@contextmanager
def local_proxy(proxy: ProxySettings, hooks: Hooks) -> Iterator[str]:
    """Reuse a healthy proxy on the port or start one; stop only the one we started, unless it is kept
    warm (`proxy.idle_exit`): then say, once the run is over, where it runs and how to stop it."""
    with ExitStack() as stack:
        what = f"the proxy for {proxy.provider}" if proxy.upstream_mode else f"the local model ({proxy.model})"
        with hooks.loading(f"starting {what} ...") as on_status:
            running = stack.enter_context(supervisor.reuse_or_launch(proxy, on_status=on_status))
        stack.enter_context(supervisor.held(running))  # a proxy with an idle exit stays while we use it
        if running.reused:
            hooks.notice(f"using the proxy already running at {running.url}")
        elif proxy.idle_exit is not None:
            stack.callback(hooks.notice, warm_notice(running, proxy))
        yield running.url


def warm_notice(running: supervisor.ProxyProcess, proxy: ProxySettings) -> str:
    return (f"the proxy stays warm at {running.url} (pid {running.pid}) and exits after "
            f"{show_duration(proxy.idle_exit or 0)} without a request; stop it now with "
            f"`agentic-flow proxy stop --port {proxy.port}`")
