"""A sector pseudonym key rotation through its transition (issue 25): both versions resolve,
the agency translates in bulk only the pseudonyms of its own sector it holds, the old version
is retired only after the transition (or by force) and then answers 404."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from audit import EntryFilter
from gateway.cli.pseudonyms import app as pseudonyms_cli
from identity.pseudonyms import format_pseudonym
from tests.gateway.conftest import FATIMA, YOUSSEF, World

QUERY = {"fields": ["region"], "purpose": "amo_tadamon_enrolment"}
TRANSLATE = "/v1/agency/pseudonyms/translate"


@pytest.fixture
def sijill(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``sijill pseudonyms …`` on the test's deployment; the exit code and output."""
    # The command sets these for its own settings; the test puts them back afterwards.
    monkeypatch.setenv("SIJILL_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("SIJILL_DATABASE_URL", settings.database_url)
    runner = CliRunner()

    def run(*args: str) -> Any:
        return runner.invoke(pseudonyms_cli, [*args, "--data-dir", str(settings.data_dir)])

    return run


def _lookup(world: World, client: str, cnie: str, purpose: str) -> str:
    found = world.call(client, "POST", "/v1/agency/lookup", json={"cnie": cnie, "purpose": purpose})
    assert found.status_code == 200, found.text
    return str(found.json()["pseudonym"])


def _query(world: World, pseudonym: str) -> int:
    answer = world.call("cnss", "POST", f"/v1/agency/persons/{pseudonym}/query", json=QUERY)
    return int(answer.status_code)


def test_rotation_through_its_transition(world: World, sijill: Any) -> None:
    old = _lookup(world, "cnss", FATIMA["cnie"], "amo_tadamon_enrolment")
    old_youssef = _lookup(world, "cnss", YOUSSEF["cnie"], "amo_tadamon_enrolment")
    # The health sector's pseudonym of the same person, as its agencies hold it.
    health = str(world.services.pseudonyms.pseudonym_for(world.people["fatima"], "health"))
    assert old.startswith("social.v1.") and health.startswith("health.v1.")

    rotated = sijill("rotate", "social", "--transition", "30")
    assert rotated.exit_code == 0, rotated.output

    # During the transition both versions resolve; new lookups get the new version.
    new = _lookup(world, "cnss", FATIMA["cnie"], "amo_tadamon_enrolment")
    assert new.startswith("social.v2.") and new != old
    assert _query(world, old) == 200
    assert _query(world, new) == 200
    # Another sector's key is untouched.
    assert world.services.pseudonyms.pseudonym_for(world.people["fatima"], "health") == health

    # Bulk translation: only pseudonyms of the caller's sector it holds.
    mac = world.services.vault.mac("pseudonym:social:v1", b"0000000000")
    never_issued = str(format_pseudonym("social", 1, mac))
    before = world.audit_size()
    answer = world.call(
        "cnss",
        "POST",
        TRANSLATE,
        json={"pseudonyms": [old, old_youssef, health, never_issued, new, "garbage"]},
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    mapped = {t["pseudonym"]: t["current"] for t in body["translations"]}
    assert mapped[old] == new
    assert mapped[new] == new  # a current pseudonym maps to itself
    assert mapped[old_youssef].startswith("social.v2.")
    assert sorted(body["unknown"]) == sorted([health, never_issued, "garbage"])
    # What Youssef's translation gave is what a lookup now gives.
    assert _lookup(world, "cnss", YOUSSEF["cnie"], "amo_tadamon_enrolment") == mapped[old_youssef]
    # Another sector's agency holding none of them learns nothing.
    foreign = world.call("ms_sante", "POST", TRANSLATE, json={"pseudonyms": [old, new]})
    assert foreign.status_code == 200
    assert foreign.json()["translations"] == []
    assert sorted(foreign.json()["unknown"]) == sorted([old, new])

    # One audit entry for the batch, with its count, no pseudonym and no person.
    entries = world.services.audit.entries(EntryFilter(action="translate_pseudonyms"))
    batch = [e for e in entries if e.index >= before and e.entry.actor["id"] == "cnss"]
    assert len(batch) == 1
    assert "count=6" in batch[0].entry.reasons
    assert batch[0].entry.subject is None
    assert batch[0].entry.legal_basis is not None
    text = batch[0].entry.canonical().decode()
    assert old not in text and new not in text

    # Retirement: refused before the transition's end, done with --force.
    early = sijill("retire", "social", "1")
    assert early.exit_code == 2
    assert "transition" in early.output
    assert _query(world, old) == 200
    forced = sijill("retire", "social", "1", "--force")
    assert forced.exit_code == 0, forced.output
    assert _query(world, old) == 404
    assert _query(world, new) == 200
    after = world.call("cnss", "POST", TRANSLATE, json={"pseudonyms": [old]})
    assert after.json() == {**after.json(), "translations": [], "unknown": [old]}

    status = sijill("status", "social", "--json")
    assert status.exit_code == 0, status.output
    versions = {v["version"]: v for v in json.loads(status.stdout)}
    assert versions[1]["state"] == "retired" and versions[1]["pseudonyms"] == 0
    assert versions[2]["state"] == "current" and versions[2]["pseudonyms"] >= 2

    # The operator's acts are on the record.
    changes = world.services.audit.entries(EntryFilter(action_prefix="security.pseudonym_key_"))
    assert [e.entry.reasons for e in changes] == [
        ["pseudonym_key_rotated", "sector=social", "version=2", "transition_days=30"],
        ["pseudonym_key_retired", "sector=social", "version=1", "forced=True"],
    ]


def test_a_retirement_after_the_transition_needs_no_force(world: World) -> None:
    from datetime import UTC, datetime, timedelta

    keys = world.services.pseudonyms
    keys.current_version("social")
    keys.rotate("social", 1)
    later = datetime.now(UTC) + timedelta(days=2)
    assert keys.retire("social", 1, now=later) == 0


def test_translation_takes_at_most_a_thousand_pseudonyms(world: World) -> None:
    too_many = [f"social.v1.{'a' * 52}"] * 1001
    answer = world.call("cnss", "POST", TRANSLATE, json={"pseudonyms": too_many})
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"


def test_translation_needs_the_lookup_scope(world: World) -> None:
    world.register("cnss-reader", "agency", "social", "agency:query", "amo_tadamon_enrolment")
    answer = world.call("cnss-reader", "POST", TRANSLATE, json={"pseudonyms": ["x"]})
    assert answer.status_code == 403
