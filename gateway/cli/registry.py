"""``sijill registry``: the processing registry (the CNDP declarations the policies enforce)."""

from __future__ import annotations

import time

import typer

from gateway.cli import CliError, friendly, out, print_json, print_table
from policies.registry import ProcessingRegistry, RegistryError

NAME = "registry"
app = typer.Typer(
    help="The processing registry: purposes, legal bases, fields, declarations.",
    no_args_is_help=True,
)


def _load() -> ProcessingRegistry:
    try:
        return ProcessingRegistry.load()
    except RegistryError as exc:
        raise CliError(str(exc)) from None


@app.command("list")
@friendly
def list_entries(
    as_json: bool = typer.Option(False, "--json", help="Print JSON (full ids, for scripts)"),
) -> None:
    """One line per declared processing."""
    now = time.time_ns()
    entries = list(_load())
    if as_json:
        print_json(
            [
                {
                    "id": e.id,
                    "purpose": e.purpose,
                    "sector": e.sector,
                    "basis": e.basis_type,
                    "cndp_declaration": e.cndp_declaration,
                    "in_force": e.in_force(now),
                }
                for e in entries
            ]
        )
        return
    print_table(
        ("id", "purpose", "sector", "basis", "CNDP", "in force"),
        [
            (
                e.id,
                e.purpose,
                e.sector,
                e.basis_type,
                e.cndp_declaration,
                "yes" if e.in_force(now) else "no",
            )
            for e in entries
        ],
        ids=("id", "purpose"),
    )


@app.command()
@friendly
def show(entry_id: str) -> None:
    """One entry in full."""
    entry = _load().get(entry_id)
    if entry is None:
        raise CliError(f"no registry entry {entry_id!r}")
    out.print_json(data=dict(entry.raw))


@app.command()
@friendly
def validate() -> None:
    """Check every entry; exit non-zero naming the first problem."""
    registry = _load()
    out.print(f"{len(registry.entries)} entries valid")
