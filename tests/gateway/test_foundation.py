"""The foundation: app factory, problem documents, readiness, settings, command line."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel
from sqlalchemy import inspect

from gateway.app import create_app
from gateway.db import make_engine
from gateway.settings import SettingsError, load_settings

ROOT = Path(__file__).resolve().parents[2]


class Enrol(BaseModel):
    cnie: str
    age: int


def test_healthz_answers_ok(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["x-request-id"]


def test_readyz_names_every_store_when_ready(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200, response.text
    assert {"database.main", "database.vault", "database.audit"} <= set(response.json()["checks"])


@pytest.mark.parametrize(
    "bad_url",
    [
        "postgresql+psycopg://postgres@127.0.0.1:1/nowhere",
        "sqlite:////proc/no-such-dir/sijill.db",
    ],
)
def test_readyz_is_503_problem_naming_the_database_when_unreachable(
    tmp_path: Path, bad_url: str
) -> None:
    settings = load_settings(data_dir=tmp_path, database_url=bad_url)
    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"].endswith("/not-ready")
    assert "database.main" in body["unavailable"]
    assert "database.main" in body["detail"]


def test_unknown_route_is_a_problem_document(client: TestClient) -> None:
    response = client.get("/v1/no-such-thing")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/not-found")


def test_validation_errors_name_the_field_but_never_echo_the_value(app) -> None:  # type: ignore[no-untyped-def]
    @app.post("/_probe")
    def probe(body: Enrol) -> dict[str, str]:
        return {}

    with TestClient(app) as client:
        response = client.post("/_probe", json={"cnie": "CANARY-AB123456", "age": "CANARY-77"})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert "CANARY" not in response.text
    body = response.json()
    assert body["type"].endswith("/validation-error")
    assert [e["field"] for e in body["errors"]] == ["age"]


def test_unexpected_errors_hide_the_message_and_traceback(app, caplog) -> None:  # type: ignore[no-untyped-def]
    @app.get("/_boom")
    def boom() -> None:
        raise RuntimeError("CANARY-secret-in-message")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/_boom")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert "CANARY" not in response.text and "Traceback" not in response.text


def test_json_log_lines_carry_the_request_id(app) -> None:  # type: ignore[no-untyped-def]
    import io

    from gateway import logs

    stream = io.StringIO()
    logs.configure("INFO", stream)
    try:
        with TestClient(app) as client:
            client.get("/healthz", headers={"X-Request-ID": "req-abc-123"})
    finally:
        logging.getLogger().handlers.clear()
    lines = [json.loads(line) for line in stream.getvalue().splitlines() if line]
    access = [line for line in lines if line.get("msg") == "request"]
    assert access and access[-1]["request_id"] == "req-abc-123"
    assert access[-1]["route"] == "/healthz"


def test_metrics_are_prometheus_text(client: TestClient) -> None:
    client.get("/healthz")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert 'sijill_http_requests_total{method="GET",route="/healthz",status="200"}' in response.text


def test_migrations_create_version_tables_for_every_store(migrated_urls: dict[str, str]) -> None:
    engine = make_engine(migrated_urls["main"])
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert {"alembic_version_main", "alembic_version_vault", "alembic_version_audit"} <= tables


@pytest.mark.parametrize(
    ("overrides", "mentions"),
    [
        ({"policy_engine": "magic"}, "SIJILL_POLICY_ENGINE"),
        ({"database_url": "not a url"}, "SIJILL_DATABASE_URL"),
        ({"database_url": "mysql://x@y/z"}, "SIJILL_DATABASE_URL"),
        ({"port": "99999"}, "SIJILL_PORT"),
    ],
)
def test_bad_settings_raise_one_readable_line(overrides: dict[str, str], mentions: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(**overrides)
    assert mentions in str(info.value)
    assert "\n" not in str(info.value)


def _sijill(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from gateway.cli import main; main()", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=60,
        cwd=ROOT,
    )


@pytest.mark.parametrize(
    ("env", "mentions"),
    [
        ({"SIJILL_POLICY_ENGINE": "magic"}, "SIJILL_POLICY_ENGINE"),
        ({"SIJILL_DATABASE_URL": "::nonsense::"}, "SIJILL_DATABASE_URL"),
        ({"SIJILL_DATA_DIR": "/proc/sijill-cannot-write-here"}, "SIJILL_DATA_DIR"),
    ],
)
def test_serve_with_a_bad_setting_exits_with_one_line_and_no_traceback(
    env: dict[str, str], mentions: str, tmp_path: Path
) -> None:
    env = {"SIJILL_DATA_DIR": str(tmp_path), **env}
    result = _sijill("serve", env=env)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert mentions in lines[0]


def test_import_layers_hold() -> None:
    """The import-linter contract in pyproject.toml (DESIGN.md "Trust zones")."""
    result = subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports"))],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "broken" not in result.stdout.lower() or " 0 broken" in result.stdout.lower()
