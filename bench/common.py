"""What several benchmarks share: a scratch PostgreSQL schema, and CPU accounting.

CPU: on this machine PostgreSQL shares the cores with the code measured, so a rate is bounded by
``cores / (client CPU + server CPU) per item`` whatever the parallelism: the benchmarks report
both shares so that the bound, and how far a figure is from it, can be computed in the run.
"""

from __future__ import annotations

import os
import resource
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import create_engine, text


@contextmanager
def fresh_schema(base: str) -> Iterator[str]:
    """A URL of the PostgreSQL database ``base`` whose search_path is a schema of this run's
    own, dropped afterwards: a benchmark starts empty whatever the database already holds."""
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def server_cpu_seconds() -> float:
    """User + system CPU of the local PostgreSQL server's processes (0 on SQLite, or when the
    server runs elsewhere)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        if name.startswith("postgres"):
            fields = stat[stat.rindex(")") + 2 :].split()
            # utime and stime, and cutime and cstime: the postmaster's exited backends.
            total += sum(int(f) for f in fields[11:15])
    return total / tick


def cpu_seconds() -> float:
    """User + system CPU of this process and its waited-for descendants (worker processes)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    workers = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + workers.ru_utime + workers.ru_stime
