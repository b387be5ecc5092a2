"""The gateway as ``sijill serve`` runs it, plus one bare route for the benchmark's baseline:
the same server, the same middleware, a constant JSON body of the query answer's shape."""

from __future__ import annotations

from fastapi import FastAPI

from gateway.app import create_app

BARE_BODY = {
    "released": {"given_name_lat": "Fatima", "birth_date": "1987"},
    "withheld": [{"field": "phone", "reason": "not_declared_for_purpose"}],
    "decision_id": "00000000-0000-0000-0000-000000000000",
    "legal_basis": {"type": "law", "ref": "Law 65.00"},
}


def factory() -> FastAPI:
    app = create_app()

    @app.post("/bench/bare")
    def bare() -> dict[str, object]:
        return BARE_BODY

    return app
