"""National rescoring: a new model reaches every household, each audited exactly once, even
when the run is killed with SIGKILL and resumed."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from audit.storage import EntryFilter
from gateway.cli.rsu import batches, run_rescore
from gateway.keys import load_or_create_ed25519
from gateway.services import Services, build_services
from gateway.settings import Settings
from identity import PersonIn
from identity.rsu import households
from identity.rsu_synth import group_households, household_request
from identity.synth import generate
from policies import DecisionIssuer, PolicyResult
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
            result, subject=subject, action="read_score", purpose="t", audit_index=0
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
    assert '"resumed": true' in resumed.stdout
    check_every_household_once(services, settings, tmp_path / "models", digests, count)


def test_a_crash_right_after_the_audit_append_does_not_audit_twice_on_resume(
    services: Services, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from audit import AuditLog

    count = populate(services, 60, 14)
    digests = write_v2(tmp_path / "models")
    real_append = AuditLog.append_many
    calls = []

    def append_then_die(self: AuditLog, entries: object, **options: object) -> object:
        receipts = real_append(self, entries, **options)  # type: ignore[arg-type]
        calls.append(len(receipts))
        if len(calls) == 2:
            # The process dies after the log recorded the batch, before the batch is marked.
            raise KeyboardInterrupt
        return receipts

    monkeypatch.setattr(AuditLog, "append_many", append_then_die)
    with pytest.raises(KeyboardInterrupt):
        run_rescore(settings, "v2", models_dir=tmp_path / "models", batch_size=3, workers=1)
    monkeypatch.setattr(AuditLog, "append_many", real_append)
    report = run_rescore(settings, "v2", models_dir=tmp_path / "models", batch_size=3, workers=1)
    assert report.resumed
    check_every_household_once(services, settings, tmp_path / "models", digests, count)
