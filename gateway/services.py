"""The composition root: builds every room's service object from the settings, once per app.

Routes reach these through :func:`get_services`; nothing else holds global state.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from fastapi import Request
from sqlalchemy import Engine

from audit import AuditLog, AuditUnavailable, SqlStorage, Witness
from consent import ConsentService
from consent.notifications import NotificationPreferences
from gateway.breaches import BreachMetrics, BreachRegister
from gateway.breaches.notification import JWS_TYP
from gateway.court_orders import CourtOrderRegister
from gateway.db import make_engine, ping
from gateway.erasure import ErasureDesk, person_steps
from gateway.jobs import ScheduledJob
from gateway.keys import (
    all_witnesses,
    audit_alarm,
    audit_identity,
    build_audit_log,
    build_key_provider,
    embedded_witness,
    load_or_create_ed25519,
)
from gateway.leases import Lease
from gateway.metrics import CountedDecisionVerifier, DomainMetrics, MeteredPolicy
from gateway.middleware import Metrics
from gateway.notify.choices import NotificationChoices
from gateway.notify.senders import build_senders
from gateway.ratelimit import RateLimiter, SharedRateLimiter
from gateway.retention import Retention
from gateway.score_audit import prepared_score_entries
from gateway.security import SecurityEvents
from gateway.settings import Settings, SettingsError
from gateway.witnessing import Checkpointer, WitnessClient
from identity import RectificationRequests, Register, SectorPseudonyms
from identity.activation import ActivationCodes
from identity.oauth import OAuthService, build_oauth_service
from identity.oauth.jose import sign_jws, sign_jwt
from identity.oauth.keys import SigningKeys
from identity.oauth.secrets import SecretBox
from policies import DecisionCache, DecisionIssuer, OpaEngine, PolicyEngine, build_engine
from policies.registry import ProcessingRegistry
from rsu import HouseholdRegister
from vault import DecisionVerifier, ModelSet, ScoreEvent, Vault, VaultError


@dataclass
class Services:
    """Every room's service object of one app, built together by :func:`build_services`."""

    settings: Settings
    engines: dict[str, Engine]
    vault: Vault
    audit: AuditLog
    checkpointer: Checkpointer
    policy: PolicyEngine
    decision_issuer: DecisionIssuer
    register: Register
    pseudonyms: SectorPseudonyms
    consents: ConsentService
    registry: ProcessingRegistry
    households: HouseholdRegister
    breaches: BreachRegister
    court_orders: CourtOrderRegister
    rectifications: RectificationRequests
    erasures: ErasureDesk
    retention: Retention
    activation_codes: ActivationCodes
    # Citizens' choices to be told of the uses of their record (gateway/notify/); the delivery
    # job is built with the app (gateway/app.py), as it goes through the enforcement point.
    notifications: NotificationChoices
    oauth: OAuthService
    rate_limiter: RateLimiter
    # Refusals and configuration changes on the record, bounded (gateway/security.py).
    security_events: SecurityEvents
    # Served at /metrics (the app's request metrics and the enforcement point's counters).
    metrics: Metrics
    # The domain's own (decisions, reveals, refusals, the audit log), in the same registry.
    domain_metrics: DomainMetrics
    # name -> check that raises when that dependency is unreachable (see /readyz)
    readiness: dict[str, Callable[[], None]] = field(default_factory=dict)
    closers: list[Callable[[], None]] = field(default_factory=list)
    witness: Witness | None = None  # the demo's own witness (SIJILL_EMBEDDED_WITNESS)
    # Started and stopped by the lifespan; one process at a time runs each (gateway/jobs.py).
    jobs: list[ScheduledJob] = field(default_factory=list)

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
    readiness: dict[str, Callable[[], None]] = {
        f"database.{store}": partial(ping, engine) for store, engine in engines.items()
    }
    closers: list[Callable[[], None]] = []
    domain_metrics = DomainMetrics()
    main = engines["main"]
    keys_dir = settings.data_dir / "keys"
    provider = build_key_provider(settings)
    closers.append(provider.close)
    readiness["key_provider"] = provider.ping
    # The policy layer signs decisions with the private half (policies.DecisionIssuer), the
    # vault checks them with the public half.
    decision_key = load_or_create_ed25519(keys_dir / "decision-signing.pem")
    vault = Vault(
        engines["vault"],
        provider,
        CountedDecisionVerifier(DecisionVerifier(decision_key.public_key()), domain_metrics),
    )
    readiness["vault"] = vault.ping
    # The RNP lives in the main store; its personal data goes through the vault.
    register = Register(main, vault, version_retention_days=settings.rnp_version_retention_days)
    audit = build_audit_log(settings, engines["audit"], main)
    closers.append(audit.close)
    readiness["audit"] = audit.ping
    checkpointer, witness = _build_checkpointing(settings, audit, main, closers)
    policy = _build_policy(settings, domain_metrics, readiness, closers)
    registry = ProcessingRegistry.load()
    metrics = Metrics()
    domain_metrics.audit = audit
    metrics.registry.register(domain_metrics)
    assert settings.issuer is not None  # Settings fills it in
    # Consent receipts and breach documents are signed with the authorization server's current
    # key, so anyone can check them against GET /oauth/jwks.
    server_keys = SigningKeys(keys_dir)
    breaches = _build_breaches(settings, main, server_keys)
    metrics.registry.register(BreachMetrics(breaches))
    consents = _build_consents(settings, main, registry, vault, server_keys)
    households = build_household_register(settings, main, vault, register, audit)
    # One-time codes that turn into a citizen's portal sign-in (gateway/web/activation.py).
    activation_codes = ActivationCodes(main, SecretBox(keys_dir / "web-sessions.key"))
    oauth = build_oauth_service(main, keys_dir, settings.issuer)
    notifications = NotificationChoices(
        vault, NotificationPreferences(main), frozenset(build_senders(settings))
    )
    rectifications = RectificationRequests(main, vault)
    steps = person_steps(
        notifications=notifications.forget,
        register=register,
        rectifications=rectifications,
        households=households,
        consents=consents,
        citizens=oauth.citizens,
        activation_codes=activation_codes,
    )
    erasures = ErasureDesk(main, register, steps, audit, vault.subject_tag)
    retention = Retention(main, register, registry, erasures, audit)
    jobs = []
    if settings.retention_every_seconds > 0:
        jobs.append(
            ScheduledJob("retention", settings.retention_every_seconds, retention.run, engine=main)
        )
    security_events = build_security_events(settings, audit, vault, metrics)
    return Services(
        settings=settings,
        engines=engines,
        vault=vault,
        audit=audit,
        checkpointer=checkpointer,
        policy=policy,
        decision_issuer=DecisionIssuer(decision_key),
        register=register,
        pseudonyms=SectorPseudonyms(main, vault),
        consents=consents,
        registry=registry,
        households=households,
        breaches=breaches,
        court_orders=CourtOrderRegister(main),
        rectifications=rectifications,
        erasures=erasures,
        retention=retention,
        activation_codes=activation_codes,
        notifications=notifications,
        oauth=oauth,
        rate_limiter=SharedRateLimiter(
            main,
            settings.agency_rate_per_s,
            settings.agency_burst,
            refused=domain_metrics.rate_limited.inc,
        ),
        security_events=security_events,
        metrics=metrics,
        domain_metrics=domain_metrics,
        readiness=readiness,
        closers=closers,
        witness=witness,
        # Each process appends the events it counted (no lease: the counts are its own).
        jobs=[ScheduledJob("security-events", 1.0, security_events.flush, engine=None), *jobs],
    )


