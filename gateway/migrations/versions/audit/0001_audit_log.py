"""Audit log: tree head, entries, complete-subtree nodes, checkpoints; append-only triggers.

Revision ID: audit_0001
Revises:
Create Date: 2026-11-29
"""

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "audit_0001"
down_revision = None
branch_labels = None
depends_on = None

EMPTY_ROOT = hashlib.sha256(b"").digest()  # RFC 9162 §2.1.1: the empty tree's root
LOG_TABLES = ("audit_entries", "audit_nodes", "audit_checkpoints")


def upgrade() -> None:
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("tree_size", sa.BigInteger, nullable=False),
        sa.Column("root_hash", sa.LargeBinary(32), nullable=False),
    )
    op.bulk_insert(head, [{"id": 1, "tree_size": 0, "root_hash": EMPTY_ROOT}])
    op.create_table(
        "audit_entries",
        sa.Column("idx", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("leaf_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("entry", sa.Text, nullable=False),
        sa.Column("time_ns", sa.BigInteger, nullable=False),
        sa.Column("subject", sa.String(128)),
        sa.Column("actor_kind", sa.String(16), nullable=False),
        sa.Column("actor_id", sa.String(200), nullable=False),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("purpose", sa.String(200)),
        sa.Column("outcome", sa.String(8), nullable=False),
    )
    # A citizen's own entries, an agency's entries, a time window: the listings people run.
    op.create_index("ix_audit_entries_subject", "audit_entries", ["subject", "idx"])
    op.create_index("ix_audit_entries_actor", "audit_entries", ["actor_id", "idx"])
    op.create_index("ix_audit_entries_time", "audit_entries", ["time_ns"])
    op.create_table(
        "audit_nodes",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
    )
    op.create_table(
        "audit_checkpoints",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("tree_size", sa.BigInteger, nullable=False),
        sa.Column("root_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("timestamp_ns", sa.BigInteger, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
    )
    op.create_index("ix_audit_checkpoints_size", "audit_checkpoints", ["tree_size"])

    # Append-only, enforced by the database for the application's own role: a compromised
    # gateway cannot rewrite history (the signed checkpoints catch anyone who can bypass this).
    if op.get_bind().dialect.name == "postgresql":
        op.execute("""
            CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'audit log is append-only: % on % refused', TG_OP, TG_TABLE_NAME
                    USING ERRCODE = 'insufficient_privilege';
            END $$""")
        op.execute("""
            CREATE FUNCTION audit_head_grows() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF TG_OP <> 'UPDATE' OR NEW.tree_size < OLD.tree_size OR NEW.id <> OLD.id THEN
                    RAISE EXCEPTION 'audit tree head may only grow'
                        USING ERRCODE = 'insufficient_privilege';
                END IF;
                RETURN NEW;
            END $$""")
        for table in LOG_TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION audit_append_only()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()"
            )
        op.execute(
            "CREATE TRIGGER audit_head_grows BEFORE UPDATE OR DELETE ON audit_head "
            "FOR EACH ROW EXECUTE FUNCTION audit_head_grows()"
        )
        op.execute(
            "CREATE TRIGGER audit_head_no_truncate BEFORE TRUNCATE ON audit_head "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()"
        )
    else:
        for table in LOG_TABLES:
            for verb in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                    "BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END"
                )
        op.execute(
            "CREATE TRIGGER audit_head_grows BEFORE UPDATE ON audit_head "
            "WHEN NEW.tree_size < OLD.tree_size OR NEW.id <> OLD.id "
            "BEGIN SELECT RAISE(ABORT, 'audit tree head may only grow'); END"
        )
        op.execute(
            "CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head "
            "BEGIN SELECT RAISE(ABORT, 'audit tree head may only grow'); END"
        )


def downgrade() -> None:
    # History is not undone: dropping the log would destroy evidence (law 09.08, art. 23).
    raise RuntimeError("the audit log migration is irreversible by design")
