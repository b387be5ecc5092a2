"""``sijill retention run``: apply every retention period now (gateway/retention.py), the work
the ``retention`` job of ``sijill serve`` does every SIJILL_RETENTION_EVERY_SECONDS."""

from __future__ import annotations

from datetime import UTC, datetime

import typer
from rich.progress import TextColumn

from gateway.cli import CliError, friendly, print_json, progress_bar, settings_from

NAME = "retention"
app = typer.Typer(help="Retention: erase and delete what its period no longer allows.",
                  no_args_is_help=True)  # fmt: skip


def _moment(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise CliError("--now: an ISO 8601 date and time, e.g. 2031-01-01T00:00:00Z") from None
    if moment.tzinfo is None:
        raise CliError("--now: give the time zone (Z or an offset)")
    return moment.astimezone(UTC)


@app.command("run")
@friendly
def run(
    dry_run: bool = typer.Option(False, "--dry-run", help="Count what would go; change nothing"),
    now: str | None = typer.Option(
        None, help="Apply the periods as of this ISO 8601 time (drills and tests)"
    ),
    data_dir: str | None = typer.Option(None, "--data-dir", help="Data directory"),
) -> None:
    """Erase deceased persons' records past the register's period, delete ended consents,
    superseded versions, import rejects and delivered notifications past theirs; prints the
    counts (JSON) and records the run on the audit log (a dry run reads only)."""
    from gateway.services import build_services

    moment = _moment(now)
    services = build_services(settings_from(data_dir))
    try:
        kinds = TextColumn("{task.fields[kind]}")
        with progress_bar("[bold]retention", kinds) as bar:
            task = bar.add_task("retention", total=None, kind="")

            def progress(done: int, total: int, kind: str) -> None:
                bar.update(task, completed=done, total=total, kind=kind)

            report = services.retention.run(now=moment, dry_run=dry_run, progress=progress)
    finally:
        services.close()
    print_json(report.as_json())
