"""The gateway builds the vault from settings, reports it in /readyz, and guards its key files."""

from __future__ import annotations

import multiprocessing as mp
import os
import stat
import time
from pathlib import Path
from typing import Any

import pytest

from gateway.keys import load_or_create_ed25519
from vault import KeyFilePermissions, Vault


def test_app_has_a_vault_and_readyz_checks_it_and_the_key_provider(app, client) -> None:  # type: ignore[no-untyped-def]
    services = app.state.services
    assert isinstance(services.vault, Vault)
    assert {"key_provider", "vault"} <= set(services.readiness)
    response = client.get("/readyz")
    assert response.status_code == 200, response.text
    keys = services.settings.data_dir / "keys"
    for key_file in keys.iterdir():
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_decision_signing_key_is_created_once_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "decision-signing.pem"
    first = load_or_create_ed25519(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = load_or_create_ed25519(path)
    assert first.public_key().public_bytes_raw() == again.public_key().public_bytes_raw()
    path.chmod(0o640)
    with pytest.raises(KeyFilePermissions):
        load_or_create_ed25519(path)


def _signing_public_key(path: Path, start: Any, out: Any) -> None:
    real_fdopen = os.fdopen

    def slow_fdopen(*args: Any, **kwargs: Any) -> Any:
        time.sleep(0.2)  # a slow disk: the key file exists a while before its bytes do
        return real_fdopen(*args, **kwargs)

    os.fdopen = slow_fdopen  # in this child process only
    start.wait()
    out.put(load_or_create_ed25519(path).public_key().public_bytes_raw())


def test_workers_starting_together_load_the_one_signing_key_they_created(
    tmp_path: Path,
) -> None:
    # The rescoring's worker processes (and uvicorn's) may all find the key missing at once:
    # each must load the one key that was created, never a file still being written.
    ctx = mp.get_context("fork")
    path = tmp_path / "keys" / "decision-signing.pem"
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_signing_public_key, args=(path, start, out)) for _ in range(4)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(timeout=30)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    keys = [out.get(timeout=5) for _ in procs]
    assert len(set(keys)) == 1
    assert [f.name for f in path.parent.iterdir()] == [path.name]


def test_pkcs11_provider_needs_a_pin(tmp_path: Path) -> None:
    from gateway.services import build_services
    from gateway.settings import SettingsError, load_settings

    settings = load_settings(data_dir=tmp_path / "data", key_provider="pkcs11")
    with pytest.raises(SettingsError, match="SIJILL_PKCS11_PIN"):
        build_services(settings)


def test_pkcs11_settings_build_a_vault_on_the_token(
    tmp_path: Path, softhsm_token: dict[str, str]
) -> None:
    from gateway.services import build_services
    from gateway.settings import load_settings

    settings = load_settings(
        data_dir=tmp_path / "data",
        key_provider="pkcs11",
        pkcs11_module=softhsm_token["module"],
        pkcs11_token_label=softhsm_token["label"],
        pkcs11_pin=softhsm_token["pin"],
    )
    services = build_services(settings)
    try:
        assert services.vault is not None and services.vault.keys.name == "pkcs11"
        services.readiness["key_provider"]()
    finally:
        services.close()


def test_vault_can_live_in_its_own_database(tmp_path: Path) -> None:
    from gateway import db
    from gateway.services import build_services
    from gateway.settings import load_settings

    main_url = f"sqlite:///{tmp_path / 'main.db'}"
    vault_url = f"sqlite:///{tmp_path / 'vault.db'}"
    db.upgrade({"main": main_url, "vault": vault_url, "audit": main_url})
    settings = load_settings(
        data_dir=tmp_path / "data", database_url=main_url, vault_database_url=vault_url
    )
    services = build_services(settings)
    try:
        assert services.vault is not None
        assert str(services.vault.engine.url) == vault_url
        services.vault.store("s-1", "person", {"cnie": "CD123456"})
        services.readiness["vault"]()
    finally:
        services.close()
    assert b"vault_data_keys" in (tmp_path / "vault.db").read_bytes()


def test_serve_refuses_to_start_in_one_line_with_a_readable_key_file(tmp_path: Path) -> None:
    import subprocess
    import sys

    data = tmp_path / "data"
    env = {"SIJILL_DATA_DIR": str(data), "PATH": "/usr/bin:/bin"}
    keys_dir = data / "keys"
    from vault import FileKeyProvider

    FileKeyProvider(keys_dir)
    (keys_dir / "kek-v1.key").chmod(0o644)
    cli = Path(sys.executable).with_name("sijill")
    result = subprocess.run(
        [str(cli), "serve", "--no-migrate"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "chmod 600" in result.stderr and "Traceback" not in result.stderr
