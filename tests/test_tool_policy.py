"""The tool policy (proxy/tool_policy.py): what a small model is offered, and the user's override."""

from __future__ import annotations

from typing import Any

import pytest

from agentic_flow.agents.tools import TOOL_NAMES
from agentic_flow.agents.workflow import FINISH
from agentic_flow.anthropic.convert import to_prompt
from agentic_flow.anthropic.requests import parse_messages_request
from agentic_flow.chat import Prompt
from agentic_flow.errors import ConfigError
from agentic_flow.models import catalog
from agentic_flow.proxy.tool_policy import OFF, ToolPolicy, resolve
from agentic_flow.settings import ProxySettings, parse_tool_policy, resolve_proxy

SCHEMA = {"type": "object"}


def request(*names: str, **fields: Any) -> Prompt:
    return to_prompt(parse_messages_request({
        "model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"name": n, "input_schema": SCHEMA} for n in names], **fields}))


def offered(policy: ToolPolicy, req: Prompt) -> list[str]:
    return [tool.name for tool in policy.apply(req).tools]


CLAUDE_CODE = ("Agent", "Bash", "Edit", "ListAgents", "Read", "ReportFindings", "ScheduleWakeup", "Skill",
               "ToolSearch", "Workflow", "DeferredToolPlaceholder", "Write")


def test_a_small_model_is_offered_the_file_tools_and_a_shell_in_the_requests_order() -> None:
    policy = ToolPolicy(catalog.SMALL_MODEL_TOOLS)
    assert offered(policy, request(*CLAUDE_CODE)) == ["Bash", "Edit", "Read", "Write"]
    later = request(*CLAUDE_CODE, "Glob", "Grep", "TodoWrite", "WebFetch")  # a later request, more tools
    assert offered(policy, later) == ["Bash", "Edit", "Read", "Write", "Glob", "Grep"]


def test_the_projects_own_agent_tools_are_never_hidden() -> None:
    own = request(*TOOL_NAMES, FINISH)
    assert ToolPolicy(catalog.SMALL_MODEL_TOOLS).apply(own) is own


def test_everything_else_of_the_request_is_left_as_it_was() -> None:
    req = request(*CLAUDE_CODE, system="S", tool_choice={"type": "any"})
    narrowed = ToolPolicy(("Write",)).apply(req)
    assert narrowed.tools == (req.tools[-1],)
    assert (narrowed.turns, narrowed.choice) == (req.turns, req.choice)


def test_a_request_without_any_of_the_policys_tools_keeps_its_own() -> None:
    req = request("get_weather", "get_time")
    assert ToolPolicy(catalog.SMALL_MODEL_TOOLS).apply(req) is req
    assert ToolPolicy(catalog.SMALL_MODEL_TOOLS).apply(request()) == request()


def test_a_tool_forced_by_tool_choice_is_kept() -> None:
    req = request(*CLAUDE_CODE, tool_choice={"type": "tool", "name": "Skill"})
    assert offered(ToolPolicy(("Read", "Write")), req) == ["Read", "Skill", "Write"]
    auto = request(*CLAUDE_CODE, tool_choice={"type": "any"})
    assert offered(ToolPolicy(("Read", "Write")), auto) == ["Read", "Write"]


def test_off_offers_everything() -> None:
    req = request(*CLAUDE_CODE)
    assert OFF.apply(req) is req and OFF.describe() == "every tool offered"


def test_resolve_the_catalogs_list_the_users_list_or_all() -> None:
    entry = catalog.get("qwen2.5-coder-1.5b")
    assert resolve("auto", entry.agent_tools, entry.name).keep == catalog.SMALL_MODEL_TOOLS
    assert resolve("auto", None, "my-model").keep is None  # a folder outside the catalog: every tool
    assert resolve("all", entry.agent_tools, entry.name).keep is None
    assert resolve("Write,Read", entry.agent_tools, entry.name).keep == ("Write", "Read")
    assert offered(resolve("Write,Read", None, "m"), request(*CLAUDE_CODE)) == ["Read", "Write"]
    assert catalog.get("phi-4-mini").agent_tools is None  # the large model sees every tool


def test_every_small_catalog_model_has_a_policy() -> None:
    small = [e for e in catalog.CATALOG.values() if e.context_length <= 32768]
    assert small and all(e.agent_tools == catalog.SMALL_MODEL_TOOLS for e in small)


def test_the_setting_flag_over_variable_over_default() -> None:
    assert resolve_proxy(env={}).settings.tool_policy == "auto"
    by_env = resolve_proxy(env={"AGENTIC_FLOW_TOOL_POLICY": " Read, Write ,Edit "})
    assert by_env.settings.tool_policy == "Read,Write,Edit"
    assert by_env.sources["tool_policy"] == "env AGENTIC_FLOW_TOOL_POLICY"
    by_flag = resolve_proxy(tool_policy="ALL", env={"AGENTIC_FLOW_TOOL_POLICY": "Read"})
    assert by_flag.settings.tool_policy == "all" and by_flag.sources["tool_policy"] == "flag --tool-policy"


def test_the_setting_travels_to_the_proxy_process_and_an_empty_list_is_refused() -> None:
    settings = ProxySettings(tool_policy="Read,Write")
    assert ProxySettings.from_argv(settings.to_argv(), env={}).tool_policy == "Read,Write"
    with pytest.raises(ConfigError, match="give auto, all, or tool names"):
        parse_tool_policy(" , ", "env AGENTIC_FLOW_TOOL_POLICY")
