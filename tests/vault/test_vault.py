"""Store, reveal, tamper, erase and bad input: on SQLite and PostgreSQL, with both key providers."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from tests.vault.conftest import PolicyStandIn, sample_person
from vault import Erased, IntegrityError, InvalidRecord, UnknownSubject, Vault
from vault import tables as t

ALL = tuple(sample_person())


def test_stored_record_reads_back_with_a_decision_releasing_all_fields(
    vault: Vault, policy: PolicyStandIn
) -> None:
    person = sample_person()
    vault.store("s-1", "person", person)
    assert vault.reveal("s-1", ALL, policy.seal("s-1", ALL)) == person


def test_household_integers_round_trip_with_their_type(vault: Vault, policy: PolicyStandIn) -> None:
    household = {"head": "s-1", "size": 6, "area": "rural", "region": "Drâa-Tafilalet"}
    vault.store("h-1", "household", household)
    got = vault.reveal("h-1", tuple(household), policy.seal("h-1", tuple(household)))
    assert got == household and isinstance(got["size"], int)


def test_store_updates_only_the_given_fields(vault: Vault, policy: PolicyStandIn) -> None:
    vault.store("s-1", "person", sample_person())
    vault.store("s-1", "person", {"address": "3 rue Ibn Khaldoun, Rabat"})
    got = vault.reveal("s-1", ALL, policy.seal("s-1", ALL))
    assert got["address"] == "3 rue Ibn Khaldoun, Rabat"
    assert got["given_name_lat"] == sample_person()["given_name_lat"]


def test_store_many_then_reveal_many_returns_each_subjects_own_values(
    vault: Vault, policy: PolicyStandIn
) -> None:
    records = [(f"s-{i}", "person", sample_person(str(i))) for i in range(1200)]
    assert vault.store_many(records) == 1200
    requests = [
        (s, ("given_name_lat",), policy.seal(s, ("given_name_lat",))) for s, _, _ in records
    ]
    got = vault.reveal_many(requests)
    assert [g["given_name_lat"] for g in got] == [f["given_name_lat"] for _, _, f in records]


def _ciphertext(vault: Vault, subject: str, field: str) -> bytes:
    with vault.engine.connect() as conn:
        return bytes(
            conn.execute(
                select(t.fields.c.ciphertext).where(
                    t.fields.c.subject == subject, t.fields.c.field == field
                )
            ).scalar_one()
        )


def _set_ciphertext(vault: Vault, subject: str, field: str, value: bytes) -> None:
    with vault.engine.begin() as conn:
        conn.execute(
            update(t.fields)
            .where(t.fields.c.subject == subject, t.fields.c.field == field)
            .values(ciphertext=value)
        )


def test_flipping_any_one_ciphertext_byte_is_an_integrity_error(
    vault: Vault, policy: PolicyStandIn
) -> None:
    vault.store("s-1", "person", sample_person())
    original = _ciphertext(vault, "s-1", "cnie")
    # Header (format, key id), nonce, body and tag: every region is authenticated.
    for position in (0, 3, 9, 20, len(original) - 1):
        blob = bytearray(original)
        blob[position] ^= 0x01
        _set_ciphertext(vault, "s-1", "cnie", bytes(blob))
        with pytest.raises(IntegrityError):
            vault.reveal("s-1", ("cnie",), policy.seal("s-1", ("cnie",)))


def test_ciphertext_moved_to_another_field_is_an_integrity_error(
    vault: Vault, policy: PolicyStandIn
) -> None:
    vault.store("s-1", "person", sample_person())
    _set_ciphertext(vault, "s-1", "address", _ciphertext(vault, "s-1", "cnie"))
    with pytest.raises(IntegrityError):
        vault.reveal("s-1", ("address",), policy.seal("s-1", ("address",)))


def test_ciphertext_moved_to_another_record_is_an_integrity_error(
    vault: Vault, policy: PolicyStandIn
) -> None:
    vault.store("s-1", "person", sample_person("a"))
    vault.store("s-2", "person", sample_person("b"))
    _set_ciphertext(vault, "s-2", "given_name_lat", _ciphertext(vault, "s-1", "given_name_lat"))
    with pytest.raises(IntegrityError):
        vault.reveal("s-2", ("given_name_lat",), policy.seal("s-2", ("given_name_lat",)))


def test_wrapped_data_key_moved_to_another_subject_is_an_integrity_error(
    vault: Vault, policy: PolicyStandIn
) -> None:
    vault.store("s-1", "person", sample_person("a"))
    vault.store("s-2", "person", sample_person("b"))
    with vault.engine.begin() as conn:
        wrapped = conn.execute(
            select(t.data_keys.c.wrapped).where(t.data_keys.c.subject == "s-1")
        ).scalar_one()
        conn.execute(
            update(t.data_keys).where(t.data_keys.c.subject == "s-2").values(wrapped=wrapped)
        )
    with pytest.raises(IntegrityError):
        vault.reveal("s-2", ("cnie",), policy.seal("s-2", ("cnie",)))


def test_after_erase_reveal_says_erased(vault: Vault, policy: PolicyStandIn) -> None:
    vault.store("s-1", "person", sample_person())
    vault.erase("s-1")
    with pytest.raises(Erased):
        vault.reveal("s-1", ("cnie",), policy.seal("s-1", ("cnie",)))
    with pytest.raises(Erased):
        vault.store("s-1", "person", {"cnie": "XY1"})


def test_erased_ciphertext_stays_unreadable_with_every_remaining_wrapped_key(
    vault: Vault, policy: PolicyStandIn
) -> None:
    """Crypto-shredding: a copy of the ciphertext taken before erase (a backup) opens under no
    data key left in the store."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from vault.envelope import decrypt_field
    from vault.records import key_context

    vault.store("s-1", "person", sample_person("a"))
    vault.store("s-2", "person", sample_person("b"))
    backup = _ciphertext(vault, "s-1", "cnie")
    vault.erase("s-1")
    with vault.engine.connect() as conn:
        remaining = conn.execute(select(t.data_keys)).all()
        assert {r.subject for r in remaining} == {"s-2"}
    for row in remaining:
        dek = vault.keys.unwrap(bytes(row.wrapped), key_context(row.subject, row.version))
        for subject in ("s-1", row.subject):
            with pytest.raises(IntegrityError):
                decrypt_field(AESGCM(dek), subject, "cnie", backup)


