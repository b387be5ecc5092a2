"""The erasure procedure through HTTP (docs/privacy.md, "Erasure"): an office asks, the
requester cannot approve (four eyes), a second officer approves, and then nothing of the
person is served or decryptable any more, while the audit log still verifies; a carry-out
interrupted half-way resumes. Each test runs on SQLite and PostgreSQL (the world's database)."""

from __future__ import annotations

import json
import os
import random
import subprocess
import time
from typing import Any

import pyotp
import pytest
from sqlalchemy import func, select

from gateway.erasure import STEP_NAMES, tables
from identity import PersonIn, Register
from identity.idcs import random_idcs
from policies import PolicyResult
from rsu.synthetic import household_request
from rsu.tables import households
from tests.gateway.conftest import World
from tests.gateway.test_cli import SIJILL, run_sijill
from vault import Decision
from vault import tables as vault_tables
from vault.errors import Erased

PROBLEM = "application/problem+json"
AMINA: dict[str, Any] = dict(
    given_name_ar="أمينة",
    family_name_ar="الإدريسي",
    given_name_lat="Amina",
    family_name_lat="Idrissi",
    sex="F",
    birth_date="1990-06-21",
    birth_place="Meknès",
    cnie="EF112233",
    address="7 Rue Zitoune, Meknès",
    region="Fès-Meknès",
    province="Meknès",
    phone="+212600112233",
)
KARIM: dict[str, Any] = dict(
    given_name_ar="كريم",
    family_name_ar="الإدريسي",
    given_name_lat="Karim",
    family_name_lat="Idrissi",
    sex="M",
    birth_date="1986-01-09",
    birth_place="Meknès",
    cnie="GH445566",
    address="7 Rue Zitoune, Meknès",
    region="Fès-Meknès",
    province="Meknès",
    phone="+212600445566",
)
# An agency of each sector the world registers, with a purpose it may look persons up for.
SECTORS = {
    "cnss": "asd_payment",
    "ms_sante": "maternal_health_followup",
    "men": "scholarship_outreach",
}


def _officer(world: World, name: str) -> dict[str, str]:
    """A registration officer signed in through the office console (password + TOTP; that
    flow has its own tests in tests/identity/oauth)."""
    if "erasure-desk" not in world.clients:
        world.register("erasure-desk", "office", "registry", "rnp:erase")
    token, _ = world.oauth.issuer.access_token(
        client_id="erasure-desk", scope="rnp:erase", subject=name, subject_kind="officer"
    )
    return {"Authorization": f"Bearer {token}"}


def _couple(world: World) -> tuple[str, str, str]:
    """Amina heads a two-person household with Karim; their IDCS and the household id."""
    services = world.services
    amina = str(services.register.enrol(PersonIn(**AMINA)))
    karim = str(services.register.enrol(PersonIn(**KARIM)))
    members, declaration = household_request(
        random.Random(11),
        [(amina, {**AMINA, "role": "head"}), (karim, {**KARIM, "role": "spouse"})],
    )
    household = services.households.register_household(members, declaration)
    world.people.update(amina=amina, karim=karim)
    return amina, karim, str(household.household_id)


def _ask(world: World, headers: dict[str, str], idcs: str, **body: Any) -> Any:
    return world.api.post(
        f"/v1/rnp/persons/{idcs}/erasure",
        json={"ground": "court_order", "reference": "TPI-Meknes-2026-0413", **body},
        headers=headers,
    )


def _count(world: World, table: Any, *where: Any, store: str = "main") -> int:
    with world.services.engines[store].connect() as conn:
        query = select(func.count()).select_from(table)
        for clause in where:
            query = query.where(clause)
        return int(conn.execute(query).scalar_one())


def _release(world: World, subject: str) -> Decision:
    """A sealed decision releasing the person's Latin given name: what a valid request would
    hold (the policy's own path has its tests)."""
    result = PolicyResult(
        allow=True,
        fields=("given_name_lat",),
        obligations={},
        reasons=[],
        legal_basis=None,
        decision_id="erasure-test",
        policy_revision="erasure-test",
    )
    return world.services.decision_issuer.seal(  # type: ignore[no-any-return]
        result, subject, "read_own_data", "", 0, requested=["given_name_lat"]
    )