def build_security_events(
    settings: Settings, audit: AuditLog, vault: Vault, metrics: Metrics
) -> SecurityEvents:
    """The security events' recorder: tags keyed inside the vault, counted per kind."""

    def tag(label: str, value: str) -> str:
        return vault.mac(label, value.encode()).hex()[:32]

    return SecurityEvents(
        audit,
        tag,
        per_window=settings.security_events_per_window,
        window_s=settings.security_events_window_s,
        counted=lambda kind: metrics.security_events.labels(kind=kind).inc(),
    )


def load_models(settings: Settings, version: str | None = None) -> ModelSet:
    """The scoring models of ``version`` (default: SIJILL_SCORING_MODEL)."""
    return ModelSet.load(version or settings.scoring_model, settings.scoring_models_dir)


def build_household_register(
    settings: Settings, engine: Engine, vault: Vault, register: Register, audit: AuditLog
) -> HouseholdRegister:
    """The RSU register (households in the main store, declarations and scores in the vault),
    auditing every scoring it does (fail closed: if the audit log cannot record the scorings,
    the call raises :class:`audit.AuditUnavailable`)."""

    def on_scored(events: Sequence[ScoreEvent], reason: str) -> None:
        if events:
            audit.append_many(prepared_score_entries(vault, events, reason))

    return HouseholdRegister(
        engine, vault, register, models=load_models(settings), on_scored=on_scored
    )


