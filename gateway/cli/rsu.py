"""``sijill rsu``: the social register from the command line (national rescoring, bulk
registration).

``sijill rsu rescore --model v2`` scores every household with a new model release. It is
planned once as a job of batches (household-id ranges) in the main store, then run by one
worker process per core, each with its own engines, vault and audit log. For each batch a
worker:

1. claims it (``claimed_at_ns`` committed before any side effect);
2. scores its households in the vault (decrypt, numpy, encrypt; one vault transaction; scoring
   the same inputs with the same model again writes the same values, so redoing is harmless);
3. appends one audit entry per household (model version, model digest, keyed inputs digest,
   the job id), leaving out households this job already audited since the batch was first
   claimed (a crash between the append and step 4);
4. commits the households' model version together with the batch's ``done`` mark.

A crash anywhere leaves the batch claimed but not done; the next run redoes it, and step 3 keeps
the audit record at exactly one entry per household and job.

On SQLite (one write lock per database file) the workers also take turns on a lock of their own
around each write: decrypting, scoring and serialising the audit entries overlap the other
worker's writes, and a worker waiting to write is woken when the lock is free instead of polling
in SQLite's busy handler.
"""

from __future__ import annotations

import gc
import hashlib
import json
import multiprocessing as mp
import os
import queue
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    func,
    insert,
    select,
    text,
    update,
)

from gateway.cli import CliError, friendly, out, progress_bar, settings_from
from gateway.settings import Settings
from storekit.bulk import among, chunks

NAME = "rsu"
app = typer.Typer(
    help="Social register (RSU): national rescoring, bulk registration.", no_args_is_help=True
)

_meta = MetaData()
jobs = Table(
    "rsu_rescore_jobs", _meta,
    Column("job_id", String(40), primary_key=True),
    Column("model", String(64), nullable=False),
    Column("batch_size", Integer, nullable=False),
    Column("total", BigInteger, nullable=False),
    Column("started_at_ns", BigInteger, nullable=False),
    Column("finished_at_ns", BigInteger),
)  # fmt: skip
batches = Table(
    "rsu_rescore_batches", _meta,
    Column("job_id", String(40), primary_key=True),
    Column("batch_no", Integer, primary_key=True),
    Column("first_household", String(32), nullable=False),
    Column("last_household", String(32), nullable=False),
    Column("size", Integer, nullable=False),
    Column("status", String(8), nullable=False),
    Column("claimed_at_ns", BigInteger),
    Column("done_at_ns", BigInteger),
)  # fmt: skip


@dataclass
class RescoreReport:
    job_id: str
    model: str
    households: int
    scored_now: int
    seconds: float
    resumed: bool


def _models(settings: Settings, version: str, models_dir: Path | None) -> Any:
    from vault import InvalidRecord, ModelSet

    try:
        return ModelSet.load(version, models_dir or settings.scoring_models_dir)
    except (InvalidRecord, OSError) as exc:
        raise CliError(str(exc)) from None


def _job_prefix(models: Any) -> str:
    # Ties a job to the exact model files: a resumed run with edited files is another job.
    return hashlib.sha256((models.urban.digest + models.rural.digest).encode()).hexdigest()[:16]


def _plan(engine: Engine, models: Any, version: str, batch_size: int) -> tuple[str, bool]:
    """The unfinished job for these model files, or a new one planned now."""
    from identity.rsu import households

    prefix = _job_prefix(models)
    with _writing(engine) as conn:
        open_jobs = conn.execute(
            select(jobs.c.job_id, jobs.c.model).where(jobs.c.finished_at_ns.is_(None))
        ).all()
        for job_id, _model in open_jobs:
            if job_id.startswith(prefix):
                return job_id, True
        if open_jobs:
            raise CliError(
                f"an unfinished rescoring with model {open_jobs[0].model} exists; "
                "run it to completion first"
            )
        job_id = f"{prefix}-{secrets.token_hex(8)}"
        rows: list[dict[str, Any]] = []
        first: str | None = None
        last: str | None = None
        size = total = 0
        result = conn.execute(
            select(households.c.household_id)
            .order_by(households.c.household_id)
            .execution_options(yield_per=10_000)
        )
        for (household_id,) in result:
            if first is None:
                first = household_id
            last = household_id
            size += 1
            total += 1
            if size == batch_size:
                rows.append(
                    {
                        "job_id": job_id,
                        "batch_no": len(rows),
                        "first_household": first,
                        "last_household": last,
                        "size": size,
                        "status": "pending",
                    }
                )
                first, size = None, 0
        if first is not None and last is not None:
            rows.append(
                {
                    "job_id": job_id,
                    "batch_no": len(rows),
                    "first_household": first,
                    "last_household": last,
                    "size": size,
                    "status": "pending",
                }
            )
        conn.execute(
            insert(jobs),
            {
                "job_id": job_id,
                "model": version,
                "batch_size": batch_size,
                "total": total,
                "started_at_ns": time.time_ns(),
                "finished_at_ns": None,
            },
        )
        for start in range(0, len(rows), 5000):
            conn.execute(insert(batches), rows[start : start + 5000])
    return job_id, False


