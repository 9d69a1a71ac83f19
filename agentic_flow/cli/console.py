"""How the main job shows itself: the answer on stdout, everything else (notices, a spinner while the
proxy loads or a tool runs, one line per tool call, diffs) on stderr, so `> answer.txt` keeps the answer."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.status import Status
from rich.syntax import Syntax
from rich.text import Text

from ..agents.loop import ToolRun
from ..agents.plan import Hooks
from ..agents.tools import ToolResult
from ..agents.verify import Verification
from ..errors import TransientAgentError
from ..proxy.health import Health
from .common import err, out

MAX_DIFF_LINES = 40  # a longer diff is cut: the file itself holds the rest


class ConsoleHooks(Hooks):
    """Text to stdout as it arrives (rich on a terminal, plain when piped); everything else to stderr."""

    def __init__(self, show_text: bool) -> None:
        self.show_text = show_text
        self.tty = sys.stdout.isatty()
        self.status: Status | None = None
        self.mid_line = False  # the answer's last text did not end a line
        self.text_last = False  # the last thing shown was the model's text (not a tool's line)

    def text(self, delta: str) -> None:
        if not self.show_text or not delta:
            return
        if self.tty:
            out.print(delta, end="", markup=False, highlight=False, soft_wrap=True)
        else:
            sys.stdout.write(delta)
            sys.stdout.flush()
        self.mid_line = not delta.endswith("\n")
        self.text_last = True

    def notice(self, message: str) -> None:
        err.print(message, highlight=False, markup=False)

    @contextmanager
    def loading(self, message: str) -> Iterator[Callable[[Health], None]]:
        with err.status(message) as status:
            yield lambda health: status.update(f"{message} ({health.status.value})")

    @contextmanager
    def tool_running(self, line: str) -> Iterator[None]:
        self._end_text_line()
        with err.status(Text(line), spinner="dots") as status:
            self.status = status
            try:
                yield
            finally:
                self.status = None

    @contextmanager
    def paused(self) -> Iterator[None]:
        status = self.status
        if status is not None:
            status.stop()  # the question must not be drawn over
        try:
            yield
        finally:
            if status is not None:
                status.start()

    def tool_done(self, call: ToolRun, result: ToolResult) -> None:
        self._end_text_line()
        mark, style = ("✗", "red") if call.is_error else ("●", "green")
        # An error's whole first line: it may name the flag that allows the call.
        what = f"{call.action}: {_first_line(call.content)}" if call.is_error else call.summary
        line = Text.assemble((mark + " ", style), what, (f"  ({call.duration_s:.1f} s)", "dim"))
        err.print(line, highlight=False, soft_wrap=True)
        if result.diff and not call.is_error:
            lines = result.diff.splitlines()
            shown = "\n".join(lines[:MAX_DIFF_LINES])
            err.print(Syntax(shown, "diff", theme="ansi_dark", background_color="default"))
            if len(lines) > MAX_DIFF_LINES:
                err.print(f"  ... {len(lines) - MAX_DIFF_LINES} more diff lines", style="dim")

    def verified(self, verification: Verification) -> None:
        self._end_text_line()
        if verification.passed:
            mark, style, what = "✓", "green", f"tests pass: {verification.summary}"
        elif verification.refused:
            mark, style, what = "✗", "yellow", f"tests not run: {verification.summary}"
        else:
            mark, style, what = "✗", "red", f"tests fail: {verification.summary}"
        line = Text.assemble((mark + " ", style), what, (f"  ({verification.command}, "
                                                         f"{verification.duration_s:.1f} s)", "dim"))
        err.print(line, highlight=False, soft_wrap=True)

    def note(self, line: str) -> None:
        self._end_text_line()
        err.print(Text.assemble(("+ ", "cyan"), line), highlight=False, soft_wrap=True)

    def retrying(self, error: TransientAgentError, delay_s: float) -> None:
        self._end_text_line()
        shown = " (its partial answer is dropped)" if error.shown else ""
        err.print(f"↻ the model call failed ({error.error_type}); running the turn again in {delay_s:.1f} s{shown}",
                  highlight=False, markup=False)

    def _end_text_line(self) -> None:
        self.text_last = False
        # On one terminal, stdout and stderr share the screen: start the tool's line on a line of its own.
        if self.mid_line and self.tty and self.show_text:
            out.print()
            self.mid_line = False


def _first_line(text: str, width: int = 300) -> str:
    line = text.strip().splitlines()[0] if text.strip() else "failed"
    return line if len(line) <= width else line[: width - 3] + "..."
