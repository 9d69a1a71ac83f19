"""What every command shares: consoles (user output on stdout, messages on stderr) and the one
place where the project's errors become a one-line message and an exit code."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import Enum
from typing import TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from ..errors import AgenticFlowError, ConfigError
from ..settings import parse_int

E = TypeVar("E", bound=Enum)

out = Console()
err = Console(stderr=True)

EXIT_INTERRUPTED = 130
EXIT_MAX_TURNS = 7  # the agent loop stopped at --max-turns, not because the model was done
EXIT_TESTS_FAILING = 8  # a guided run ended with the workspace's tests still failing


@contextmanager
def cli_errors() -> Iterator[None]:
    try:
        yield
    except AgenticFlowError as exc:
        # The message is plain text (paths and JSON may hold brackets): only the prefix is markup.
        err.print(f"[red]error:[/red] {escape(str(exc))}", markup=True, highlight=False, soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        err.print("interrupted", highlight=False)
        raise typer.Exit(EXIT_INTERRUPTED) from None


def choice(kind: type[E], noun: str, plural: str) -> Callable[[str | E], E]:
    """A typer `parser=` for an option whose values are an enum's (any case); a wrong one is a usage
    error (exit 2) that lists the valid values."""
    def parse(raw: str | E) -> E:
        if isinstance(raw, kind):
            return raw
        try:
            return kind(str(raw).strip().lower())
        except ValueError:
            valid = ", ".join(str(m.value) for m in kind)
            raise typer.BadParameter(f"unknown {noun} {raw!r}; valid {plural}: {valid}") from None
    return parse


def metavar(kind: type[Enum]) -> str:
    return "[" + "|".join(str(m.value) for m in kind) + "]"


def count(minimum: int) -> Callable[[str | int], int]:
    """A typer `parser=` for a whole number >= minimum, in ASCII digits (click's INT, like int(),
    also reads other scripts' digits: "٣٠٠١" would be port 3001)."""
    def parse(raw: str | int) -> int:
        try:
            value = parse_int(raw, "value")
        except ConfigError as exc:
            raise typer.BadParameter(str(exc)) from None
        if value < minimum:
            raise typer.BadParameter(f"{value} is below {minimum}")
        return value
    return parse
