"""Citizens' notices waiting in the notifications outbox, sealed for the sender alone.

A notice to a citizen (their activation code, say) goes to the outbox addressed to the
``citizen-notices`` channel, its content sealed under ``<data_dir>/keys/citizen-notices.key``,
which the deployment's SMS or mail sender holds: a reader of the main database cannot take a
code and activate someone's sign-in. The erasure of a person drops their notices not yet sent,
which only this key can tell apart.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

from cryptography.exceptions import InvalidTag
from sqlalchemy import Engine, and_, delete, select

from consent.tables import outbox
from identity.oauth.secrets import SecretBox

__all__ = [
    "CITIZEN_CHANNEL",
    "NOTICE_ACCOUNT",
    "NOTICE_KEY_FILE",
    "drop_citizen_notices",
    "notice_box",
]

# Where a deployment's SMS or mail gateway picks the citizen's messages from the outbox.
CITIZEN_CHANNEL = "citizen-notices"
NOTICE_KEY_FILE = "citizen-notices.key"
NOTICE_ACCOUNT = "citizen-notice:activation"  # the sealed notice's associated data


def notice_box(data_dir: Path) -> SecretBox:
    """The key citizens' notices are sealed under, which the sender holds."""
    return SecretBox(data_dir / "keys" / NOTICE_KEY_FILE)


def drop_citizen_notices(engine: Engine, box: SecretBox, idcs: str) -> int:
    """Delete the notices to ``idcs`` not yet delivered; how many went."""
    mine = []
    with engine.begin() as conn:
        waiting = conn.execute(
            select(outbox.c.id, outbox.c.body).where(
                and_(outbox.c.recipient == CITIZEN_CHANNEL, outbox.c.delivered_at_ns.is_(None))
            )
        )
        for row_id, body in waiting:
            try:
                sealed = base64.b64decode(json.loads(body)["sealed"])
                opened = json.loads(box.open(sealed, NOTICE_ACCOUNT))
            except (KeyError, TypeError, ValueError, InvalidTag):
                continue  # not a sealed notice this key opens: someone else's business
            if opened.get("idcs") == idcs:
                mine.append(row_id)
        if mine:
            conn.execute(delete(outbox).where(outbox.c.id.in_(mine)))
    return len(mine)