def _scored_at(world: World, household_id: str) -> Any:
    with world.services.engines["main"].connect() as conn:
        return conn.execute(
            select(households.c.scored_at).where(households.c.household_id == household_id)
        ).scalar_one()


def _query(world: World, agency: str, pseudonym: str) -> Any:
    return world.call(
        agency,
        "POST",
        f"/v1/agency/persons/{pseudonym}/query",
        json={"fields": ["region"], "purpose": SECTORS[agency]},
    )


def _pseudonyms(world: World, idcs: str) -> dict[str, str]:
    """Each agency's pseudonym of the person, as its lookups (or earlier ones) left them."""
    found = {}
    for agency in SECTORS:
        sector = world.oauth.registry.get(agency).sector  # type: ignore[union-attr]
        found[agency] = str(world.services.pseudonyms.pseudonym_for(idcs, sector))
        assert _query(world, agency, found[agency]).status_code != 404
    return found


def test_an_approved_erasure_leaves_nothing_served_nor_decryptable(
    world: World, settings: Any
) -> None:
    services = world.services
    amina, karim, household_id = _couple(world)
    before = services.households.get(household_id)
    scored_before = _scored_at(world, household_id)
    subject = services.register.vault_subject(amina)
    pseudonyms = _pseudonyms(world, amina)
    assert services.vault.reveal(subject, ["given_name_lat"], _release(world, subject)) == {
        "given_name_lat": "Amina"
    }
    citizen = {"Authorization": f"Bearer {world.citizen_token('amina')}"}
    assert world.api.get("/v1/me/data", headers=citizen).status_code == 200
    requester, approver = _officer(world, "amina.b"), _officer(world, "youssef.t")

    asked = _ask(world, requester, amina, statement="Order of 3 November, served today.")
    assert asked.status_code == 201, asked.text
    request = asked.json()
    assert request["status"] == "awaiting_approval"
    assert request["requested_by"] == "erasure-desk/amina.b"
    assert (request["idcs"], request["ground"]) == (amina, "court_order")
    path = f"/v1/rnp/erasure-requests/{request['id']}"

    own = world.api.post(f"{path}/approve", headers=requester)
    assert own.status_code == 403
    assert own.headers["content-type"].startswith(PROBLEM)
    assert own.json()["type"].endswith("four-eyes")
    assert world.api.get(path, headers=requester).json()["status"] == "awaiting_approval"
    assert services.register.status(amina) == "active"

    approved = world.api.post(f"{path}/approve", headers=approver)
    assert approved.status_code == 200, approved.text
    done = approved.json()
    assert done["status"] == "carried_out"
    assert done["decided_by"] == "erasure-desk/youssef.t"
    assert [s["step"] for s in done["steps"]] == list(STEP_NAMES)

    # Every sector's pseudonym resolves like an unknown one, and the CNIE finds no one.
    for agency, pseudonym in pseudonyms.items():
        answer = _query(world, agency, pseudonym)
        assert answer.status_code == 404, (agency, answer.text)
        eligibility = world.call(
            agency,
            "POST",
            f"/v1/agency/persons/{pseudonym}/eligibility",
            json={"program": "asd", "purpose": SECTORS[agency]},
        )
        assert eligibility.status_code == 404, (agency, eligibility.text)
        lookup = world.call(
            agency,
            "POST",
            "/v1/agency/lookup",
            json={"cnie": AMINA["cnie"], "purpose": SECTORS[agency]},
        )
        assert lookup.status_code == 404
    # The citizen's token, minted before, serves nothing of /v1/me any more.
    for route in ("/v1/me/data", "/v1/me/access-log", "/v1/me/consents", "/v1/me/score"):
        assert world.api.get(route, headers=citizen).status_code == 401, route
    # The household lives on with Karim alone, rescored.
    after = services.households.get(household_id)
    assert (before.size, after.size) == (2, 1)
    assert _scored_at(world, household_id) > scored_before
    assert services.households.household_id_of(karim) == household_id
    assert services.households.household_id_of(amina) is None
    # The person's data key is gone: nothing of theirs can be decrypted.
    assert _count(world, vault_tables.data_keys, vault_tables.data_keys.c.subject == subject,
                  store="vault") == 0  # fmt: skip
    assert _count(world, vault_tables.fields, vault_tables.fields.c.subject == subject,
                  store="vault") == 0  # fmt: skip
    with pytest.raises(Erased):
        services.vault.reveal(subject, ["given_name_lat"], _release(world, subject))
    # The IDCS stays a tombstone: the register never issues it again.
    assert services.register.status(amina) == "erased"
    drawn = iter([amina, random_idcs()])
    fresh = Register(services.engines["main"], services.vault, idcs_source=lambda: next(drawn))
    reissued = fresh.enrol(PersonIn(**{**AMINA, "cnie": "JK778899"}))
    assert str(reissued) != amina
    # The log still verifies, the steps on it.
    env = {
        "SIJILL_DATA_DIR": str(settings.data_dir),
        "SIJILL_DATABASE_URL": settings.database_urls["main"],
    }
    verified = run_sijill("audit", "verify", env=env)
    assert verified.returncode == 0, verified.stderr


