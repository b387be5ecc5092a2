"""``sijill synth``: write a synthetic Moroccan population (see identity/synth.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from gateway.cli import CliError, friendly, out

NAME = "synth"
app = typer.Typer(help="Synthetic population for demos, tests and benchmarks.")


@app.callback(invoke_without_command=True)
@friendly
def synth(
    persons: int = typer.Option(1000, min=0, help="Number of persons"),
    households: int | None = typer.Option(
        None, min=1, help="Number of households (default: persons / 4.6)"
    ),
    seed: int = typer.Option(0, help="Seed: the same seed gives the same population"),
    out_file: Path | None = typer.Option(
        None, "--out", help="Output file (.csv or .jsonl); default: JSON Lines on stdout"
    ),
    fmt: str | None = typer.Option(None, "--format", help="csv or jsonl (default: from --out)"),
) -> None:
    """Write N synthetic persons in M households, deterministically for a seed."""
    from identity.synth import generate, write_csv, write_jsonl

    kind = fmt or ("csv" if out_file is not None and out_file.suffix == ".csv" else "jsonl")
    if kind not in {"csv", "jsonl"}:
        raise CliError("--format must be csv or jsonl")
    try:
        records = generate(persons, households, seed)
        writer = write_csv if kind == "csv" else write_jsonl
        if out_file is None:
            writer(records, sys.stdout)
            return
        with out_file.open("w", encoding="utf-8", newline="") as fh:
            n = writer(records, fh)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    out.print(f"wrote {n} persons to {out_file}", highlight=False)
