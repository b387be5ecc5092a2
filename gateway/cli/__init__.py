"""The ``sijill`` command.

Owns: parsing the command line and printing results. Each area has its own module here
(``sijill keys``, ``sijill audit`` …), registered in :mod:`gateway.cli.register`; this one
holds the top-level commands and the one place where a bad setting or an unreachable store
becomes one readable line.

May import: the gateway's composition (:mod:`gateway.services`, :mod:`gateway.deploy`,
:mod:`gateway.demo`, settings) and the rooms' public names.

Must never: hold tables, jobs or business rules (a command parses and calls), print personal
data it was not asked for, or be imported by anything but its own area modules and the
``sijill`` entry point.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import Callable, Sequence
from functools import wraps
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from gateway import __version__
from gateway.cli import register

if TYPE_CHECKING:
    from gateway.settings import Settings

# The command's help must answer at once, and importing SQLAlchemy (through the settings) or
# any room takes seconds: this module imports them inside the commands that need them, and
# gateway.cli.register imports only the area named on the command line.

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

P = ParamSpec("P")
R = TypeVar("R")


class CliError(Exception):
    """An error the operator can act on; printed as one line, exit status 2."""


def friendly(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn expected errors into one line on stderr and a non-zero exit, never a traceback."""

    @wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        from gateway.deploy import DeploymentError
        from gateway.settings import SettingsError

        try:
            return fn(*args, **kwargs)
        except (SettingsError, CliError, DeploymentError) as exc:
            err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper


def progress_bar(label: str, *extra: ProgressColumn, transient: bool = False) -> Progress:
    """The progress display of every long command: label, bar, done/total, the command's own
    columns, elapsed and remaining time. On stderr: stdout carries the command's result (a
    JSON report, say), which a script reads. Not on a terminal (a log file, a pipe, cron), a
    live bar would show nothing until the end: one plain line every few seconds instead."""
    if not err.is_terminal:
        return LineProgress(label, *extra)
    return Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), *extra,
                    TimeElapsedColumn(), TimeRemainingColumn(), console=err,
                    transient=transient)  # fmt: skip


class LineProgress(Progress):
    """Progress as plain lines (``PROGRESS_EVERY_S`` apart, and a last one at the end): the
    label, done/total, the rate since the start, and the command's own fields."""

    def __init__(self, label: str, *extra: ProgressColumn) -> None:
        super().__init__(*extra, console=err, disable=True)
        self._label = label
        self._last = 0.0

    def update(self, task_id: TaskID, **changes: Any) -> None:
        super().update(task_id, **changes)
        now = time.monotonic()
        if now - self._last >= PROGRESS_EVERY_S:
            self._last = now
            self._line(task_id)

    def stop(self) -> None:
        for task in self.tasks:
            self._line(task.id)
        super().stop()

    def _line(self, task_id: TaskID) -> None:
        task = self._tasks[task_id]
        label = Text.from_markup(self._label.format(task=task)).plain.strip()
        done = f"{int(task.completed):,}" + (f"/{int(task.total):,}" if task.total else "")
        rate = task.completed / task.elapsed if task.elapsed else 0.0
        own = [f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}" for k, v in task.fields.items()]
        err.print(
            ", ".join([f"{label}: {done}", f"{rate:,.0f}/s", *own]), highlight=False, soft_wrap=True
        )


PROGRESS_EVERY_S = 5.0


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


def settings_from(
    data_dir: str | None = None, *, create: bool = False, **overrides: object
) -> Settings:
    """Settings from the environment, with command-line options on top, for a data directory
    that exists (``create``: ``sijill init`` and ``sijill demo`` make it). A mistyped
    --data-dir, or a command run from another directory, must not start a new deployment
    with new keys beside the real one."""
    from gateway.settings import load_settings

    if data_dir is not None:
        os.environ["SIJILL_DATA_DIR"] = data_dir
    for key, value in overrides.items():
        if value is not None:
            os.environ[f"SIJILL_{key.upper()}"] = str(value)
    settings = load_settings()
    if not create and not settings.data_dir.is_dir():
        raise CliError(
            f"no data directory at {settings.data_dir.absolute()}: name it with --data-dir "
            "(or SIJILL_DATA_DIR), or make one with `sijill init` (or `sijill demo`)"
        )
    settings.prepare_data_dir()
    return settings


def check_port_free(host: str, port: int) -> None:
    """Refuse, before anything is initialised, a port another program listens on."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            raise CliError(
                f"port {port} on {host} is already in use by another program: stop it, or "
                "choose another port with --port"
            ) from None


def upgrade(settings: Settings) -> None:
    """Bring every store's schema up to date; one line naming a store that does not answer."""
    from sqlalchemy.exc import OperationalError

    from gateway import db
    from gateway.deploy import unreachable

    for store, url in settings.database_urls.items():
        try:
            db.upgrade_store(store, url)
        except OperationalError as exc:
            raise CliError(unreachable(store, url, exc)) from None