def test_the_requester_may_refuse_and_nothing_is_erased(world: World) -> None:
    amina, _karim, _household = _couple(world)
    requester = _officer(world, "amina.b")
    request = _ask(world, requester, amina).json()
    path = f"/v1/rnp/erasure-requests/{request['id']}"
    refused = world.api.post(f"{path}/refuse", json={"reason": "Order set aside on appeal."},
                             headers=requester)  # fmt: skip
    assert refused.status_code == 200, refused.text
    assert (refused.json()["status"], refused.json()["refusal_reason"]) == (
        "refused",
        "Order set aside on appeal.",
    )
    assert world.services.register.status(amina) == "active"
    again = world.api.post(f"{path}/approve", headers=_officer(world, "youssef.t"))
    assert again.status_code == 409
    assert again.json()["type"].endswith("erasure-state")
    # Closed, it no longer blocks a new request.
    assert _ask(world, requester, amina).status_code == 201
    listed = world.api.get("/v1/rnp/erasure-requests?status=refused", headers=requester)
    assert [r["id"] for r in listed.json()["items"]] == [request["id"]]


def test_a_machine_client_may_ask_but_never_approve(world: World) -> None:
    amina, _karim, _household = _couple(world)
    world.register("office-meknes", "office", "registry", "rnp:erase")
    asked = world.call(
        "office-meknes",
        "POST",
        f"/v1/rnp/persons/{amina}/erasure",
        json={"ground": "court_order", "reference": "TPI-Meknes-2026-0413"},
    )
    assert asked.status_code == 201, asked.text
    path = f"/v1/rnp/erasure-requests/{asked.json()['id']}"
    machine = world.call("office-meknes", "POST", f"{path}/approve")
    assert machine.status_code == 403
    assert machine.json()["reasons"] == ["named_officer_required"]
    approved = world.api.post(f"{path}/approve", headers=_officer(world, "youssef.t"))
    assert approved.json()["status"] == "carried_out"


def test_a_request_the_ground_cannot_carry_is_refused_and_changes_nothing(
    world: World,
) -> None:
    amina, karim, _household = _couple(world)
    officer = _officer(world, "amina.b")
    unknown = _ask(world, officer, "2345678901")
    assert (unknown.status_code, unknown.json()["type"].split("/")[-1]) == (404, "not-found")
    not_dead = _ask(world, officer, amina, ground="death_after_retention", reference="acte 12")
    assert (not_dead.status_code, not_dead.json()["type"].split("/")[-1]) == (422, "not-deceased")
    for reference in (amina, "2345678901", "not an IDCS"):
        duplicate = _ask(world, officer, amina, ground="duplicate_enrolment", reference=reference)
        assert duplicate.status_code == 422, reference
        assert reference not in duplicate.json()["detail"]
    assert _count(world, tables.erasure_requests) == 0
    kept = _ask(world, officer, amina, ground="duplicate_enrolment", reference=karim)
    assert kept.status_code == 201
    pending = _ask(world, officer, amina)
    assert (pending.status_code, pending.json()["type"].split("/")[-1]) == (409, "erasure-pending")
    assert _count(world, tables.erasure_requests) == 1


