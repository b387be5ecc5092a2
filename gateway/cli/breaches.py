"""``sijill breaches``: the breach register from the operator's shell (read only: every step
is taken through the API, decided and audited), the export of a CNDP notification and its
verification, which needs nothing but the file and the gateway's JWKS."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from gateway.cli import CliError, friendly, out, print_json, print_table, settings_from

if TYPE_CHECKING:
    from gateway.breaches import Breach, BreachRegister

NAME = "breaches"
app = typer.Typer(
    help="Breach register: listing, CNDP notification export and verification.",
    no_args_is_help=True,
)
DATA_DIR = typer.Option(None, "--data-dir", help="Data directory")


def _register(data_dir: str | None) -> BreachRegister:
    from gateway.breaches import BreachRegister
    from gateway.db import make_engine

    settings = settings_from(data_dir)
    return BreachRegister(make_engine(settings.database_urls["main"], pool_size=1))


def _summary(breach: Breach, now_ns: int) -> dict[str, Any]:
    from gateway.timefmt import rfc3339

    return {
        "id": breach.id,
        "status": breach.status,
        "title": breach.title,
        "detected_at": rfc3339(breach.detected_at_ns),
        "cndp_deadline": rfc3339(breach.cndp_deadline_ns),
        "overdue": breach.overdue(now_ns),
        "risk": breach.risk,
        "persons_affected": breach.persons_affected,
        "persons_notified": breach.persons_notified,
    }


@app.command("list")
@friendly
def list_breaches(
    status: str | None = typer.Option(None, help="Only breaches in this status"),
    overdue: bool = typer.Option(False, "--overdue", help="Only breaches past the deadline"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (full ids, for scripts)"),
    data_dir: str | None = DATA_DIR,
) -> None:
    """One line per breach, newest detection first; overdue: 72 hours past detection with
    the CNDP not notified."""
    from gateway.breaches import STATUSES

    if status is not None and status not in STATUSES:
        raise CliError(f"status must be one of {', '.join(STATUSES)}")
    register = _register(data_dir)
    now = register.clock()
    chosen = register.list(status=status, overdue=True if overdue else None)
    rows = [_summary(b, now) for b in chosen]
    if as_json:
        print_json(rows)
        return
    print_table(
        ("id", "status", "detected", "CNDP deadline", "overdue", "title"),
        [
            (
                r["id"],
                r["status"],
                r["detected_at"],
                r["cndp_deadline"],
                "OVERDUE" if r["overdue"] else "",
                r["title"],
            )
            for r in rows
        ],
        ids=("id",),
    )


@app.command()
@friendly
def export(
    breach_id: str,
    output: Path | None = typer.Option(None, "--out", help="Write the JWS here (else stdout)"),
    data_dir: str | None = DATA_DIR,
) -> None:
    """The signed notification sent to the CNDP for BREACH_ID (a compact JWS)."""
    from gateway.breaches import BreachNotFound

    try:
        breach = _register(data_dir).get(breach_id)
    except BreachNotFound:
        raise CliError(f"no breach {breach_id!r}") from None
    if breach.cndp_notification is None:
        raise CliError("the CNDP has not been notified of this breach yet")
    if output is None:
        out.print(breach.cndp_notification, soft_wrap=True, highlight=False)
    else:
        output.write_text(breach.cndp_notification + "\n", encoding="ascii")
        out.print(f"written to {output}")


def _jwks(source: str) -> dict[str, Any]:
    if source.startswith(("https://", "http://")):
        import httpx

        try:
            response = httpx.get(source, timeout=10.0)
            response.raise_for_status()
            keys: dict[str, Any] = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise CliError(f"cannot read the JWKS at {source} ({type(exc).__name__})") from None
        return keys
    try:
        loaded: dict[str, Any] = json.loads(Path(source).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read the JWKS file {source} ({type(exc).__name__})") from None
    return loaded


@app.command()
@friendly
def verify(
    notification: Path = typer.Argument(..., help="The notification (compact JWS) file"),
    jwks: str = typer.Option(
        ..., "--jwks", help="The gateway's JWKS: a file, or the URL of GET /oauth/jwks"
    ),
) -> None:
    """Check a CNDP breach notification: signature by a key of the JWKS, canonical JSON
    (RFC 8785), the documented format; print its document. Exit 2 if it does not verify."""
    from gateway.breaches import InvalidNotification, verify_notification

    try:
        token = notification.read_text(encoding="ascii")
    except (OSError, UnicodeError) as exc:
        raise CliError(f"cannot read {notification} ({type(exc).__name__})") from None
    try:
        document = verify_notification(token, _jwks(jwks))
    except InvalidNotification as exc:
        raise CliError(f"the notification does not verify: {exc}") from None
    print_json(document)
