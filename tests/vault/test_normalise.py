"""Normalisation for blind indexes (property tests) and the keyed indexes built on it."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vault import normalise
from vault.normalise import normalise_identifier, normalise_text

ARABIC = st.text(alphabet=st.characters(min_codepoint=0x0600, max_codepoint=0x06FF), max_size=30)
ANY = st.text(max_size=40)


@settings(deadline=None)
@given(st.one_of(ANY, ARABIC))
def test_normalising_twice_changes_nothing(text: str) -> None:
    once = normalise_text(text)
    assert normalise_text(once) == once
    assert normalise_identifier(normalise_identifier(text)) == normalise_identifier(text)


@settings(deadline=None)
@given(st.one_of(ANY, ARABIC))
def test_output_has_no_marks_tatweel_or_irregular_spacing(text: str) -> None:
    out = normalise_text(text)
    assert not any(unicodedata.category(c) == "Mn" for c in out)
    assert "\u0640" not in out
    assert out == " ".join(out.split())


@settings(deadline=None)
@given(ARABIC)
def test_hamza_ta_marbuta_and_alif_maqsura_forms_fold_together(text: str) -> None:
    variant = (
        text.replace("\u0627", "\u0623").replace("\u0647", "\u0629").replace("\u064a", "\u0649")
    )
    assert normalise_text(variant) == normalise_text(text)


@settings(deadline=None)
@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz ", max_size=30))
def test_latin_case_accents_and_spacing_do_not_matter(text: str) -> None:
    accented = text.upper().replace("E", "É").replace("A", "À").replace(" ", "  \t")
    assert normalise_text(accented) == normalise_text(text)


# Marks of every kind next to letters of several scripts: where a per-character table could
# go wrong (NFKD reorders runs of combining characters).
MIXED = st.text(
    alphabet=st.one_of(
        st.characters(min_codepoint=0x0020, max_codepoint=0x024F),
        st.characters(min_codepoint=0x0300, max_codepoint=0x036F),
        st.characters(min_codepoint=0x0600, max_codepoint=0x06FF),
        st.characters(categories=["Mn", "Mc", "Me", "Lm", "So", "Zs"]),
        st.characters(),
    ),
    max_size=40,
)


@settings(deadline=None, max_examples=500)
@given(st.one_of(ANY, ARABIC, MIXED))
def test_table_normalisation_equals_the_definition_on_any_text(text: str) -> None:
    assert normalise_text(text) == normalise._normalise_slowly(text)


def test_every_code_point_folds_as_the_definition_says() -> None:
    table = normalise._FoldTable()
    for code in range(0x110000):
        char = chr(code)
        if unicodedata.category(char) in ("Cs", "Cn", "Co"):
            continue  # surrogates, unassigned and private-use: spaces either way
        try:
            folded = " ".join(char.translate(table).split())
        except normalise._Unfoldable:
            continue  # such texts take the definition's own path
        assert folded == normalise._normalise_slowly(char), hex(code)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("أحمد", "احمد"),
        ("إدريس", "ادريس"),
        ("آمنة", "امنه"),
        ("ٱلله", "الله"),
        ("مصطفى", "مصطفي"),
        ("مـحـمـد", "محمد"),
        ("مُحَمَّد", "محمد"),
        ("  José   Ben-Ali ", "jose ben ali"),
        ("ÉLODIE", "elodie"),
    ],
)
def test_known_spelling_variants_are_equal(a: str, b: str) -> None:
    assert normalise_text(a) == normalise_text(b)


def test_identifiers_keep_only_letters_and_digits_in_ascii() -> None:
    assert normalise_identifier(" cd-123 456 ") == normalise_identifier("CD123456")
    assert normalise_identifier("CD١٢٣٤٥٦") == normalise_identifier("CD123456")


def test_blind_index_matches_variants_and_depends_on_the_vault_key(
    tmp_path: Path,
    vault_engine,
    policy,  # type: ignore[no-untyped-def]
) -> None:
    from gateway import db
    from vault import FileKeyProvider, Vault

    vault = Vault(vault_engine, FileKeyProvider(tmp_path / "k1"), policy.verifier)
    assert vault.blind_index("name_birth", "أحمد العلوي|1987-03-21") == vault.blind_index(
        "name_birth", "احمد  العلوي | 1987-03-21"
    )
    assert vault.blind_index("cnie", "cd 123456") == vault.blind_index("cnie", "CD123456")
    assert vault.blind_index("cnie", "CD123456") != vault.blind_index("name_birth", "CD123456")
    other_url = f"sqlite:///{tmp_path / 'other.db'}"
    db.upgrade({"main": other_url, "vault": other_url, "audit": other_url})
    other_engine = db.make_engine(other_url)
    other = Vault(other_engine, FileKeyProvider(tmp_path / "k2"), policy.verifier)
    # Another deployment (another root secret) gets unrelated indexes and tags.
    assert other.blind_index("cnie", "CD123456") != vault.blind_index("cnie", "CD123456")
    assert other.subject_tag("s-1") != vault.subject_tag("s-1")
    other_engine.dispose()


def test_tokens_random_by_default_deterministic_only_per_named_purpose(vault) -> None:  # type: ignore[no-untyped-def]
    assert vault.new_token() != vault.new_token()
    a = vault.deterministic_token("rsu_dedup", "CD123456")
    assert a == vault.deterministic_token("rsu_dedup", "CD123456")
    assert a != vault.deterministic_token("health_join", "CD123456")
    assert vault.mac("pseudonym:health:v1", b"x") != vault.mac("pseudonym:cnss:v1", b"x")
    assert len(vault.mac("pseudonym:health:v1", b"x")) == 32


def test_root_secret_survives_a_restart(vault_engine, key_provider, policy) -> None:  # type: ignore[no-untyped-def]
    from vault import Vault

    first = Vault(vault_engine, key_provider, policy.verifier)
    tag = first.subject_tag("s-1")
    assert Vault(vault_engine, key_provider, policy.verifier).subject_tag("s-1") == tag


def test_macs_tags_and_blind_indexes_are_hmac_sha256_under_their_derived_keys(
    tmp_path: Path,
    vault_engine,
    policy,  # type: ignore[no-untyped-def]
) -> None:
    """The vault keeps a keyed HMAC a label and copies it for each message: its outputs are
    exactly the standard library's one-shot HMAC under the same derived key, from any thread."""
    import hashlib
    import hmac
    import os
    from concurrent.futures import ThreadPoolExecutor

    from vault import FileKeyProvider, Vault

    vault = Vault(vault_engine, FileKeyProvider(tmp_path / "k1"), policy.verifier)

    def reference(label: str, value: bytes) -> bytes:
        return hmac.digest(vault.derive.derived_key(label), value, hashlib.sha256)

    messages = [os.urandom(n) for n in (0, 1, 31, 32, 63, 64, 65, 1200, 5000) for _ in range(3)]
    for value in messages:
        assert vault.mac("rsu:inputs", value) == reference("mac:rsu:inputs", value)
    for subject in ("s-1", "2000000017", "هـ-١"):
        assert vault.subject_tag(subject) == reference("subject-tag:v1", subject.encode()).hex()
    assert vault.blind_index("cnie", "CD123456") == (
        reference("blind-index:cnie:v1", normalise_identifier("CD123456").encode()).hex()
    )
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda v: vault.mac("t", v), messages * 20))
    assert got == [reference("mac:t", v) for v in messages * 20]
