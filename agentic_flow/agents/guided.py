"""The guided run (agents/workflow.py says why and what): one call a turn, `Finish` the only end, the
workspace's tests run by the loop after each change, and the rules that answer what a small model gets
wrong (each one added for a transcript, named where it is applied)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .client import AgentResult, ToolUse
from .run import FINISHED, MAX_TURNS_REACHED, OUT_OF_TURNS, TESTS_FAILING, VERIFIED, LoopResult, Run, tool_result
from .tools import ToolContext
from .tools.base import ToolError
from .tools.files import write_atomic
from .verify import CheckCommand, Verification, feedback, find_check, run_check
from .workflow import (
    EDIT_TOOLS,
    FINISH,
    MAX_FINISH_REFUSALS,
    ONE_CALL,
    Opening,
    fix_imports,
    lost_names,
    missing_note,
    repeat_note,
    still_missing,
    top_level_names,
)

MAX_FORCED_FIXES = 2  # after a failing check the next call is a Write, this many times in a run
FORCE_WRITE: dict[str, Any] = {"type": "tool", "name": "Write", "disable_parallel_tool_use": True}
MAX_IDLE_TURNS = 3  # turns in a row without a complete call end a guided run (as --max-turns would)


@dataclass(frozen=True)
class Guide:
    """A guided run's extras: the workspace it shows and checks, and the check command (None: none)."""

    context: ToolContext  # the tools' workspace, permissions and command environment
    check: CheckCommand | None
    check_timeout_s: float = 60.0

    @property
    def root(self) -> Path:
        return self.context.workspace.root


