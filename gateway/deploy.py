"""A deployment opened outside the server: the stores, the register and the authorization
server that the command line and the demo work on, and the one-line errors that say which
store does not answer.

The CLI and the demo both import this module; it imports neither.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from joserfc.jwk import ECKey
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError

from audit import AuditLog, AuditUnavailable
from gateway.db import make_engine
from gateway.keys import build_audit_log, build_key_provider, load_or_create_ed25519
from gateway.security import SecurityKind, configuration_change
from gateway.settings import Settings
from identity import Register, SectorPseudonyms
from identity.oauth import OAuthService, build_oauth_service
from vault import DecisionVerifier, Vault, VaultError


class DeploymentError(Exception):
    """A deployment cannot be opened as configured: an error the operator can act on (the
    CLI prints it as one line, exit status 2)."""


def unreachable(store: str, url: str, exc: BaseException) -> str:
    """One line naming the store that does not answer, where it was looked for (password
    hidden), the driver's reason, and the setting to check."""
    where = make_url(url).render_as_string(hide_password=True)
    cause = getattr(exc, "orig", None) or exc
    reason = str(cause).strip().splitlines()[0][:200] if str(cause).strip() else ""
    variable = {"main": "SIJILL_DATABASE_URL"}.get(store, f"SIJILL_{store.upper()}_DATABASE_URL")
    return (
        f"cannot reach the {store} database at {where} ({type(cause).__name__}: {reason}); "
        f"check that the server is up and that {variable} names it"
    )


def database_error(settings: Settings, exc: BaseException) -> DeploymentError:
    """A command's database failed: find which store does not answer, and say so."""
    for store, url in settings.database_urls.items():
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as failure:
            return DeploymentError(unreachable(store, url, failure))
        finally:
            engine.dispose()
    return DeploymentError(
        f"a database statement failed ({type(getattr(exc, 'orig', exc)).__name__})"
    )


@contextmanager
def open_register(settings: Settings) -> Iterator[tuple[Register, Engine, Vault]]:
    """(Register, main engine, the vault behind the register) over the configured stores."""
    assert settings.database_url and settings.vault_database_url
    main = make_engine(settings.database_url)
    vault_engine = (
        main if settings.vault_database_url == settings.database_url
        else make_engine(settings.vault_database_url)
    )  # fmt: skip
    try:
        provider = build_key_provider(settings)
    except VaultError as exc:
        main.dispose()
        vault_engine.dispose()
        raise DeploymentError(str(exc)) from None
    try:
        signing = load_or_create_ed25519(settings.data_dir / "keys" / "decision-signing.pem")
        vault = Vault(vault_engine, provider, DecisionVerifier(signing.public_key()))
        yield (
            Register(main, vault, version_retention_days=settings.rnp_version_retention_days),
            main,
            vault,
        )
    except OperationalError as exc:
        raise database_error(settings, exc) from None
    except VaultError as exc:
        raise DeploymentError(str(exc)) from None
    finally:
        provider.close()
        main.dispose()
        vault_engine.dispose()


@contextmanager
def open_vault(settings: Settings) -> Iterator[Vault]:
    """The vault over its own store (key status and rotation need nothing else)."""
    assert settings.vault_database_url
    engine = make_engine(settings.vault_database_url)
    try:
        provider = build_key_provider(settings)
    except VaultError as exc:
        engine.dispose()
        raise DeploymentError(str(exc)) from None
    try:
        signing = load_or_create_ed25519(settings.data_dir / "keys" / "decision-signing.pem")
        yield Vault(engine, provider, DecisionVerifier(signing.public_key()))
    except OperationalError as exc:
        raise DeploymentError(unreachable("vault", settings.vault_database_url, exc)) from None
    except VaultError as exc:
        raise DeploymentError(str(exc)) from None
    finally:
        provider.close()
        engine.dispose()


@contextmanager
def open_oauth(settings: Settings) -> Iterator[OAuthService]:
    """The authorization server over the main store (its client registry and accounts)."""
    assert settings.database_url and settings.issuer
    engine = make_engine(settings.database_url)
    try:
        yield build_oauth_service(engine, settings.data_dir / "keys", settings.issuer)
    except DBAPIError as exc:
        raise DeploymentError(
            f"database error ({type(exc.orig).__name__}); is the schema up to date? "
            "Run: sijill db upgrade"
        ) from None
    finally:
        engine.dispose()


@contextmanager
def open_audit_log(settings: Settings) -> Iterator[AuditLog]:
    """The audit log as the gateway opens it (the writer side), for a command that puts an
    operator's act on the record."""
    engine = make_engine(settings.database_urls["audit"])
    main = make_engine(settings.database_urls["main"])
    try:
        log = build_audit_log(settings, engine, main)
        yield log
        log.close()
    except SQLAlchemyError as exc:
        raise DeploymentError(f"the audit database is unreachable: {type(exc).__name__}") from None
    finally:
        engine.dispose()
        main.dispose()


def record_change(settings: Settings, kind: SecurityKind, **what: object) -> None:
    """Put an operator's change on the record (gateway/security.py ``configuration_change``)."""
    try:
        with open_audit_log(settings) as log:
            log.append(configuration_change(kind, **what))
    except (DeploymentError, AuditUnavailable) as exc:
        raise DeploymentError(
            f"the change is made but not on the record ({exc}); tell the CNDP's auditor, "
            "with the time and the command"
        ) from None


def client_keypair(kid: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A client's EC P-256 (ES256) key pair as JWKs: (public, private)."""
    key = ec.generate_private_key(ec.SECP256R1())
    private = {**ECKey.import_key(key).as_dict(private=True), "kid": kid, "alg": "ES256"}
    public = {k: v for k, v in private.items() if k != "d"}
    return public, private


@contextmanager
def open_pseudonyms(settings: Settings) -> Iterator[SectorPseudonyms]:
    """The sector pseudonyms' keys and index (main store), their MACs computed in the vault."""
    with open_register(settings) as (_register, main, vault):
        yield SectorPseudonyms(main, vault)
