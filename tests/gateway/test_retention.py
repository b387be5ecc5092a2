"""Retention (docs/privacy.md, "Retention"): with the clock moved past each period, exactly
the items whose period ended go, the rest stays, each run is on the audit log (kinds and
counts, never whose) and a dry run changes nothing. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select

from consent import Outbox
from consent import tables as consent_tables
from gateway.erasure import STEP_NAMES
from gateway.erasure import tables as erasure_tables
from identity import PersonIn
from identity import tables as identity_tables
from tests.gateway.conftest import YOUSSEF, World
from tests.gateway.test_cli import SIJILL

DAY = timedelta(days=1)
YEAR = timedelta(days=365)


def _as(world: World, name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {world.citizen_token(name)}"}


def _grant(world: World, recipient: str, purpose: str, days: int) -> dict[str, Any]:
    expires = datetime.fromtimestamp(int(time.time()) + days * 86400, tz=UTC)
    response = world.api.post(
        "/v1/me/consents",
        json={"recipient": recipient, "purpose": purpose, "fields": ["given_name_lat"],
              "expires_at": expires.isoformat()},
        headers=_as(world, "fatima"),
    )  # fmt: skip
    assert response.status_code == 201, response.text
    return dict(response.json())


def _withdraw(world: World, consent: dict[str, Any]) -> None:
    gone = world.api.delete(f"/v1/me/consents/{consent['id']}", headers=_as(world, "fatima"))
    assert gone.is_success, gone.text


def _counts(world: World) -> dict[str, int]:
    """Rows of every kind retention touches (and of what it must not), by store."""
    tables = {
        "consents": consent_tables.consents,
        "outbox": consent_tables.outbox,
        "versions": identity_tables.person_versions,
        "rejects": identity_tables.import_rejects,
        "jobs": identity_tables.import_jobs,
        "persons": identity_tables.persons,
        "erasures": erasure_tables.erasure_requests,
    }
    with world.services.engines["main"].connect() as conn:
        found = {
            name: int(conn.execute(select(func.count()).select_from(t)).scalar_one())
            for name, t in tables.items()
        }
    found["erased"] = sum(
        world.services.register.status(i) == "erased" for i in world.people.values()
    )
    return found


def _consent_ids(world: World) -> set[str]:
    with world.services.engines["main"].connect() as conn:
        return set(conn.execute(select(consent_tables.consents.c.id)).scalars())


def _run(world: World, at: datetime) -> dict[str, int]:
    report = world.services.retention.run(now=at)
    return {f"{i.kind}:{i.entry}": i.count for i in report.items if i.count}


def _setup(world: World) -> dict[str, Any]:
    services = world.services
    started = datetime.now(UTC)
    # Consents: withdrawn under a one-year entry, withdrawn under a two-year entry, and one
    # running 300 days under the one-year entry (its period counts from its expiry).
    short = _grant(world, "men", "scholarship_outreach", 30)
    _withdraw(world, short)
    long = _grant(world, "ms_sante", "maternal_health_followup", 30)
    _withdraw(world, long)
    running = _grant(world, "men", "scholarship_outreach", 300)
    # Every notification so far is delivered now (consent changes to the agencies).
    delivered = Outbox(services.engines["main"]).deliver_due(
        lambda _url, _body: 200, lambda _recipient: "https://agency.example/hook"
    )
    assert delivered and all(d.delivered for d in delivered)
    # A rectification keeps Youssef's previous version; a finished import left two rejects.
    services.register.rectify(
        world.people["youssef"], PersonIn(**{**YOUSSEF, "phone": "+212611000000"})
    )
    with services.engines["main"].begin() as conn:
        conn.execute(
            insert(identity_tables.import_jobs).values(
                job_id="a" * 64,
                file_name="batch.csv",
                lines_done=3,
                enrolled=1,
                rejected=2,
                started_at=started,
                updated_at=started,
                finished_at=started,
            )
        )
        conn.execute(
            insert(identity_tables.import_rejects),
            [
                {"job_id": "a" * 64, "line": 2, "field": "birth_date", "reason": "date_parsing"},
                {"job_id": "a" * 64, "line": 3, "field": "cnie", "reason": "duplicate_person"},
            ],
        )
    # An office records Fatima's death.
    dead = world.call(
        "office-fes",
        "PATCH",
        f"/v1/rnp/persons/{world.people['fatima']}",
        json={"status": "deceased"},
    )
    assert dead.status_code == 200, dead.text
    return {"started": started, "short": short, "long": long, "running": running,
            "delivered": len(delivered)}  # fmt: skip


def test_each_period_takes_exactly_what_it_ended_and_each_run_is_audited(
    world: World, settings: Any
) -> None:
    services = world.services
    made = _setup(world)
    start = made["started"]
    before = _counts(world)
    size = world.audit_size()

    # A dry run far in the future counts everything and changes nothing.
    env = {**os.environ, "SIJILL_DATA_DIR": str(settings.data_dir),
           "SIJILL_DATABASE_URL": settings.database_urls["main"]}  # fmt: skip
    future = (start + 11 * YEAR).isoformat().replace("+00:00", "Z")
    dry = subprocess.run([str(SIJILL), "retention", "run", "--dry-run", "--now", future],
                         capture_output=True, text=True, env=env)  # fmt: skip
    assert dry.returncode == 0, dry.stderr
    would = {f"{i['kind']}:{i['entry']}": i["count"] for i in json.loads(dry.stdout)["items"]
             if i["count"]}  # fmt: skip
    assert _counts(world) == before
    assert world.audit_size() == size

    # Nothing has ended a day later; the run is on the record all the same.
    assert _run(world, start + DAY) == {}
    assert world.audit_size() == size + 1
    assert services.audit.entry(size).entry.reasons == ["nothing_due"]

    # Past 90 days: the delivered notifications' payloads, nothing else.
    went = Counter(_run(world, start + 91 * DAY))
    assert went == {"delivered_notifications:delivered-notifications": made["delivered"]}
    entry = services.audit.entry(world.audit_size() - 1).entry
    assert (entry.action, entry.subject, entry.actor["kind"]) == ("retention_run", None, "system")
    assert entry.reasons == [
        f"delivered_notifications:delivered-notifications:P90D:{made['delivered']}"
    ]
    after = _counts(world)
    assert after["outbox"] == before["outbox"] - made["delivered"]
    assert {k: v for k, v in after.items() if k != "outbox"} == {
        k: v for k, v in before.items() if k != "outbox"
    }

    # Past one year: the consent withdrawn under the one-year entry (its whole chain) and the
    # import's rejects; the two-year consent and the running one stay.
    year = _run(world, start + YEAR + 3 * DAY)
    assert year == {
        "consents:education-scholarship-outreach": 2,
        "import_rejects:rnp-import-rejects": 2,
    }
    remaining = _consent_ids(world)
    assert made["short"]["id"] not in remaining
    assert made["running"]["id"] in remaining and made["long"]["id"] in remaining
    assert _counts(world)["jobs"] == before["jobs"]

    # Past two years: the two-year consent, and the running one (ended at 300 days + 1 year).
    two = _run(world, start + 2 * YEAR + 3 * DAY)
    assert two == {"consents:education-scholarship-outreach": 1,
                   "consents:health-maternal-followup": 2}  # fmt: skip
    assert _consent_ids(world) == set()

    # Past ten years: the superseded version, and the deceased person's record, erased through
    # the erasure carry-out by the system.
    ten = _run(world, start + 10 * YEAR + 10 * DAY)
    assert ten == {"rectification_versions:rnp-rectification-versions": 1,
                   "deceased_records:rnp-deceased-records": 1}  # fmt: skip
    fatima = world.people["fatima"]
    assert services.register.status(fatima) == "erased"
    assert services.register.status(world.people["youssef"]) == "active"
    (request,) = services.erasures.list()
    assert (request.ground, request.status, request.requested_by) == (
        "death_after_retention",
        "carried_out",
        "retention",
    )
    assert [s.step for s in request.steps] == list(STEP_NAMES)
    assert services.households.household_id_of(fatima) is None

    # The dry run foresaw exactly what the runs took.
    assert Counter(would) == went + Counter(year) + Counter(two) + Counter(ten)
    # Nothing is left to do.
    assert _run(world, start + 11 * YEAR) == {}


def test_the_server_applies_retention_daily_as_a_scheduled_job(world: World) -> None:
    (job,) = [j for j in world.services.jobs if j.name == "retention"]
    assert job.interval_s == 86400
    assert job.work == world.services.retention.run
