"""RNP enrolment, deduplication across spelling variants, rectification and status, on SQLite
and PostgreSQL with the real vault."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text

from identity import (
    DuplicatePerson,
    Idcs,
    PersonErased,
    PersonIn,
    Register,
    SectorPseudonyms,
    UnknownPerson,
    UnknownPseudonym,
)
from vault import Vault
from vault import tables as vt

BASE: dict[str, Any] = {
    "given_name_ar": "أحمد", "family_name_ar": "بنعلي", "given_name_lat": "Ahmed",
    "family_name_lat": "Benali", "sex": "M", "birth_date": "1984-05-17", "birth_place": "Fès",
    "cnie": "CD123456", "address": "12 Rue Ibn Khaldoun, Fès", "region": "Fès-Meknès",
    "province": "Fès", "phone": "+212612345678",
}  # fmt: skip


def person(**changes: Any) -> PersonIn:
    return PersonIn.model_validate({**BASE, **changes})


def live_keys(vault: Vault, subject: str) -> int:
    with vault.engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(vt.data_keys)
                .where(vt.data_keys.c.subject == subject)
            ).scalar_one()
        )


def test_enrolment_issues_a_valid_idcs_and_keeps_no_personal_data_in_the_register(
    register: Register, engine: Engine
) -> None:
    idcs = register.enrol(person())
    assert Idcs(idcs) == idcs
    with engine.connect() as conn:
        row = conn.execute(text("SELECT * FROM rnp_persons")).mappings().one()
    stored = " ".join(str(v) for v in row.values())
    for value in ("Benali", "بنعلي", "CD123456", "1984-05-17", "612345678", "Fès"):
        assert value not in stored
    # The vault subject is random, not derived from the IDCS.
    assert idcs not in row["vault_subject"]
    assert register.status(idcs) == "active"


ARABIC_VARIANTS = {
    "hamza dropped (أ -> ا)": {"given_name_ar": "احمد"},
    "hamza below (إ)": {"given_name_ar": "إحمد"},
    "tatweel": {"given_name_ar": "أحـــمد"},
    "diacritics": {"given_name_ar": "أَحْمَد"},
    "extra spaces": {"given_name_ar": "  أحمد ", "family_name_ar": "بنعلي   "},
}
LATIN_VARIANTS = {
    "upper case": {"given_name_lat": "AHMED", "family_name_lat": "BENALI"},
    "lower case": {"given_name_lat": "ahmed", "family_name_lat": "benali"},
    "accents": {"given_name_lat": "Ahmèd", "family_name_lat": "Bénali"},
    "extra spaces": {"given_name_lat": " Ahmed  ", "family_name_lat": "Benali "},
}


def test_same_person_with_arabic_variants_and_no_cnie_is_a_duplicate(register: Register) -> None:
    register.enrol(person())
    for name, changes in ARABIC_VARIANTS.items():
        # No CNIE (as if forgotten) and a different Latin spelling: only the Arabic
        # name + birth index can catch it.
        with pytest.raises(DuplicatePerson):
            register.enrol(person(cnie=None, given_name_lat="Ahmad", **changes))
            pytest.fail(f"not caught: {name}")


def test_arabic_letter_variants_in_family_names_are_duplicates(register: Register) -> None:
    pairs = [("فاطمة", "فاطمه"), ("مصطفى", "مصطفي")]  # ta marbuta / ha, alif maqsura / ya
    for i, (enrolled, variant) in enumerate(pairs):
        born = f"196{i}-01-01"
        register.enrol(person(family_name_ar=enrolled, cnie=f"X{i}", birth_date=born))
        with pytest.raises(DuplicatePerson):
            register.enrol(
                person(family_name_ar=variant, cnie=None, given_name_lat="Ahmad", birth_date=born)
            )


def test_same_person_with_latin_case_accents_or_spaces_is_a_duplicate(register: Register) -> None:
    register.enrol(person())
    for name, changes in LATIN_VARIANTS.items():
        # A different Arabic spelling (two words) and no CNIE: only the Latin index matches.
        with pytest.raises(DuplicatePerson):
            register.enrol(person(cnie=None, family_name_ar="بن علي", **changes))
            pytest.fail(f"not caught: {name}")


def test_same_cnie_written_differently_is_a_duplicate(register: Register) -> None:
    register.enrol(person())
    with pytest.raises(DuplicatePerson):
        register.enrol(person(cnie="cd 123456", given_name_ar="يوسف", given_name_lat="Youssef"))


def test_duplicate_answer_never_reveals_the_existing_idcs(register: Register) -> None:
    idcs = register.enrol(person())
    with pytest.raises(DuplicatePerson) as info:
        register.enrol(person(cnie=None))
    assert idcs not in str(info.value) and idcs not in repr(info.value.args)
    assert register.enrol_many([person(cnie=None)]) == [None]


def test_different_people_sharing_a_name_but_not_birth_are_both_enrolled(
    register: Register,
) -> None:
    a = register.enrol(person())
    b = register.enrol(person(cnie="CD654321", birth_date="1990-01-02"))
    assert a != b


def test_bulk_enrolment_flags_duplicates_inside_the_batch(register: Register) -> None:
    results = register.enrol_many(
        [person(), person(cnie=None), person(cnie="AB1", birth_date="2001-01-01")]
    )
    assert results[0] is not None and results[1] is None and results[2] is not None
    assert register.count() == 2


def test_idcs_collision_is_retried_with_a_fresh_number(engine: Engine, vault: Vault) -> None:
    first = Register(engine, vault).enrol(person())
    replay = iter([first, first, Idcs.generate()])
    register = Register(engine, vault, idcs_source=lambda: next(replay))
    second = register.enrol(person(cnie="AB99", birth_date="1999-09-09"))
    assert second != first and register.count() == 2


def test_a_concurrent_enrolment_of_the_same_person_makes_the_batch_a_duplicate(
    engine: Engine, vault: Vault
) -> None:
    # Another writer enrols the person after this batch's duplicate check and before its
    # insert: the database's unique index refuses the batch's rows (COPY on PostgreSQL,
    # executemany on SQLite), the batch's vault records are erased and it is checked again.
    other = Register(engine, vault)

    class RacingVault:
        raced = False

        def store_many(self, records: Any) -> int:
            if not RacingVault.raced:
                RacingVault.raced = True
                other.enrol(person())
            return vault.store_many(records)

        def __getattr__(self, name: str) -> Any:
            return getattr(vault, name)

    racing = Register(engine, RacingVault())  # type: ignore[arg-type]
    results = racing.enrol_many([person(cnie=None), person(cnie="AB7", birth_date="2002-02-02")])
    assert RacingVault.raced and results[0] is None and results[1] is not None
    assert racing.count() == 2
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM rnp_pending_vault")).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(vt.data_keys)).scalar_one() == 2


def test_rectification_keeps_the_previous_record_until_its_retention_date(
    engine: Engine, vault: Vault
) -> None:
    register = Register(engine, vault, version_retention_days=30)
    idcs = register.enrol(person())
    old_subject = register.vault_subject(idcs)
    assert register.rectify(idcs, person(address="7 Avenue Hassan II, Fès")) == 2
    new_subject = register.vault_subject(idcs)
    assert new_subject != old_subject
    ((version, retain_until),) = register.previous_versions(idcs)
    assert version == 1
    retain = retain_until if retain_until.tzinfo else retain_until.replace(tzinfo=UTC)
    assert timedelta(days=29) < retain - datetime.now(UTC) <= timedelta(days=30)
    assert live_keys(vault, old_subject) == 1
    # Before the date nothing goes; after it the previous record is crypto-shredded.
    assert register.purge_versions() == 0
    assert register.purge_versions(datetime.now(UTC) + timedelta(days=31)) == 1
    assert live_keys(vault, old_subject) == 0 and live_keys(vault, new_subject) == 1
    assert register.previous_versions(idcs) == []


def test_rectified_name_is_deduplicated_against_the_new_values(register: Register) -> None:
    idcs = register.enrol(person())
    register.rectify(idcs, person(given_name_ar="يوسف", given_name_lat="Youssef", cnie="ZZ1"))
    # The old identity is free again, the new one is taken.
    register.enrol(person())
    with pytest.raises(DuplicatePerson):
        register.enrol(person(given_name_ar="يوسف", given_name_lat="Youssef", cnie=None))


def test_rectifying_into_another_persons_identity_is_refused(register: Register) -> None:
    register.enrol(person())
    other = register.enrol(person(cnie="ZZ2", birth_date="1970-01-01"))
    with pytest.raises(DuplicatePerson):
        register.rectify(other, person(cnie="ZZ2"))
    assert register.previous_versions(other) == []


def test_death_is_recorded_and_can_be_corrected(register: Register) -> None:
    idcs = register.enrol(person())
    register.set_status(idcs, "deceased")
    assert register.status(idcs) == "deceased"
    register.set_status(idcs, "active")
    assert register.status(idcs) == "active"


def test_erasure_crypto_shreds_every_version_and_unlinks_the_person(
    register: Register,
    vault: Vault,
    sector_pseudonyms: SectorPseudonyms,
    resolve: Callable[[str, str], str],
) -> None:
    idcs = register.enrol(person())
    first = register.vault_subject(idcs)
    register.rectify(idcs, person(address="1 Rue Al Qods, Fès"))
    second = register.vault_subject(idcs)
    alias = sector_pseudonyms.pseudonym_for(idcs, "health")
    register.set_status(idcs, "erased")
    assert register.status(idcs) == "erased"
    assert live_keys(vault, first) == 0 and live_keys(vault, second) == 0
    with pytest.raises(UnknownPseudonym):
        resolve("health", alias)
    with pytest.raises(PersonErased):
        register.vault_subject(idcs)
    with pytest.raises(PersonErased):
        register.rectify(idcs, person())
    with pytest.raises(PersonErased):
        register.set_status(idcs, "active")
    register.set_status(idcs, "erased")  # idempotent
    assert register.find_by_cnie("CD123456") is None


def test_unknown_idcs_is_reported_as_unknown(register: Register) -> None:
    with pytest.raises(UnknownPerson):
        register.status(Idcs.generate())


def test_cnie_lookup_finds_the_person_across_spellings(register: Register) -> None:
    idcs = register.enrol(person())
    assert register.find_by_cnie(" cd123456 ") == idcs
    assert register.find_by_cnie("CD000001") is None


def test_vault_records_of_an_interrupted_enrolment_are_swept(
    register: Register, engine: Engine, vault: Vault
) -> None:
    # The state a crash leaves between the vault write and the register commit: a pending
    # entry and its vault record, and no register row.
    subject = "p_" + "ab" * 16
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO rnp_pending_vault (vault_subject, job_id, created_at) "
                "VALUES (:s, NULL, :t)"
            ),
            {"s": subject, "t": datetime.now(UTC)},
        )
    vault.store_many([(subject, "person", person().vault_fields())])
    assert register.sweep_pending(older_than_s=3600) == 0  # too recent: may still be running
    assert register.sweep_pending(older_than_s=0) == 1
    assert live_keys(vault, subject) == 0
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM rnp_pending_vault")).scalar_one() == 0
