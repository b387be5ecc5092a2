"""``sijill notifications``: the delivery of citizens' notifications, for operators who run it
outside ``sijill serve`` (which runs it every SIJILL_NOTIFY_EVERY_SECONDS)."""

from __future__ import annotations

import time

import typer

from gateway.cli import friendly, out, settings_from

NAME = "notifications"
app = typer.Typer(
    help="Citizens' notifications: delivery by e-mail, SMS or the demo's file.",
    no_args_is_help=True,
)


@app.command()
@friendly
def deliver(
    once: bool = typer.Option(False, help="One pass, then exit"),
    data_dir: str | None = typer.Option(None, "--data-dir", help="Data directory"),
) -> None:
    """Queue the notices of the accesses recorded since the last pass and send what is due
    (retried with backoff); under the same lease as the server's job, so one runs at a time."""
    from consent.outbox import Delivery
    from gateway.notify.delivery import Notifier, notifications_job
    from gateway.notify.senders import build_senders
    from gateway.services import build_services

    settings = settings_from(data_dir)
    services = build_services(settings)
    notifier = Notifier(services, build_senders(settings))
    done: list[Delivery] = []
    job = notifications_job(services, lambda: done.extend(notifier.run()))
    try:
        while True:
            done.clear()
            if not job.tick():
                out.print("another process holds the notifications job (or it failed; see log)")
            elif done:
                sent = sum(d.delivered for d in done)
                out.print(f"{sent} sent, {len(done) - sent} to retry")
            if once:
                return
            time.sleep(settings.notify_every_seconds)
    finally:
        if job.lease is not None:
            job.lease.release()
        services.close()
