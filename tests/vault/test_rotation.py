"""KEK rotation: online under concurrent reads and writes, resumable, and retiring the old KEK."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import pytest
import typer
from sqlalchemy import Engine, select, update
from typer.testing import CliRunner

from tests.vault.conftest import PolicyStandIn, sample_person
from vault import FileKeyProvider, KeyProvider, Pkcs11KeyProvider, Vault, rotate
from vault import tables as t

NAMES = tuple(sample_person())


def twin(provider: KeyProvider, request: pytest.FixtureRequest) -> KeyProvider:
    """The same KEKs opened a second time, as another worker process would."""
    if isinstance(provider, FileKeyProvider):
        return FileKeyProvider(provider.directory)
    assert isinstance(provider, Pkcs11KeyProvider)
    token = request.getfixturevalue("softhsm_token")
    return Pkcs11KeyProvider(token["module"], token["label"], token["pin"], prefix=provider.prefix)


def test_rotation_while_other_workers_read_and_write_loses_nothing(
    vault: Vault, vault_engine: Engine, policy: PolicyStandIn, request: pytest.FixtureRequest
) -> None:
    expected = {f"s-{i}": sample_person(str(i)) for i in range(300)}
    vault.store_many([(s, "person", f) for s, f in expected.items()])
    other_keys = twin(vault.keys, request)
    worker = Vault(vault_engine, other_keys, policy.verifier)  # another worker, its own view
    lock = threading.Lock()
    errors: list[BaseException] = []
    counts = {"reads": 0, "writes": 0}
    stop = threading.Event()

    def reader(seed: int) -> None:
        rng = random.Random(seed)
        while not stop.is_set():
            with lock:
                batch = rng.sample(sorted(expected), 20)
                want = [dict(expected[s]) for s in batch]
            try:
                got = worker.reveal_many([(s, NAMES, policy.seal(s, NAMES)) for s in batch])
            except BaseException as exc:
                errors.append(exc)
                return
            # A concurrent update may land between our snapshot and the read: compare names,
            # which the writer never changes.
            for g, w in zip(got, want, strict=True):
                if g["given_name_lat"] != w["given_name_lat"]:
                    errors.append(AssertionError("a value read back wrong"))
            counts["reads"] += len(batch)

    def writer() -> None:
        n = 0
        while not stop.is_set():
            subject = f"new-{n}"
            person = sample_person(f"new{n}")
            old = f"s-{n % 300}"
            address = f"{n} avenue Hassan II"
            try:
                worker.store(subject, "person", person)
                worker.store(old, "person", {"address": address})
            except BaseException as exc:
                errors.append(exc)
                return
            with lock:
                expected[subject] = person
                expected[old] = {**expected[old], "address": address}
            counts["writes"] += 2
            n += 1

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(2)]
    threads.append(threading.Thread(target=writer))
    for th in threads:
        th.start()
    time.sleep(0.2)
    # Slow each batch a little so that reads and writes interleave with every step.
    report = rotate(vault, batch_size=25, progress=lambda done, total: time.sleep(0.02))
    time.sleep(0.2)
    stop.set()
    for th in threads:
        th.join()
    assert errors == []
    assert counts["reads"] > 0 and counts["writes"] > 0
    assert report.retired == [1], (report, vault.status())
    assert vault.keys.versions() == [2]
    with vault.engine.connect() as conn:
        versions = {v for (v,) in conn.execute(select(t.data_keys.c.kek_version).distinct())}
    assert versions == {2}
    fresh = Vault(vault_engine, twin(vault.keys, request), policy.verifier)
    subjects = sorted(expected)
    got = fresh.reveal_many([(s, NAMES, policy.seal(s, NAMES)) for s in subjects])
    assert got == [expected[s] for s in subjects]
    other_keys.close()


class Crash(Exception):
    pass


def test_interrupted_rotation_resumes_and_then_retires_the_old_kek(
    vault: Vault, policy: PolicyStandIn
) -> None:
    people = {f"s-{i}": sample_person(str(i)) for i in range(120)}
    vault.store_many([(s, "person", f) for s, f in people.items()])

    def crash_after_first_batch(done: int, total: int) -> None:
        if done > 0:
            raise Crash

    with pytest.raises(Crash):
        rotate(vault, batch_size=40, progress=crash_after_first_batch)
    status = vault.status()
    assert status["rotation_in_progress"]["target_version"] == 2
    assert status["data_keys_by_kek_version"] == {1: 80, 2: 40}
    assert status["versions"] == [1, 2]

    report = rotate(vault, batch_size=40)
    assert report.resumed and report.target_version == 2 and report.finished
    assert report.retired == [1]
    assert vault.status()["rotation_in_progress"] is None
    subjects = sorted(people)
    got = vault.reveal_many([(s, NAMES, policy.seal(s, NAMES)) for s in subjects])
    assert got == [people[s] for s in subjects]


def test_tampered_wrapped_key_blocks_retirement(vault: Vault) -> None:
    vault.store_many([(f"s-{i}", "person", sample_person(str(i))) for i in range(10)])
    with vault.engine.begin() as conn:
        wrapped = bytearray(
            conn.execute(
                select(t.data_keys.c.wrapped).where(t.data_keys.c.subject == "s-4")
            ).scalar_one()
        )
        wrapped[-1] ^= 1
        conn.execute(
            update(t.data_keys).where(t.data_keys.c.subject == "s-4").values(wrapped=bytes(wrapped))
        )
    report = rotate(vault)
    assert report.failed == 1 and report.retired == [] and not report.finished
    assert 1 in vault.keys.versions()
    assert vault.status()["rotation_in_progress"] is not None


def test_keys_rotate_command_rewraps_and_reports(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, policy: PolicyStandIn
) -> None:
    from gateway import db
    from gateway.cli import keys as keys_cli
    from gateway.keys import load_or_create_ed25519
    from vault import DecisionVerifier

    data_dir = tmp_path / "data"
    monkeypatch.setenv("SIJILL_DATA_DIR", str(data_dir))
    monkeypatch.setenv("SIJILL_DATABASE_URL", database_url)
    db.upgrade({"main": database_url, "vault": database_url, "audit": database_url})
    engine = db.make_engine(database_url)
    signing = load_or_create_ed25519(data_dir / "keys" / "decision-signing.pem")
    vault = Vault(
        engine, FileKeyProvider(data_dir / "keys"), DecisionVerifier(signing.public_key())
    )
    vault.store_many([(f"s-{i}", "person", sample_person(str(i))) for i in range(30)])

    root = typer.Typer()
    root.add_typer(keys_cli.app, name="keys")
    runner = CliRunner()
    result = runner.invoke(root, ["keys", "rotate", "--batch-size", "7"])
    assert result.exit_code == 0, result.output
    assert "30 re-wrapped" in result.output and "retired KEK versions: 1" in result.output
    status = runner.invoke(root, ["keys", "status"])
    assert status.exit_code == 0 and "v2: 30 data keys" in status.output
    assert sorted(p.name for p in (data_dir / "keys").glob("kek-*")) == ["kek-v2.key"]
    engine.dispose()
