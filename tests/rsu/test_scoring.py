"""Scores, eligibility and explanations, checked against the model files themselves."""

from __future__ import annotations

import json
import math
import secrets
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

import pytest

from tests.rsu.conftest import Rsu
from vault import DecisionRefused, Erased, ModelSet, UnknownSubject, VaultError

ROOT = Path(__file__).resolve().parents[2]
PROGRAMS = json.loads((ROOT / "policies/data/programs.json").read_text())["programs"]


def worked_example(rsu: Rsu) -> tuple[list[dict[str, object]], dict[str, object]]:
    """A couple with two children in a rented Casablanca apartment."""
    (group,) = rsu.enrol(4, 1, seed=11)
    idcs = [i for i, _ in group]
    members = [
        {
            "idcs": idcs[0],
            "relation": "head",
            "sex": "M",
            "age": 45,
            "education": "secondary",
            "occupation": "employed",
        },
        {
            "idcs": idcs[1],
            "relation": "spouse",
            "sex": "F",
            "age": 40,
            "education": "primary",
            "occupation": "inactive",
        },
        {
            "idcs": idcs[2],
            "relation": "child",
            "sex": "M",
            "age": 10,
            "education": "primary",
            "occupation": "student",
            "disability": True,
        },
        {"idcs": idcs[3], "relation": "child", "sex": "F", "age": 4},
    ]
    declaration = {
        "area": "urban",
        "region": "Casablanca-Settat",
        "province": "Casablanca",
        "housing": {
            "type": "apartment",
            "occupancy": "tenant",
            "rooms": 3,
            "bathroom": True,
            "kitchen": True,
        },
        "utilities": {
            "water": "network",
            "electricity": "network",
            "sanitation": "sewer",
            "cooking_fuel": "gas",
        },
        "spending": {"water": 80, "electricity": 200, "telephone": 120},
        "durables": {
            "refrigerator": True,
            "television": True,
            "satellite_dish": True,
            "mobile_phones": 2,
        },
    }
    return members, declaration


def hand_score(model_file: Path) -> Decimal:
    """The worked example scored by hand: each variable's value worked out on paper above,
    times its coefficient read from the model file."""
    model = json.loads(model_file.read_text())
    values = {
        "household_size_log": math.log(4),
        "share_children": 2 / 4,  # ages 10 and 4
        "share_elderly": 0.0,
        "head_female": 0.0,
        "head_age_60plus": 0.0,
        "head_education": "secondary",
        "head_occupation": "employed",
        "share_adults_employed": 1 / 2,  # head works, spouse does not
        "share_adults_secondary_plus": 1 / 2,  # head secondary, spouse primary
        "disability_any": 1.0,
        "housing_type": "apartment",
        "occupancy": "tenant",
        "rooms_per_person": 3 / 4,
        "water_source": "network",
        "electricity": "network",
        "sanitation": "sewer",
        "cooking_fuel": "gas",
        "has_bathroom": 1.0,
        "has_kitchen": 1.0,
        "water_spending_pc_log": math.log(1 + 80 / 4),
        "electricity_spending_pc_log": math.log(1 + 200 / 4),
        "telephone_spending_pc_log": math.log(1 + 120 / 4),
        "refrigerator": 1.0,
        "television": 1.0,
        "satellite_dish": 1.0,
        "washing_machine": 0.0,
        "computer": 0.0,
        "internet": 0.0,
        "car": 0.0,
        "motorcycle": 0.0,
        "air_conditioner": 0.0,
        "water_heater": 0.0,
        "oven": 0.0,
        "landline": 0.0,
        "phones_per_person": 2 / 4,
    }
    total = model["intercept"] + model["territorial"]["regions"]["Casablanca-Settat"]
    for variable in model["variables"]:
        value = values[variable["name"]]
        if variable["kind"] == "categorical":
            total += variable["levels"][value]
        else:
            total += variable["coefficient"] * value
    places = Decimal(1).scaleb(-model["decimals"])
    return Decimal(total).quantize(places, ROUND_HALF_EVEN)


def test_urban_model_has_35_variables_and_rural_28_all_labelled() -> None:
    models = ModelSet.load("v1")
    assert len(models.urban.variables) == 35
    assert len(models.rural.variables) == 28
    for model in models:
        assert model.illustrative
        assert all(set(v.labels) == {"ar", "fr", "en"} for v in model.variables)


