"""The HSM key provider, over PKCS#11 (python-pkcs11); tested against SoftHSM2.

Each KEK version is an AES-256 secret key generated inside the token, ``CKA_SENSITIVE`` and not
``CKA_EXTRACTABLE``: its bytes never leave the token. Data keys are wrapped and unwrapped by the
token itself (``CKM_AES_GCM`` through ``C_Encrypt``/``C_Decrypt``), so the host only ever sees
data keys, never the key that protects them. PKCS#11 sessions are not safe for concurrent use
(PKCS#11 v2.40 §5.1.5) and the library is initialised without locking, hence one lock around
every call.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import re
import threading
from typing import Any

from vault.errors import IntegrityError, KeyProviderError
from vault.keys.base import VersionedKeyProvider

__all__ = ["Pkcs11KeyProvider"]

# python-pkcs11 calls C_Initialize(NULL): the library is then entitled to assume no concurrent
# calls from several threads (PKCS#11 v2.40 §5.4, C_Initialize), and SoftHSM2 does. Every call
# into the token, from any provider in this process, goes through this one lock.
_LIBRARY_LOCK = threading.Lock()

# SHA-256 of the PIN that logged this process in, per (module, token).
_LOGINS: dict[tuple[str, str], bytes] = {}


class Pkcs11KeyProvider(VersionedKeyProvider):
    name = "pkcs11"

    def __init__(self, module: str, token_label: str, pin: str, *, prefix: str = "sijill") -> None:
        super().__init__()
        import pkcs11

        self._p11 = pkcs11
        self._label = re.compile(rf"\A{re.escape(prefix)}-kek-v(\d{{1,9}})\Z")
        self._prefix = prefix
        self._session_lock = _LIBRARY_LOCK
        digest = hashlib.sha256(pin.encode()).digest()
        try:
            with _LIBRARY_LOCK:
                lib = pkcs11.lib(module)
                token = lib.get_token(token_label=token_label)
                try:
                    self._session: Any = token.open(user_pin=pin, rw=True)
                    _LOGINS[(module, token_label)] = digest
                except pkcs11.UserAlreadyLoggedIn:
                    # PKCS#11 logs in per application, not per session (v2.40 §5.1.6): another
                    # provider in this process already did; a new session shares that login.
                    # Only with the same PIN: a wrong one must not ride on another's login.
                    if not hmac.compare_digest(_LOGINS.get((module, token_label), b""), digest):
                        raise pkcs11.PinIncorrect() from None
                    self._session = token.open(rw=True)
        except (pkcs11.PKCS11Error, RuntimeError, OSError) as exc:
            raise KeyProviderError(
                f"cannot open PKCS#11 token {token_label!r}: {type(exc).__name__}"
            ) from None
        self._handles: dict[int, Any] = {}
        self._refresh(force=True)

    @property
    def prefix(self) -> str:
        """The label prefix of this provider's KEK objects (``<prefix>-kek-v<n>``)."""
        return self._prefix

    def _objects(self) -> dict[int, Any]:
        from pkcs11 import Attribute, ObjectClass

        found: dict[int, Any] = {}
        with self._session_lock:
            for obj in self._session.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY}):
                match = self._label.match(obj.label or "")
                if match:
                    found[int(match.group(1))] = obj
        return found

    def _list_versions(self) -> list[int]:
        self._handles = self._objects()
        return list(self._handles)

    def _create_version(self, version: int) -> None:
        from pkcs11 import Attribute, KeyType, MechanismFlag

        with self._session_lock:
            self._session.generate_key(
                KeyType.AES,
                256,
                label=f"{self._prefix}-kek-v{version}",
                store=True,
                capabilities=MechanismFlag.ENCRYPT | MechanismFlag.DECRYPT,
                template={
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False,
                    Attribute.TOKEN: True,
                    Attribute.PRIVATE: True,
                },
            )

    def _destroy_version(self, version: int) -> None:
        handle = self._handles.get(version)
        if handle is None:
            raise KeyError(version)
        with self._session_lock:
            handle.destroy()
        self._handles.pop(version, None)

    def _handle(self, version: int) -> Any:
        handle = self._handles.get(version)
        if handle is None:
            raise KeyError(version)
        return handle

    def _seal(self, version: int, nonce: bytes, key: bytes, aad: bytes) -> bytes:
        from pkcs11 import Mechanism
        from pkcs11.mechanisms import GCMParams

        handle = self._handle(version)
        with self._session_lock:
            sealed: bytes = handle.encrypt(
                key, mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(nonce, aad)
            )
        return sealed

    def _open(self, version: int, nonce: bytes, sealed: bytes, aad: bytes) -> bytes:
        from pkcs11 import Mechanism
        from pkcs11.mechanisms import GCMParams

        handle = self._handle(version)
        try:
            with self._session_lock:
                key: bytes = handle.decrypt(
                    sealed, mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(nonce, aad)
                )
        except self._p11.PKCS11Error:
            # SoftHSM2 reports a failed GCM tag as CKR_GENERAL_ERROR / CKR_ENCRYPTED_DATA_INVALID.
            raise IntegrityError("wrapped key failed authentication") from None
        return key

    def close(self) -> None:
        with self._session_lock, contextlib.suppress(self._p11.PKCS11Error):
            self._session.close()
