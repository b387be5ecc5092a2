"""What an insider with write access to the audit database does, as SQL, for the tamper suite:
drop the append-only triggers, change rows, rebuild the tree nodes and head so that they agree
with the changed rows, delete checkpoints. Nothing here goes through the log's own code."""

from __future__ import annotations

import json
from typing import Any

import rfc8785
from sqlalchemy import Connection, Engine, text

from audit.merkle import CompactRange, leaf_hash
from audit.storage import node_id

LOG_TABLES = ("audit_entries", "audit_nodes", "audit_checkpoints", "audit_cosignatures")
COLUMNS = "idx, leaf_hash, entry, time_ns, subject, actor_kind, actor_id, action, purpose, outcome"


def drop_triggers(engine: Engine) -> None:
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            names = conn.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE type = 'trigger'"
            ).scalars()
            for name in list(names):
                conn.exec_driver_sql(f'DROP TRIGGER "{name}"')
        else:
            for table in (*LOG_TABLES, "audit_head"):
                conn.exec_driver_sql(f"ALTER TABLE {table} DISABLE TRIGGER USER")


def _rows(conn: Connection) -> list[dict[str, Any]]:
    result = conn.exec_driver_sql(f"SELECT {COLUMNS} FROM audit_entries ORDER BY idx")
    return [dict(r._mapping) for r in result]


def _rewrite(conn: Connection, rows: list[dict[str, Any]]) -> None:
    conn.exec_driver_sql("DELETE FROM audit_entries")
    for row in rows:
        conn.execute(
            text(
                f"INSERT INTO audit_entries ({COLUMNS}) VALUES (:idx, :leaf_hash, :entry, "
                ":time_ns, :subject, :actor_kind, :actor_id, :action, :purpose, :outcome)"
            ),
            row,
        )


def forged(entry: str) -> str:
    data = json.loads(entry)
    data["purpose"] = "covert_profiling"
    return rfc8785.dumps(data).decode()


def tamper(engine: Engine, kind: str, index: int, *, rehash: bool) -> None:
    """``kind`` at ``index``: edit, delete, insert, swap (with the next entry) or truncate.
    ``rehash``: the rows' leaf hashes are recomputed and indexes kept contiguous, as someone
    covering their tracks would; otherwise the rows change and nothing else."""
    with engine.begin() as conn:
        rows = _rows(conn)
        if kind == "edit":
            rows[index]["entry"] = forged(rows[index]["entry"])
            if rehash:
                rows[index]["leaf_hash"] = leaf_hash(rows[index]["entry"].encode())
        elif kind == "delete":
            del rows[index]
            if rehash:
                for i, row in enumerate(rows):
                    row["idx"] = i
        elif kind == "insert":
            extra = dict(rows[index], entry=forged(rows[index]["entry"]))
            extra["leaf_hash"] = leaf_hash(extra["entry"].encode())
            rows.insert(index, extra)
            for i, row in enumerate(rows):
                row["idx"] = i
        elif kind == "swap":
            a, b = rows[index], rows[index + 1]
            rows[index], rows[index + 1] = dict(b, idx=a["idx"]), dict(a, idx=b["idx"])
        elif kind == "truncate":
            del rows[index:]
        else:
            raise ValueError(kind)
        _rewrite(conn, rows)


def rebuild(engine: Engine) -> None:
    """Recompute every tree node and the head from the rows as they now are."""
    with engine.begin() as conn:
        rows = _rows(conn)
        frontier = CompactRange()
        nodes: list[tuple[int, int, bytes]] = []
        for row in rows:
            nodes.extend(frontier.append(leaf_hash(row["entry"].encode())))
        conn.exec_driver_sql("DELETE FROM audit_nodes")
        for level, index, h in nodes:
            conn.execute(
                text("INSERT INTO audit_nodes (id, hash) VALUES (:id, :hash)"),
                {"id": node_id((level, index)), "hash": h},
            )
        conn.execute(
            text(
                "UPDATE audit_head SET tree_size = :size, root_hash = :root, right_edge = :edge "
                "WHERE id = 1"
            ),
            {"size": frontier.size, "root": frontier.root(), "edge": b"".join(frontier.hashes())},
        )


def delete_checkpoints(engine: Engine, above: int) -> None:
    """Remove every checkpoint (and its cosignatures) of a tree larger than ``above``."""
    with engine.begin() as conn:
        for table in ("audit_checkpoints", "audit_cosignatures"):
            conn.execute(text(f"DELETE FROM {table} WHERE tree_size > :n"), {"n": above})