def test_worked_example_scores_as_computed_by_hand_from_the_model_file(rsu: Rsu) -> None:
    members, declaration = worked_example(rsu)
    household = rsu.households.register_household(members, declaration)
    assert household.model_version == "urban-v1"
    explanation = rsu.vault.explain(
        household.vault_subject, rsu.decision(household.vault_subject, "read_score"), language="ar"
    )
    model_file = ROOT / "vault/scoring_models/urban-v1.json"
    assert Decimal(explanation.score) == hand_score(model_file)
    import hashlib

    assert explanation.model_digest == hashlib.sha256(model_file.read_bytes()).hexdigest()
    # The explanation adds up to the score, within the rounding of each published term.
    parts = [
        explanation.intercept,
        explanation.territorial.contribution,
        *(c.contribution for c in explanation.contributions),
    ]
    assert abs(sum(Decimal(p) for p in parts) - Decimal(explanation.score)) <= Decimal("4e-6")
    labels = {c.variable: c.label for c in explanation.contributions}
    assert labels["housing_type"] == "نوع السكن"


def boundary_models(tmp_path: Path, intercept: str, name: str) -> ModelSet:
    """The shipped models with every coefficient zero and the given intercept: the index is
    then exactly the intercept, whatever the household."""
    out = tmp_path / name
    out.mkdir()
    for area in ("urban", "rural"):
        doc = json.loads((ROOT / f"vault/scoring_models/{area}-v1.json").read_text())
        doc["version"] = f"{area}-{name}"
        doc["intercept"] = float(intercept)
        for variable in doc["variables"]:
            if variable["kind"] == "categorical":
                variable["levels"] = {k: 0.0 for k in variable["levels"]}
            else:
                variable["coefficient"] = 0.0
        doc["territorial"]["regions"] = {}
        (out / f"{area}-{name}.json").write_text(json.dumps(doc))
    return ModelSet.load(name, out)


@pytest.mark.parametrize("program", ["asd", "amo_tadamon"])
def test_eligibility_at_the_threshold_is_yes_and_one_unit_above_is_no(
    rsu: Rsu, tmp_path: Path, program: str
) -> None:
    threshold = PROGRAMS[program]["threshold"]
    unit = Decimal(1).scaleb(Decimal(threshold).as_tuple().exponent)  # type: ignore[arg-type]
    members, declaration = worked_example(rsu)
    household = rsu.households.register_household(members, declaration)
    subject = household.vault_subject

    rsu.vault.score(subject, boundary_models(tmp_path, threshold, "at"))
    assert rsu.vault.eligible(subject, threshold, rsu.decision(subject, "eligibility"))
    assert rsu.vault.eligible(subject, Decimal(threshold), rsu.decision(subject, "eligibility"))

    above = str(Decimal(threshold) + unit)
    rsu.vault.score(subject, boundary_models(tmp_path, above, "above"))
    assert not rsu.vault.eligible(subject, threshold, rsu.decision(subject, "eligibility"))


def test_eligibility_of_a_real_score_flips_exactly_at_its_last_decimal(rsu: Rsu) -> None:
    members, declaration = worked_example(rsu)
    subject = rsu.households.register_household(members, declaration).vault_subject
    score = Decimal(rsu.vault.explain(subject, rsu.decision(subject, "read_score")).score)
    unit = Decimal("1e-7")
    assert rsu.vault.eligible(subject, str(score), rsu.decision(subject, "eligibility"))
    assert not rsu.vault.eligible(subject, str(score - unit), rsu.decision(subject, "eligibility"))
    assert rsu.vault.eligible(subject, str(score + unit), rsu.decision(subject, "eligibility"))


def test_eligibility_needs_an_eligibility_decision_for_this_household(rsu: Rsu) -> None:
    members, declaration = worked_example(rsu)
    subject = rsu.households.register_household(members, declaration).vault_subject
    with pytest.raises(DecisionRefused):
        rsu.vault.eligible(subject, "9.743001", rsu.decision(subject, "read_attributes"))
    with pytest.raises(DecisionRefused):
        rsu.vault.eligible(subject, "9.743001", rsu.decision("hh_someone_else", "eligibility"))
    with pytest.raises(DecisionRefused):
        rsu.vault.explain(subject, rsu.decision(subject, "eligibility"))
    with pytest.raises(VaultError):
        rsu.vault.eligible(subject, 9.743001, rsu.decision(subject, "eligibility"))  # type: ignore[arg-type]