def _jwt_signer(keys: SigningKeys) -> Callable[[dict[str, Any]], str]:
    """Signs claims as a JWT with the authorization server's current key."""

    def sign(claims: dict[str, Any]) -> str:
        key = keys.current()
        return sign_jwt(claims, key.private_key, kid=key.kid, typ="JWT")

    return sign


def _build_consents(
    settings: Settings,
    engine: Engine,
    registry: ProcessingRegistry,
    vault: Vault,
    keys: SigningKeys,
) -> ConsentService:
    return ConsentService(
        engine,
        registry,
        _jwt_signer(keys),
        policy_url=f"{settings.issuer}/privacy",
        # Filed under the same keyed hash of the IDCS as the person's audit entries.
        subject_key=vault.subject_tag,
    )


def check_keys(settings: Settings) -> None:
    """Open the key provider and the decision-signing key once, before any worker starts;
    raise :class:`SettingsError` (one line) if a key file is readable by others or the token
    cannot be opened."""
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
    except AuditUnavailable:
        recorded = None
    finally:
        engine.dispose()
    if recorded is not None:
        key = load_or_create_ed25519(settings.data_dir / "keys" / "audit-signing.pem")
        audit_identity(settings, recorded, key)


def _build_checkpointing(
    settings: Settings, audit: AuditLog, main: Engine, closers: list[Callable[[], None]]
) -> tuple[Checkpointer, Witness | None]:
    """The checkpointer (started and stopped by the app's lifespan, gateway/app.py), with its
    witnesses, and the demo's own witness when SIJILL_EMBEDDED_WITNESS asks for one."""
    witnesses = all_witnesses(settings)
    client = None
    if witnesses:
        client = WitnessClient(audit, witnesses, audit.alarm or audit_alarm)
        closers.append(client.close)
    # One signer across processes and hosts: the holder of this lease (gateway/leases.py).
    lease = Lease(
        main,
        "audit-checkpoints",
        ttl_s=max(5.0, 3 * settings.checkpoint_every_seconds),
    )
    checkpointer = Checkpointer(audit, client, settings.checkpoint_every_seconds, lease)
    if not settings.embedded_witness:
        return checkpointer, None
    witness_engine = make_engine(
        f"sqlite:///{(settings.data_dir / 'witness' / 'witness.db').absolute()}"
    )
    closers.append(witness_engine.dispose)
    witness = Witness(
        witness_engine, embedded_witness(settings), {audit.origin: audit.signer.verifier}
    )
    return checkpointer, witness


def _build_policy(
    settings: Settings,
    metrics: DomainMetrics,
    readiness: dict[str, Callable[[], None]],
    closers: list[Callable[[], None]],
) -> PolicyEngine:
    # SIJILL_POLICY_ENGINE: "embedded" (regopy in process) or the URL of an OPA server.
    engine = build_engine(settings.policy_engine, settings.policy_timeout_s)
    policy = MeteredPolicy(DecisionCache(engine, settings.policy_cache_entries), metrics)
    readiness["policy_engine"] = policy.ping
    if isinstance(engine, OpaEngine):
        closers.append(engine.close)
    return policy


def services_of(request: Request) -> Services:
    """The app's services (for code that has the request at hand)."""
    services: Services = request.app.state.services
    return services


async def get_services(request: Request) -> Services:
    """The app's services, as a route dependency. Asynchronous because it never blocks:
    a synchronous dependency would cost a thread-pool hop on every request."""
    return services_of(request)


def _build_breaches(settings: Settings, main: Engine, keys: SigningKeys) -> BreachRegister:
    assert settings.issuer is not None  # set by the settings' validation

    def sign_document(payload: bytes) -> str:
        key = keys.current()
        return sign_jws(payload, key.private_key, kid=key.kid, typ=JWS_TYP)

    return BreachRegister(
        main, sign_document=sign_document, sign_notice=_jwt_signer(keys), issuer=settings.issuer
    )
