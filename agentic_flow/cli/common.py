"""What every command shares: consoles (user output on stdout, messages on stderr) and the one
place where the project's errors become a one-line message and an exit code."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.markup import escape

from ..errors import AgenticFlowError

out = Console()
err = Console(stderr=True)

EXIT_INTERRUPTED = 130


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
