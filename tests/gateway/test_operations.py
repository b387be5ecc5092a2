"""What an operator reads: domain metrics in /metrics and JSON log lines (structlog)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway import logs
from tests.gateway.conftest import World
from tests.gateway.live import LiveGateway
from tests.gateway.test_agency_api import lookup, pseudonym, query


def scrape(world: World) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = world.api.get("/metrics")
    assert response.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def decisions(samples: dict, outcome: str) -> float:  # type: ignore[type-arg]
    return float(samples.get(("sijill_policy_decisions_total", (("outcome", outcome),)), 0.0))


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    logs.configure("INFO", stream)
    try:
        yield stream
    finally:
        logging.getLogger().handlers.clear()


def lines_of_text(text: str) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def lines_of(stream: io.StringIO) -> list[dict]:  # type: ignore[type-arg]
    return lines_of_text(stream.getvalue())


def test_metrics_count_decisions_by_outcome_reveals_and_engine_latency(world: World) -> None:
    before = scrape(world)
    p = pseudonym(world, "cnss", "AB123456", "amo_tadamon_enrolment")
    assert query(world, "cnss", p, ["given_name_lat"], "amo_tadamon_enrolment").status_code == 200
    assert lookup(world, "men", "AB123456", "scholarship_outreach").status_code == 404  # no consent
    after = scrape(world)
    assert decisions(after, "allow") - decisions(before, "allow") == 2
    assert decisions(after, "deny") - decisions(before, "deny") == 1
    reveals = ("sijill_vault_reveals_total", ())
    assert after[reveals] - before.get(reveals, 0.0) >= 1
    timed = ("sijill_policy_decision_seconds_count", ())
    assert after[timed] - before.get(timed, 0.0) == 3


def test_metrics_report_the_audit_log_size_unsigned_tail_and_checkpoint_age(
    world: World,
) -> None:
    pseudonym(world, "cnss", "AB123456", "amo_tadamon_enrolment")
    samples = scrape(world)
    size = world.audit_size()
    assert samples[("sijill_audit_log_entries", ())] == size
    latest = world.services.audit.storage.latest_checkpoint()
    signed = latest.tree_size if latest is not None else 0
    assert samples[("sijill_audit_unsigned_entries", ())] == size - signed

    world.services.audit.issue_checkpoint()
    samples = scrape(world)
    assert samples[("sijill_audit_unsigned_entries", ())] == 0
    assert 0 <= samples[("sijill_audit_checkpoint_age_seconds", ())] < 60


def test_metrics_count_rate_limit_refusals(world: World) -> None:
    limiter = world.services.rate_limiter
    limiter.rate, limiter.burst = 0.01, 1
    statuses = [lookup(world, "cnss", "AB123456", "amo_tadamon_enrolment") for _ in range(3)]
    assert [s.status_code for s in statuses] == [200, 429, 429]
    assert scrape(world)[("sijill_rate_limited_requests_total", ())] == 2


def test_each_decision_log_line_is_json_and_names_the_agency(
    world: World, json_logs: io.StringIO
) -> None:
    lookup(world, "cnss", "AB123456", "amo_tadamon_enrolment")
    lookup(world, "men", "AB123456", "scholarship_outreach")
    decided = [line for line in lines_of(json_logs) if line["logger"] == "sijill.policy.decisions"]
    assert [d["decision"]["agency"] for d in decided] == ["cnss", "men"]
    assert [d["decision"]["outcome"] for d in decided] == ["allow", "deny"]
    assert all(d["level"] == "info" and d["msg"] == "policy decision" for d in decided)
    assert "AB123456" not in json_logs.getvalue()


def test_uvicorn_log_lines_are_json_without_colour_escapes(tmp_path: Path) -> None:
    gateway = LiveGateway(tmp_path / "data", log_level="INFO")
    try:
        assert httpx.get(f"{gateway.url}/healthz").status_code == 200
        text = gateway.stderr()
    finally:
        gateway.stop()
    assert "\x1b" not in text and "color_message" not in text
    lines = lines_of_text(text)
    started = [line for line in lines if line["logger"] == "uvicorn.error"]
    assert any("Started server process" in line["msg"] for line in started), text[-800:]
    assert any(line.get("msg") == "request" and line["route"] == "/healthz" for line in lines)
