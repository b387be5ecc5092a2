"""``sijill rsu``: the social register from the command line (national rescoring, bulk
registration).

``sijill rsu rescore --model v2`` scores every household with a new model release. It is
planned once as a job of batches (ranges in registration order: ``created_at``, then household
id) in the main store, then run by one scoring process per core and one writer (the command's
own process):

- a **scoring process** reads a batch's households, has the vault decrypt, score (numpy) and
  encrypt them (:meth:`vault.Vault.score_compute`, reads only) and serialises and hashes one
  audit entry per household (model version, model digest, keyed inputs digest, the job id);
- the **writer** stores what they computed, a batch at a time: the scores in the vault (which
  scores again any household whose declaration changed meanwhile), the audit entries, the
  households' model version and the batch's ``done`` mark.

When the three stores are one database (the default, and the usual deployment) a batch is
**one transaction**: all of it commits, or none of it, and a crash anywhere leaves the batch to
be redone whole by the next run. With separate databases the writer claims the batch first
(``claimed_at_ns`` committed before any side effect), then writes the vault, the log and the
main store in turn; a run that finds a batch claimed leaves out the households this job already
audited since (a crash between the append and the ``done`` mark). Either way the audit record
ends with exactly one entry per household and job.

One writer is also what SQLite wants: one write lock per database file, and a connection's page
cache is emptied whenever another connection writes to the file. The writer's one connection
keeps its cache (the subject index's pages, the tree's right edge) from batch to batch.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import multiprocessing as mp
import os
import queue
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    func,
    insert,
    literal,
    select,
    text,
    tuple_,
    update,
)

from audit import AuditUnavailable
from gateway.cli import CliError, database_error, friendly, out, progress_bar, settings_from
from gateway.settings import Settings
from storekit.bulk import among

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
    # Registration order (see _plan); null for batches planned as household-id ranges.
    Column("first_created_at", DateTime(timezone=True)),
    Column("last_created_at", DateTime(timezone=True)),
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
    """The unfinished job for these model files, or a new one planned now.

    Batches follow the registration order (``created_at``, then household id), which is the
    order every table received the households' rows: a batch's rows lie together on disk. By
    household id, which is random, each would be on a page of its own (SQLite, 100,000
    households with random ids: 9,466 households/s by id ranges, 10,918/s in this order)."""
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
        first: Any = None
        last: Any = None
        size = total = 0

        def close_batch() -> None:
            rows.append(
                {
                    "job_id": job_id,
                    "batch_no": len(rows),
                    "first_household": first[1],
                    "last_household": last[1],
                    "first_created_at": first[0],
                    "last_created_at": last[0],
                    "size": size,
                    "status": "pending",
                }
            )

        result = conn.execute(
            select(households.c.created_at, households.c.household_id)
            .order_by(households.c.created_at, households.c.household_id)
            .execution_options(yield_per=10_000)
        )
        for key in result:
            if first is None:
                first = key
            last = key
            size += 1
            total += 1
            if size == batch_size:
                close_batch()
                first, size = None, 0
        if first is not None:
            close_batch()
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
    another writer committed in between, instead of waiting its turn."""
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(text("DELETE FROM rsu_rescore_jobs WHERE 1 = 0"))
        yield conn


@dataclass(frozen=True)
class _Planned:
    batch_no: int
    first_household: str
    last_household: str
    first_created_at: datetime | None = None
    last_created_at: datetime | None = None

    @staticmethod
    def query() -> Any:
        """The batches' rows as :class:`_Planned` takes them (``_Planned(*row)``)."""
        return select(
            batches.c.batch_no,
            batches.c.first_household,
            batches.c.last_household,
            batches.c.first_created_at,
            batches.c.last_created_at,
        )

    def members(self) -> Any:
        """The condition on ``rsu_households`` that selects this batch's households."""
        from identity.rsu import households

        c = households.c
        if self.first_created_at is None or self.last_created_at is None:
            # Planned by an earlier release: a household-id range.
            return c.household_id.between(self.first_household, self.last_household)
        key = tuple_(c.created_at, c.household_id)

        def bound(created: datetime, household: str) -> Any:
            return tuple_(literal(created, c.created_at.type), literal(household, String()))

        return and_(
            # The first column alone as well: every planner then uses the index range.
            c.created_at.between(self.first_created_at, self.last_created_at),
            key >= bound(self.first_created_at, self.first_household),
            key <= bound(self.last_created_at, self.last_household),
        )