def test_a_record_encrypted_at_once_opens_field_by_field_and_only_in_place() -> None:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from vault.envelope import decode_value, decrypt_field, encrypt_record, key_id_of

    aead = AESGCM(AESGCM.generate_key(bit_length=256))
    values = {"given_name_lat": "Ahmed", "cnie": "CD123456", "size": 4}
    rows = encrypt_record(aead, 3, "s-1", values)
    assert [(s, f) for s, f, _ in rows] == [("s-1", name) for name in values]
    # One nonce per field, never reused within the record.
    assert len({ct[5:17] for _, _, ct in rows}) == len(values)
    for subject, field, ciphertext in rows:
        assert key_id_of(ciphertext) == 3
        assert decode_value(decrypt_field(aead, subject, field, ciphertext)) == values[field]
        with pytest.raises(IntegrityError):
            decrypt_field(aead, "s-2", field, ciphertext)
    with pytest.raises(IntegrityError):
        decrypt_field(aead, "s-1", "cnie", rows[0][2])


def test_unknown_subject_is_reported_as_such(vault: Vault, policy: PolicyStandIn) -> None:
    with pytest.raises(UnknownSubject):
        vault.reveal("nobody", ("cnie",), policy.seal("nobody", ("cnie",)))
    with pytest.raises(UnknownSubject):
        vault.erase("nobody")


BAD_INPUT = [
    ({"favourite_colour": "blue"}, "unknown field"),
    ({"given_name_lat": "x" * 101}, "longer than 100"),
    ({"given_name_lat": 42}, "expected str"),
    ({"sex": "X"}, "must be one of"),
    ({"birth_date": "21/03/1987"}, "yyyy-mm-dd"),
    ({"birth_date": "1987-02-30"}, "yyyy-mm-dd"),
    ({"nationality": "Morocco"}, "alpha-3"),
    ({}, "no fields"),
]


def test_bad_input_is_refused_and_nothing_is_stored(vault: Vault) -> None:
    good = ("s-good", "person", sample_person())
    for fields, reason in BAD_INPUT:
        with pytest.raises(InvalidRecord, match=reason) as caught:
            vault.store_many([good, ("s-bad", "person", fields)])
        for value in fields.values():
            assert str(value) not in str(caught.value)  # errors never echo submitted values
        assert not vault.exists("s-good") and not vault.exists("s-bad")


def test_wrong_kind_and_bad_subject_ids_are_refused(vault: Vault) -> None:
    with pytest.raises(InvalidRecord):
        vault.store("s-1", "pet", {"name": "Mimi"})
    with pytest.raises(InvalidRecord):
        vault.store("s 1; drop", "person", {"sex": "F"})
    vault.store("s-1", "person", {"sex": "F"})
    with pytest.raises(InvalidRecord):
        vault.store("s-1", "household", {"size": 3})
    with pytest.raises(InvalidRecord):
        vault.store("h-1", "household", {"size": True})
