"""Which of a request's tools a small model is offered: the tool policy (pure; tests/test_tool_policy.py).

Claude Code offers 12-24 tools (Agent, ToolSearch, Workflow, ScheduleWakeup, Skill, ListAgents, ...), and
a 1.5B model picks the wrong one or none; every definition also costs prompt tokens, i.e. prefill time.
A catalog entry names the tools its model can use (`CatalogEntry.agent_tools`): when a request offers
any of them, the model is offered only those, in the request's order.  The tools left out are gone for
this generation: they are not rendered into the prompt, and the tool-call grammar and parser know only
the tools offered, so a hidden tool can never be called.

- A request that offers none of the policy's tools (a client with tools of its own) keeps all of them.
- A tool that `tool_choice` forces by name is always kept: the client asked for that very call.
- The user's setting (`--tool-policy`, AGENTIC_FLOW_TOOL_POLICY) is `auto` (the catalog entry's list;
  a model folder outside the catalog keeps every tool), `all` (no narrowing), or a comma-separated list
  of tool names that replaces the catalog's.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..chat import Prompt
from ..settings import TOOL_POLICY_ALL as ALL
from ..settings import TOOL_POLICY_AUTO as AUTO


@dataclass(frozen=True)
class ToolPolicy:
    keep: tuple[str, ...] | None = None  # None: every tool is offered
    source: str = "default"  # for the log: where the list came from

    def apply(self, prompt: Prompt) -> Prompt:
        """`prompt` with its tools narrowed to the policy's, in the request's order (the prompt itself
        when nothing changes).  On the neutral prompt, so both APIs (Messages, Chat Completions) get it."""
        if self.keep is None or not prompt.tools:
            return prompt
        if not any(tool.name in self.keep for tool in prompt.tools):
            return prompt  # not an agent's tool set: the client's own tools, all kept
        choice = prompt.choice
        forced = choice.name if choice is not None and choice.mode == "tool" else None
        tools = tuple(tool for tool in prompt.tools if tool.name in self.keep or tool.name == forced)
        return prompt if len(tools) == len(prompt.tools) else replace(prompt, tools=tools)

    def describe(self) -> str:
        return "every tool offered" if self.keep is None else f"{', '.join(self.keep)} ({self.source})"


OFF = ToolPolicy()


def resolve(setting: str, catalog_tools: tuple[str, ...] | None, model: str) -> ToolPolicy:
    """The policy for the loaded model: the user's setting over the catalog entry's tools."""
    if setting == ALL:
        return ToolPolicy(None, "the user's setting")
    if setting == AUTO:
        if catalog_tools is None:
            return ToolPolicy(None, f"{model}: no tool policy in the catalog")
        return ToolPolicy(catalog_tools, f"the catalog's policy for {model}")
    return ToolPolicy(tuple(setting.split(",")), "the user's setting")
