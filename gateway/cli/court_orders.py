"""``sijill court-orders``: the register of court orders from the operator's shell (read only:
entering and revoking an order are an officer's steps through the API, decided and audited).
It shows what the register's API shows: never the person an order names."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from gateway.cli import friendly, print_json, print_table, settings_from

if TYPE_CHECKING:
    from gateway.court_orders import CourtOrder

NAME = "court-orders"
app = typer.Typer(
    help="Court orders for law-enforcement queries: the register, read only.",
    no_args_is_help=True,
)
DATA_DIR = typer.Option(None, "--data-dir", help="Data directory")


def _summary(order: CourtOrder, now_ns: int) -> dict[str, Any]:
    from gateway.timefmt import rfc3339

    return {
        "reference": order.reference,
        "court": order.court,
        "client_id": order.client_id,
        "valid_until": rfc3339(order.valid_until_ns),
        "embargo_until": rfc3339(order.embargo_until_ns),
        "in_force": order.revocation is None and now_ns < order.valid_until_ns,
        "revoked": order.revocation is not None,
        "entered_by": f"{order.office}/{order.officer}",
    }


@app.command("list")
@friendly
def list_orders(
    client_id: str | None = typer.Option(None, "--client", help="Only this client's orders"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (for scripts)"),
    data_dir: str | None = DATA_DIR,
) -> None:
    """One line per order, in the order they were entered."""
    from gateway.court_orders import CourtOrderRegister
    from gateway.db import make_engine

    settings = settings_from(data_dir)
    register = CourtOrderRegister(make_engine(settings.database_urls["main"], pool_size=1))
    now = register.clock()
    rows = [_summary(o, now) for o in register.list(client_id=client_id)]
    if as_json:
        print_json(rows)
        return
    print_table(
        ("reference", "client", "valid until", "embargo until", "in force", "court"),
        [
            (
                r["reference"],
                r["client_id"],
                r["valid_until"],
                r["embargo_until"],
                "yes" if r["in_force"] else ("revoked" if r["revoked"] else "expired"),
                r["court"],
            )
            for r in rows
        ],
        ids=("reference",),
    )