@contextmanager
def _writing(engine: Engine) -> Iterator[Connection]:
    """A write transaction. On SQLite, take the write lock before the first read: a deferred
    transaction that reads and then writes fails at once with "database is locked" when
    another worker committed in between, instead of waiting its turn."""
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(text("DELETE FROM rsu_rescore_jobs WHERE 1 = 0"))
        yield conn


class _Worker:
    """One process's engines, vault and audit log."""

    def __init__(
        self,
        settings: Settings,
        version: str,
        models_dir: Path | None,
        write_lock: AbstractContextManager[Any] | None = None,
    ) -> None:
        from gateway.db import make_engine
        from gateway.keys import load_or_create_ed25519
        from gateway.services import build_audit_log, build_key_provider
        from vault import DecisionVerifier, Vault

        urls = settings.database_urls
        self.engines: dict[str, Engine] = {}
        for store, url in urls.items():
            self.engines[store] = next(
                (e for s, e in self.engines.items() if urls[s] == url), None
            ) or make_engine(url)
        self.provider = build_key_provider(settings)
        signing = load_or_create_ed25519(settings.data_dir / "keys" / "decision-signing.pem")
        self.vault = Vault(
            self.engines["vault"], self.provider, DecisionVerifier(signing.public_key())
        )
        self.audit = build_audit_log(settings, self.engines["audit"])
        self.main = self.engines["main"]
        self.models = _models(settings, version, models_dir)
        # SQLite has one write lock per file, and a writer waiting for it sleeps and polls
        # (busy handler): the workers take turns on this lock instead, which wakes the next
        # one at once. PostgreSQL locks rows and wakes waiters itself.
        sqlite = any(e.dialect.name == "sqlite" for e in self.engines.values())
        self.write_lock = write_lock if sqlite and write_lock is not None else nullcontext()

    def close(self) -> None:
        self.provider.close()
        for engine in {id(e): e for e in self.engines.values()}.values():
            engine.dispose()

    def _already_audited(self, job_id: str, since_ns: int) -> set[str]:
        from audit.storage import EntryFilter
        from gateway.rsu import SCORE_ACTION

        seen: set[str] = set()
        after = -1
        marker = f"job:{job_id}"
        while True:
            page = self.audit.entries(
                EntryFilter(action=SCORE_ACTION, since_ns=since_ns), after=after, limit=1000
            )
            for logged in page:
                if marker in logged.entry.reasons and logged.entry.subject:
                    seen.add(logged.entry.subject)
            if len(page) < 1000:
                return seen
            after = page[-1].index

    def run_batch(self, job_id: str, batch_no: int) -> int:
        """Score one batch (see the module docstring); returns households scored."""
        from gateway.rsu import score_entries
        from identity.rsu import households

        now = time.time_ns()
        with self.write_lock, _writing(self.main) as conn:
            row = conn.execute(
                select(batches).where(batches.c.job_id == job_id, batches.c.batch_no == batch_no)
            ).one()
            if row.status == "done":
                return 0
            claimed_at = row.claimed_at_ns
            if claimed_at is None:
                conn.execute(
                    update(batches)
                    .where(batches.c.job_id == job_id, batches.c.batch_no == batch_no)
                    .values(status="claimed", claimed_at_ns=now)
                )
        with self.main.connect() as conn:  # a read: outside the write lock
            members = conn.execute(
                select(households.c.household_id, households.c.vault_subject)
                .where(households.c.household_id.between(row.first_household, row.last_household))
                .order_by(households.c.household_id)
            ).all()
        if not members:
            with self.write_lock, _writing(self.main) as conn:
                conn.execute(
                    update(batches)
                    .where(batches.c.job_id == job_id, batches.c.batch_no == batch_no)
                    .values(status="done", done_at_ns=time.time_ns())
                )
            return 0
        subjects = [m.vault_subject for m in members]
        events = scored = self.vault.score_many(subjects, self.models, write_guard=self.write_lock)
        if claimed_at is not None:
            # A run died inside this batch: its audit entries may already be in the log.
            seen = self._already_audited(job_id, claimed_at)
            events = [
                e for e in events if (e.head_tag or self.vault.subject_tag(e.subject)) not in seen
            ]
        entries = score_entries(self.vault, events, "rescore", job=job_id) if events else []
        # Every household of the batch was scored with this release, audited now or before.
        by_version: dict[str, list[str]] = {}
        for e in scored:
            by_version.setdefault(e.model_version, []).append(e.subject)
        if entries:
            self.audit.append_many(entries, write_guard=self.write_lock)
        done = time.time_ns()
        stamp = datetime.fromtimestamp(done / 1e9, UTC)
        with self.write_lock, _writing(self.main) as conn:
            for version, group in by_version.items():
                for chunk in chunks(group):
                    # The batch's household-id range first: the primary key finds its rows
                    # (by vault subject alone, PostgreSQL may scan the whole table).
                    conn.execute(
                        update(households)
                        .where(
                            households.c.household_id.between(
                                row.first_household, row.last_household
                            ),
                            among(conn, households.c.vault_subject, chunk),
                        )
                        .values(model_version=version, scored_at=stamp, updated_at=stamp)
                    )
            conn.execute(
                update(batches)
                .where(batches.c.job_id == job_id, batches.c.batch_no == batch_no)
                .values(status="done", done_at_ns=done)
            )
        return len(scored)


