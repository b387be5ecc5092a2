"""The vault store's tables (SQLAlchemy Core). Migrations: gateway/migrations/versions/vault/.

Nothing here holds plaintext: field values are AES-256-GCM ciphertexts, data keys are wrapped
by the KEK. Subject ids are the registry's opaque vault ids, never an IDCS or a name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Integer,
    LargeBinary,
    MetaData,
    Select,
    String,
    Table,
    select,
)

__all__ = [
    "counters",
    "data_keys",
    "fields",
    "metadata",
    "record_query",
    "rotations",
    "secrets",
    "subjects",
]

metadata = MetaData()

subjects = Table(
    "vault_subjects",
    metadata,
    Column("subject", String(128), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("created_at_ns", BigInteger, nullable=False),
    # Set when the subject was crypto-shredded; the row stays so that reveal can say "erased".
    Column("erased_at_ns", BigInteger, nullable=True),
)

data_keys = Table(
    "vault_data_keys",
    metadata,
    Column("subject", String(128), primary_key=True),
    Column("version", Integer, primary_key=True),  # the key id in each ciphertext's header
    Column("kek_version", Integer, nullable=False, index=True),
    Column("wrapped", LargeBinary, nullable=False),
    Column("created_at_ns", BigInteger, nullable=False),
)

fields = Table(
    "vault_fields",
    metadata,
    Column("subject", String(128), primary_key=True),
    Column("field", String(64), primary_key=True),
    Column("ciphertext", LargeBinary, nullable=False),
)

secrets = Table(
    "vault_secrets",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("kek_version", Integer, nullable=False),
    Column("wrapped", LargeBinary, nullable=False),
)

# Counters read by the vault's own consistency checks (migration vault_0002):
# "declaration_writes" counts rewrites of existing households' declarations (see
# vault.scoring: a rescoring's store skips its per-household check when it has not moved).
counters = Table(
    "vault_counters",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

rotations = Table(
    "vault_rotations",
    metadata,
    Column("target_version", Integer, primary_key=True),
    Column("started_at_ns", BigInteger, nullable=False),
    Column("finished_at_ns", BigInteger, nullable=True),
    Column("rewrapped", BigInteger, nullable=False),
    Column("total", BigInteger, nullable=False),
)


def record_query(
    match: Callable[[Column[Any]], ColumnElement[bool]], names: Sequence[str] | None = None
) -> Select[Any]:
    """Status, wrapped data keys and field ciphertexts (only ``names``, if given) of the
    subjects ``match`` selects, in one statement and so one snapshot: a row per (key version,
    field) pair, with NULLs where a subject has no key or none of the fields (erased).

    Columns: subject, kind, erased_at_ns, version, wrapped, field, ciphertext. ``match`` is
    applied to every table's subject column, not only the first: each table is then searched
    by its own index (with the set named on vault_subjects alone, PostgreSQL's planner may
    hash-join the whole data-key table against it)."""
    fields_on = (fields.c.subject == subjects.c.subject) & match(fields.c.subject)
    if names is not None:
        fields_on = fields_on & fields.c.field.in_(list(names))
    return (
        select(
            subjects.c.subject,
            subjects.c.kind,
            subjects.c.erased_at_ns,
            data_keys.c.version,
            data_keys.c.wrapped,
            fields.c.field,
            fields.c.ciphertext,
        )
        .select_from(
            subjects.outerjoin(
                data_keys,
                (data_keys.c.subject == subjects.c.subject) & match(data_keys.c.subject),
            ).outerjoin(fields, fields_on)
        )
        .where(match(subjects.c.subject))
    )
