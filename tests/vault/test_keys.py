"""Key providers: file permissions, KEK versions, and keys that never leave the HSM."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from vault import FileKeyProvider, IntegrityError, KeyFilePermissions, KeyProvider
from vault.errors import KeyProviderError


def test_file_provider_creates_the_kek_owner_only_on_first_run(tmp_path: Path) -> None:
    FileKeyProvider(tmp_path / "keys")
    files = list((tmp_path / "keys").iterdir())
    assert len(files) == 1
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660])
def test_file_provider_refuses_a_key_file_others_can_read(tmp_path: Path, mode: int) -> None:
    FileKeyProvider(tmp_path / "keys")
    (key_file,) = (tmp_path / "keys").iterdir()
    key_file.chmod(mode)
    with pytest.raises(KeyFilePermissions, match="chmod 600"):
        FileKeyProvider(tmp_path / "keys")


def test_server_refuses_to_start_with_a_readable_key_file(tmp_path: Path) -> None:
    from gateway.services import build_services
    from gateway.settings import load_settings

    settings = load_settings(data_dir=tmp_path / "data")
    settings.prepare_data_dir()
    build_services(settings).close()
    (settings.data_dir / "keys" / "decision-signing.pem").chmod(0o644)
    with pytest.raises(KeyFilePermissions):
        build_services(settings)


def test_wrap_round_trips_and_binds_its_context(key_provider: KeyProvider) -> None:
    key = os.urandom(32)
    wrapped = key_provider.wrap(key, b"subject-a")
    assert key not in wrapped
    assert key_provider.unwrap(wrapped, b"subject-a") == key
    with pytest.raises(IntegrityError):
        key_provider.unwrap(wrapped, b"subject-b")
    tampered = bytearray(wrapped)
    tampered[-1] ^= 1
    with pytest.raises(IntegrityError):
        key_provider.unwrap(bytes(tampered), b"subject-a")


def test_old_versions_stay_readable_until_retired(key_provider: KeyProvider) -> None:
    key = os.urandom(32)
    old = key_provider.wrap(key, b"ctx")
    v2 = key_provider.add_version()
    assert key_provider.current_version == v2
    new = key_provider.wrap(key, b"ctx")
    assert key_provider.unwrap(old, b"ctx") == key_provider.unwrap(new, b"ctx") == key
    with pytest.raises(KeyProviderError):
        key_provider.retire(v2)  # the current version cannot go
    key_provider.retire(v2 - 1)
    assert key_provider.versions() == [v2]
    with pytest.raises(IntegrityError, match="retired"):
        key_provider.unwrap(old, b"ctx")


def test_hsm_kek_is_generated_inside_the_token_and_cannot_be_extracted(
    softhsm_token: dict[str, str],
) -> None:
    import pkcs11
    from pkcs11 import Attribute, ObjectClass

    from vault import Pkcs11KeyProvider

    provider = Pkcs11KeyProvider(
        softhsm_token["module"], softhsm_token["label"], softhsm_token["pin"], prefix="extract-test"
    )
    provider.wrap(os.urandom(32), b"ctx")
    token = pkcs11.lib(softhsm_token["module"]).get_token(token_label=softhsm_token["label"])
    with token.open() as session:  # the provider's session already logged this process in
        (kek,) = [
            k
            for k in session.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY})
            if k.label == "extract-test-kek-v1"
        ]
        assert kek[Attribute.SENSITIVE] is True
        assert kek[Attribute.EXTRACTABLE] is False
        with pytest.raises(pkcs11.PKCS11Error):
            kek[Attribute.VALUE]
    provider.close()


def test_wrong_pin_is_a_clear_provider_error(softhsm_token: dict[str, str]) -> None:
    from vault import Pkcs11KeyProvider

    with pytest.raises(KeyProviderError, match="cannot open PKCS#11 token"):
        Pkcs11KeyProvider(softhsm_token["module"], softhsm_token["label"], "wrong-pin")


def test_wrong_pin_is_refused_even_while_another_session_is_logged_in(
    softhsm_token: dict[str, str],
) -> None:
    from vault import Pkcs11KeyProvider

    first = Pkcs11KeyProvider(
        softhsm_token["module"], softhsm_token["label"], softhsm_token["pin"], prefix="login-test"
    )
    try:
        with pytest.raises(KeyProviderError):
            Pkcs11KeyProvider(softhsm_token["module"], softhsm_token["label"], "wrong-pin")
        second = Pkcs11KeyProvider(
            softhsm_token["module"],
            softhsm_token["label"],
            softhsm_token["pin"],
            prefix="login-test",
        )
        assert second.unwrap(first.wrap(b"k" * 32, b"c"), b"c") == b"k" * 32
        second.close()
    finally:
        first.close()
