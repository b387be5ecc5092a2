"""``sijill demo`` as a newcomer runs it: a busy port stops it before it touches anything, a
second start on another port keeps the data (and the audit log verifies), ``--reset`` starts
over; and no other command makes a data directory by accident."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

SIJILL = str(Path(sys.executable).with_name("sijill"))


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIJILL_")}
    return subprocess.run(
        [SIJILL, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_a_busy_port_stops_the_demo_before_it_initialises_anything(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = _run("demo", "--port", str(port), "--data-dir", "data", cwd=tmp_path)
    assert result.returncode == 2
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
    assert not (tmp_path / "data").exists()


def test_a_second_start_on_another_port_keeps_the_demo_and_its_log_verifies(
    tmp_path: Path,
) -> None:
    first = _run("demo", "--no-serve", "--port", "8101", "--data-dir", "data", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    credentials = tmp_path / "data" / "demo" / "credentials.json"
    before = json.loads(credentials.read_text())
    assert before["citizens"] and before["households"]
    second = _run("demo", "--no-serve", "--port", "8102", "--data-dir", "data", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "reusing it" in second.stdout
    after = json.loads(credentials.read_text())
    assert after["issuer"] == "http://127.0.0.1:8102"
    assert {**after, "issuer": before["issuer"]} == before  # nothing else changed
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    verified = _run("audit", "verify", "--data-dir", str(tmp_path / "data"), cwd=elsewhere)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "OK" in verified.stdout
    assert list(elsewhere.iterdir()) == []

    reset = _run("demo", "--no-serve", "--reset", "--data-dir", "data", cwd=tmp_path)
    assert reset.returncode == 0, reset.stderr
    assert "removed the demo data" in reset.stdout
    renewed = json.loads(credentials.read_text())
    assert renewed["agencies"][0]["private_jwk"] != before["agencies"][0]["private_jwk"]


def test_commands_other_than_init_and_demo_make_no_data_directory(tmp_path: Path) -> None:
    for args in (("keys", "status"), ("db", "upgrade"), ("audit", "checkpoint")):
        result = _run(*args, "--data-dir", "nowhere", cwd=tmp_path)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert "no data directory at" in result.stderr
        assert "sijill init" in result.stderr
    assert list(tmp_path.iterdir()) == []
    made = _run("init", "--data-dir", "fresh", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "fresh").stat().st_mode & 0o077 == 0


def test_an_unreachable_policy_engine_is_reported_at_start(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir(mode=0o700)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIJILL_")}
    env.update(SIJILL_POLICY_ENGINE="http://127.0.0.1:1", SIJILL_DATA_DIR=str(tmp_path / "data"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [SIJILL, "serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = ""
        assert proc.stderr is not None
        for _ in range(50):
            line = proc.stderr.readline()
            if "policy engine" in line:
                break
        assert "the policy engine at http://127.0.0.1:1 does not answer" in line
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_a_mistyped_setting_is_a_start_error_naming_the_closest(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIJILL_")}
    env["SIJILL_PROT"] = "9000"
    result = subprocess.run(
        [SIJILL, "init", "--data-dir", "d"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "SIJILL_PROT is not a Sijill setting; did you mean SIJILL_PORT?" in result.stderr
    assert not (tmp_path / "d").exists()


def test_an_unreachable_database_is_named_with_its_store_and_host(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIJILL_")}
    env["SIJILL_DATABASE_URL"] = "postgresql+psycopg://sijill:secret@127.0.0.1:1/registers"
    result = subprocess.run(
        [SIJILL, "init", "--data-dir", "d"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 2
    message = result.stderr
    assert "cannot reach the main database at" in message
    assert "127.0.0.1:1/registers" in message and "secret" not in message
    assert "SIJILL_DATABASE_URL" in message
