"""Households' scores live in a table of their own (migration vault_0003): scores kept among
the record's other fields move there, stay readable, and move back on a downgrade; every write
path and the erasure reach them."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Table, func, select

from gateway import db
from storekit.bulk import insert_rows
from tests.vault.conftest import PolicyStandIn
from vault import FileKeyProvider, Vault
from vault import tables as t
from vault.envelope import encrypt_record
from vault.errors import Erased

HOUSEHOLD = {"head": "p-1", "members": '["p-1"]', "size": 1, "area": "urban"}


def _rows(vault: Vault, table: Table, subject: str) -> list[tuple[object, ...]]:
    with vault.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(table).where(table.c.subject == subject))]


def _score_rows_in_fields(vault: Vault) -> int:
    with vault.engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(t.fields).where(t.fields.c.field == "score")
            ).scalar_one()
        )


def test_upgrade_moves_earlier_scores_to_their_table_readable_and_downgrade_moves_them_back(
    database_url: str, tmp_path: Path, policy: PolicyStandIn
) -> None:
    vault_config = db.alembic_config("vault", database_url)
    command.upgrade(vault_config, "vault_0002")
    engine = db.make_engine(database_url)
    keys = FileKeyProvider(tmp_path / "keys")
    try:
        vault = Vault(engine, keys, policy.verifier)
        vault.store("hh-1", "household", HOUSEHOLD)
        # The score row among the record's other fields, where migration vault_0003 finds it.
        with engine.begin() as conn:
            key_id, aead = vault.records.current_keys(conn, ["hh-1"])["hh-1"]
            written = encrypt_record(aead, key_id, "hh-1", {"score": "9.1234567 v1 ab"})
            insert_rows(conn, t.fields, written)
        assert _score_rows_in_fields(vault) == 1

        command.upgrade(vault_config, "heads")
        assert _score_rows_in_fields(vault) == 0
        assert _rows(vault, t.scores, "hh-1") == [("hh-1", written[0][2])]
        decision = policy.seal("hh-1", ("score", "size"))
        assert vault.reveal("hh-1", ["score", "size"], decision) == {
            "score": "9.1234567 v1 ab",
            "size": 1,
        }

        command.downgrade(vault_config, "vault_0002")
        with engine.connect() as conn:
            moved_back = conn.execute(
                select(t.fields.c.ciphertext).where(
                    t.fields.c.subject == "hh-1", t.fields.c.field == "score"
                )
            ).scalar_one()
        assert bytes(moved_back) == written[0][2]
    finally:
        keys.close()
        engine.dispose()
        command.upgrade(vault_config, "heads")


def test_a_stored_score_is_replaced_in_its_table_and_erased_with_the_record(
    vault: Vault, policy: PolicyStandIn
) -> None:
    vault.store("hh-2", "household", {**HOUSEHOLD, "score": "9.5 v1 ab"})
    vault.store("hh-2", "household", {"score": "8.25 v1 cd", "size": 2})
    assert _score_rows_in_fields(vault) == 0
    assert len(_rows(vault, t.scores, "hh-2")) == 1
    decision = policy.seal("hh-2", ("score", "size", "area"))
    assert vault.reveal("hh-2", ["score", "size", "area"], decision) == {
        "score": "8.25 v1 cd",
        "size": 2,
        "area": "urban",
    }

    vault.erase("hh-2")
    assert _rows(vault, t.scores, "hh-2") == []
    assert _rows(vault, t.fields, "hh-2") == []
    with pytest.raises(Erased):
        vault.reveal("hh-2", ["score"], policy.seal("hh-2", ("score",)))


def test_many_reveals_read_the_score_from_its_table_only_when_one_asks_for_it(
    vault: Vault, policy: PolicyStandIn
) -> None:
    vault.store_many(
        [
            ("hh-3", "household", {**HOUSEHOLD, "score": "9.5 v1 ab"}),
            ("hh-4", "household", {**HOUSEHOLD, "size": 3, "score": "7.75 v1 ab"}),
        ]
    )
    sizes = [(s, ["size"], policy.seal(s, ("size",))) for s in ("hh-3", "hh-4")]
    assert vault.reveal_many(sizes) == [{"size": 1}, {"size": 3}]
    mixed = [sizes[0], ("hh-4", ["score", "size"], policy.seal("hh-4", ("score", "size")))]
    assert vault.reveal_many(mixed) == [{"size": 1}, {"score": "7.75 v1 ab", "size": 3}]