@app.command()
def version() -> None:
    """Print the version."""
    out.print(f"sijill {__version__}")


@app.command()
@friendly
def init(data_dir: str | None = typer.Option(None, help="Data directory")) -> None:
    """Make a data directory (mode 0700) and bring every store's schema up to date: the one
    command besides ``sijill demo`` that creates a deployment."""
    settings = settings_from(data_dir, create=True)
    upgrade(settings)
    out.print(f"initialised {settings.data_dir.absolute()}")


@db_app.command("upgrade")
@friendly
def db_upgrade(data_dir: str | None = typer.Option(None, help="Data directory")) -> None:
    """Run the migrations of every store (main, vault, audit) up to the newest."""
    settings = settings_from(data_dir)
    upgrade(settings)
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
        upgrade(settings)
    run_server(settings, workers)


def run_server(settings: Settings, workers: int = 1) -> None:
    import uvicorn

    from gateway.server import HeaderTimeoutProtocol
    from gateway.services import check_keys

    check_keys(settings)  # refuse to start, in one line, on a readable key file or a bad token
    if settings.policy_engine != "embedded":
        from policies import build_engine

        engine = build_engine(settings.policy_engine, settings.policy_timeout_s)
        try:
            engine.ping()
        except Exception as exc:
            err.print(
                f"[yellow]warning:[/] the policy engine at {settings.policy_engine} does not "
                f"answer ({type(exc).__name__}); every request that needs a decision will be "
                "denied until it does",
                highlight=False,
            )
        finally:
            close = getattr(engine, "close", None)
            if close is not None:
                close()

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
        http=HeaderTimeoutProtocol,
    )


@app.command()
@friendly
def demo(
    what: str | None = typer.Argument(
        None, help="totp: print the current code of a demo account (with its IDCS or username)"
    ),
    account: str | None = typer.Argument(None, help="The demo citizen's IDCS or the auditor"),
    data_dir: str | None = typer.Option(None, help="Data directory"),
    port: int | None = typer.Option(None, help="Port"),
    serve: bool = typer.Option(True, help="Start the server once initialised"),
    reset: bool = typer.Option(False, help="Remove the demo's data directory and start over"),
) -> None:
    """Initialise the data dir with demo data (once: a rerun keeps it) and run the gateway on
    embedded defaults."""
    from gateway.demo import initialise, print_web_accounts, remove_demo, totp_now
    from gateway.settings import load_settings

    if what is not None:
        if what != "totp" or not account:
            raise CliError("usage: sijill demo totp <IDCS or auditor username>")
        out.print(totp_now(settings_from(data_dir), account))
        return
    if data_dir is not None:
        os.environ["SIJILL_DATA_DIR"] = data_dir
    if port is not None:
        os.environ["SIJILL_PORT"] = str(port)
    planned = load_settings()
    if serve:
        check_port_free(planned.host, planned.port)
    if reset:
        remove_demo(planned, out)
    # The demo runs its own witness under /witness, so the whole story of the audit log
    # (signed checkpoints, cosigned by an independent key) runs with one command.
    settings = settings_from(data_dir, create=True, port=port, embedded_witness=True)
    upgrade(settings)
    credentials = initialise(settings, out)
    out.print(f"\n[bold]Sijill demo[/] on {settings.issuer}")
    out.print(f"  API docs:     {settings.issuer}/docs")
    out.print(f"  Health:       {settings.issuer}/healthz")
    out.print(f"  Credentials:  {credentials}")
    out.print("  Agency API:   .venv/bin/python examples/agency_client.py")
    out.print("  Verify log:   .venv/bin/sijill audit verify")
    out.print(f"  Witness:      {settings.issuer}/witness (the demo's own, on its own key)")
    # The demo's sender writes each citizen's notice here (docs/operations.md, the senders).
    notices = settings.notify_file or settings.data_dir / "notifications.jsonl"
    out.print(f"  Notices:      {notices} (opt in at {settings.issuer}/portal/notifications)")
    print_web_accounts(settings, credentials, out)
    if serve:
        run_server(settings)


def main() -> None:
    # Only the area named on the command line is imported; the others are listed by name.
    named = next((arg for arg in sys.argv[1:] if not arg.startswith("-")), None)
    command = register.command(app, load=named)
    try:
        command.main(prog_name="sijill")
    except KeyboardInterrupt:
        sys.exit(130)
