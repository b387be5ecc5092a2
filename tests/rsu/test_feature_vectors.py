"""The feature vector a household was last scored from (vault.scoring, table vault_features):
it scores exactly as its declaration does, a rescoring reads it instead of the declaration, it
never outlives the declaration it came from, and the inputs digest is taken over it."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from alembic import command
from sqlalchemy import inspect, select

from gateway import db
from identity.synth import REGIONS
from rsu.synthetic import declaration as synth_declaration
from tests.rsu.conftest import Rsu
from tests.rsu.test_scoring import worked_example
from tests.vault.conftest import PolicyStandIn
from vault import FileKeyProvider, ModelSet, Vault, Vectors, feature_vector, features
from vault import tables as t
from vault.errors import Erased


def _declarations(n: int, seed: int) -> list[dict[str, Any]]:
    """Synthetic declarations with members, as rsu/declarations.py records them."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        region = rng.choice(list(REGIONS))
        size = rng.randint(1, 14)
        decl = synth_declaration(rng, region, rng.choice(REGIONS[region]), size)
        decl["members"] = [
            {"idcs": f"{3_000_000_000 + i * 16 + k}", "relation": "head" if k == 0 else
             rng.choice(("spouse", "child", "other_relative")), "sex": rng.choice("FM"),
             "age": rng.randint(18, 95) if k == 0 else rng.randint(0, 95),
             "education": rng.choice(("none", "primary", "secondary", "higher")),
             "occupation": rng.choice(("employed", "self_employed", "inactive", "student")),
             "disability": rng.random() < 0.1}
            for k in range(size)
        ]  # fmt: skip
        out.append(decl)
    return out


def test_a_feature_vector_scores_exactly_as_the_declaration_it_was_derived_from() -> None:
    models = ModelSet.load("v1")
    declarations = _declarations(400, seed=3)
    for model in models:
        mine = [d for d in declarations if d["area"] == model.area]
        assert len(mine) > 50
        vectors = Vectors.decode([feature_vector(d) for d in mine])
        # Bit for bit: the same design matrix, so the same floats and the same published text.
        assert np.array_equal(model.matrix_of(vectors), model.matrix([features(d) for d in mine]))
        assert model.scores_of(vectors) == model.scores(mine)
        assert [row[2] for row in vectors.strings] == [d["members"][0]["idcs"] for d in mine]


