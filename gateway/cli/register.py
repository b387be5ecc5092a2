"""Mounts each area's sub-commands on the ``sijill`` command."""

from __future__ import annotations

import typer


def all(app: typer.Typer) -> None:
    """Add every area's commands. Each area's module defines ``app`` (a Typer) and ``NAME``."""
    import importlib

    for module_name in MODULES:
        module = importlib.import_module(f"gateway.cli.{module_name}")
        app.add_typer(module.app, name=module.NAME)


# Each entry is a module in this package; add yours here.
MODULES: list[str] = [
    "keys",
    "audit",
    "pdp",
    "rnp",
    "synth",
    "registry",
    "clients",
    "rsu",
    "consent",
    "witness",
]
