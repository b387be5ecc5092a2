"""GET /v1/me/score's service: the citizen's own household score, explained in their language,
through the real policy and audit log."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from gateway.auth import Principal
from gateway.authz import Enforcer
from gateway.problems import Problem
from gateway.routes.me import own_score
from identity import PersonIn
from identity.synth import generate
from rsu.synthetic import group_households, household_request


def citizen(idcs: str) -> Principal:
    return Principal(kind="citizen", client_id="portal", sector="citizen",
                     scopes=frozenset({"citizen:self"}), purposes=frozenset(), subject=idcs,
                     token_id="test")  # fmt: skip


def test_a_citizen_reads_their_own_household_score_in_arabic(app) -> None:  # type: ignore[no-untyped-def]
    services = app.state.services
    records = list(generate(5, 1, seed=9))
    issued = services.register.enrol_many([
        PersonIn.model_validate({k: v for k, v in r.items() if k not in ("household", "role")})
        for r in records
    ])  # fmt: skip
    (group,) = group_households(records, issued)
    services.households.register_household(*household_request(random.Random(9), group))
    idcs = group[0][0]

    body = own_score(services, Enforcer(services, citizen(idcs), "read_score"), idcs, "ar")
    assert body["language"] == "ar"
    assert body["model"]["version"] in ("urban-v1", "rural-v1") and body["model"]["illustrative"]
    parts = [body["intercept"], body["territorial"]["contribution"],
             *(c["contribution"] for c in body["contributions"])]  # fmt: skip
    assert abs(sum(Decimal(p) for p in parts) - Decimal(body["score"])) <= Decimal("4e-6")
    assert all(c["label"] and not c["label"].isascii() for c in body["contributions"])

    # Someone in no household gets a 404; nobody reads another household's score (403).
    (stranger,) = services.register.enrol_many([PersonIn.model_validate(
        {k: v for k, v in generate(1, 1, seed=10).__next__().items()
         if k not in ("household", "role")})])  # fmt: skip
    with pytest.raises(Problem) as missing:
        own_score(services, Enforcer(services, citizen(stranger), "read_score"), stranger)
    assert missing.value.status == 404
    with pytest.raises(Problem) as denied:
        own_score(services, Enforcer(services, citizen(stranger), "read_score"), idcs)
    assert denied.value.status == 403