def _worker_main(
    settings: Settings,
    version: str,
    models_dir: Path | None,
    job_id: str,
    pending: list[int],
    taken: Any,
    progress: Any,
    pause_s: float,
    write_lock: Any,
) -> None:
    worker = _Worker(settings, version, models_dir, write_lock)
    # A batch allocates ~100 short-lived objects per household, all freed by reference
    # counting when it ends; while it runs they are alive, so the collector, triggered by
    # allocation counts, keeps scanning them (and promoting them) to find no garbage. This is
    # a worker process of its own: freeze what exists (without a full collection first: it
    # would walk every module the command imported, for a few objects), and collect between
    # batches only, when the young generations are nearly empty.
    gc.freeze()
    gc.disable()
    batches_run = 0
    parent = os.getppid()
    try:
        while True:
            if os.getppid() != parent:
                # The command was killed: stop, so that the run that resumes the job is the
                # only one working on it (an orphan finishing batches beside it could audit a
                # household twice).
                return
            # The next batch nobody took: a shared counter, not a queue (a queue's get_nowait
            # can report empty while the parent's feeder thread is still filling it, and a
            # worker that believed it would quit at start, leaving one core idle).
            with taken.get_lock():
                position = taken.value
                taken.value = position + 1
            if position >= len(pending):
                return
            batch_no = pending[position]
            progress.put(worker.run_batch(job_id, batch_no))
            batches_run += 1
            gc.collect(2 if batches_run % 50 == 0 else 1)
            if pause_s:
                time.sleep(pause_s)
    finally:
        worker.close()


def run_rescore(
    settings: Settings,
    version: str,
    *,
    models_dir: Path | None = None,
    batch_size: int = 5000,
    workers: int = 2,
    pause_s: float = 0.0,
    on_progress: Callable[[int, int], None] | None = None,
) -> RescoreReport:
    """Plan (or resume) and run a national rescoring; ``on_progress(done, total)``."""
    from gateway.db import make_engine

    models = _models(settings, version, models_dir)
    started = time.monotonic()
    assert settings.database_url
    main = make_engine(settings.database_url)
    try:
        job_id, resumed = _plan(main, models, version, batch_size)
        with main.connect() as conn:
            total = conn.execute(select(jobs.c.total).where(jobs.c.job_id == job_id)).scalar_one()
            pending = list(
                conn.execute(
                    select(batches.c.batch_no)
                    .where(batches.c.job_id == job_id, batches.c.status != "done")
                    .order_by(batches.c.batch_no)
                ).scalars()
            )
            already = conn.execute(
                select(func.coalesce(func.sum(batches.c.size), 0)).where(
                    batches.c.job_id == job_id, batches.c.status == "done"
                )
            ).scalar_one()
    finally:
        main.dispose()
    done = int(already)
    scored = 0
    if on_progress:
        on_progress(done, total)
    if workers <= 1 or len(pending) <= 1:
        worker = _Worker(settings, version, models_dir)
        try:
            for batch_no in pending:
                n = worker.run_batch(job_id, batch_no)
                scored += n
                done += n
                if on_progress:
                    on_progress(done, total)
                if pause_s:
                    time.sleep(pause_s)
        finally:
            worker.close()
    else:
        # fork: the workers start with the modules already imported (spawn would re-import
        # everything, seconds per worker), including those only a worker uses, imported
        # here once instead of in each worker. No engine or key session is open in this
        # process at this point; each worker opens its own.
        import gateway.rsu
        import gateway.services  # noqa: F401

        ctx: Any = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        taken = ctx.Value("q", 0)  # how many of ``pending`` the workers have taken
        progress = ctx.Queue()
        write_lock = ctx.Lock()
        procs = [
            ctx.Process(
                target=_worker_main,
                daemon=True,
                args=(
                    settings,
                    version,
                    models_dir,
                    job_id,
                    pending,
                    taken,
                    progress,
                    pause_s,
                    write_lock,
                ),
            )
            for _ in range(min(workers, len(pending)))
        ]
        for p in procs:
            p.start()
        while any(p.is_alive() for p in procs) or not progress.empty():
            if any(p.exitcode not in (None, 0) for p in procs):
                # A worker died, perhaps holding the write lock (SIGKILL, out of memory): stop
                # the others rather than leave them waiting for it; the rerun resumes the job.
                for p in procs:
                    p.terminate()
                break
            try:
                n = progress.get(timeout=0.2)
            except queue.Empty:
                continue
            scored += n
            done += n
            if on_progress:
                on_progress(done, total)
        for p in procs:
            p.join()
        if any(p.exitcode != 0 for p in procs):
            raise CliError("a rescoring worker failed; run the same command again to resume")
    main = make_engine(settings.database_url)
    try:
        with _writing(main) as conn:
            left = conn.execute(
                select(func.count())
                .select_from(batches)
                .where(batches.c.job_id == job_id, batches.c.status != "done")
            ).scalar_one()
            if left:
                raise CliError(f"{left} batches are not done; run the same command again")
            conn.execute(
                update(jobs).where(jobs.c.job_id == job_id).values(finished_at_ns=time.time_ns())
            )
    finally:
        main.dispose()
    return RescoreReport(job_id, version, int(total), scored, time.monotonic() - started, resumed)