def test_the_vector_format_names_the_feature_code_so_a_change_to_it_is_never_misread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import vault.scoring.features as scoring

    # The same in another process, under another hash seed: a stored vector stays readable.
    elsewhere = subprocess.run(
        [
            sys.executable,
            "-c",
            "import vault.scoring.features as s; print(s.catalogue_digest().hex())",
        ],
        env={**os.environ, "PYTHONHASHSEED": "12345"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert elsewhere == scoring.catalogue_digest().hex()

    # Another way of computing a variable (here: children counted up to 17, not 14).
    original = scoring.features

    def changed(declaration: dict[str, Any]) -> dict[str, float | str]:
        values = original(declaration)
        members = declaration["members"]
        values["share_children"] = sum(1 for m in members if m["age"] < 18) / len(members)
        return values

    monkeypatch.setattr(scoring, "features", changed)
    assert scoring.catalogue_digest() != bytes.fromhex(elsewhere)


def _stored_vector(vault: Vault, subject: str) -> bytes | None:
    with vault.engine.connect() as conn:
        if (
            conn.execute(
                select(t.features.c.subject).where(t.features.c.subject == subject)
            ).first()
            is None
        ):
            return None
    _kind, plain = vault.records.read_one(subject, ["features"])
    value = plain["features"]
    assert isinstance(value, bytes)
    return value


def _declaration_of(vault: Vault, subject: str) -> dict[str, Any]:
    _kind, plain = vault.records.read_one(subject, ["declaration"])
    text = plain["declaration"]
    assert isinstance(text, str)
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def test_scoring_keeps_the_vector_and_a_rescoring_scores_from_it_not_from_the_declaration(
    rsu: Rsu,
) -> None:
    members, declaration = worked_example(rsu)
    subject = rsu.households.register_household(members, declaration).vault_subject
    stored = _stored_vector(rsu.vault, subject)
    assert stored == feature_vector(_declaration_of(rsu.vault, subject))

    # Put the vector of another, wealthier household in its place (sealed under the record's
    # key, as the vault writes it): a rescoring now gives that household's score, so it reads
    # the vector, and its inputs digest is the vector's.
    other = dict(declaration, members=_declaration_of(rsu.vault, subject)["members"])
    other["housing"] = dict(other["housing"], type="villa", rooms=9)  # type: ignore[arg-type]
    planted = feature_vector(other)
    assert planted != stored
    rsu.seal(subject, {"features": planted})
    models = ModelSet.load("v1")
    event = rsu.vault.score(subject, models)
    assert event.inputs_digest == rsu.vault.mac("rsu-inputs:v1", planted).hex()
    explained = rsu.vault.explain(subject, rsu.decision(subject, "read_score"))
    assert explained.score == models.for_area(other["area"]).scores([other])[0]
    assert (
        explained.score
        != models.for_area(declaration["area"]).scores([_declaration_of(rsu.vault, subject)])[0]
    )


def test_rewriting_the_declaration_deletes_its_vector_and_the_next_scoring_derives_it_again(
    rsu: Rsu,
) -> None:
    members, declaration = worked_example(rsu)
    subject = rsu.households.register_household(members, declaration).vault_subject
    before = _stored_vector(rsu.vault, subject)
    assert before is not None
    head = str(members[0]["idcs"])
    child = str(members[3]["idcs"])

    rsu.vault.amend_household(subject, remove=[child])
    assert _stored_vector(rsu.vault, subject) is None  # gone with the declaration it came from

    event = rsu.vault.score(subject, ModelSet.load("v1"))
    after = _stored_vector(rsu.vault, subject)
    amended = _declaration_of(rsu.vault, subject)
    assert child not in {m["idcs"] for m in amended["members"]}
    assert after == feature_vector(amended) != before
    assert event.inputs_digest == rsu.vault.mac("rsu-inputs:v1", after).hex()
    assert event.head_tag == rsu.vault.subject_tag(head)


def test_a_vector_of_another_feature_catalogue_is_never_read_but_derived_again(
    rsu: Rsu,
) -> None:
    members, declaration = worked_example(rsu)
    subject = rsu.households.register_household(members, declaration).vault_subject
    current = _stored_vector(rsu.vault, subject)
    assert current is not None
    score = rsu.vault.explain(subject, rsu.decision(subject, "read_score")).score
    foreign = b"\x01\x00\x00\x00\x00" + b"\x00" * (len(current) - 5)  # another catalogue's id
    rsu.seal(subject, {"features": foreign})
    rsu.vault.score(subject, ModelSet.load("v1"))
    assert _stored_vector(rsu.vault, subject) == current
    assert rsu.vault.explain(subject, rsu.decision(subject, "read_score")).score == score


def test_a_batch_scored_from_declarations_is_scored_again_if_one_is_amended_before_it_is_stored(
    rsu: Rsu,
) -> None:
    members, declaration = worked_example(rsu)
    subject = rsu.households.register_household(members, declaration).vault_subject
    with rsu.vault.engine.begin() as conn:  # a record no scoring of this release has seen
        conn.execute(t.features.delete().where(t.features.c.subject == subject))
    models = ModelSet.load("v1")
    batch = rsu.vault.score_compute([subject], models)
    (computed,) = batch.events
    rsu.vault.amend_household(subject, remove=[str(members[3]["idcs"])])

    (stored,) = rsu.vault.score_store(batch, models)
    amended = feature_vector(_declaration_of(rsu.vault, subject))
    assert stored.inputs_digest == rsu.vault.mac("rsu-inputs:v1", amended).hex()
    assert stored.inputs_digest != computed.inputs_digest
    assert _stored_vector(rsu.vault, subject) == amended


def test_erasing_a_household_deletes_its_vector(rsu: Rsu) -> None:
    members, declaration = worked_example(rsu)
    subject = rsu.households.register_household(members, declaration).vault_subject
    assert _stored_vector(rsu.vault, subject) is not None
    rsu.vault.erase(subject)
    assert _stored_vector(rsu.vault, subject) is None
    with pytest.raises(Erased):
        rsu.vault.score(subject, ModelSet.load("v1"))


def test_the_vectors_table_comes_with_its_migration_and_goes_with_the_downgrade(
    database_url: str, tmp_path: Path
) -> None:
    policy = PolicyStandIn()
    vault_config = db.alembic_config("vault", database_url)
    command.upgrade(vault_config, "vault_0003")
    engine = db.make_engine(database_url)
    keys = FileKeyProvider(tmp_path / "keys")
    try:
        assert "vault_features" not in inspect(engine).get_table_names()
        command.upgrade(vault_config, "heads")
        assert "vault_features" in inspect(engine).get_table_names()
        vault = Vault(engine, keys, policy.verifier)
        (decl,) = _declarations(1, seed=5)
        vault.store("hh-m", "household", {
            "head": decl["members"][0]["idcs"], "size": len(decl["members"]),
            "area": decl["area"], "members": "[]",
            "declaration": json.dumps(decl, separators=(",", ":")),
        })  # fmt: skip
        vault.score("hh-m", ModelSet.load("v1"))
        assert _stored_vector(vault, "hh-m") == feature_vector(decl)
        command.downgrade(vault_config, "vault_0003")
        assert "vault_features" not in inspect(engine).get_table_names()
    finally:
        keys.close()
        engine.dispose()
        command.upgrade(vault_config, "heads")


@pytest.mark.parametrize("tail", [b"\x00" * 3, b"\x00" * 248 + b"urban\x1fonly three"])
def test_a_stored_vector_of_this_version_but_malformed_is_an_integrity_error_not_a_score(
    rsu: Rsu, tail: bytes
) -> None:
    from vault.errors import IntegrityError
    from vault.scoring.features import VECTOR_HEADER

    members, declaration = worked_example(rsu)
    subject = rsu.households.register_household(members, declaration).vault_subject
    rsu.seal(subject, {"features": VECTOR_HEADER + tail})
    with pytest.raises(IntegrityError):
        rsu.vault.score(subject, ModelSet.load("v1"))