def test_eligibility_is_answered_only_for_an_existing_scored_household_record(rsu: Rsu) -> None:
    from vault import Erased, InvalidRecord, UnknownSubject

    members, declaration = worked_example(rsu)
    household = rsu.households.register_household(members, declaration).vault_subject
    person = rsu.register.vault_subject(members[0]["idcs"])  # type: ignore[index]

    def ask(subject: str) -> bool:
        return rsu.vault.eligible(subject, "9.743001", rsu.decision(subject, "eligibility"))

    with pytest.raises(InvalidRecord):
        ask(person)  # a person's record has no score to compare, whatever its fields
    with pytest.raises(UnknownSubject):
        ask("hh_no_such_household")
    assert isinstance(ask(household), bool)
    rsu.vault.erase(household)
    with pytest.raises(Erased):
        ask(household)


def test_a_declaration_changed_while_scoring_is_scored_again_before_the_write(rsu: Rsu) -> None:
    members, declaration = worked_example(rsu)
    subject = rsu.households.register_household(members, declaration).vault_subject
    before = rsu.vault.explain(subject, rsu.decision(subject, "read_score")).score
    models = ModelSet.load("v1")
    entered = []

    class BirthBeforeTheWrite:
        """The write guard: held around the write transaction only, so a change committed
        while it is being taken lands after the first computation and before the write."""

        def __enter__(self) -> None:
            entered.append(True)
            rsu.vault.amend_household(
                subject,
                add=[
                    {
                        "idcs": "2999999999",
                        "relation": "child",
                        "sex": "F",
                        "age": 0,
                        "education": "none",
                        "occupation": "inactive",
                    }
                ],
            )

        def __exit__(self, *exc: object) -> None:
            return None

    (event,) = rsu.vault.score_many([subject], models, write_guard=BirthBeforeTheWrite())
    assert entered
    stored = rsu.vault.explain(subject, rsu.decision(subject, "read_score")).score
    assert stored != before  # the score is the five-member household's, not the four's
    again = rsu.vault.score(subject, models)  # the amended declaration, scored from scratch
    assert event.inputs_digest == again.inputs_digest
    assert rsu.vault.explain(subject, rsu.decision(subject, "read_score")).score == stored


def test_declaration_rewrites_are_counted_and_nothing_else_moves_the_count(rsu: Rsu) -> None:
    from vault.records import declaration_writes

    def count() -> int | None:
        with rsu.vault.engine.connect() as conn:
            return declaration_writes(conn)

    members, declaration = worked_example(rsu)
    start = count()
    assert start is not None
    subject = rsu.households.register_household(members, declaration).vault_subject
    rsu.vault.score(subject, ModelSet.load("v1"))  # a new record, scored twice: no rewrite
    assert count() == start
    rsu.vault.amend_household(
        subject,
        add=[{"idcs": "2999999999", "relation": "child", "sex": "F", "age": 0,
              "education": "none", "occupation": "inactive"}],
    )  # fmt: skip
    assert count() == start + 1
    rsu.vault.store(subject, "household", {"size": 5})  # another field: not a declaration
    assert count() == start + 1
    rsu.vault.store(subject, "household", {"declaration": '{"area": "urban"}'})
    assert count() == start + 2
    rsu.vault.erase(subject)
    assert count() == start + 3


