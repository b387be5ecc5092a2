"""Retention of the consent room's records (Law 09.08 art. 3(1)(e): no longer than needed).

A consent and its receipts stay while the consent is current, then for the retention of the
processing-registry entry it was given under, counted from its end: its withdrawal (the
revoking artefact's time) or its expiry. A chain of artefacts (a consent, its changes, its
revocation) goes whole, when its last artefact has ended before the cutoff: a receipt is
never separated from the history that explains it.
"""

from __future__ import annotations

from sqlalchemy import Engine, delete, select

from consent import tables
from consent.models import ConsentStatus
from storekit.bulk import among, chunks

__all__ = ["purge_delivered", "purge_ended_consents"]


def purge_ended_consents(
    engine: Engine, registry_entry: str, cutoff_ns: int, *, dry_run: bool = False
) -> int:
    """Delete (or, ``dry_run``, count) the artefacts given under ``registry_entry`` whose
    chain ended at or before ``cutoff_ns``."""
    c = tables.consents
    with engine.connect() as conn:
        rows = conn.execute(
            select(c.c.id, c.c.replaces, c.c.status, c.c.granted_at_ns, c.c.expires_at_ns).where(
                c.c.registry_entry == registry_entry
            )
        ).all()
    replaced_by = {r.replaces: r.id for r in rows if r.replaces}
    by_id = {r.id: r for r in rows}
    due: list[str] = []
    for first in (r for r in rows if r.replaces is None or r.replaces not in by_id):
        chain = [first]
        while chain[-1].id in replaced_by and replaced_by[chain[-1].id] in by_id:
            chain.append(by_id[replaced_by[chain[-1].id]])
        last = chain[-1]
        ended_at = (
            last.granted_at_ns if last.status == ConsentStatus.REVOKED else last.expires_at_ns
        )
        if ended_at <= cutoff_ns:
            due.extend(r.id for r in chain)
    if due and not dry_run:
        with engine.begin() as conn:
            for chunk in chunks(due):
                conn.execute(delete(c).where(among(conn, c.c.id, chunk)))
    return len(due)


def purge_delivered(engine: Engine, cutoff_ns: int, *, dry_run: bool = False) -> int:
    """Delete (or count) the outbox rows delivered at or before ``cutoff_ns``: their payload
    (a signed notice) has reached its recipient, who keeps their own copy."""
    o = tables.outbox
    done = o.c.delivered_at_ns.is_not(None) & (o.c.delivered_at_ns <= cutoff_ns)
    with engine.begin() as conn:
        if dry_run:
            return len(conn.execute(select(o.c.id).where(done)).all())
        return int(conn.execute(delete(o).where(done)).rowcount)
