"""storekit: the one layer between Sijill's rooms and the database drivers.

Owns: every use of a DBAPI connection: the hot-path runner (:mod:`storekit.hot`: statements
compiled once, kept autocommit connections that honour the pool's recycle and pre-ping), the
bulk paths (:mod:`storekit.bulk`: set-valued lookups, COPY, unnest inserts, pipelined
batches), what claims on rows need (:mod:`storekit.claims`: the clock, a holder's name, the
write transaction), and where SQLite and PostgreSQL differ, the one place that says how. Also
the RFC 8785 encoder (:mod:`storekit.jcs`) that the audit log and the vault both commit to.

May import: the standard library, SQLAlchemy, the drivers (psycopg, sqlite3), orjson, rfc8785.

Must never: import a room of the gateway (import-linter checks this), know a table of its own,
or put a statement's parameters (personal data, possibly) into an error it raises.
"""

from storekit.hot import (
    MAX_COMPILED,
    HotSQL,
    Prepared,
    Transaction,
    durable_writer,
    hot_sql,
    truncate_wal,
)

__all__ = [
    "MAX_COMPILED",
    "HotSQL",
    "Prepared",
    "Transaction",
    "durable_writer",
    "hot_sql",
    "truncate_wal",
]
