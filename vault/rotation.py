"""KEK rotation: add a key-encryption-key version, re-wrap every data key online, retire the
old version once nothing uses it.

Online: readers keep unwrapping old-version keys until the moment of retirement, writers wrap
under the newest version, and each batch updates rows with a compare-and-set on the old KEK
version, so a concurrent erase or a concurrent rotation never loses a write. Resumable: the
rotation is a row in ``vault_rotations``; a rerun continues an unfinished one, and the rows
still to do are exactly those whose ``kek_version`` is older than its target.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Connection, and_, func, insert, or_, select, update

from vault import tables as t
from vault.core import Vault
from vault.errors import IntegrityError
from vault.keys.base import wrapped_version
from vault.records import Records, key_context

__all__ = ["RotationReport", "rotate"]

Progress = Callable[[int, int], None]
# Passes over the table: after the first, only rows written meanwhile by processes whose view of
# the current KEK version was stale (at most REFRESH_S old) remain, so a second pass is rare.
MAX_PASSES = 5


@dataclass
class RotationReport:
    target_version: int
    rewrapped: int = 0
    resumed: bool = False
    retired: list[int] = field(default_factory=list)
    failed: int = 0  # rows that did not unwrap (tampered); they block retirement
    finished: bool = False  # every key re-wrapped and the rotation closed


def _remaining(conn: Connection, target: int) -> int:
    keys = conn.execute(
        select(func.count()).select_from(t.data_keys).where(t.data_keys.c.kek_version < target)
    ).scalar_one()
    secrets = conn.execute(
        select(func.count()).select_from(t.secrets).where(t.secrets.c.kek_version < target)
    ).scalar_one()
    return int(keys) + int(secrets)


def rotate(
    vault: Vault,
    *,
    batch_size: int = 1000,
    progress: Progress | None = None,
    retire: bool = True,
) -> RotationReport:
    """Rotate the KEK (or finish an interrupted rotation) and return what was done."""
    records = vault.records
    keys = records.keys
    engine = records.engine
    with engine.connect() as conn:
        pending = conn.execute(
            select(t.rotations.c.target_version, t.rotations.c.rewrapped)
            .where(t.rotations.c.finished_at_ns.is_(None))
            .order_by(t.rotations.c.target_version.desc())
        ).first()
    if pending is not None and pending.target_version in keys.versions():
        report = RotationReport(pending.target_version, int(pending.rewrapped), resumed=True)
    else:
        target = keys.add_version()
        report = RotationReport(target)
        with engine.connect() as conn:
            total = _remaining(conn, target)
        with records.write() as conn:
            conn.execute(
                insert(t.rotations),
                {
                    "target_version": target,
                    "started_at_ns": time.time_ns(),
                    "finished_at_ns": None,
                    "rewrapped": 0,
                    "total": total,
                },
            )
    target = report.target_version
    with engine.connect() as conn:
        todo = _remaining(conn, target)
    total = report.rewrapped + todo
    if progress:
        progress(report.rewrapped, total)

    for _ in range(MAX_PASSES):
        report.failed = 0
        _rewrap_secrets(records, target, report)
        _rewrap_data_keys(records, target, batch_size, report, progress, total)
        # Final check and retirement under the exclusive rotation lock: a writer whose data
        # key is still under an old version has either committed (and is counted here, so we
        # make another pass) or will read the new floor when it gets the lock after us.
        with records.write(exclusive=True) as conn:
            left = _remaining(conn, target)
            if left > report.failed:
                total = report.rewrapped + left
                continue
            if retire and report.failed == 0:
                in_use = {
                    int(v) for (v,) in conn.execute(select(t.data_keys.c.kek_version).distinct())
                } | {int(v) for (v,) in conn.execute(select(t.secrets.c.kek_version).distinct())}
                for version in keys.versions():
                    if version < target and version not in in_use:
                        keys.retire(version)
                        report.retired.append(version)
            if report.failed == 0:
                conn.execute(
                    update(t.rotations)
                    .where(t.rotations.c.target_version == target)
                    .values(finished_at_ns=time.time_ns())
                )
                report.finished = True
            break
    return report


def _rewrap_data_keys(
    records: Records,
    target: int,
    batch_size: int,
    report: RotationReport,
    progress: Progress | None,
    total: int,
) -> None:
    keys = records.keys
    cursor: tuple[str, int] = ("", -1)
    while True:
        with records.engine.connect() as conn:
            batch = conn.execute(
                select(
                    t.data_keys.c.subject,
                    t.data_keys.c.version,
                    t.data_keys.c.kek_version,
                    t.data_keys.c.wrapped,
                )
                .where(
                    t.data_keys.c.kek_version < target,
                    or_(
                        t.data_keys.c.subject > cursor[0],
                        and_(t.data_keys.c.subject == cursor[0], t.data_keys.c.version > cursor[1]),
                    ),
                )
                .order_by(t.data_keys.c.subject, t.data_keys.c.version)
                .limit(batch_size)
            ).all()
        if not batch:
            return
        cursor = (batch[-1].subject, batch[-1].version)
        updates = []
        for row in batch:
            context = key_context(row.subject, row.version)
            try:
                dek = keys.unwrap(bytes(row.wrapped), context)
            except IntegrityError:
                report.failed += 1  # tampered: left as it is, and it blocks retirement
                continue
            updates.append(
                (
                    row.subject,
                    row.version,
                    row.kek_version,
                    records.wrap_at_least(target, dek, context),
                )
            )
        done = 0
        with records.write() as conn:
            for subject, version, old_kek, new in updates:
                # Compare-and-set on the old version: an erase in between deletes the row and
                # this updates nothing.
                result = conn.execute(
                    update(t.data_keys)
                    .where(
                        t.data_keys.c.subject == subject,
                        t.data_keys.c.version == version,
                        t.data_keys.c.kek_version == old_kek,
                    )
                    .values(wrapped=new, kek_version=wrapped_version(new))
                )
                done += result.rowcount
            conn.execute(
                update(t.rotations)
                .where(t.rotations.c.target_version == target)
                .values(rewrapped=t.rotations.c.rewrapped + done)
            )
        report.rewrapped += done
        if progress:
            progress(report.rewrapped, max(total, report.rewrapped))


def _rewrap_secrets(records: Records, target: int, report: RotationReport) -> None:
    keys = records.keys
    with records.engine.connect() as conn:
        rows = conn.execute(
            select(t.secrets.c.name, t.secrets.c.kek_version, t.secrets.c.wrapped).where(
                t.secrets.c.kek_version < target
            )
        ).all()
    for row in rows:
        context = f"secret\x00{row.name}".encode()
        try:
            new = records.wrap_at_least(target, keys.unwrap(bytes(row.wrapped), context), context)
        except IntegrityError:
            report.failed += 1
            continue
        with records.write() as conn:
            conn.execute(
                update(t.secrets)
                .where(t.secrets.c.name == row.name, t.secrets.c.kek_version == row.kek_version)
                .values(wrapped=new, kek_version=wrapped_version(new))
            )
