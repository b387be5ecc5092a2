"""``sijill audit``: export the log, verify it offline, issue a checkpoint on demand."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.progress import Progress

from audit import AuditLog, AuditUnavailable
from gateway.cli import CliError, friendly, out, progress_bar, settings_from

NAME = "audit"
app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)

DataDir = typer.Option(None, help="Data directory")


@contextmanager
def _log(data_dir: str | None) -> Iterator[AuditLog]:
    from sqlalchemy.exc import SQLAlchemyError

    from gateway.db import make_engine
    from gateway.keys import build_audit_log

    settings = settings_from(data_dir)
    assert settings.audit_database_url is not None
    engine = make_engine(settings.audit_database_url)
    try:
        yield build_audit_log(settings, engine)
    except SQLAlchemyError as exc:
        raise CliError(f"the audit database is unreachable: {type(exc).__name__}") from None
    finally:
        engine.dispose()


def _progress() -> Progress:
    return progress_bar("{task.description}", transient=True)


@app.command("export")
@friendly
def export(
    file: Path = typer.Argument(..., help="Where to write the JSON Lines export"),
    data_dir: str | None = DataDir,
) -> None:
    """Write the whole log (entries, tree nodes, checkpoints) as JSON Lines, for offline
    verification by anyone (``sijill audit verify --export FILE``)."""
    with _log(data_dir) as log:
        try:
            size = log.size()
            tmp = file.with_name(file.name + ".partial")
            with _progress() as bar, tmp.open("w", encoding="utf-8") as fh:
                task = bar.add_task("exporting entries", total=size)
                for number, line in enumerate(log.export_lines()):
                    fh.write(line + "\n")
                    if 0 < number <= size and number % 1000 == 0:
                        bar.update(task, completed=number)
                fh.flush()
                os.fsync(fh.fileno())
            # Written aside, then renamed: an interrupted export never leaves a truncated file
            # that would read as a shortened log; rerunning starts it over.
            tmp.replace(file)
        except AuditUnavailable as exc:
            raise CliError(str(exc)) from None
    out.print(f"exported {size} entries to {file}")


@app.command("verify")
@friendly
def verify(
    export: Path | None = typer.Option(
        None, "--export", help="An export file (default: the live audit database)"
    ),
    trusted_checkpoint: Path | None = typer.Option(
        None, help="A checkpoint note obtained earlier; the log must still contain it"
    ),
    verifier_key: str | None = typer.Option(
        None, help="The log's verifier key (default: the one in the export / this server's)"
    ),
    data_dir: str | None = DataDir,
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON"),
) -> None:
    """Recompute the tree, check every checkpoint signature and the consistency between
    successive checkpoints; name the first bad index if any (exit status 1)."""
    from audit import Export, VerificationFailed
    from audit import verify as verify_export

    try:
        if export is not None:
            if not export.is_file():
                raise CliError(f"no export file at {export}")
            parsed = Export.read(export)
        else:
            with _log(data_dir) as log:
                try:
                    parsed = Export.from_lines(log.export_lines())
                except AuditUnavailable as exc:
                    raise CliError(str(exc)) from None
    except VerificationFailed as exc:
        raise CliError(f"unreadable export: {exc}") from None
    trusted = None
    if trusted_checkpoint is not None:
        try:
            trusted = trusted_checkpoint.read_text(encoding="utf-8")
        except OSError as exc:
            raise CliError(f"cannot read {trusted_checkpoint}: {exc.strerror}") from None
    with _progress() as bar:
        task = bar.add_task("hashing entries", total=len(parsed.rows))
        report = verify_export(
            parsed,
            trusted,
            verifier_key=verifier_key,
            progress=lambda done, _total: bar.update(task, completed=done),
        )
    if as_json:
        out.print_json(json.dumps(report.to_json()))
    elif report.ok:
        out.print(
            f"[green]OK[/]: {report.tree_size} entries, root {report.root_hash.hex()}, "
            f"{report.checkpoints_verified} checkpoint(s) verified and consistent"
            + (f" ({report.problem})" if report.problem else "")
        )
    else:
        where = (
            f" first bad index: {report.first_bad_index};"
            if (report.first_bad_index is not None)
            else ""
        )
        out.print(f"[bold red]FAILED[/]:{where} {report.problem}", highlight=False)
    if not report.ok:
        raise typer.Exit(1)


@app.command("checkpoint")
@friendly
def checkpoint(data_dir: str | None = DataDir) -> None:
    """Sign and store a checkpoint of the current tree now; print the note."""
    with _log(data_dir) as log:
        try:
            cp = log.issue_checkpoint()
        except AuditUnavailable as exc:
            raise CliError(str(exc)) from None
    # Raw, never re-wrapped: the note is signed text, byte for byte.
    typer.echo(cp.note, nl=False)
