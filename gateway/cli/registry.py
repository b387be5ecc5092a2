"""``sijill registry``: the processing registry (the CNDP declarations the policies enforce)."""

from __future__ import annotations

import time

import typer
from rich.table import Table

from gateway.cli import CliError, friendly, out
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
def list_entries() -> None:
    """One line per declared processing."""
    now = time.time_ns()
    table = Table("id", "purpose", "sector", "basis", "CNDP", "in force")
    for e in _load():
        table.add_row(
            e.id,
            e.purpose,
            e.sector,
            e.basis_type,
            e.cndp_declaration,
            "yes" if e.in_force(now) else "no",
        )
    out.print(table)


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