def test_a_stored_batch_checks_each_declaration_only_when_one_was_rewritten_meanwhile(
    rsu: Rsu,
) -> None:
    from sqlalchemy import event

    members, declaration = worked_example(rsu)
    subject = rsu.households.register_household(members, declaration).vault_subject
    ((alone, _role),) = rsu.enrol(1, 1, seed=12)[0]
    other = rsu.households.register_household(
        [{**members[0], "idcs": alone}], declaration
    ).vault_subject
    models = ModelSet.load("v1")
    checks: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if "substr(" in statement:  # the per-household check reads each declaration's head
            checks.append(statement)

    event.listen(rsu.vault.engine, "before_cursor_execute", seen)
    try:
        batch = rsu.vault.score_compute([subject], models)
        rsu.vault.score_store(batch, models)
        assert checks == []  # nothing rewritten since: no per-household read
        batch = rsu.vault.score_compute([subject], models)
        rsu.vault.amend_household(
            other,
            add=[{"idcs": "2999999998", "relation": "child", "sex": "M", "age": 1,
                  "education": "none", "occupation": "inactive"}],
        )  # fmt: skip
        (stored,) = rsu.vault.score_store(batch, models)
        assert checks  # another household was rewritten: each declaration is checked
        assert stored == batch.events[0]  # and this one, unchanged, is stored as computed
    finally:
        event.remove(rsu.vault.engine, "before_cursor_execute", seen)


def test_each_scoring_is_one_audit_entry_naming_model_and_inputs_digest_never_the_score(
    rsu: Rsu, monkeypatch: pytest.MonkeyPatch
) -> None:
    import types

    from audit import AuditEntry, prepare_entry
    from gateway import score_audit
    from vault import ScoreEvent

    monkeypatch.setattr(score_audit, "time", types.SimpleNamespace(time_ns=lambda: 1_790_000_000))
    models = ModelSet.load("v1")
    events = [
        ScoreEvent(f"hh-{i}", model.version, model.digest, f"{i:064x}", 5, head_tag=head)
        for i, (model, head) in enumerate(
            [(models.urban, "a1" * 32), (models.rural, "b2" * 32), (models.urban, None)]
        )
    ]
    expected = [
        prepare_entry(
            AuditEntry(
                time_ns=1_790_000_000,
                actor={"kind": "system", "id": "rsu-scoring", "sector": None},
                action="rsu_score",
                subject=e.head_tag or rsu.vault.subject_tag(e.subject),
                fields=["score", "score_model", "score_model_digest"],
                purpose="rsu_scoring",
                legal_basis={"type": "law", "ref": "Law 72.18 (RSU socio-economic index)"},
                outcome="allow",
                reasons=[
                    "trigger:rescore",
                    f"model:{e.model_version}",
                    f"model_digest:{e.model_digest}",
                    f"inputs_digest:{e.inputs_digest}",
                    "job:j-1",
                ],
            )
        )
        for e in events
    ]
    assert score_audit.prepared_score_entries(rsu.vault, events, "rescore", job="j-1") == expected
    assert expected[2].subject == rsu.vault.subject_tag("hh-2")


def test_eligibility_of_many_households_answers_each_as_asked_alone(rsu: Rsu) -> None:
    first, second, third = (
        rsu.households.get(h).vault_subject for h in rsu.populate(12, 3, seed=5)
    )
    rsu.vault.override_eligibility(second, "not_eligible", rsu.decision(second, "decide_review"))
    rsu.vault.erase(third)
    nobody = "hh_" + secrets.token_hex(16)
    asks = [(first, "1000"), (first, "0"), (second, "1000"), (third, "1000"), (nobody, "1000")]
    many = rsu.vault.eligible_many([(s, t, rsu.decision(s, "eligibility"), "lte") for s, t in asks])

    def alone(subject: str, threshold: str) -> bool | VaultError:
        try:
            return rsu.vault.eligible(subject, threshold, rsu.decision(subject, "eligibility"))
        except VaultError as error:
            return error

    for (subject, threshold), got in zip(asks, many, strict=True):
        single = alone(subject, threshold)
        assert type(got) is type(single) and str(got) == str(single)
        if not isinstance(single, VaultError):
            assert got == single
    assert many[:3] == [True, False, False]  # the reviewer's answer stands over the score
    assert isinstance(many[3], Erased) and isinstance(many[4], UnknownSubject)


def test_eligibility_of_many_refuses_all_when_one_decision_does_not_hold(rsu: Rsu) -> None:
    first, second = (rsu.households.get(h).vault_subject for h in rsu.populate(8, 2, seed=6))
    asks = [
        (first, "1000", rsu.decision(first, "eligibility"), "lte"),
        (second, "1000", rsu.decision(first, "eligibility"), "lte"),
    ]
    with pytest.raises(DecisionRefused, match="another subject"):
        rsu.vault.eligible_many(asks)
