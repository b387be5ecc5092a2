"""Mounts each area's sub-commands on the ``sijill`` command, importing only the one used.

Every area's module imports its room (SQLAlchemy, Authlib, the Rego engine …), which takes
seconds; ``sijill --help`` lists the areas from :data:`AREAS` without importing any of them.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

import typer

# Each area is a module of this package defining ``app`` (a Typer) and ``NAME``; the text is
# its Typer's help (a test holds the two equal). Add yours here.
AREAS: dict[str, str] = {
    "keys": "Key-encryption keys: status and rotation.",
    "audit": "The tamper-evident audit log.",
    "pdp": "Policy decision point (OPA Data API) and policy tools.",
    "rnp": "Population register (RNP): bulk enrolment, erasure.",
    "synth": "Synthetic population for demos, tests and benchmarks.",
    "registry": "The processing registry: purposes, legal bases, fields, declarations.",
    "clients": "OAuth clients: agencies, registration offices, auditors, the portal.",
    "rsu": "Social register (RSU): national rescoring, bulk registration, household changes.",
    "consent": "Consent-status notifications to agencies.",
    "witness": "An independent witness of audit logs.",
    "breaches": "Breach register: listing, CNDP notification export and verification.",
    "court-orders": "Court orders for law-enforcement queries: the register, read only.",
    "vault": "The vault store: checks after an upgrade.",
    "citizens": "Citizens' access to the portal: activation codes.",
    "pseudonyms": "Sector pseudonym keys: rotation with a transition, retirement.",
    "notifications": "Citizens' notifications: delivery by e-mail, SMS or the demo's file.",
    "retention": "Retention: erase and delete what its period no longer allows.",
}

_RST_LITERAL = re.compile(r"``(.*?)``")


def all(app: typer.Typer) -> None:
    """Add every area's commands (tests and documentation walk the whole tree)."""
    for name in AREAS:
        _add(app, name, load=True)


def module_name(area: str) -> str:
    """The module of an area: a command of two words is a module of one ("court-orders":
    ``gateway.cli.court_orders``)."""
    return f"gateway.cli.{area.replace('-', '_')}"


def _add(app: typer.Typer, name: str, *, load: bool) -> None:
    if load:
        module = importlib.import_module(module_name(name))
        app.add_typer(module.app, name=module.NAME)
    else:
        app.add_typer(typer.Typer(help=AREAS[name]), name=name)


def command(app: typer.Typer, *, load: str | None) -> Any:
    """The click command of ``app`` with the area ``load`` imported (others listed only),
    its help made plain text."""
    for name in AREAS:
        _add(app, name, load=name == load)
    root = typer.main.get_command(app)
    plain_help(root)
    return root


def plain_help(command: Any) -> None:
    """Help as a terminal shows it: no type tags (``<str>``) and no reStructuredText markup.

    Typer labels every option's value with its Python type; an operator reads the option's
    own name better (``--data-dir DATA_DIR``). Docstrings keep their markup for the API docs.
    """
    if hasattr(command, "rich_markup_mode"):
        command.rich_markup_mode = None
    if command.help:
        command.help = _RST_LITERAL.sub(r"\1", command.help)
    if command.short_help:
        command.short_help = _RST_LITERAL.sub(r"\1", command.short_help)
    # Typer vendors its own click: its classes are not ``click``'s, so duck typing.
    for param in command.params:
        if getattr(param, "help", None):
            param.help = _RST_LITERAL.sub(r"\1", param.help)
        if param.metavar is None and not getattr(param, "is_flag", False):
            param.metavar = (param.name or "value").upper()
    # Typer's groups are commands with a ``commands`` mapping.
    for sub in getattr(command, "commands", {}).values():
        plain_help(sub)