@dataclass
class _Computed:
    """What a scoring process hands the writer for one batch."""

    batch_no: int
    scored: Any  # vault.ScoredBatch: sealed, opaque here
    entries: list[Any]  # each event's audit entry, prepared (prepared_score_entries), in order

    def __getstate__(self) -> tuple[Any, ...]:
        # The entries as plain tuples: pickle handles those in C, named tuples by a call each.
        return self.batch_no, self.scored, [tuple(e) for e in self.entries]

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        from audit.storage import StoredEntry

        self.batch_no, self.scored, entries = state
        self.entries = [StoredEntry._make(e) for e in entries]


class _Stores:
    """One process's engines (one per distinct URL), key provider, vault, and, for the writer,
    audit log."""

    def __init__(self, settings: Settings, version: str, models_dir: Path | None) -> None:
        from gateway.db import make_engine
        from gateway.keys import build_key_provider, load_or_create_ed25519
        from vault import DecisionVerifier, Vault

        self.settings = settings
        urls = settings.database_urls
        self.engines: dict[str, Engine] = {}
        for store, url in urls.items():
            self.engines[store] = next(
                (e for s, e in self.engines.items() if urls[s] == url), None
            ) or make_engine(url)
        self.one_database = len(set(urls.values())) == 1
        self.provider = build_key_provider(settings)
        signing = load_or_create_ed25519(settings.data_dir / "keys" / "decision-signing.pem")
        self.vault = Vault(
            self.engines["vault"], self.provider, DecisionVerifier(signing.public_key())
        )
        self.main = self.engines["main"]
        self.models = _models(settings, version, models_dir)

    def close(self) -> None:
        self.provider.close()
        for engine in {id(e): e for e in self.engines.values()}.values():
            engine.dispose()


class _Scorer:
    """Computes batches (reads only): the scoring processes' part."""

    def __init__(self, stores: _Stores, job_id: str) -> None:
        self.stores = stores
        self.job_id = job_id

    def compute(self, batch: _Planned) -> _Computed:
        from gateway.rsu import prepared_score_entries
        from identity.rsu import households

        s = self.stores
        with s.main.connect() as conn:
            subjects = list(
                conn.execute(
                    select(households.c.vault_subject)
                    .where(batch.members())
                    .order_by(households.c.created_at, households.c.household_id)
                ).scalars()
            )
        # A household dissolved since the batch was read is gone from the vault: left out.
        scored = s.vault.score_compute(subjects, s.models, skip_gone=True)
        if scored.gone:
            with s.main.connect() as conn:
                _check_dissolved(conn, scored.gone)
        entries = prepared_score_entries(s.vault, scored.events, "rescore", job=self.job_id)
        return _Computed(batch.batch_no, scored, entries)


def _check_dissolved(conn: Connection, subjects: Sequence[str]) -> None:
    """Refuse to leave out households whose vault record is erased or missing while they are
    still registered: a dissolution deletes the household before it erases its record, so
    that is no dissolution but a register out of step with its vault."""
    from identity.rsu import households

    still = conn.execute(
        select(func.count()).where(among(conn, households.c.vault_subject, list(subjects)))
    ).scalar_one()
    if still:
        raise CliError(
            f"{still} registered households have no vault record (erased or missing); "
            "the rescoring cannot score them"
        )


