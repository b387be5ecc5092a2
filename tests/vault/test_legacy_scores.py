"""Scores in the three-field form (the index alone in ``score``, the model's version and digest
in ``score_model`` and ``score_model_digest``): migration vault_0005 removes them, leaving every
other score as it was, and ``sijill vault check`` tells whether a store holds any."""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal
from pathlib import Path

import pytest
import typer
from alembic import command
from sqlalchemy import select
from typer.testing import CliRunner

from gateway import db
from tests.vault.conftest import PolicyStandIn
from vault import Decision, FileKeyProvider, ModelSet, NotScored, Vault
from vault import tables as t
from vault.check import check_store
from vault.decision import signing_payload
from vault.envelope import encrypt_record


def _household(head: str) -> dict[str, object]:
    members = [
        {"idcs": head, "relation": "head", "sex": "F", "age": 52, "education": "primary",
         "occupation": "self_employed"},
        {"idcs": head + "1", "relation": "child", "sex": "M", "age": 9},
    ]  # fmt: skip
    declaration = {
        "area": "rural",
        "region": "Souss-Massa",
        "members": members,
        "housing": {"type": "rural_dwelling", "occupancy": "owner", "rooms": 2,
                    "bathroom": False, "kitchen": True},
        "utilities": {"water": "well", "electricity": "network", "sanitation": "septic",
                      "cooking_fuel": "gas"},
        "spending": {"water": 0, "electricity": 60, "telephone": 40},
        "durables": {"television": True, "mobile_phones": 1},
        "agriculture": {"sheep_goats": 6, "land_ha": 0.5},
    }  # fmt: skip
    return {
        "head": head,
        "members": json.dumps([{"idcs": m["idcs"], "relation": m["relation"]} for m in members]),
        "size": len(members),
        "area": "rural",
        "region": "Souss-Massa",
        "declaration": json.dumps(declaration),
    }


def _decision(policy: PolicyStandIn, subject: str, action: str) -> Decision:
    decision = dataclasses.replace(policy.seal(subject, ()), action=action)
    return dataclasses.replace(
        decision, signature=policy.private_key.sign(signing_payload(decision))
    )


def _write_three_field_score(vault: Vault, subject: str, index: str, version: str,
                             digest: str) -> None:  # fmt: skip
    """The score as the three-field form holds it, sealed under the record's data key."""
    with vault.records.write() as conn:
        key_id, aead = vault.records.current_keys(conn, [subject])[subject]
        values = {"score": index, "score_model": version, "score_model_digest": digest}
        t.write_fields(
            conn,
            encrypt_record(aead, key_id, subject, values),
            [(subject, name) for name in values],
        )


def test_the_migration_removes_three_field_scores_and_leaves_every_other_score_as_it_was(
    database_url: str, tmp_path: Path, policy: PolicyStandIn
) -> None:
    vault_config = db.alembic_config("vault", database_url)
    command.upgrade(vault_config, "vault_0004")
    engine = db.make_engine(database_url)
    keys = FileKeyProvider(tmp_path / "keys")
    models = ModelSet.load("v1")
    try:
        vault = Vault(engine, keys, policy.verifier)
        vault.store_many([(s, "household", _household(f"h{s}")) for s in ("hh-old", "hh-new")])
        vault.score_many(["hh-old", "hh-new"], models)
        before = vault.explain("hh-old", _decision(policy, "hh-old", "read_score"))
        with engine.connect() as conn:
            kept = conn.execute(
                select(t.scores.c.ciphertext).where(t.scores.c.subject == "hh-new")
            ).scalar_one()
        _write_three_field_score(
            vault, "hh-old", before.score, before.model_version, before.model_digest
        )
        assert check_store(engine).legacy_scores == 1

        command.upgrade(vault_config, "heads")

        assert check_store(engine).clean
        with pytest.raises(NotScored):
            vault.explain("hh-old", _decision(policy, "hh-old", "read_score"))
        with pytest.raises(NotScored):
            vault.eligible("hh-old", "99", _decision(policy, "hh-old", "eligibility"))
        with engine.connect() as conn:
            assert conn.execute(
                select(t.scores.c.ciphertext).where(t.scores.c.subject == "hh-new")
            ).scalar_one() == bytes(kept)
        assert vault.eligible(
            "hh-new", "99", _decision(policy, "hh-new", "eligibility")
        )  # the other household still answers
        # Scored again, the household has the same score, in the one-field form.
        vault.score("hh-old", models)
        assert vault.explain("hh-old", _decision(policy, "hh-old", "read_score")) == before
        assert check_store(engine).clean
    finally:
        keys.close()
        engine.dispose()


def test_a_score_kept_in_the_three_field_form_is_not_read_as_a_score(
    vault: Vault, policy: PolicyStandIn
) -> None:
    vault.store("hh-1", "household", _household("h1"))
    event = vault.score("hh-1", ModelSet.load("v1"))
    _write_three_field_score(vault, "hh-1", "9.1234567", event.model_version, event.model_digest)
    with pytest.raises(NotScored):
        vault.explain("hh-1", _decision(policy, "hh-1", "read_score"))


def test_vault_check_reports_three_field_scores_by_count_and_exits_non_zero(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, policy: PolicyStandIn
) -> None:
    from gateway.cli import vault as vault_cli

    data_dir = tmp_path / "data"
    data_dir.mkdir()
    monkeypatch.setenv("SIJILL_DATA_DIR", str(data_dir))
    monkeypatch.setenv("SIJILL_DATABASE_URL", database_url)
    db.upgrade({"main": database_url, "vault": database_url, "audit": database_url})
    engine = db.make_engine(database_url)
    keys = FileKeyProvider(tmp_path / "keys")
    root = typer.Typer()
    root.add_typer(vault_cli.app, name="vault")
    runner = CliRunner()
    try:
        vault = Vault(engine, keys, policy.verifier)
        vault.store("hh-7", "household", _household("h7"))
        event = vault.score("hh-7", ModelSet.load("v1"))

        clean = runner.invoke(root, ["vault", "check"])
        assert clean.exit_code == 0, clean.output
        assert "three-field form: 0" in clean.output

        index = str(Decimal("8.5"))
        _write_three_field_score(vault, "hh-7", index, event.model_version, event.model_digest)
        found = runner.invoke(root, ["vault", "check"])
        assert found.exit_code == 1, found.output
        assert "three-field form: 1" in found.output
        assert "hh-7" not in found.output and index not in found.output
    finally:
        keys.close()
        engine.dispose()
