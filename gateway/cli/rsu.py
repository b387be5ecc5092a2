"""``sijill rsu``: the social register from the command line (national rescoring, bulk
registration). The rescoring itself is the ``gateway.rescore`` room; rooms are imported inside
the commands, so that ``sijill --help`` stays quick.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer

from gateway.cli import CliError, friendly, out, progress_bar, settings_from
from gateway.deploy import database_error

NAME = "rsu"
app = typer.Typer(
    help="Social register (RSU): national rescoring, bulk registration.", no_args_is_help=True
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
