"""``sijill rnp``: the population register from the command line (bulk import, the erasure
procedure); its retention is ``sijill retention run``'s."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, cast

import typer
from rich.progress import TextColumn

from audit import AuditUnavailable
from gateway.cli import (
    CliError,
    err,
    friendly,
    out,
    print_json,
    print_table,
    progress_bar,
    settings_from,
    upgrade,
)
from gateway.rnp import audited_import, usable_workers
from identity.batches import JobTotals
from identity.bulk import ImportFileError, ImportIncomplete, check_file

if TYPE_CHECKING:
    from gateway.authz import Enforcer
    from gateway.erasure import ErasureRequest, Ground, Status

NAME = "rnp"
app = typer.Typer(help="Population register (RNP): bulk enrolment, erasure.", no_args_is_help=True)


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


erasure_app = typer.Typer(
    help="Erasure of a person: an office asks, a second named officer approves or refuses "
    "(each step decided by the policy and audited, as over HTTP).",
    no_args_is_help=True,
)
app.add_typer(erasure_app, name="erasure")
OFFICE = typer.Option(..., "--office", help="The office client the step is taken for")
OFFICER = typer.Option(
    None, "--officer", help="The officer taking the step (password and TOTP code are asked)"
)
NAMED_OFFICER = typer.Option(
    ..., "--officer", help="The officer taking the step (password and TOTP code are asked)"
)
DATA_DIR = typer.Option(None, "--data-dir", help="Data directory")


def _erasure_step(
    data_dir: str | None,
    action: str,
    office: str,
    officer: str | None,
    step: Callable[[Enforcer], object],
) -> object:
    """Sign the officer in, take ``step`` through the enforcement point, and turn a refusal
    into one line; the services are closed whatever happens."""
    from gateway.auth import OfficeUnknown
    from gateway.erasures import officer_enforcer
    from gateway.problems import Problem
    from gateway.services import build_services
    from identity.oauth import LoginFailed

    credentials = None
    if officer is not None:
        credentials = {
            "username": officer,
            "password": typer.prompt("password", hide_input=True, err=True),
            "code": typer.prompt("TOTP code", err=True),
        }
    services = build_services(settings_from(data_dir))
    try:
        enforcer = officer_enforcer(services, action, client_id=office, officer=credentials)
        return step(enforcer)
    except OfficeUnknown as exc:
        raise CliError(str(exc)) from None
    except LoginFailed:
        raise CliError("sign-in failed: wrong username, password or code") from None
    except Problem as exc:
        raise CliError(f"{exc.detail} ({exc.kind})") from None
    finally:
        services.close()


def _show(result: object) -> None:
    from gateway import erasures

    request, _decision_id = cast("tuple[ErasureRequest, str]", result)
    print_json(erasures.document(request))


@erasure_app.command("request")
@friendly
def erasure_request(
    idcs: str = typer.Argument(..., help="The person's IDCS"),
    ground: str = typer.Option(
        ..., help="court_order, duplicate_enrolment or death_after_retention"
    ),
    reference: str = typer.Option(
        ..., help="The court order's number, or the IDCS kept for a duplicate enrolment"
    ),
    statement: str | None = typer.Option(None, help="The office's statement"),
    office: str = OFFICE,
    officer: str | None = OFFICER,
    data_dir: str | None = DATA_DIR,
) -> None:
    """Ask for the erasure of IDCS; nothing is erased until a second officer approves."""
    from gateway import erasures
    from gateway.erasure import GROUNDS

    if ground not in GROUNDS:
        raise CliError(f"ground must be one of {', '.join(GROUNDS)}")
    if not 1 <= len(reference) <= 200:
        raise CliError("reference: 1 to 200 characters")
    _show(
        _erasure_step(
            data_dir, "request_erasure", office, officer,
            lambda e: erasures.request(e, idcs, cast("Ground", ground), reference, statement),
        )
    )  # fmt: skip


@erasure_app.command("approve")
@friendly
def erasure_approve(
    request_id: str = typer.Argument(..., help="The request's id"),
    office: str = OFFICE,
    officer: str = NAMED_OFFICER,
    data_dir: str | None = DATA_DIR,
) -> None:
    """Approve REQUEST_ID (never its requester) and carry it out; again on a carry-out that
    stopped half-way finishes it."""
    from gateway import erasures

    _show(
        _erasure_step(
            data_dir, "approve_erasure", office, officer,
            lambda e: erasures.approve(e, request_id),
        )
    )  # fmt: skip


@erasure_app.command("refuse")
@friendly
def erasure_refuse(
    request_id: str = typer.Argument(..., help="The request's id"),
    reason: str = typer.Option(..., help="Why the erasure is refused"),
    office: str = OFFICE,
    officer: str = NAMED_OFFICER,
    data_dir: str | None = DATA_DIR,
) -> None:
    """Refuse REQUEST_ID with REASON; nothing is erased."""
    from gateway import erasures

    if not 1 <= len(reason) <= 4000:
        raise CliError("reason: 1 to 4000 characters")
    _show(
        _erasure_step(
            data_dir, "refuse_erasure", office, officer,
            lambda e: erasures.refuse(e, request_id, reason),
        )
    )  # fmt: skip


@erasure_app.command("list")
@friendly
def erasure_list(
    status: str | None = typer.Option(None, help="Only requests in this status"),
    office: str = OFFICE,
    officer: str | None = OFFICER,
    as_json: bool = typer.Option(False, "--json", help="Print JSON (full ids, for scripts)"),
    data_dir: str | None = DATA_DIR,
) -> None:
    """The erasure requests, newest first."""
    from gateway import erasures
    from gateway.erasure import STATUSES

    if status is not None and status not in STATUSES:
        raise CliError(f"status must be one of {', '.join(STATUSES)}")
    result = _erasure_step(
        data_dir, "read_erasure_requests", office, officer,
        lambda e: erasures.list_requests(e, cast("Status | None", status)),
    )  # fmt: skip
    chosen, _decision_id = cast("tuple[list[ErasureRequest], str]", result)
    rows = [erasures.document(r) for r in chosen]
    if as_json:
        print_json(rows)
        return
    print_table(
        ("id", "status", "ground", "requested", "by"),
        [(r["id"], r["status"], r["ground"], r["requested_at"], r["requested_by"]) for r in rows],
        ids=("id",),
    )
