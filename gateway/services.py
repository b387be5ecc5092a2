"""The composition root: builds every room's service object from the settings, once per app.

Routes reach these through :func:`get_services`; nothing else holds global state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from fastapi import Request
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from audit import AuditLog, SqlStorage, Witness
from consent import ConsentService
from gateway.db import make_engine, ping
from gateway.keys import audit_alarm, audit_identity, build_audit_log, build_key_provider
from gateway.leases import Lease
from gateway.metrics import CountedDecisionVerifier, DomainMetrics, MeteredPolicy
from gateway.middleware import Metrics
from gateway.ratelimit import RateLimiter, SharedRateLimiter
from gateway.settings import Settings, SettingsError
from gateway.witnesses import all_witnesses, embedded_witness
from gateway.witnessing import Checkpointer, WitnessClient
from identity import HouseholdRegister, Register, SectorPseudonyms
from policies import DecisionIssuer, PolicyEngine
from policies.registry import ProcessingRegistry
from vault import DecisionVerifier, Vault


@dataclass
class Services:
    settings: Settings
    engines: dict[str, Engine]
    # name -> check that raises when that dependency is unreachable (see /readyz)
    readiness: dict[str, Callable[[], None]] = field(default_factory=dict)
    closers: list[Callable[[], None]] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)
    # Served at /metrics (the app's request metrics and the enforcement point's counters).
    metrics: Metrics = field(default_factory=Metrics)
    # The domain's own (decisions, reveals, refusals, the audit log), in the same registry.
    domain_metrics: DomainMetrics = field(default_factory=DomainMetrics)
    vault: Vault = None  # type: ignore[assignment]  # set by build_services (_build_vault)
    audit: AuditLog = None  # type: ignore[assignment]  # set by build_services (_build_audit)
    policy: PolicyEngine = None  # type: ignore[assignment]  # set by _build_policy
    decision_issuer: DecisionIssuer = None  # type: ignore[assignment]  # set by _build_policy
    register: Register = None  # type: ignore[assignment]  # set by _build_register
    pseudonyms: SectorPseudonyms = None  # type: ignore[assignment]  # set by _build_register
    consents: ConsentService = None  # type: ignore[assignment]  # set by _build_consents
    registry: ProcessingRegistry = None  # type: ignore[assignment]  # set by _build_consents
    rate_limiter: RateLimiter = None  # type: ignore[assignment]  # set by build_services
    households: HouseholdRegister = None  # type: ignore[assignment]  # set by _build_households
    checkpointer: Checkpointer | None = None  # set by _build_audit
    witness: Witness | None = None  # the demo's own witness (SIJILL_EMBEDDED_WITNESS)

    def close(self) -> None:
        for closer in reversed(self.closers):
            closer()
        for engine in {id(e): e for e in self.engines.values()}.values():
            engine.dispose()


def build_services(settings: Settings) -> Services:
    by_url: dict[str, Engine] = {}
    engines = {}
    for store, url in settings.database_urls.items():
        if url not in by_url:
            by_url[url] = make_engine(url)
        engines[store] = by_url[url]
    services = Services(settings=settings, engines=engines)
    for store, engine in engines.items():
        services.readiness[f"database.{store}"] = partial(ping, engine)
    _build_vault(settings, services)
    _build_register(settings, services)
    _build_audit(settings, services)
    _build_policy(settings, services)
    _build_consents(settings, services)
    _build_households(settings, services)
    services.rate_limiter = SharedRateLimiter(
        engines["main"],
        settings.agency_rate_per_s,
        settings.agency_burst,
        refused=services.domain_metrics.rate_limited.inc,
    )
    services.domain_metrics.audit = services.audit
    services.metrics.registry.register(services.domain_metrics)
    return services


def _build_households(settings: Settings, services: Services) -> None:
    # RSU: households in the main store, declarations and scores in the vault (gateway/rsu.py).
    from gateway.rsu import build_household_register

    assert services.vault is not None
    services.households = build_household_register(
        settings, services.engines["main"], services.vault, services.register, services.audit
    )


def _build_consents(settings: Settings, services: Services) -> None:
    from identity.oauth.jose import sign_jwt
    from identity.oauth.keys import SigningKeys

    # Receipts are signed with the authorization server's current key, so anyone can check
    # them against GET /oauth/jwks.
    keys = SigningKeys(settings.data_dir / "keys")

    def sign(claims: dict[str, Any]) -> str:
        key = keys.current()
        return sign_jwt(claims, key.private_key, kid=key.kid, typ="JWT")

    services.registry = ProcessingRegistry.load()
    services.consents = ConsentService(
        services.engines["main"],
        services.registry,
        sign,
        policy_url=f"{settings.issuer}/privacy",
        # Filed under the same keyed hash of the IDCS as the person's audit entries.
        subject_key=services.vault.subject_tag,
    )


def check_keys(settings: Settings) -> None:
    """Open the key provider and the decision-signing key once, before any worker starts;
    raise :class:`SettingsError` (one line) if a key file is readable by others or the token
    cannot be opened."""
    from gateway.keys import load_or_create_ed25519
    from vault import VaultError

    try:
        build_key_provider(settings).close()
        load_or_create_ed25519(settings.data_dir / "keys" / "decision-signing.pem")
    except VaultError as exc:
        raise SettingsError(str(exc)) from None
    # The audit log's origin and key must be the ones it was initialised with (if the store
    # answers now; if not, the log checks again when it does, and refuses to sign).
    engine = make_engine(settings.database_urls["audit"], pool_size=1)
    try:
        storage = SqlStorage(engine)
        recorded = storage.meta()
    except SQLAlchemyError:
        recorded = None
    finally:
        engine.dispose()
    if recorded is not None:
        key = load_or_create_ed25519(settings.data_dir / "keys" / "audit-signing.pem")
        audit_identity(settings, recorded, key)


def _build_vault(settings: Settings, services: Services) -> None:
    from gateway.keys import load_or_create_ed25519

    provider = build_key_provider(settings)
    services.closers.append(provider.close)
    # The policy layer signs decisions with the private half (policies.DecisionIssuer).
    signing = load_or_create_ed25519(settings.data_dir / "keys" / "decision-signing.pem")
    services.vault = Vault(
        services.engines["vault"],
        provider,
        CountedDecisionVerifier(DecisionVerifier(signing.public_key()), services.domain_metrics),
    )
    services.readiness["key_provider"] = provider.ping
    services.readiness["vault"] = services.vault.ping


def _build_register(settings: Settings, services: Services) -> None:
    # The RNP lives in the main store; its personal data goes through the vault.
    assert services.vault is not None
    services.register = Register(
        services.engines["main"],
        services.vault,
        version_retention_days=settings.rnp_version_retention_days,
    )
    services.pseudonyms = SectorPseudonyms(services.engines["main"], services.vault)


def _build_audit(settings: Settings, services: Services) -> None:
    services.audit = build_audit_log(settings, services.engines["audit"], services.engines["main"])
    services.closers.append(services.audit.close)
    services.readiness["audit"] = services.audit.ping
    witnesses = all_witnesses(settings)
    client = None
    if witnesses:
        client = WitnessClient(services.audit, witnesses, services.audit.alarm or audit_alarm)
        services.closers.append(client.close)
    # Started and stopped by the app's lifespan (gateway/app.py).
    # One signer across processes and hosts: the holder of this lease (gateway/leases.py).
    lease = Lease(
        services.engines["main"],
        "audit-checkpoints",
        ttl_s=max(5.0, 3 * settings.checkpoint_every_seconds),
    )
    services.checkpointer = Checkpointer(
        services.audit, client, settings.checkpoint_every_seconds, lease
    )
    if settings.embedded_witness:
        witness_engine = make_engine(
            f"sqlite:///{(settings.data_dir / 'witness' / 'witness.db').absolute()}"
        )
        services.witness = Witness(
            witness_engine,
            embedded_witness(settings),
            {services.audit.origin: services.audit.signer.verifier},
        )
        services.closers.append(witness_engine.dispose)


def _build_policy(settings: Settings, services: Services) -> None:
    from gateway.keys import load_or_create_ed25519
    from policies import build_engine

    # SIJILL_POLICY_ENGINE: "embedded" (regopy in process) or the URL of an OPA server.
    engine = build_engine(settings.policy_engine, settings.policy_timeout_s)
    services.policy = MeteredPolicy(engine, services.domain_metrics)
    services.readiness["policy_engine"] = services.policy.ping
    close = getattr(engine, "close", None)
    if close is not None:
        services.closers.append(close)
    # Same key file as the vault's verifier (_build_vault): the private half signs here.
    signing = load_or_create_ed25519(settings.data_dir / "keys" / "decision-signing.pem")
    services.decision_issuer = DecisionIssuer(signing)


def services_of(request: Request) -> Services:
    """The app's services (for code that has the request at hand)."""
    services: Services = request.app.state.services
    return services


async def get_services(request: Request) -> Services:
    """The app's services, as a route dependency. Asynchronous because it never blocks:
    a synchronous dependency would cost a thread-pool hop on every request."""
    return services_of(request)
