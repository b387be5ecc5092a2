"""``sijill rsu``: the social register from the command line (national rescoring, bulk
registration, an office's household changes). The rescoring itself is the ``gateway.rescore``
room, the changes ``gateway.households``; rooms are imported inside the commands, so that
``sijill --help`` stays quick.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from gateway.cli import CliError, friendly, out, progress_bar, settings_from
from gateway.deploy import database_error

if TYPE_CHECKING:
    from pydantic import BaseModel

M = TypeVar("M", bound="BaseModel")

NAME = "rsu"
app = typer.Typer(
    help="Social register (RSU): national rescoring, bulk registration, household changes.",
    no_args_is_help=True,
)


@app.command("rescore")
@friendly
def rescore(
    model: str = typer.Option(
        ..., "--model", help="Model release, e.g. v2 (urban-v2.json + rural-v2.json)"
    ),
    models_dir: Path | None = typer.Option(
        None,
        help="Directory of the model files (default: "
        "SIJILL_SCORING_MODELS_DIR or the shipped models)",
    ),
    batch_size: int = typer.Option(
        5000, min=1, max=20_000, help="Households per batch (a crash redoes at most one a worker)"
    ),
    workers: int = typer.Option(min(2, os.cpu_count() or 1), min=1, help="Worker processes"),
    pause: float = typer.Option(
        0.0,
        min=0,
        help="Seconds to pause between batches (leaves database headroom for live traffic)",
    ),
    data_dir: str | None = typer.Option(None, help="Data directory"),
) -> None:
    """Rescore every household with a model release; resumable (run it again after a crash)."""
    from sqlalchemy.exc import OperationalError

    from gateway.rescore import RescoreError, load_models, run_rescore

    settings = settings_from(data_dir)
    try:
        # A missing or invalid model file: fail before starting.
        load_models(settings, model, models_dir)
    except RescoreError as exc:
        raise CliError(str(exc)) from None
    with progress_bar("[bold]rescoring[/] {task.description}") as bar:
        task = bar.add_task(model, total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        try:
            report = run_rescore(
                settings,
                model,
                models_dir=models_dir,
                batch_size=batch_size,
                workers=workers,
                pause_s=pause,
                on_progress=progress,
            )
        except RescoreError as exc:
            raise CliError(str(exc)) from None
        except OperationalError as exc:
            raise database_error(settings, exc) from None
    rate = report.scored_now / report.seconds if report.seconds else 0.0
    # print_json: the report stays one JSON document whatever the width (print would wrap it
    # at the console's 80 columns when stdout is not a terminal).
    out.print_json(
        json.dumps(
            {
                "job": report.job_id,
                "model": report.model,
                "households": report.households,
                "scored_now": report.scored_now,
                "resumed": report.resumed,
                "seconds": round(report.seconds, 2),
                "households_per_s": round(rate, 1),
            }
        )
    )


def _read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


@app.command("register")
@friendly
def register(
    file: Path = typer.Argument(
        ...,
        exists=True,
        dir_okay=False,
        help='JSON Lines: {"members": [...], "declaration": {...}}',
    ),
    data_dir: str | None = typer.Option(None, help="Data directory"),
) -> None:
    """Register households from a file (one per line); refused lines are reported by number."""
    from pydantic import ValidationError

    from gateway.services import build_services
    from rsu import HouseholdError, problems_of

    settings = settings_from(data_dir)
    services = build_services(settings)
    registered = refused = 0
    try:
        for number, record in enumerate(_read_jsonl(file), start=1):
            try:
                services.households.register_household(record["members"], record["declaration"])
                registered += 1
            except (HouseholdError, ValidationError, ValueError, KeyError, TypeError) as exc:
                refused += 1
                if isinstance(exc, HouseholdError):
                    reason = str(exc)
                elif isinstance(exc, ValueError):  # pydantic's ValidationError included
                    reason = "; ".join(f"{f}: {r}" for f, r in problems_of(exc))
                else:
                    reason = "a line needs members and declaration"
                out.print(f"line {number}: refused ({reason})", highlight=False)
    finally:
        services.close()
    out.print(f"registered {registered} households, refused {refused}", highlight=False)


# -- household changes (an office's, decided and audited as over HTTP) -------------------------
household = typer.Typer(
    help="Household changes by a registration office: add-member, remove-member, split, "
    "declare. Each is decided by the policy, audited, recorded in the household's history and "
    "rescored in the vault; the answer carries ids and counts only.",
    no_args_is_help=True,
)
app.add_typer(household, name="household")
OFFICE = typer.Option(..., "--office", help="The registration office's client id (its sector "
                      "and scopes apply)")  # fmt: skip
OFFICER = typer.Option(None, "--officer", help="The officer making the change (on the record)")
BODY = typer.Argument(
    ..., exists=True, dir_okay=False, help="JSON file: the same body as the HTTP route"
)


def _change(
    action: str,
    office: str,
    officer: str | None,
    data_dir: str | None,
    household_id: str,
    make: Callable[[Any], Any],
) -> None:
    """Run one change as ``office`` through the enforcement point; print its answer."""
    from gateway.auth import OfficeUnknown
    from gateway.households import office_enforcer
    from gateway.problems import Problem
    from gateway.services import build_services

    services = build_services(settings_from(data_dir))
    try:
        enforcer = office_enforcer(services, office, officer, action)
        out.print_json(make(enforcer).out(household_id).model_dump_json())
    except OfficeUnknown as exc:
        raise CliError(str(exc)) from None
    except Problem as exc:
        raise CliError(f"refused ({exc.kind}): {exc.detail}") from None
    finally:
        services.close()


def _body(model: type[M], path: Path) -> M:
    from pydantic import ValidationError

    from rsu import problems_of

    try:
        return model.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        said = "; ".join(f"{f}: {r}" for f, r in problems_of(exc))
        raise CliError(f"{path.name} is not valid ({said})") from None


@household.command("add-member")
@friendly
def add_member(
    household_id: str = typer.Argument(..., help="The household's id (h_...)"),
    body: Path = BODY,
    office: str = OFFICE,
    officer: str | None = OFFICER,
    data_dir: str | None = typer.Option(None, help="Data directory"),
) -> None:
    """A member joins: {"member": {...}, "reason": "birth|marriage|adoption|return|other"}."""
    from gateway import households as changes

    added = _body(changes.MemberAdded, body)
    _change("add_household_member", office, officer, data_dir, household_id,
            lambda e: changes.add_member(e, household_id, added.member, added.reason))  # fmt: skip


@household.command("remove-member")
@friendly
def remove_member(
    household_id: str = typer.Argument(..., help="The household's id (h_...)"),
    idcs: str = typer.Argument(..., help="The IDCS of the member who leaves"),
    reason: str = typer.Option(..., help="death, departure, marriage, divorce or other"),
    new_head: str | None = typer.Option(None, help="Who heads the household when the head leaves"),
    office: str = OFFICE,
    officer: str | None = OFFICER,
    data_dir: str | None = typer.Option(None, help="Data directory"),
) -> None:
    """A member leaves; the last one leaving dissolves the household."""
    from gateway import households as changes

    _change("remove_household_member", office, officer, data_dir, household_id,
            lambda e: changes.remove_member(e, household_id, idcs, reason, new_head))  # fmt: skip


@household.command("split")
@friendly
def split(
    household_id: str = typer.Argument(..., help="The household's id (h_...)"),
    body: Path = BODY,
    office: str = OFFICE,
    officer: str | None = OFFICER,
    data_dir: str | None = typer.Option(None, help="Data directory"),
) -> None:
    """Named members leave and form a new household: {"members", "declaration", "new_head"}."""
    from gateway import households as changes

    parted = _body(changes.SplitIn, body)
    _change("split_household", office, officer, data_dir, household_id,
            lambda e: changes.split(e, household_id, parted.members, parted.declaration,
                                    parted.new_head))  # fmt: skip


@household.command("declare")
@friendly
def declare(
    household_id: str = typer.Argument(..., help="The household's id (h_...)"),
    body: Path = BODY,
    office: str = OFFICE,
    officer: str | None = OFFICER,
    data_dir: str | None = typer.Option(None, help="Data directory"),
) -> None:
    """A new declaration of the whole household: {"members": [every member], "declaration"}."""
    from gateway import households as changes

    declared = _body(changes.HouseholdIn, body)
    _change("declare_household", office, officer, data_dir, household_id,
            lambda e: changes.declare(e, household_id, declared.members,
                                      declared.declaration))  # fmt: skip
