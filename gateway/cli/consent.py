"""``sijill consent``: agencies' notification endpoints and the delivery worker."""

from __future__ import annotations

import time

import httpx
import typer

from consent import Outbox
from gateway.cli import CliError, friendly, out, print_json, print_table, settings_from
from gateway.db import make_engine

NAME = "consent"
app = typer.Typer(help="Consent-status notifications to agencies.", no_args_is_help=True)


def _outbox() -> Outbox:
    settings = settings_from()
    assert settings.database_url is not None
    return Outbox(make_engine(settings.database_url))


@app.command("endpoint")
@friendly
def endpoint(recipient: str, url: str) -> None:
    """Set where RECIPIENT (an agency code) receives signed consent-status notifications."""
    try:
        _outbox().set_endpoint(recipient, url)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    out.print(f"notifications for {recipient} go to {url}")


@app.command("endpoints")
@friendly
def endpoints(
    as_json: bool = typer.Option(False, "--json", help="Print JSON (full ids, for scripts)"),
) -> None:
    """List the registered endpoints and how many notifications wait."""
    outbox = _outbox()
    rows = sorted(outbox.endpoints().items())
    if as_json:
        print_json(
            {
                "endpoints": [{"recipient": r, "url": u} for r, u in rows],
                "pending": outbox.pending(),
            }
        )
        return
    print_table(("recipient", "url"), rows, ids=("recipient", "url"))
    out.print(f"{outbox.pending()} notifications pending")


@app.command()
@friendly
def deliver(
    once: bool = typer.Option(False, help="One pass, then exit"),
    interval: float = typer.Option(2.0, min=0.1, help="Seconds between passes"),
) -> None:
    """Post due notifications (retried with exponential backoff until delivered)."""

    outbox = _outbox()
    with httpx.Client(timeout=10) as http:

        def send(url: str, body: str) -> int:
            return http.post(
                url, content=body, headers={"Content-Type": "application/jwt"}
            ).status_code

        while True:
            done = outbox.deliver_due(send, outbox.endpoint_for)
            delivered = sum(d.delivered for d in done)
            if done:
                out.print(f"{delivered} delivered, {len(done) - delivered} to retry")
            if once:
                return
            time.sleep(interval)