class _Writer:
    """Stores computed batches (see the module docstring): the command process's part."""

    def __init__(self, stores: _Stores, job_id: str, planned: list[_Planned]) -> None:
        from gateway.keys import build_audit_log

        self.stores = stores
        self.job_id = job_id
        self.planned = {b.batch_no: b for b in planned}
        self.audit = build_audit_log(
            stores.settings, stores.engines["audit"], stores.engines["main"]
        )
        self._conn: Connection | None = None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        # The job's entries signed now, not at the gateway's next checkpoint: the batches
        # commit in their own transactions, which never sign (audit.AuditLog.append_many).
        with contextlib.suppress(AuditUnavailable):
            self.audit.checkpoint_if_grown()
        self.audit.close()

    def _connection(self) -> Connection:
        """The one connection every batch is written on (one database): kept for the whole
        run, so that on SQLite its page cache stays warm."""
        if self._conn is None:
            from storekit import durable_writer

            # The batch's audit entries commit here: with the log's own durability.
            self._conn = durable_writer(self.stores.main.connect())
        return self._conn

    def write(self, computed: _Computed) -> int:
        """Store one batch; returns the households scored (0 if it was done already)."""
        where = (batches.c.job_id == self.job_id, batches.c.batch_no == computed.batch_no)
        if self.stores.one_database:
            conn = self._connection()
            try:
                with conn.begin():
                    row = conn.execute(select(batches).where(*where)).one()
                    if row.status == "done":
                        return 0
                    return self._store(computed, row, conn)
            except BaseException:
                # A failed transaction was rolled back; start the next run on a new connection.
                self._conn = None
                conn.invalidate()
                raise
        with _writing(self.stores.main) as main:
            row = main.execute(select(batches).where(*where)).one()
            if row.status == "done":
                return 0
            if row.claimed_at_ns is None:
                # No entry of this batch is older than its computation (the entries carry its
                # time): the search for those already logged by a run that dies starts there.
                since = min((e.time_ns for e in computed.entries), default=time.time_ns())
                main.execute(
                    update(batches).where(*where).values(status="claimed", claimed_at_ns=since)
                )
        return self._store(computed, row, None)

    def _store(self, computed: _Computed, row: Any, conn: Connection | None) -> int:
        from gateway.rsu import prepared_score_entries

        s = self.stores
        original = {
            before.subject: (before, entry)
            for before, entry in zip(computed.scored.events, computed.entries, strict=True)
        }
        events = s.vault.score_store(computed.scored, s.models, conn=conn)
        if len(events) < len(original):
            # Erased since it was computed: dissolved meanwhile (or refused, if registered).
            kept = {e.subject for e in events}
            with nullcontext(conn) if conn is not None else s.main.connect() as main:
                _check_dissolved(main, [subject for subject in original if subject not in kept])
        # A household whose declaration changed since it was computed was scored again by the
        # store: its entry is made again, from its new event.
        entries = []
        for event in events:
            before, entry = original[event.subject]
            if event is not before:
                (entry,) = prepared_score_entries(s.vault, [event], "rescore", job=self.job_id)
            entries.append(entry)
        if row.claimed_at_ns is not None:
            # A run died inside this batch: its audit entries may already be in the log.
            seen = self._already_audited(row.claimed_at_ns)
            entries = [e for e in entries if e.subject not in seen]
        if conn is None:
            if entries:
                self.audit.append_many(entries)
            with _writing(s.main) as main:
                self._mark_done(main, computed.batch_no, events)
        else:
            self._mark_done(conn, computed.batch_no, events)
            # Last: on PostgreSQL the append locks the log's head until the commit.
            if entries:
                self.audit.append_many(entries, transaction=conn)
        return len(events)

    def _mark_done(self, conn: Connection, batch_no: int, events: list[Any]) -> None:
        from identity.rsu import households

        planned = self.planned[batch_no]
        done = time.time_ns()
        stamp = datetime.fromtimestamp(done / 1e9, UTC)
        by_version: dict[str, list[str]] = {}
        for e in events:
            by_version.setdefault(e.model_version, []).append(e.subject)
        for version, group in by_version.items():
            # The batch's bounds first: an index finds its rows (by vault subject alone,
            # PostgreSQL may scan the whole table). One statement a model version, whatever
            # the count (``among`` binds one parameter): each statement walks the batch's rows.
            conn.execute(
                update(households)
                .where(planned.members(), among(conn, households.c.vault_subject, group))
                .values(model_version=version, scored_at=stamp, updated_at=stamp)
            )
        conn.execute(
            update(batches)
            .where(batches.c.job_id == self.job_id, batches.c.batch_no == batch_no)
            .values(status="done", done_at_ns=done)
        )

    def _already_audited(self, since_ns: int) -> set[str]:
        from audit.storage import EntryFilter
        from gateway.rsu import SCORE_ACTION

        seen: set[str] = set()
        after = -1
        marker = f"job:{self.job_id}"
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