class GuidedRun:
    """A guided run (agents/workflow.py): one call a turn, Finish to end, the tests run by the loop."""

    def __init__(self, run: Run, guide: Guide, first: Opening) -> None:
        self.run, self.guide = run, guide
        run.messages = [{"role": "user", "content": first.text}]
        self.seen: set[str] = set()  # the calls made since the last change
        self.check = guide.check
        self.empty = first.empty
        self.first = first
        self.task = run.request.task
        # The rules that answer a Finish once each (premature, missing, lost, unchanged) once they have.
        self.answered: set[str] = set()
        self.originals: dict[str, str | None] = {}  # each changed file as it was before the run changed it
        self.verifications: list[Verification] = []
        self.changed: list[str] = []
        self.checked_since_change = False
        self.turn_changed = False
        self.finish_refusals = 0
        self.idle_turns = 0  # turns in a row without a complete call
        self.forced_fixes = 0  # Writes forced after a failing check
        self.next_choice: dict[str, Any] | None = None  # the next turn's tool_choice, when the loop forces one
        self.turns = 0

    async def go(self, max_turns: int) -> LoopResult:
        last: AgentResult | None = None
        for turn in range(1, max_turns + 1):
            self.turns = turn
            choice, self.next_choice = self.next_choice or ONE_CALL, None
            last = await self.run.call_model(choice)
            uses = last.tool_uses
            if not uses:
                self.idle_turns += 1
                if self.idle_turns >= MAX_IDLE_TURNS:  # e.g. a max_tokens too small for any call
                    return self._end(last, turn, OUT_OF_TURNS, last.text, MAX_TURNS_REACHED)
                self._nudge(last)
                continue
            self.idle_turns = 0
            finish = next((u for u in uses if u.name == FINISH), None)
            self.turn_changed = False
            results = [await self._run(use) for use in uses if use.name != FINISH]
            if finish is not None:
                ended = await self._finish(finish, last, turn, results)
                if ended is not None:
                    return ended
                continue
            if self.turn_changed and self.check is None:
                self.check = find_check(self.guide.root, None)  # the agent may just have written tests
            if self.turn_changed and self.check is not None:
                verification = await self._verify()
                if verification.passed:
                    return self._end(last, turn, VERIFIED, self._verified_text(verification))
                results.append({"type": "text", "text": feedback(verification)})
                if not verification.refused and self.forced_fixes < MAX_FORCED_FIXES and "Write" in self.run.tools:
                    # Measured: after one Write with the failure in view, the 1.5B called Finish instead of
                    # fixing the code (4 of 4 failures of the first trials): the next call is a Write.
                    self.forced_fixes += 1
                    self.next_choice = FORCE_WRITE
            self.run.messages.append({"role": "user", "content": results})
        return self._end(last, max_turns, OUT_OF_TURNS, last.text if last else "", MAX_TURNS_REACHED)

    async def _run(self, use: ToolUse) -> dict[str, Any]:
        key = json.dumps([use.name, use.input], sort_keys=True)
        if key in self.seen and use.name not in EDIT_TOOLS:
            return self.run.refuse(use, repeat_note(use.name))
        self.seen.add(key)
        path = use.input.get("file_path") if use.name in EDIT_TOOLS else None
        before = self._read(path) if isinstance(path, str) else None
        result = await self.run.run_tool(use)
        after = self._read(path) if isinstance(path, str) else None
        if isinstance(path, str) and not result["is_error"] and after != before:
            self.checked_since_change, self.turn_changed = False, True
            self.seen = {key}
            shown = self._shown(path)
            if shown not in self.changed:
                self.changed.append(shown)
                self.originals[shown] = before
            fix = fix_imports(shown, after, self.guide.root)
            if fix.source is not None and self._write(path, fix.source):
                after = fix.source
                self.run.hooks.note(f"I added {' and '.join(f'`{line}`' for line in fix.added)} to {shown}")
            note = lost_names(shown, before, after) + fix.note
            if note:
                result = tool_result(result["tool_use_id"], result["content"] + note)
        return result

    async def _finish(self, finish: ToolUse, last: AgentResult, turn: int,
                      results: list[dict[str, Any]]) -> LoopResult | None:
        summary = str(finish.input.get("summary", "")).strip() or last.text
        writes = "Write" in self.run.tools
        if not self.run.calls and "premature" not in self.answered:
            # Measured: asked to create two files and run the tests, the 1.5B called Finish at once and
            # said it had.  A Finish before any action is answered once; a second one is accepted (a
            # question the shown files answer needs no tool).  In an empty folder the task can only be to
            # create files (measured: the 1.5B answered the refusal with a second Finish that quoted it).
            self._answer_once("premature", finish, results, force_write=self.empty and writes, note=(
                "Not finished: you have not done anything yet. Do the task with the tools first (Write "
                "creates or replaces a file, Read shows one, Bash runs a command), then call Finish."))
            return None
        missing = still_missing(self.first, self.guide.root)
        if missing and writes and "missing" not in self.answered:
            # Measured (make run's task: create calc.py and test_calc.py, run the tests): the 1.5B wrote
            # calc.py and called Finish saying both existed and the tests passed.
            self._answer_once("missing", finish, results, missing_note(missing))
            return None
        lost = self._lost_names()
        if lost and writes and "lost" not in self.answered:
            # Measured (add a function to utils.py, "keep the existing function"): the 1.5B replaced the
            # file's function with the new one, was warned, and called Finish.
            self._answer_once("lost", finish, results, "Not finished: " + "; ".join(lost) + ". Write the "
                              "complete file again with the old names kept and your change added.")
            return None
        if self.check is None and not self.changed and self.first.asks_change and writes \
                and "unchanged" not in self.answered:
            # Measured (the suite's quick and cli-flag tasks, no tests in the folder): asked to add a
            # function or an option, the 1.5B ran the program with Bash and called Finish.
            self._answer_once("unchanged", finish, results, "Not finished: no file has changed, and the "
                              "task asks for a change. Make it now: Write the complete new content of "
                              "the file.")
            return None
        if self.check is None:
            return self._end(last, turn, FINISHED, summary)
        verification = self.verifications[-1] if self.checked_since_change else await self._verify()
        if verification.passed:
            return self._end(last, turn, VERIFIED, summary)
        if verification.refused or self.finish_refusals >= MAX_FINISH_REFUSALS:
            return self._end(last, turn, TESTS_FAILING if not verification.refused else FINISHED, summary)
        self.finish_refusals += 1
        note = "Not finished: " + feedback(verification)
        if not self.changed and "Write" in self.run.tools:
            # Measured: the 1.5B read the tests, then called Finish twice without writing a line.  A
            # Finish over failing tests with nothing changed is answered by forcing the next call to be
            # a Write (whole-file writes are what a small model does best).
            note += "\nYou have not changed any file yet: write the complete new content of the file now."
            self.next_choice = FORCE_WRITE
        self._answer(finish, results, note)
        return None

    def _answer_once(self, rule: str, finish: ToolUse, results: list[dict[str, Any]], note: str, *,
                     force_write: bool = True) -> None:
        """Refuse this Finish with `note` (the run goes on), by a rule that answers only once a run."""
        self.answered.add(rule)
        if force_write:
            self.next_choice = FORCE_WRITE
        self._answer(finish, results, note)

    def _answer(self, finish: ToolUse, results: list[dict[str, Any]], note: str) -> None:
        results.append(tool_result(finish.id, note, is_error=True))
        self.run.messages.append({"role": "user", "content": results})

    def _lost_names(self) -> list[str]:
        """Each changed Python file's top-level names that it had before the run and has no more, leaving
        out the names the task mentions (a rename removes one on purpose)."""
        lost = []
        for shown, before in self.originals.items():
            now = self._read(shown)
            if not shown.endswith(".py") or before is None or now is None:
                continue
            names_now = top_level_names(now)
            if names_now is None:  # it does not parse: the Write's own warning said so
                continue
            gone = sorted((top_level_names(before) or set()) - names_now)
            gone = [name for name in gone if not re.search(rf"\b{re.escape(name)}\b", self.task)]
            if gone:
                lost.append(f"{shown} no longer defines {', '.join(gone)}, which it defined before")
        return lost

    async def _verify(self) -> Verification:
        assert self.check is not None
        verification = await run_check(self.check, self.guide.context, self.guide.check_timeout_s)
        self.verifications.append(verification)
        self.checked_since_change = True
        self.run.hooks.verified(verification)
        return verification

    def _nudge(self, last: AgentResult) -> None:
        """A turn with no call (cut at max_tokens, or text where the grammar was refused): say so in the
        history, which also changes the prompt, so a greedy model does not write the same reply again."""
        why = "was cut off at the length limit" if last.stop_reason == "max_tokens" else "called no tool"
        note = {"type": "text", "text": f"Your last reply {why}. Reply with exactly one tool call: "
                                        f"a short one, or {FINISH} if the task is done."}
        if self.run.messages[-1]["role"] == "user":
            content = self.run.messages[-1]["content"]
            blocks = [{"type": "text", "text": content}] if isinstance(content, str) else list(content)
            self.run.messages[-1] = {"role": "user", "content": [*blocks, note]}
        else:
            self.run.messages.append({"role": "user", "content": [note]})

    def _end(self, last: AgentResult | None, turn: int, outcome: str, text: str,
             stop_reason: str | None = None) -> LoopResult:
        reason = stop_reason or (last.stop_reason if last else None)
        return self.run.result(last, reason, turn, outcome, text=text, verifications=tuple(self.verifications),
                               files_changed=tuple(self.changed))

    def _verified_text(self, verification: Verification) -> str:
        changed = ", ".join(self.changed) or "nothing"
        return f"Changed {changed}; the tests pass ({verification.summary})."

    def partial(self, outcome: str) -> LoopResult:
        return self.run.result(None, None, self.turns, outcome, verifications=tuple(self.verifications),
                               files_changed=tuple(self.changed))

    def _read(self, path: str) -> str | None:
        try:
            target = self.guide.root / path if not Path(path).is_absolute() else Path(path)
            return target.read_text(errors="replace") if target.is_file() else None
        except OSError:
            return None

    def _write(self, path: str, text: str) -> bool:
        try:
            write_atomic(self.guide.context.workspace.resolve(path), text)
        except (OSError, ToolError):
            return False
        return True

    def _shown(self, path: str) -> str:
        target = Path(path)
        if target.is_absolute() and target.is_relative_to(self.guide.root):
            return target.relative_to(self.guide.root).as_posix()
        return path
