"""The activation code an office issues reaches the citizen through the outbox sealed: the main
database, which holds the outbox, never holds the code or the IDCS in clear."""

from __future__ import annotations

import base64
import json

from sqlalchemy import select

from consent.tables import outbox
from gateway.notices import CITIZEN_CHANNEL, NOTICE_ACCOUNT, notice_box
from gateway.web.activation import issue_activation_code
from tests.gateway.conftest import World


def test_the_activation_notice_is_sealed_for_the_sender_alone(world: World) -> None:
    idcs = world.people["fatima"]
    office = {"kind": "office", "id": "office-casa", "sector": None}
    issued = issue_activation_code(world.services, idcs, office)  # type: ignore[arg-type]
    with world.services.engines["main"].connect() as conn:
        (body,) = conn.execute(
            select(outbox.c.body).where(outbox.c.recipient == CITIZEN_CHANNEL)
        ).one()
    for secret in (issued.code, issued.code.replace("-", ""), idcs):
        assert secret not in body
    sealed = base64.b64decode(json.loads(body)["sealed"])
    opened = json.loads(notice_box(world.services.settings.data_dir).open(sealed, NOTICE_ACCOUNT))
    assert (opened["idcs"], opened["code"]) == (idcs, issued.code)
