"""The ``sijill`` command.

Each area has its own module here (``sijill keys``, ``sijill audit`` …); this one holds the
top-level commands and the one place where a bad setting becomes one readable line.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from functools import wraps
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from rich.console import Console

from gateway import __version__

if TYPE_CHECKING:
    from rich.progress import Progress, ProgressColumn

    from gateway.settings import Settings

# Heavy modules (SQLAlchemy through the settings, each area's services) are imported inside
# the commands that need them, so `sijill --help` answers at once.

app = typer.Typer(
    name="sijill",
    help="Sijill: identity and consent gateway.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
err = Console(stderr=True)
out = Console()

F = TypeVar("F", bound=Callable[..., Any])


class CliError(Exception):
    """An error the operator can act on; printed as one line, exit status 2."""


def friendly(fn: F) -> F:
    """Turn expected errors into one line on stderr and a non-zero exit, never a traceback."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from gateway.settings import SettingsError

        try:
            return fn(*args, **kwargs)
        except (SettingsError, CliError) as exc:
            err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def progress_bar(label: str, *extra: ProgressColumn, transient: bool = False) -> Progress:
    """The progress display of every long command: label, bar, done/total, the command's own
    columns, elapsed and remaining time. On stderr: stdout carries the command's result (a
    JSON report, say), which a script reads."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), *extra,
                    TimeElapsedColumn(), TimeRemainingColumn(), console=err,
                    transient=transient)  # fmt: skip


def print_json(data: object) -> None:
    """A list command's ``--json``: plain JSON on stdout, never wrapped, cut or coloured."""
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def print_table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], *, ids: Sequence[str] = ()
) -> None:
    """A listing for a person to read. Columns named in ``ids`` are never cut, however narrow
    the terminal (they are what a person copies into the next command); other cells fold."""
    from rich.table import Column, Table

    columns = [
        Column(h, no_wrap=True, min_width=max([len(h), *(len(r[i]) for r in rows)]))
        if h in ids
        else Column(h, overflow="fold")
        for i, h in enumerate(headers)
    ]
    table = Table(*columns)
    for row in rows:
        table.add_row(*row)
    out.print(table)


def settings_from(data_dir: str | None = None, **overrides: Any) -> Settings:
    """Settings from the environment, with command-line options on top; data dir ready."""
    from gateway.settings import load_settings

    if data_dir is not None:
        os.environ["SIJILL_DATA_DIR"] = data_dir
    for key, value in overrides.items():
        if value is not None:
            os.environ[f"SIJILL_{key.upper()}"] = str(value)
    settings = load_settings()
    settings.prepare_data_dir()
    return settings


def _upgrade(settings: Settings) -> None:
    from sqlalchemy.exc import OperationalError

    from gateway import db

    try:
        db.upgrade(settings.database_urls)
    except OperationalError as exc:
        raise CliError(f"cannot reach the database: {type(exc.orig).__name__}") from None


@app.command()
def version() -> None:
    """Print the version."""
    out.print(f"sijill {__version__}")


@db_app.command("upgrade")
@friendly
def db_upgrade(data_dir: str | None = typer.Option(None, help="Data directory")) -> None:
    """Run the migrations of every store (main, vault, audit) up to the newest."""
    settings = settings_from(data_dir)
    _upgrade(settings)
    out.print("database schema is up to date")


@app.command()
@friendly
def serve(
    host: str | None = typer.Option(None, help="Address to listen on"),
    port: int | None = typer.Option(None, help="Port"),
    workers: int = typer.Option(1, min=1, help="Worker processes"),
    data_dir: str | None = typer.Option(None, help="Data directory"),
    migrate: bool = typer.Option(True, help="Run pending migrations first"),
) -> None:
    """Run the gateway."""
    settings = settings_from(data_dir, host=host, port=port)
    if migrate:
        _upgrade(settings)
    run_server(settings, workers)


def run_server(settings: Settings, workers: int = 1) -> None:
    import uvicorn

    from gateway.services import check_keys

    check_keys(settings)  # refuse to start, in one line, on a readable key file or a bad token

    from gateway import logs

    logs.configure(settings.log_level)
    # Workers re-read the settings from the environment, which settings_from() has set.
    uvicorn.run(
        "gateway.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=workers,
        log_config=None,
        access_log=False,
        proxy_headers=False,
        server_header=False,
    )


@app.command()
@friendly
def demo(
    data_dir: str | None = typer.Option(None, help="Data directory"),
    port: int | None = typer.Option(None, help="Port"),
    serve: bool = typer.Option(True, help="Start the server once initialised"),
) -> None:
    """Initialise the data dir with demo data and run the gateway on embedded defaults."""
    from gateway.demo import initialise

    # The demo runs its own witness under /witness, so the whole story of the audit log
    # (signed checkpoints, cosigned by an independent key) runs with one command.
    settings = settings_from(data_dir, port=port, embedded_witness=True)
    _upgrade(settings)
    credentials = initialise(settings, out)
    out.print(f"\n[bold]Sijill demo[/] on {settings.issuer}")
    out.print(f"  API docs:     {settings.issuer}/docs")
    out.print(f"  Health:       {settings.issuer}/healthz")
    out.print(f"  Credentials:  {credentials}")
    out.print("  Agency API:   .venv/bin/python examples/agency_client.py")
    out.print("  Verify log:   .venv/bin/sijill audit verify")
    out.print(f"  Witness:      {settings.issuer}/witness (the demo's own, on its own key)")
    if serve:
        run_server(settings)


def main() -> None:
    from gateway.cli import register

    # Only the area named on the command line is imported; the others are listed by name.
    named = next((arg for arg in sys.argv[1:] if not arg.startswith("-")), None)
    command = register.command(app, load=named)
    try:
        command.main(prog_name="sijill")
    except KeyboardInterrupt:
        sys.exit(130)
