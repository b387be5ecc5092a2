"""``sijill rnp``: the population register from the command line (bulk import)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer
from rich.progress import TextColumn

from audit import AuditUnavailable
from gateway.cli import CliError, err, friendly, out, progress_bar, settings_from, upgrade
from gateway.deploy import open_register
from gateway.rnp import audited_import, usable_workers
from identity.batches import JobTotals
from identity.bulk import ImportFileError, ImportIncomplete, check_file

NAME = "rnp"
app = typer.Typer(help="Population register (RNP): bulk enrolment.", no_args_is_help=True)


def _count_lines(path: Path) -> int:
    n = 0
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            n += chunk.count(b"\n")
    return n


@app.command("import")
@friendly
def import_(
    file: Path = typer.Argument(..., help="CSV (with header) or JSON Lines file of persons"),
    report: Path | None = typer.Option(
        None, help="Where to write the reject report (default: FILE.rejects.json)"
    ),
    batch_size: int | None = typer.Option(None, min=1, max=10000, help="Rows per transaction"),
    workers: int = typer.Option(
        1, min=1, max=64, help="Worker processes sharing the batches (PostgreSQL)"
    ),
    claim_seconds: float | None = typer.Option(
        None, min=0.5, help="How long a worker's claim on a batch lasts without a commit"
    ),
    data_dir: str | None = typer.Option(None, help="Data directory"),
    migrate: bool = typer.Option(True, help="Run pending migrations first"),
) -> None:
    """Enrol every person of FILE. Re-running resumes where a previous run stopped."""
    if not file.is_file():
        raise CliError(f"no such file: {file}")
    try:
        check_file(file)  # before migrations or keys: a file that cannot be imported writes nothing
    except ImportFileError as exc:
        raise CliError(f"{file.name}: {exc}") from None
    settings = settings_from(data_dir)
    if migrate:
        upgrade(settings)
    usable = usable_workers(settings, workers)
    if usable < workers:
        err.print(f"SQLite has one writer at a time: importing with {usable} worker, not {workers}")
    total = _count_lines(file)
    counts = TextColumn(
        "lines · {task.fields[enrolled]} enrolled · {task.fields[rejected]} rejected"
    )
    with progress_bar("[bold]enrolling", counts) as bar:
        task = bar.add_task("import", total=total, enrolled=0, rejected=0)

        def progress(done: JobTotals) -> None:
            bar.update(task, completed=min(done.lines, total), enrolled=done.enrolled,
                       rejected=done.rejected)  # fmt: skip

        try:
            result = audited_import(
                settings, file, workers=usable, progress=progress,
                batch_size=batch_size or settings.rnp_import_batch_size,
                claim_s=claim_seconds or settings.rnp_import_claim_seconds,
            )  # fmt: skip
        except ImportFileError as exc:
            raise CliError(f"{file.name}: {exc}") from None
        except ImportIncomplete as exc:
            raise CliError(f"{file.name}: {exc}") from None
        except AuditUnavailable:
            raise CliError(
                "the audit log could not record the import; batches not yet committed were "
                "not enrolled (run the import again to resume)"
            ) from None
        bar.update(task, completed=total)
    target = report or file.with_name(file.name + ".rejects.json")
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(result.as_json(), fh, indent=2)
    if result.resumed_lines:
        out.print(f"resumed: {result.resumed_lines} lines were imported by an earlier run")
    out.print(f"{result.enrolled} enrolled, {result.rejected} rejected; report: {target}")


@app.command("purge")
@friendly
def purge(data_dir: str | None = typer.Option(None, help="Data directory")) -> None:
    """Retention: crypto-shred previous records past their date, and vault records left by
    enrolments interrupted over an hour ago. Safe to run from cron."""
    settings = settings_from(data_dir)
    with open_register(settings) as (register, _engine, _vault):
        versions = register.purge_versions()
        orphans = register.sweep_pending(older_than_s=3600)
    out.print(f"{versions} previous records and {orphans} orphaned records erased")