def test_a_carry_out_that_stopped_half_way_resumes_where_it_stopped(world: World) -> None:
    services = world.services
    amina, karim, household_id = _couple(world)
    requester, approver = _officer(world, "amina.b"), _officer(world, "youssef.t")
    request = _ask(world, requester, amina).json()
    path = f"/v1/rnp/erasure-requests/{request['id']}"
    steps = dict(services.erasures.steps)
    calls: list[str] = []

    def crash(idcs: str) -> int:
        calls.append(idcs)
        raise RuntimeError("the process died here")

    services.erasures.steps = [(n, crash if n == "household" else f) for n, f in steps.items()]
    stopped = world.api.post(f"{path}/approve", headers=approver)
    assert stopped.status_code == 503
    assert stopped.json()["type"].endswith("erasure-incomplete")
    halfway = world.api.get(path, headers=requester).json()
    assert halfway["status"] == "carrying_out"
    assert [s["step"] for s in halfway["steps"]] == ["register"]
    assert services.register.status(amina) == "erased"
    assert services.households.household_id_of(amina) == household_id

    services.erasures.steps = list(steps.items())
    resumed = world.api.post(f"{path}/approve", headers=approver)
    assert resumed.status_code == 200, resumed.text
    finished = resumed.json()
    assert finished["status"] == "carried_out"
    assert [s["step"] for s in finished["steps"]] == list(STEP_NAMES)
    # The register step ran once: its record and audit entry are the first run's.
    assert finished["steps"][0] == halfway["steps"][0]
    assert services.households.household_id_of(amina) is None
    assert services.households.household_id_of(karim) == household_id


def _sijill(settings: Any, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "COLUMNS": "80",
        "SIJILL_DATA_DIR": str(settings.data_dir),
        "SIJILL_DATABASE_URL": settings.database_urls["main"],
    }
    return subprocess.run(
        [str(SIJILL), *args], input=stdin, capture_output=True, text=True, env=env
    )


def test_the_command_line_takes_the_same_steps_signed_in_as_an_officer(
    world: World, settings: Any
) -> None:
    amina, _karim, _household = _couple(world)
    world.register("office-meknes", "office", "registry", "rnp:erase")
    staff = world.services.oauth.staff("officer")
    totp = {name: pyotp.TOTP(staff.add_user(name, "correct horse battery")) for name in
            ("amina.b", "youssef.t")}  # fmt: skip

    def signed(name: str, later: int = 0) -> str:
        # A code is good once: a second sign-in within its 30 s uses the next step's code,
        # which the server accepts for clock drift (RFC 6238 §5.2).
        return f"correct horse battery\n{totp[name].at(time.time() + later)}\n"

    office = ("--office", "office-meknes")
    asked = _sijill(settings, "rnp", "erasure", "request", amina, "--ground", "court_order",
                    "--reference", "TPI-Meknes-2026-0413", *office, "--officer", "amina.b",
                    stdin=signed("amina.b"))  # fmt: skip
    assert asked.returncode == 0, asked.stderr
    request = json.loads(asked.stdout)
    assert request["requested_by"] == "office-meknes/amina.b"
    own = _sijill(settings, "rnp", "erasure", "approve", request["id"], *office,
                  "--officer", "amina.b", stdin=signed("amina.b", 30))  # fmt: skip
    assert own.returncode == 2
    assert "four-eyes" in own.stderr
    wrong = _sijill(settings, "rnp", "erasure", "approve", request["id"], *office,
                    "--officer", "youssef.t", stdin="not the password\n000000\n")  # fmt: skip
    assert (wrong.returncode, "sign-in failed" in wrong.stderr) == (2, True)
    approved = _sijill(settings, "rnp", "erasure", "approve", request["id"], *office,
                       "--officer", "youssef.t", stdin=signed("youssef.t"))  # fmt: skip
    assert approved.returncode == 0, approved.stderr
    assert json.loads(approved.stdout)["status"] == "carried_out"
    assert world.services.register.status(amina) == "erased"
    listed = _sijill(settings, "rnp", "erasure", "list", "--status", "carried_out", *office,
                     "--json")  # fmt: skip
    assert [r["id"] for r in json.loads(listed.stdout)] == [request["id"]]
