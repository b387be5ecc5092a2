"""National rescoring: a new model reaches every household, each audited exactly once, even
when the run is killed with SIGKILL and resumed."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from audit.storage import EntryFilter
from gateway.keys import load_or_create_ed25519
from gateway.rescore import RescoreError, run_rescore
from gateway.rescore.tables import batches
from gateway.services import Services, build_services
from gateway.settings import Settings
from identity import PersonIn
from identity.synth import generate
from policies import DecisionIssuer, PolicyResult
from rsu.synthetic import group_households, household_request
from rsu.tables import households
from vault import ModelSet

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    settings.prepare_data_dir()
    services = build_services(settings)
    yield services
    services.close()


def populate(services: Services, persons: int, count: int) -> int:
    records = list(generate(persons, count, seed=3))
    issued = services.register.enrol_many(
        [
            PersonIn.model_validate({k: v for k, v in r.items() if k not in ("household", "role")})
            for r in records
        ]
    )
    rng = random.Random(3)
    n = 0
    for group in group_households(records, issued):
        services.households.register_household(*household_request(rng, group))
        n += 1
    return n


def write_v2(directory: Path) -> dict[str, str]:
    """A new release: every intercept up by 0.05, the car coefficient doubled."""
    directory.mkdir(exist_ok=True)
    digests = {}
    for area in ("urban", "rural"):
        doc = json.loads((ROOT / f"vault/scoring_models/{area}-v1.json").read_text())
        doc["version"] = f"{area}-v2"
        doc["intercept"] += 0.05
        for variable in doc["variables"]:
            if variable["name"] == "car":
                variable["coefficient"] *= 2
        raw = json.dumps(doc, ensure_ascii=False).encode()
        (directory / f"{area}-v2.json").write_bytes(raw)
        digests[f"{area}-v2"] = hashlib.sha256(raw).hexdigest()
    return digests


def check_every_household_once(
    services: Services, settings: Settings, models_dir: Path, digests: dict[str, str], expected: int
) -> None:
    with services.engines["main"].connect() as conn:
        rows = conn.execute(select(households.c.vault_subject, households.c.model_version)).all()
        (job_id,) = conn.execute(select(batches.c.job_id).distinct()).scalars()
    assert len(rows) == expected
    assert {version for _, version in rows} <= {"urban-v2", "rural-v2"}
    issuer = DecisionIssuer(
        load_or_create_ed25519(settings.data_dir / "keys" / "decision-signing.pem")
    )
    result = PolicyResult(
        allow=True,
        fields=(),
        obligations={},
        reasons=[],
        legal_basis=None,
        decision_id="t",
        policy_revision="t",
    )
    tags = []
    # The model files the rescoring used, so the explanation can recompute with them.
    models = ModelSet.load("v2", models_dir)
    for subject, version in rows:
        decision = issuer.seal(
            result, subject=subject, action="read_score", purpose="t", audit_index=0, requested=()
        )
        explanation = services.vault.explain(subject, decision, models=models)
        assert explanation.model_version == version
        assert explanation.model_digest == digests[version]
    # One audit entry per household for this job, naming the new model; no more, no less.
    entries = [
        e.entry
        for e in services.audit.entries(EntryFilter(action="rsu_score"), after=-1, limit=10_000)
    ]
    of_job = [e for e in entries if f"job:{job_id}" in e.reasons]
    for entry in of_job:
        tags.append(entry.subject)
        assert any(r in ("model:urban-v2", "model:rural-v2") for r in entry.reasons)
        assert any(
            r.startswith("model_digest:") and r.split(":", 1)[1] in digests.values()
            for r in entry.reasons
        )
    assert len(of_job) == expected
    assert max(Counter(tags).values()) == 1


def test_a_model_change_rescored_reaches_and_audits_every_household(
    services: Services, settings: Settings, tmp_path: Path
) -> None:
    count = populate(services, 60, 14)
    digests = write_v2(tmp_path / "models")
    seen = []
    report = run_rescore(
        settings,
        "v2",
        models_dir=tmp_path / "models",
        batch_size=3,
        workers=1,
        on_progress=lambda done, total: seen.append((done, total)),
    )
    assert report.households == count and report.scored_now == count and not report.resumed
    assert seen[-1] == (count, count)
    check_every_household_once(services, settings, tmp_path / "models", digests, count)


@pytest.mark.slow
def test_sigkill_in_the_middle_then_resume_scores_each_household_exactly_once(
    services: Services, settings: Settings, tmp_path: Path
) -> None:
    count = populate(services, 160, 36)
    digests = write_v2(tmp_path / "models")
    env = {
        **os.environ,
        "SIJILL_DATA_DIR": str(settings.data_dir),
        "SIJILL_DATABASE_URL": settings.database_url,
    }
    command = [
        str(Path(sys.executable).with_name("sijill")),
        "rsu",
        "rescore",
        "--model",
        "v2",
        "--models-dir",
        str(tmp_path / "models"),
        "--batch-size",
        "2",
        "--workers",
        "2",
    ]
    run = subprocess.Popen(
        [*command, "--pause", "0.15"],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    total_batches = (count + 1) // 2
    done = 0
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and run.poll() is None:
            with services.engines["main"].connect() as conn:
                done = conn.execute(
                    select(func.count()).select_from(batches).where(batches.c.status == "done")
                ).scalar_one()
            if done >= 3:
                break
            time.sleep(0.02)
    finally:
        os.killpg(run.pid, signal.SIGKILL)  # the command and its workers, mid-flight
        run.wait()
    assert run.returncode == -signal.SIGKILL, run.stderr.read() if run.stderr else ""
    with services.engines["main"].connect() as conn:
        done = conn.execute(
            select(func.count()).select_from(batches).where(batches.c.status == "done")
        ).scalar_one()
    assert 3 <= done < total_batches

    resumed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    # The report on stdout is one JSON document, whatever the console's width.
    report = json.loads(resumed.stdout)
    assert report["resumed"] is True and 0 < report["scored_now"] < count
    check_every_household_once(services, settings, tmp_path / "models", digests, count)


def _job_entries(services: Services) -> list[object]:
    with services.engines["main"].connect() as conn:
        (job_id,) = conn.execute(select(batches.c.job_id).distinct()).scalars()
    entries = services.audit.entries(EntryFilter(action="rsu_score"), after=-1, limit=10_000)
    return [e for e in entries if f"job:{job_id}" in e.entry.reasons]


def _die_after_second_append(monkeypatch: pytest.MonkeyPatch) -> None:
    from audit import AuditLog

    real_append = AuditLog.append_many
    calls = []

    def append_then_die(self: AuditLog, entries: object, **options: object) -> object:
        receipts = real_append(self, entries, **options)  # type: ignore[arg-type]
        calls.append(len(receipts))
        if len(calls) == 2:
            # The process dies after the log took the batch, before the batch is marked done.
            raise KeyboardInterrupt
        return receipts

    monkeypatch.setattr(AuditLog, "append_many", append_then_die)


def test_a_batch_is_one_transaction_a_crash_inside_it_leaves_no_trace_of_it(
    services: Services, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    count = populate(services, 60, 14)
    digests = write_v2(tmp_path / "models")
    _die_after_second_append(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        run_rescore(settings, "v2", models_dir=tmp_path / "models", batch_size=3, workers=1)
    # The first batch committed whole; of the second, not its scores, not its entries.
    with services.engines["main"].connect() as conn:
        rescored = conn.execute(
            select(func.count())
            .select_from(households)
            .where(households.c.model_version.like("%-v2"))
        ).scalar_one()
        statuses = Counter(conn.execute(select(batches.c.status)).scalars())
    assert rescored == 3 and statuses["done"] == 1 and "claimed" not in statuses
    assert len(_job_entries(services)) == 3
    monkeypatch.undo()
    report = run_rescore(settings, "v2", models_dir=tmp_path / "models", batch_size=3, workers=1)
    assert report.resumed and report.scored_now == count - 3
    check_every_household_once(services, settings, tmp_path / "models", digests, count)


@pytest.fixture
def three_databases(tmp_path: Path, settings: Settings) -> Settings:
    """The main store where the test's database is; the vault and the log in SQLite files of
    their own: no transaction spans the three."""
    from gateway import db
    from gateway.settings import load_settings

    separate = load_settings(
        data_dir=settings.data_dir,
        database_url=settings.database_url,
        vault_database_url=f"sqlite:///{tmp_path / 'vault.db'}",
        audit_database_url=f"sqlite:///{tmp_path / 'audit.db'}",
    )
    db.upgrade(separate.database_urls)
    return separate


def test_with_three_databases_a_crash_after_the_audit_append_does_not_audit_twice_on_resume(
    three_databases: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = three_databases
    settings.prepare_data_dir()
    services = build_services(settings)
    try:
        count = populate(services, 60, 14)
        digests = write_v2(tmp_path / "models")
        _die_after_second_append(monkeypatch)
        with pytest.raises(KeyboardInterrupt):
            run_rescore(settings, "v2", models_dir=tmp_path / "models", batch_size=3, workers=1)
        # The second batch is in the log, claimed and not done: the resume must not log it again.
        assert len(_job_entries(services)) == 6
        with services.engines["main"].connect() as conn:
            statuses = Counter(conn.execute(select(batches.c.status)).scalars())
        assert statuses["done"] == 1 and statuses["claimed"] == 1
        monkeypatch.undo()
        report = run_rescore(
            settings, "v2", models_dir=tmp_path / "models", batch_size=3, workers=1
        )
        assert report.resumed
        check_every_household_once(services, settings, tmp_path / "models", digests, count)
    finally:
        services.close()


def test_a_household_amended_between_scoring_and_writing_is_scored_and_audited_anew(
    services: Services, settings: Settings, tmp_path: Path
) -> None:
    with _one_computed_batch(services, settings, tmp_path) as (stores, job_id, planned, computed):
        models = ModelSet.load("v2", tmp_path / "models")
        with services.engines["main"].connect() as conn:
            subject = conn.execute(select(households.c.vault_subject).limit(1)).scalar_one()
        before = {e.subject: e for e in computed.scored.events}[subject]
        services.vault.amend_household(
            subject, add=[{"idcs": "1999999999", "relation": "child", "sex": "F", "age": 0,
                           "education": "none", "occupation": "inactive",
                           "disability": False}],
        )  # fmt: skip
        assert _write(stores, job_id, planned, computed) == len(computed.scored)
        # The stored score and its audit entry are of the amended declaration.
        again = services.vault.score_compute([subject], models).events[0]
        assert again.inputs_digest != before.inputs_digest
        logged = [
            e.entry for e in _job_entries(services)
            if f"inputs_digest:{again.inputs_digest}" in e.entry.reasons
        ]  # fmt: skip
        assert len(logged) == 1
        assert not [
            e for e in _job_entries(services)
            if f"inputs_digest:{before.inputs_digest}" in e.entry.reasons
        ]  # fmt: skip
        assert len(_job_entries(services)) == len(computed.scored)


def test_batches_follow_the_registration_order_and_cover_each_household_once(
    services: Services, settings: Settings, tmp_path: Path
) -> None:
    from sqlalchemy import update

    from gateway.rescore.planner import PlannedBatch, plan

    count = populate(services, 60, 14)
    write_v2(tmp_path / "models")
    main = services.engines["main"]
    with main.begin() as conn:
        # Two households registered in the same instant: the household id breaks the tie.
        first_two = (
            conn.execute(
                select(households.c.household_id).order_by(households.c.created_at).limit(2)
            )
            .scalars()
            .all()
        )
        stamp = conn.execute(
            select(households.c.created_at).where(households.c.household_id == first_two[0])
        ).scalar_one()
        conn.execute(
            update(households)
            .where(households.c.household_id.in_(first_two))
            .values(created_at=stamp)
        )
    plan(main, ModelSet.load("v2", tmp_path / "models"), "v2", 3)
    with main.connect() as conn:
        rows = conn.execute(PlannedBatch.query().order_by(batches.c.batch_no))
        planned = [PlannedBatch(*row) for row in rows]
        registered = (
            conn.execute(
                select(households.c.household_id).order_by(
                    households.c.created_at, households.c.household_id
                )
            )
            .scalars()
            .all()
        )
        taken = [
            conn.execute(
                select(households.c.household_id)
                .where(batch.members())
                .order_by(households.c.created_at, households.c.household_id)
            )
            .scalars()
            .all()
            for batch in planned
        ]
    assert [len(t) for t in taken] == [3] * (count // 3) + ([count % 3] if count % 3 else [])
    assert [h for t in taken for h in t] == registered


@contextmanager
def _one_computed_batch(
    services: Services, settings: Settings, tmp_path: Path
) -> Iterator[tuple[Any, str, Any, Any]]:
    """A populated register, a v2 job of one batch, and that batch computed as a scoring
    process computes it (what reaches the writer went through pickle); the stores close after."""
    from gateway.rescore.planner import PlannedBatch, plan
    from gateway.rescore.scorer import Scorer, Stores
    from gateway.rescore.tables import jobs

    populate(services, 60, 14)
    write_v2(tmp_path / "models")
    stores = Stores(settings, "v2", tmp_path / "models")
    try:
        job_id, _ = plan(stores.main, ModelSet.load("v2", tmp_path / "models"), "v2", 1000)
        with stores.main.connect() as conn:
            planned = PlannedBatch(*conn.execute(PlannedBatch.query()).one())
            assert conn.execute(select(jobs.c.total)).scalar_one() >= 14
        computed = pickle.loads(pickle.dumps(Scorer(stores, job_id).compute(planned)))
        yield stores, job_id, planned, computed
    finally:
        stores.close()


def _write(stores: Any, job_id: str, planned: Any, computed: Any) -> int:
    from gateway.rescore.writer import Writer

    writer = Writer(stores, job_id)
    try:
        return writer.write(computed)
    finally:
        writer.close()


def _a_household(services: Services) -> str:
    with services.engines["main"].connect() as conn:
        return str(conn.execute(select(households.c.household_id).limit(1)).scalar_one())


def test_a_household_dissolved_as_its_batch_is_read_is_left_out_and_the_job_finishes(
    services: Services, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vault import Vault

    count = populate(services, 60, 14)
    digests = write_v2(tmp_path / "models")
    household = services.households.get(_a_household(services))
    compute = Vault.score_compute

    def dissolve_first(vault: Vault, subjects: list[str], *args: object, **kw: bool) -> object:
        # Between the batch's read of its households and the vault's read of their records:
        # what the last member's departure does.
        if household.vault_subject in subjects:
            services.households._dissolve(household)
        return compute(vault, subjects, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(Vault, "score_compute", dissolve_first)
    seen: list[tuple[int, int]] = []
    report = run_rescore(
        settings, "v2", models_dir=tmp_path / "models", batch_size=3, workers=1,
        on_progress=lambda done, total: seen.append((done, total)),
    )  # fmt: skip
    assert report.households == count and report.scored_now == count - 1
    # The progress reaches its total: the household left out is done with its batch.
    assert seen[-1] == (count, count)
    # Every household still registered is scored and audited once; the dissolved one never.
    check_every_household_once(services, settings, tmp_path / "models", digests, count - 1)
    tag = services.vault.subject_tag(household.vault_subject)
    assert not [e for e in _job_entries(services) if e.entry.subject == tag]


def test_a_household_dissolved_between_scoring_and_writing_is_left_out_of_the_batch(
    services: Services, settings: Settings, tmp_path: Path
) -> None:
    with _one_computed_batch(services, settings, tmp_path) as (stores, job_id, planned, computed):
        household = services.households.get(_a_household(services))
        services.households._dissolve(household)
        assert _write(stores, job_id, planned, computed) == len(computed.scored) - 1
        logged = {e.entry.subject for e in _job_entries(services)}
        assert len(logged) == len(computed.scored) - 1
        assert services.vault.subject_tag(household.vault_subject) not in logged
        with stores.main.connect() as conn:
            assert conn.execute(select(batches.c.status)).scalar_one() == "done"


def test_a_registered_household_without_its_vault_record_stops_the_rescoring_with_a_clear_error(
    services: Services, settings: Settings, tmp_path: Path
) -> None:
    populate(services, 60, 14)
    write_v2(tmp_path / "models")
    household = services.households.get(_a_household(services))
    services.vault.erase(household.vault_subject)  # the register still lists the household

    with pytest.raises(RescoreError, match="registered households have no vault record"):
        run_rescore(settings, "v2", models_dir=tmp_path / "models", batch_size=1000, workers=1)
    assert _job_entries(services) == []
    with services.engines["main"].connect() as conn:
        assert conn.execute(select(batches.c.status)).scalar_one() != "done"
