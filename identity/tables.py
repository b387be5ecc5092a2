"""The identity room's tables in the main store: the population register (persons, their
superseded versions, the enrolment saga's pending vault subjects), the sector pseudonyms and
their keys, the bulk import's jobs and rejects, and the portal's one-time activation codes.
The OAuth server's are in ``identity.oauth.tables``.

No personal data in clear: identifiers, vault subject ids, keyed blind indexes, timestamps.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Double,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
)

__all__ = [
    "activation_codes",
    "import_batches",
    "import_jobs",
    "import_rejects",
    "metadata",
    "pending_vault",
    "person_versions",
    "persons",
    "pseudonym_keys",
    "pseudonyms",
    "rectification_requests",
]

metadata = MetaData()
_TS = DateTime(timezone=True)

# -- the population register (identity.register) ---------------------------------------------
persons = Table(
    "rnp_persons", metadata,
    Column("idcs", String(10), primary_key=True),
    Column("vault_subject", String(64), nullable=False),
    Column("status", String(10), nullable=False),
    Column("version", Integer, nullable=False),
    Column("cnie_index", String(128)),
    Column("name_birth_ar_index", String(128)),
    Column("name_birth_lat_index", String(128)),
    Column("created_at", _TS, nullable=False),
    Column("updated_at", _TS, nullable=False),
)  # fmt: skip
person_versions = Table(
    "rnp_person_versions", metadata,
    Column("idcs", String(10), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("vault_subject", String(64), nullable=False),
    Column("superseded_at", _TS, nullable=False),
    Column("retain_until", _TS, nullable=False),
)  # fmt: skip
pending_vault = Table(
    "rnp_pending_vault", metadata,
    Column("vault_subject", String(64), primary_key=True),
    Column("job_id", String(64)),
    Column("created_at", _TS, nullable=False),
)  # fmt: skip

# -- sector pseudonyms (identity.pseudonyms) -------------------------------------------------
pseudonym_keys = Table(
    "rnp_pseudonym_keys", metadata,
    Column("sector", String(32), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("state", String(8), nullable=False),
    Column("created_at", _TS, nullable=False),
    Column("retired_at", _TS),
    # Until when a superseded version must keep resolving (identity.pseudonyms.rotate).
    Column("transition_ends_at", _TS),
)  # fmt: skip
pseudonyms = Table(
    "rnp_pseudonyms", metadata,
    Column("pseudonym", String(128), primary_key=True),
    Column("sector", String(32), nullable=False),
    Column("key_version", Integer, nullable=False),
    Column("idcs", String(10), nullable=False, index=True),  # a person's, for access and erasure
    Column("created_at", _TS, nullable=False),
)  # fmt: skip

# -- bulk import (identity.bulk) -------------------------------------------------------------
import_jobs = Table(
    "rnp_import_jobs", metadata,
    Column("job_id", String(64), primary_key=True),
    Column("file_name", String(255), nullable=False),
    Column("lines_done", Integer, nullable=False),
    Column("enrolled", Integer, nullable=False),
    Column("rejected", Integer, nullable=False),
    Column("started_at", _TS, nullable=False),
    Column("updated_at", _TS, nullable=False),
    Column("finished_at", _TS),
)  # fmt: skip
# A job's batches, each claimed by one worker at a time (migration enrol_0001).
import_batches = Table(
    "rnp_import_batches", metadata,
    Column("job_id", String(64), primary_key=True),
    Column("batch_no", Integer, primary_key=True),
    Column("first_line", Integer, nullable=False),
    Column("last_line", Integer, nullable=False),
    Column("holder", String(128)),
    Column("token", Integer, nullable=False),
    Column("expires_at", Double, nullable=False),
    Column("enrolled", Integer, nullable=False),
    Column("rejected", Integer, nullable=False),
    Column("done_at", _TS),
)  # fmt: skip
import_rejects = Table(
    "rnp_import_rejects", metadata,
    Column("job_id", String(64), primary_key=True),
    Column("line", Integer, primary_key=True),
    Column("field", String(64), primary_key=True),
    Column("reason", String(200), nullable=False),
)  # fmt: skip

# One-time codes that turn into a portal sign-in (identity/activation.py; migration web_0001).
activation_codes = Table(
    "citizen_activation_codes",
    metadata,
    Column("idcs", String(10), primary_key=True),
    Column("code_hash", String(64), nullable=False),
    Column("issued_by", String(64), nullable=False),
    Column("issued_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("failed_count", Integer, nullable=False),
    Column("pending_secret", LargeBinary, nullable=True),
)

# A citizen's request to rectify their record (identity/rectification.py; migration desk_0001):
# the names of the fields and the status here, the proposed values, the statement and a
# refusal's reason in the vault record ``vault_subject``; ``version`` is the register's new
# version of the person once the office accepted.
rectification_requests = Table(
    "rnp_rectification_requests", metadata,
    Column("id", String(36), primary_key=True),
    Column("idcs", String(10), nullable=False, index=True),
    Column("vault_subject", String(64), nullable=False, unique=True),
    Column("fields", String(400), nullable=False),
    Column("status", String(10), nullable=False, index=True),
    Column("created_at_ns", BigInteger, nullable=False),
    Column("due_at_ns", BigInteger, nullable=False),
    Column("decided_at_ns", BigInteger),
    Column("decided_by", String(128)),
    Column("version", Integer),
)  # fmt: skip