@app.command("rescore")
@friendly
def rescore(
    model: str = typer.Option(
        ..., "--model", help="Model release, e.g. v2 (urban-v2.json + rural-v2.json)"
    ),
    models_dir: Path | None = typer.Option(
        None,
        help="Directory of the model files (default: "
        "SIJILL_SCORING_MODELS_DIR or the shipped models)",
    ),
    batch_size: int = typer.Option(
        5000, min=1, max=20_000, help="Households per batch (a crash redoes at most one a worker)"
    ),
    workers: int = typer.Option(min(2, os.cpu_count() or 1), min=1, help="Worker processes"),
    pause: float = typer.Option(
        0.0,
        min=0,
        help="Seconds to pause between batches (leaves database headroom for live traffic)",
    ),
    data_dir: str | None = typer.Option(None, help="Data directory"),
) -> None:
    """Rescore every household with a model release; resumable (run it again after a crash)."""
    from sqlalchemy.exc import OperationalError

    settings = settings_from(data_dir)
    _models(settings, model, models_dir)  # a missing or invalid model file: fail before starting
    with progress_bar("[bold]rescoring[/] {task.description}") as bar:
        task = bar.add_task(model, total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        try:
            report = run_rescore(
                settings,
                model,
                models_dir=models_dir,
                batch_size=batch_size,
                workers=workers,
                pause_s=pause,
                on_progress=progress,
            )
        except OperationalError as exc:
            raise CliError(f"cannot reach the database: {type(exc.orig).__name__}") from None
    rate = report.scored_now / report.seconds if report.seconds else 0.0
    out.print(
        json.dumps(
            {
                "job": report.job_id,
                "model": report.model,
                "households": report.households,
                "scored_now": report.scored_now,
                "resumed": report.resumed,
                "seconds": round(report.seconds, 2),
                "households_per_s": round(rate, 1),
            }
        ),
        highlight=False,
    )


def _read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


@app.command("register")
@friendly
def register(
    file: Path = typer.Argument(
        ...,
        exists=True,
        dir_okay=False,
        help='JSON Lines: {"members": [...], "declaration": {...}}',
    ),
    data_dir: str | None = typer.Option(None, help="Data directory"),
) -> None:
    """Register households from a file (one per line); refused lines are reported by number."""
    from pydantic import ValidationError

    from gateway.services import build_services
    from identity import HouseholdError
    from identity.rsu import problems_of

    settings = settings_from(data_dir)
    services = build_services(settings)
    registered = refused = 0
    try:
        for number, record in enumerate(_read_jsonl(file), start=1):
            try:
                services.households.register_household(record["members"], record["declaration"])
                registered += 1
            except (HouseholdError, ValidationError, ValueError, KeyError, TypeError) as exc:
                refused += 1
                if isinstance(exc, HouseholdError):
                    reason = str(exc)
                elif isinstance(exc, ValueError):  # pydantic's ValidationError included
                    reason = "; ".join(f"{f}: {r}" for f, r in problems_of(exc))
                else:
                    reason = "a line needs members and declaration"
                out.print(f"line {number}: refused ({reason})", highlight=False)
    finally:
        services.close()
    out.print(f"registered {registered} households, refused {refused}", highlight=False)