def _scoring_main(
    settings: Settings,
    version: str,
    models_dir: Path | None,
    job_id: str,
    pending: list[_Planned],
    taken: Any,
    results: Any,
    pause_s: float,
) -> None:
    stores = _Stores(settings, version, models_dir)
    scorer = _Scorer(stores, job_id)
    # A batch allocates ~100 short-lived objects per household, all freed by reference
    # counting when it ends; while it runs they are alive, so the collector, triggered by
    # allocation counts, keeps scanning them (and promoting them) to find no garbage. This is
    # a process of its own: freeze what exists (without a full collection first: it would
    # walk every module the command imported, for a few objects), and collect between
    # batches only, when the young generations are nearly empty.
    gc.freeze()
    gc.disable()
    batches_run = 0
    parent = os.getppid()
    try:
        while True:
            # The next batch nobody took: a shared counter, not a queue (a queue's get_nowait
            # can report empty while the parent's feeder thread is still filling it, and a
            # process that believed it would quit at start, leaving one core idle).
            with taken.get_lock():
                position = taken.value
                taken.value = position + 1
            if position >= len(pending):
                return
            computed = scorer.compute(pending[position])
            while True:  # at most a few batches wait for the writer (memory)
                if os.getppid() != parent:
                    return  # the command was killed: its writer is gone
                try:
                    results.put(computed, timeout=1.0)
                    break
                except queue.Full:
                    continue
            del computed
            batches_run += 1
            gc.collect(2 if batches_run % 50 == 0 else 1)
            if pause_s:
                time.sleep(pause_s)
    finally:
        stores.close()


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
            # The batches left to do, and each one's planned size (for the progress).
            todo = conn.execute(
                _Planned.query()
                .add_columns(batches.c.size)
                .where(batches.c.job_id == job_id, batches.c.status != "done")
                .order_by(batches.c.batch_no)
            ).all()
            pending = [_Planned(*r[:-1]) for r in todo]
            sizes = {int(r.batch_no): int(r.size) for r in todo}
            already = conn.execute(
                select(func.coalesce(func.sum(batches.c.size), 0)).where(
                    batches.c.job_id == job_id, batches.c.status == "done"
                )
            ).scalar_one()
    finally:
        main.dispose()
    done = int(already)
    scored = 0

    def wrote(batch_no: int, n: int) -> None:
        # A batch is done as planned, households dissolved meanwhile (left out) included, so
        # that the progress reaches its total; the report counts those scored.
        nonlocal done, scored
        scored += n
        done += sizes[batch_no]
        if on_progress:
            on_progress(done, total)

    if on_progress:
        on_progress(done, total)
    if workers <= 1 or len(pending) <= 1:
        stores = _Stores(settings, version, models_dir)
        writer = _Writer(stores, job_id, pending)
        try:
            scorer = _Scorer(stores, job_id)
            for batch in pending:
                wrote(batch.batch_no, writer.write(scorer.compute(batch)))
                if pause_s:
                    time.sleep(pause_s)
        finally:
            writer.close()
            stores.close()
    else:
        _run_parallel(settings, version, models_dir, job_id, pending, workers, pause_s, wrote)
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


def _run_parallel(
    settings: Settings,
    version: str,
    models_dir: Path | None,
    job_id: str,
    pending: list[_Planned],
    workers: int,
    pause_s: float,
    wrote: Callable[[int, int], None],
) -> None:
    """Scoring processes compute, this process writes (as each batch arrives)."""
    # fork: the scoring processes start with the modules already imported (spawn would
    # re-import everything, seconds per process), including those only they use, imported
    # here once. No engine or key session is open in this process at this point; each process
    # opens its own, and the writer's are opened after the fork.
    import gateway.keys
    import gateway.rsu  # noqa: F401

    ctx: Any = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    taken = ctx.Value("q", 0)  # how many of ``pending`` the scoring processes have taken
    count = min(workers, len(pending))
    results = ctx.Queue(maxsize=2 * count)
    procs = [
        ctx.Process(
            target=_scoring_main,
            daemon=True,
            args=(settings, version, models_dir, job_id, pending, taken, results, pause_s),
        )
        for _ in range(count)
    ]
    for p in procs:
        p.start()
    stores = writer = None
    try:
        stores = _Stores(settings, version, models_dir)
        writer = _Writer(stores, job_id, pending)
        # As in the scoring processes: a batch arrives as some 100,000 objects, freed by
        # reference counting once written; collect between batches only.
        gc.freeze()
        gc.disable()
        received = 0
        while received < len(pending):
            try:
                computed = results.get(timeout=0.2)
            except queue.Empty:
                if any(p.exitcode not in (None, 0) for p in procs) or all(
                    p.exitcode is not None for p in procs
                ):
                    # A scoring process died (SIGKILL, out of memory), or all ended with
                    # batches missing: stop; the rerun resumes the job.
                    raise CliError(
                        "a rescoring process failed; run the same command again to resume"
                    ) from None
                continue
            received += 1
            wrote(computed.batch_no, writer.write(computed))
            del computed
            gc.collect(2 if received % 50 == 0 else 1)
    finally:
        gc.enable()
        gc.unfreeze()
        for p in procs:
            if p.is_alive():
                p.terminate()
        for p in procs:
            p.join()
        if writer is not None:
            writer.close()
        if stores is not None:
            stores.close()


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
            raise database_error(settings, exc) from None
    rate = report.scored_now / report.seconds if report.seconds else 0.0
    # print_json: the report stays one JSON document whatever the width (print would wrap it
    # at the console's 80 columns when stdout is not a terminal).
    out.print_json(
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
        )
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
