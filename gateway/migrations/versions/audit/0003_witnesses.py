"""audit store: the log's own metadata (origin, verifier key) and witness cosignatures

``audit_meta`` holds what a verifier needs to read the log and was derived, before, from the
port the server listened on: the log's origin and its checkpoint verifier key, set once when
the log is initialised. A store that already holds checkpoints takes its origin from the
newest of them (the verifier key is recorded by the gateway at its next start, from its own
signing key).

``audit_cosignatures`` holds the witnesses' C2SP cosignature lines, one row per witness and
checkpoint. Both tables are append-only, like the rest of the log.

Revision ID: audit_0003
Revises: audit_0002
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "audit_0003"
down_revision = "audit_0002"
branch_labels = None
depends_on = None

TABLES = ("audit_meta", "audit_cosignatures")


def upgrade() -> None:
    meta = op.create_table(
        "audit_meta",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "audit_cosignatures",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("tree_size", sa.BigInteger, nullable=False),
        sa.Column("root_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("witness", sa.String(200), nullable=False),
        sa.Column("line", sa.Text, nullable=False),
    )
    op.create_index("ix_audit_cosignatures_size", "audit_cosignatures", ["tree_size"])
    newest = (
        op.get_bind()
        .execute(sa.text("SELECT note FROM audit_checkpoints ORDER BY tree_size DESC, id DESC"))
        .first()
    )
    if newest is not None:
        op.bulk_insert(meta, [{"key": "origin", "value": newest[0].split("\n", 1)[0]}])
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION audit_append_only()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()"
            )
    else:
        for table in TABLES:
            for verb in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                    "BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END"
                )


def downgrade() -> None:
    for table in TABLES:
        op.drop_table(table)
