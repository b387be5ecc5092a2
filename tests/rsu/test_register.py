"""Registering households: RNP first, one household per person, nothing stored on refusal;
membership changes rescore and audit."""

from __future__ import annotations

import random
from typing import Any

import pytest
from sqlalchemy import func, select

from audit.storage import EntryFilter
from identity import PersonIn
from identity.idcs import random_idcs
from rsu import AlreadyInHousehold, HouseholdRegister, UnknownMember
from rsu.synthetic import household_request
from rsu.tables import households, memberships
from tests.identity.oauth.conftest import register as register_client
from tests.identity.oauth.conftest import token_request
from tests.rsu.conftest import Rsu
from vault import tables as vault_tables


def stored(rsu: Rsu) -> tuple[int, int, int]:
    """(households, memberships, household records in the vault)."""
    with rsu.engine.connect() as conn:
        return (
            conn.execute(select(func.count()).select_from(households)).scalar_one(),
            conn.execute(select(func.count()).select_from(memberships)).scalar_one(),
            conn.execute(
                select(func.count())
                .select_from(vault_tables.subjects)
                .where(vault_tables.subjects.c.kind == "household")
            ).scalar_one(),
        )


def scorings(rsu: Rsu) -> list[list[str]]:
    return [
        e.entry.reasons
        for e in rsu.audit.entries(EntryFilter(action="rsu_score"), limit=1000, after=-1)
    ]


def test_a_person_cannot_be_in_two_households(rsu: Rsu) -> None:
    first, second = rsu.enrol(8, 2)
    rng = random.Random(1)
    members, declaration = household_request(rng, first)
    rsu.households.register_household(members, declaration)
    before = stored(rsu)
    members2, declaration2 = household_request(rng, second)
    # The second household claims the first one's head as a child.
    intruder = dict(members[0], relation="child")
    with pytest.raises(AlreadyInHousehold):
        rsu.households.register_household([*members2, intruder], declaration2)
    assert stored(rsu) == before
    assert rsu.households.household_id_of(str(members2[0]["idcs"])) is None


def test_an_unknown_idcs_is_refused_and_nothing_is_stored(rsu: Rsu) -> None:
    (group,) = rsu.enrol(3, 1)
    members, declaration = household_request(random.Random(2), group)
    stranger = random_idcs()
    with pytest.raises(UnknownMember):
        rsu.households.register_household(
            [*members, dict(members[-1], idcs=stranger, relation="other_relative")], declaration
        )
    assert stored(rsu) == (0, 0, 0)
    assert scorings(rsu) == []


def test_each_registration_and_membership_change_rescores_and_audits(rsu: Rsu) -> None:
    (group,) = rsu.enrol(5, 1)
    members, declaration = household_request(random.Random(3), group)
    household = rsu.households.register_household(members, declaration)
    baby = PersonIn.model_validate(
        {k: v for k, v in group[0][1].items() if k not in ("household", "role", "cnie")}
        | {
            "given_name_lat": "Yasmine",
            "given_name_ar": "ياسمين",
            "sex": "F",
            "birth_date": "2025-10-01",
            "cnie": None,
        }
    )
    (baby_idcs,) = rsu.register.enrol_many([baby])
    assert baby_idcs is not None
    rsu.households.add_member(
        household.household_id, {"idcs": baby_idcs, "relation": "child", "sex": "F", "age": 0}
    )
    assert rsu.households.get(household.household_id).size == len(members) + 1
    rsu.households.remove_member(str(members[-1]["idcs"]), reason="death")
    head = str(members[0]["idcs"])
    split = rsu.households.split(
        household.household_id, [dict(members[1], relation="head")], declaration
    )
    assert rsu.households.household_of(str(members[1]["idcs"])) == split.vault_subject
    assert rsu.households.household_of(head) == household.vault_subject
    triggers = [next(r for r in reasons if r.startswith("trigger:")) for reasons in scorings(rsu)]
    assert triggers == [
        "trigger:register",
        "trigger:member_added",
        "trigger:member_death",
        # A split rescores both households at once: the one left and the one formed.
        "trigger:split",
        "trigger:split",
    ]
    # Each entry names the model and the digests; no value of the declaration or the score.
    for reasons in scorings(rsu):
        assert {r.split(":", 1)[0] for r in reasons} == {
            "trigger",
            "model",
            "model_digest",
            "inputs_digest",
        }


def test_office_registers_a_household_over_http_and_gets_422_for_a_stranger(
    rsu: Rsu,
    oauth_app: Any,
    oauth: Any,
    api: Any,
) -> None:
    services = oauth_app.state.services
    office = register_client(oauth, kind="office", sector="rsu", scopes="rsu:register", purposes="")
    token = token_request(api, office, scope="rsu:register").json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    # Enrol through the app's own register so the route sees these persons.
    from identity.synth import generate

    records = list(generate(4, 1, seed=5))
    issued = services.register.enrol_many(
        [
            PersonIn.model_validate({k: v for k, v in r.items() if k not in ("household", "role")})
            for r in records
        ]
    )
    group = [(str(i), r) for i, r in zip(issued, records, strict=True)]
    members, declaration = household_request(random.Random(4), group)

    stranger = dict(members[-1], idcs=random_idcs(), relation="other_relative")
    refused = api.post(
        "/v1/rsu/households",
        headers=headers,
        json={"members": [*members, stranger], "declaration": declaration},
    )
    assert refused.status_code == 422
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["type"].endswith("/unknown-member")
    assert stranger["idcs"] not in refused.text
    assert services.households.count() == 0

    created = api.post(
        "/v1/rsu/households", headers=headers, json={"members": members, "declaration": declaration}
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["size"] == len(members)
    assert "score" not in body
    again = api.post(
        "/v1/rsu/households", headers=headers, json={"members": members, "declaration": declaration}
    )
    assert again.status_code == 422
    assert again.json()["type"].endswith("/already-in-household")
    assert services.households.count() == 1


class _Rollback(Exception):
    pass


def test_scores_recorded_in_a_callers_transaction_commit_and_roll_back_with_it(rsu: Rsu) -> None:
    ids = rsu.populate(12, 3)
    # As the national rescoring builds it: no listener, the caller audits.
    register = HouseholdRegister(rsu.engine, rsu.vault, rsu.register, models=rsu.households.models)
    pairs = [(h, register.get(h).vault_subject) for h in ids]
    events = [e._replace(model_version="x") for e in rsu.vault.score_many(
        [s for _, s in pairs], register.models)]  # fmt: skip

    def versions() -> dict[str, str | None]:
        with rsu.engine.connect() as conn:
            rows = conn.execute(select(households.c.household_id, households.c.model_version))
            return {str(h): v for h, v in rows}

    noted = versions()
    assert set(noted.values()) != {"x"}
    with pytest.raises(_Rollback), rsu.engine.begin() as conn:
        register.record_scores(pairs, events, "rescore", conn=conn)
        raise _Rollback
    assert versions() == noted
    with rsu.engine.begin() as conn:
        register.record_scores(pairs[:2], events, "rescore", conn=conn)
    assert versions() == {**noted, ids[0]: "x", ids[1]: "x"}
