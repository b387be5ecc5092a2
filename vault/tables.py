"""The vault store's tables (SQLAlchemy Core). Migrations: gateway/migrations/versions/vault/.

Nothing here holds plaintext: field values are AES-256-GCM ciphertexts, data keys are wrapped
by the KEK. Subject ids are the registry's opaque vault ids, never an IDCS or a name.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Connection,
    Integer,
    LargeBinary,
    MetaData,
    Select,
    String,
    Table,
    bindparam,
    delete,
    literal_column,
    select,
    union_all,
)

from storekit.bulk import insert_rows

__all__ = [
    "OWN_TABLES",
    "counters",
    "data_keys",
    "features",
    "fields",
    "metadata",
    "own_field_query",
    "record_query",
    "rotations",
    "scores",
    "secrets",
    "subjects",
    "write_fields",
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


def _own_table(name: str) -> Table:
    """A field kept in a table of its own: one (subject, ciphertext) row a record, the shape
    record_query, own_field_query, write_fields and the scoring's upsert rely on."""
    return Table(
        name,
        metadata,
        Column("subject", String(128), primary_key=True),
        Column("ciphertext", LargeBinary, nullable=False),
    )


# A household's score (vault.scoring), one small row a household in a table of its own
# (migration vault_0003). A national rescoring rewrites every household's score: among the
# record's other fields (about 2 KiB a household) each rewrite would dirty a page of its own;
# here a batch's scores share a few pages. Read, written and erased as the record's field
# "score".
scores = _own_table("vault_scores")

# The vector of model variables a household was last scored from (vault.scoring, migration
# vault_0004): a rescoring decrypts it instead of parsing the whole declaration. Written by the
# scoring only, as the record's field "features", and deleted whenever the declaration it was
# derived from is rewritten (write_fields) or erased.
features = _own_table("vault_features")

# Fields kept in a table of their own, (subject, ciphertext) rows, rather than in vault_fields.
OWN_TABLES: dict[str, Table] = {"score": scores, "features": features}
# Fields derived from another: rewriting the source deletes them (the vault derives them again).
DERIVED: dict[str, tuple[str, ...]] = {"declaration": ("features",)}

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
    match: Callable[[Column[Any]], ColumnElement[bool]],
    names: Sequence[str] | None = None,
    *,
    own: Collection[str] | None = None,
) -> Select[Any]:
    """Status, wrapped data keys and field ciphertexts (only ``names``, if given) of the
    subjects ``match`` selects, in one statement and so one snapshot: a row per (key version,
    field) pair, with NULLs where a subject has no key or none of the fields (erased).

    Columns: subject, kind, erased_at_ns, version, wrapped, field, ciphertext. ``match`` is
    applied to every table's subject column, not only the first: each table is then searched
    by its own index (with the set named on vault_subjects alone, PostgreSQL's planner may
    hash-join the whole data-key table against it). Fields of :data:`OWN_TABLES` come from
    their table, as rows of the same shape; without ``names``, those named in ``own`` (all of
    them if None)."""
    wanted = None if names is None else list(names)
    if wanted is not None:
        own = wanted
    elif own is None:
        own = OWN_TABLES
    tables = [n for n in OWN_TABLES if n in own]
    rest = None if wanted is None else [name for name in wanted if name not in OWN_TABLES]
    sources: list[Select[Any]] = []
    if rest is None or rest or not tables:
        general = select(fields.c.subject, fields.c.field, fields.c.ciphertext).where(
            match(fields.c.subject)
        )
        if rest is not None:
            # One parameter a name, bound with its value: a fixed statement per set of names,
            # which the hot-path runner compiles once (it refuses expanding IN lists).
            named = [bindparam(f"field_{i}", name, String()) for i, name in enumerate(rest)]
            general = general.where(fields.c.field.in_(named))
        sources.append(general)
    for name in tables:
        table = OWN_TABLES[name]
        sources.append(
            select(
                table.c.subject,
                literal_column(f"'{name}'", String()).label("field"),
                table.c.ciphertext,
            ).where(match(table.c.subject))
        )
    # One source is a plain subquery, which both databases merge into the join.
    found = (sources[0] if len(sources) == 1 else union_all(*sources)).subquery("found")
    return (
        select(
            subjects.c.subject,
            subjects.c.kind,
            subjects.c.erased_at_ns,
            data_keys.c.version,
            data_keys.c.wrapped,
            found.c.field,
            found.c.ciphertext,
        )
        .select_from(
            subjects.outerjoin(
                data_keys,
                (data_keys.c.subject == subjects.c.subject) & match(data_keys.c.subject),
            ).outerjoin(found, found.c.subject == subjects.c.subject)
        )
        .where(match(subjects.c.subject))
    )


def own_field_query(name: str, match: Callable[[Column[Any]], ColumnElement[bool]]) -> Select[Any]:
    """The ciphertexts of the field ``name`` (one of :data:`OWN_TABLES`) of the subjects
    ``match`` selects that have one, with their records' wrapped data keys: (subject, version,
    wrapped, ciphertext), a row per key version. Neither vault_subjects nor vault_fields is
    read, so a caller must know what the field's presence implies (vault.scoring: a feature
    vector exists only on a household record that is not erased)."""
    table = OWN_TABLES[name]
    return (
        select(table.c.subject, data_keys.c.version, data_keys.c.wrapped, table.c.ciphertext)
        .select_from(
            table.join(
                data_keys,
                (data_keys.c.subject == table.c.subject) & match(data_keys.c.subject),
            )
        )
        .where(match(table.c.subject))
    )


def write_fields(
    conn: Connection,
    rows: Sequence[tuple[str, str, bytes]],
    replaced: Sequence[tuple[str, str]] = (),
) -> None:
    """Delete the ``replaced`` (subject, field) ciphertexts and insert ``rows`` (subject,
    field, ciphertext), inside ``conn``'s transaction: each field in its table, vault_fields
    or its own (:data:`OWN_TABLES`). Replacing a field deletes the fields derived from it
    (:data:`DERIVED`)."""
    replaced = [
        *replaced,
        *((subject, d) for subject, name in replaced for d in DERIVED.get(name, ())),
    ]
    general = [{"s": subject, "f": name} for subject, name in replaced if name not in OWN_TABLES]
    if general:
        conn.execute(
            delete(fields).where(
                fields.c.subject == bindparam("s"), fields.c.field == bindparam("f")
            ),
            general,
        )
    for name, table in OWN_TABLES.items():
        gone = [{"s": subject} for subject, field in replaced if field == name]
        if gone:
            conn.execute(delete(table).where(table.c.subject == bindparam("s")), gone)
        insert_rows(conn, table, [(subject, c) for subject, field, c in rows if field == name])
    insert_rows(conn, fields, [row for row in rows if row[1] not in OWN_TABLES])
