"""The gateway restarted on a store an insider rewrote: it signs nothing, raises the alarm,
reports itself not ready and appends nothing (every request that needs the log fails closed)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import text

from audit import CheckpointRefused
from gateway.app import create_app
from tests.audit import insider
from tests.audit.conftest import make_entry


def _checkpoints(engine) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM audit_checkpoints")).scalar_one())


def test_a_gateway_restarted_on_a_forged_store_refuses_to_sign_it(settings) -> None:  # type: ignore[no-untyped-def]
    settings.prepare_data_dir()
    app = create_app(settings)
    with TestClient(app):
        for n in range(20):
            app.state.services.audit.append(make_entry(n))
    # The clean stop signed everything: no unsigned tail is left to rewrite unnoticed.
    from gateway.db import make_engine

    forger = make_engine(settings.database_urls["audit"])
    insider.drop_triggers(forger)
    insider.tamper(forger, "edit", 5, rehash=True)
    insider.rebuild(forger)
    signed = _checkpoints(forger)

    again = create_app(settings)
    with TestClient(again) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert "audit" in ready.json()["unavailable"]
        assert "sijill_audit_alarms_total 1.0" in client.get("/metrics").text
        try:
            again.state.services.audit.append(make_entry(99))
        except CheckpointRefused:
            pass
        else:
            raise AssertionError("the refusing log accepted an entry")
    assert _checkpoints(forger) == signed  # not even at shutdown
    forger.dispose()
