"""``sijill pseudonyms``: rotate a sector's pseudonym key, retire the old version, status."""

from __future__ import annotations

import typer

from gateway.cli import CliError, friendly, out, print_json, print_table, settings_from
from gateway.deploy import open_pseudonyms, record_change
from identity import TransitionNotOver

NAME = "pseudonyms"
app = typer.Typer(
    help="Sector pseudonym keys: rotation with a transition, retirement.", no_args_is_help=True
)


@app.command("rotate")
@friendly
def rotate(
    sector: str = typer.Argument(..., help="The sector, e.g. social"),
    transition: int = typer.Option(
        90, min=0, max=3650, help="Days the old version keeps resolving before it may be retired"
    ),
    data_dir: str | None = typer.Option(None, help="Data directory"),
) -> None:
    """Start a new key version for new lookups; the old one resolves during the transition."""
    settings = settings_from(data_dir)
    with open_pseudonyms(settings) as keys:
        try:
            version = keys.rotate(sector, transition)
        except ValueError as exc:
            raise CliError(str(exc)) from None
    record_change(
        settings,
        "pseudonym_key_rotated",
        sector=sector,
        version=version,
        transition_days=transition,
    )
    out.print(
        f"sector {sector}: key v{version} is current; v{version - 1} resolves for {transition} "
        "more days, while the sector's agencies translate their pseudonyms "
        "(POST /v1/agency/pseudonyms/translate)"
    )


@app.command("retire")
@friendly
def retire(
    sector: str = typer.Argument(..., help="The sector"),
    version: int = typer.Argument(..., min=1, help="The superseded key version to retire"),
    force: bool = typer.Option(False, help="Retire before the transition ends"),
    data_dir: str | None = typer.Option(None, help="Data directory"),
) -> None:
    """Retire a superseded version: its pseudonyms are unknown from now on (404)."""
    settings = settings_from(data_dir)
    with open_pseudonyms(settings) as keys:
        try:
            dropped = keys.retire(sector, version, force=force)
        except TransitionNotOver as exc:
            raise CliError(f"{exc}; retire then, or now with --force") from None
        except ValueError as exc:
            raise CliError(str(exc)) from None
    record_change(settings, "pseudonym_key_retired", sector=sector, version=version, forced=force)
    out.print(f"sector {sector}: key v{version} retired, {dropped} pseudonyms no longer resolve")


@app.command("status")
@friendly
def status(
    sector: str | None = typer.Argument(None, help="One sector (default: every sector)"),
    json_: bool = typer.Option(False, "--json", help="JSON on stdout"),
    data_dir: str | None = typer.Option(None, help="Data directory"),
) -> None:
    """Each sector's key versions: state, transition end, pseudonyms still indexed."""
    with open_pseudonyms(settings_from(data_dir)) as keys:
        try:
            versions = keys.status(sector)
        except ValueError as exc:
            raise CliError(str(exc)) from None
    rows = [
        {
            "sector": v.sector,
            "version": v.version,
            "state": v.state,
            "created_at": v.created_at.isoformat(),
            "transition_ends_at": v.transition_ends_at.isoformat()
            if v.transition_ends_at
            else None,
            "retired_at": v.retired_at.isoformat() if v.retired_at else None,
            "pseudonyms": v.pseudonyms,
        }
        for v in versions
    ]
    if json_:
        print_json(rows)
        return
    table = [
        [
            str(r["sector"]),
            f"v{r['version']}",
            str(r["state"]),
            str(r["transition_ends_at"] or "-"),
            str(r["pseudonyms"]),
        ]
        for r in rows
    ]
    print_table(
        ["sector", "version", "state", "transition ends", "pseudonyms"], table, ids=("sector",)
    )
