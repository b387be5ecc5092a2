"""main store: law-enforcement clients

A client of kind ``law_enforcement`` is a police or judicial authority that queries the
registers only under a court order of the register (gateway/court_orders). The check on
``oauth_clients.kind`` admits it; on SQLite, which cannot alter a constraint, the table is
rebuilt with its rows (batch mode).

Revision ID: oauth_0005
Revises: oauth_0004
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "oauth_0005"
down_revision = "oauth_0004"
branch_labels = None
depends_on = None

NAME = "ck_oauth_clients_kind"


def _kinds(kinds: str) -> None:
    with op.batch_alter_table("oauth_clients", recreate="auto") as batch:
        batch.drop_constraint(NAME, type_="check")
        batch.create_check_constraint(NAME, f"kind IN ({kinds})")


def upgrade() -> None:
    _kinds("'agency', 'office', 'auditor', 'portal', 'law_enforcement'")


def downgrade() -> None:
    _kinds("'agency', 'office', 'auditor', 'portal'")
