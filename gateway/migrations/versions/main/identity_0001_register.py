"""RNP register: persons (IDCS, status, blind indexes, vault reference), their previous versions,
sector pseudonyms and their keys, and bulk-import bookkeeping.

No column holds personal data in clear: names, dates and numbers live in the vault; this store
keeps identifiers, keyed blind indexes (HMAC, computed inside the vault) and references.

Revision ID: identity_0001
Revises:
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "identity_0001"
down_revision = None
branch_labels = ("identity",)
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "rnp_persons",
        sa.Column("idcs", sa.String(10), primary_key=True),
        sa.Column("vault_subject", sa.String(64), nullable=False, unique=True),
        sa.Column("status", sa.String(10), nullable=False, server_default="active"),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        # Law 72.18 art. 8 (one IDCS per person): the unique keys are the deduplication,
        # so two concurrent enrolments of one person cannot both commit.
        sa.Column("cnie_index", sa.String(128), nullable=True, unique=True),
        sa.Column("name_birth_ar_index", sa.String(128), nullable=True, unique=True),
        sa.Column("name_birth_lat_index", sa.String(128), nullable=True, unique=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.CheckConstraint("status IN ('active', 'deceased', 'erased')", name="ck_rnp_status"),
    )
    op.create_table(
        "rnp_person_versions",
        sa.Column("idcs", sa.String(10), sa.ForeignKey("rnp_persons.idcs"), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("vault_subject", sa.String(64), nullable=False, unique=True),
        sa.Column("superseded_at", TS, nullable=False),
        sa.Column("retain_until", TS, nullable=False),
    )
    op.create_index("ix_rnp_person_versions_retain_until", "rnp_person_versions", ["retain_until"])
    # Vault records written but not yet referenced by a committed register row: the saga's
    # compensation list (a crash between the two stores leaves no orphan once swept).
    op.create_table(
        "rnp_pending_vault",
        sa.Column("vault_subject", sa.String(64), primary_key=True),
        sa.Column("job_id", sa.String(64), nullable=True),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_rnp_pending_vault_job", "rnp_pending_vault", ["job_id"])
    op.create_table(
        "rnp_pseudonym_keys",
        sa.Column("sector", sa.String(32), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("retired_at", TS, nullable=True),
        sa.CheckConstraint(
            "state IN ('current', 'active', 'retired')", name="ck_rnp_pseudonym_key_state"
        ),
    )
    op.create_table(
        "rnp_pseudonyms",
        sa.Column("pseudonym", sa.String(128), primary_key=True),
        sa.Column("sector", sa.String(32), nullable=False),
        sa.Column("key_version", sa.Integer, nullable=False),
        sa.Column("idcs", sa.String(10), sa.ForeignKey("rnp_persons.idcs"), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("idcs", "sector", "key_version", name="uq_rnp_pseudonym_person"),
    )
    op.create_index("ix_rnp_pseudonyms_sector_version", "rnp_pseudonyms", ["sector", "key_version"])
    op.create_table(
        "rnp_import_jobs",
        sa.Column("job_id", sa.String(64), primary_key=True),  # SHA-256 of the file
        sa.Column("file_name", sa.String(255), nullable=False),
        sa.Column("lines_done", sa.Integer, nullable=False, server_default="0"),
        sa.Column("enrolled", sa.Integer, nullable=False, server_default="0"),
        sa.Column("rejected", sa.Integer, nullable=False, server_default="0"),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("finished_at", TS, nullable=True),
    )
    op.create_table(
        "rnp_import_rejects",
        sa.Column(
            "job_id", sa.String(64), sa.ForeignKey("rnp_import_jobs.job_id"), primary_key=True
        ),
        sa.Column("line", sa.Integer, primary_key=True),
        sa.Column("field", sa.String(64), primary_key=True),
        sa.Column("reason", sa.String(200), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("rnp_import_rejects")
    op.drop_table("rnp_import_jobs")
    op.drop_index("ix_rnp_pseudonyms_sector_version", "rnp_pseudonyms")
    op.drop_table("rnp_pseudonyms")
    op.drop_table("rnp_pseudonym_keys")
    op.drop_index("ix_rnp_pending_vault_job", "rnp_pending_vault")
    op.drop_table("rnp_pending_vault")
    op.drop_index("ix_rnp_person_versions_retain_until", "rnp_person_versions")
    op.drop_table("rnp_person_versions")
    op.drop_table("rnp_persons")
