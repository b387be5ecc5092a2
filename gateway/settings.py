"""Settings, read from the environment with the prefix ``SIJILL_`` and validated at start."""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from gateway.witnesses import WitnessEndpoint


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _networks(value: str) -> tuple[IPNetwork, ...]:
    items = [item.strip() for item in value.split(",")]
    return tuple(ipaddress.ip_network(item, strict=False) for item in items if item)


NOTIFY_SENDERS = ("file", "smtp", "sms-http")


class SettingsError(Exception):
    """A setting is wrong; the message is one line a operator can act on."""


def _check_database_url(value: str | None, name: str) -> str | None:
    if value is None:
        return None
    try:
        url = make_url(value)
    except ArgumentError:
        raise ValueError(
            f"{name} is not a database URL (expected e.g. sqlite:///path or "
            "postgresql+psycopg://user@host/db)"
        ) from None
    if url.get_backend_name() not in {"sqlite", "postgresql"}:
        raise ValueError(
            f"{name} names an unsupported database {url.get_backend_name()!r}; "
            "use sqlite or postgresql"
        )
    return value


class Settings(BaseSettings):
    """Every knob Sijill has. Later features add theirs here, in the same place."""

    model_config = SettingsConfigDict(env_prefix="SIJILL_", extra="ignore")

    data_dir: Path = Path(".sijill")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    issuer: str | None = None
    database_url: str | None = None
    vault_database_url: str | None = None
    audit_database_url: str | None = None
    policy_engine: str = "embedded"
    policy_timeout_s: float = Field(default=2.0, gt=0)
    key_provider: Literal["file", "pkcs11"] = "file"
    pkcs11_module: str = "/usr/lib/softhsm/libsofthsm2.so"
    pkcs11_token_label: str = "sijill"  # noqa: S105 - a token label, not a secret
    pkcs11_pin: str | None = None
    log_level: str = "INFO"
    # The log's name in its checkpoints, fixed when the log is initialised (then read from the
    # store); by default the issuer's host name and /audit, whatever the port.
    audit_origin: str | None = None
    checkpoint_every_entries: int = Field(default=1000, ge=1)
    checkpoint_every_seconds: float = Field(default=1.0, gt=0, le=3600)
    # Witnesses the log submits each checkpoint to: "<url> <witness key>" pairs, comma-separated.
    audit_witnesses: str = ""
    # The demo's own witness, served under /witness with its state in <data dir>/witness.
    embedded_witness: bool = False
    # Server-side prepared statements on PostgreSQL (psycopg prepares a statement run five
    # times on a connection). Off behind a PgBouncer in transaction pooling mode, which may run
    # a connection's next transaction on another server connection (docs/operations.md).
    db_prepared_statements: bool = True
    # RNP: how long a rectified person's previous record is kept before it is crypto-shredded.
    rnp_version_retention_days: int = Field(default=3650, ge=0)
    # Decisions a worker process keeps to reuse within their policy-stated horizon
    # (policies/cache.py); 0 evaluates every request.
    policy_cache_entries: int = Field(default=10_000, ge=0)
    # How often `sijill serve` applies the retention periods (gateway/retention.py); 0: never
    # (a deployment that runs `sijill retention run` from its own scheduler).
    retention_every_seconds: int = Field(default=86400, ge=0)
    # Per agency client, shared by every worker process and host (gateway/ratelimit.py).
    agency_rate_per_s: float = Field(default=200.0, gt=0)
    agency_burst: int = Field(default=400, ge=1)
    # Security events (gateway/security.py): per kind and client or source, this many entries
    # a window, the rest counted into one summary entry when the window ends.
    security_events_per_window: int = Field(default=5, ge=1)
    security_events_window_s: float = Field(default=60.0, gt=0, le=86400)
    # Mutual TLS (RFC 8705, gateway/auth.py): the request header in which the TLS-terminating
    # proxy forwards the client certificate it checked (nginx: $ssl_client_escaped_cert,
    # URL-encoded PEM), and the proxies' addresses or networks, comma-separated. The header is
    # believed only from those; from anyone else it is ignored and the attempt recorded.
    client_cert_header: str | None = None
    client_cert_proxies: str = ""
    # Threads a worker process runs requests in (gateway/app.py).
    worker_threads: int = Field(default=4, ge=1, le=1000)
    # Request bodies (gateway/middleware.py BoundedBody): the most a JSON API route accepts,
    # the most a bulk route accepts, and how long the whole body may take to arrive.
    max_body_bytes: int = Field(default=8 * 1024, ge=1024)
    max_bulk_body_bytes: int = Field(default=256 * 1024, ge=1024)
    body_read_timeout_s: float = Field(default=10.0, gt=0)
    # How long a client may take to send a request's headers (gateway/server.py).
    header_read_timeout_s: float = Field(default=10.0, gt=0)
    rnp_import_batch_size: int = Field(default=1000, ge=1, le=10000)
    # How long an import worker's claim on a batch lasts (identity/batches.py): a batch left
    # by a killed worker waits this long for another; a worker slower than this loses it.
    rnp_import_claim_seconds: float = Field(default=30.0, gt=0)
    # RSU: the scoring model release in use (urban-<v>.json + rural-<v>.json) and where its
    # files are (default: the illustrative models shipped in vault/scoring_models/).
    scoring_model: str = "v1"
    scoring_models_dir: Path | None = None
    # Citizens' notifications (gateway/notify/, docs/operations.md): the senders a deployment
    # runs, comma-separated (file: the demo's JSON lines; smtp: e-mail; sms-http: an SMS
    # gateway), how often the delivery job runs (an access reaches the person within a minute)
    # and each sender's own settings.
    notify_sender: str = "file"
    notify_every_seconds: float = Field(default=10.0, gt=0, le=30)
    notify_file: Path | None = None
    notify_smtp_host: str = "127.0.0.1"
    notify_smtp_port: int = Field(default=25, ge=1, le=65535)
    notify_smtp_from: str = "sijill@localhost"
    notify_smtp_starttls: bool = False
    notify_smtp_username: str | None = None
    notify_smtp_password: str | None = None
    notify_sms_url: str | None = None
    notify_sms_token: str | None = None

    @field_validator("database_url", "vault_database_url", "audit_database_url")
    @classmethod
    def _valid_url(cls, value: str | None, info: object) -> str | None:
        return _check_database_url(value, f"SIJILL_{getattr(info, 'field_name', '').upper()}")

    @field_validator("policy_engine")
    @classmethod
    def _valid_engine(cls, value: str) -> str:
        if value == "embedded":
            return value
        parts = urlsplit(value)
        if parts.scheme == "unix" and not parts.netloc and parts.path.startswith("/"):
            return value  # a sidecar's socket file: reachable from this host only
        if parts.scheme == "https" and parts.hostname:
            return value.rstrip("/")
        if parts.scheme == "http" and parts.hostname:
            if _is_loopback(parts.hostname):
                return value.rstrip("/")
            # A decision read in clear over the network can be rewritten on the way (a spoofed
            # "allow"); only a sidecar on this host may speak plain HTTP.
            raise ValueError(
                "SIJILL_POLICY_ENGINE: a remote OPA must be reached over https:// "
                "(plain http:// only on loopback: 127.0.0.0/8, ::1, localhost)"
            )
        raise ValueError(
            "SIJILL_POLICY_ENGINE must be 'embedded', an https:// OPA URL, "
            "an http:// URL on loopback, or unix:///path/to/opa.sock"
        )

    @model_validator(mode="after")
    def _defaults(self) -> Settings:
        if self.issuer is None:
            self.issuer = f"http://{self.host}:{self.port}"
        self.issuer = self.issuer.rstrip("/")
        if self.database_url is None:
            self.database_url = f"sqlite:///{(self.data_dir / 'sijill.db').absolute()}"
        if self.vault_database_url is None:
            self.vault_database_url = self.database_url
        if self.audit_database_url is None:
            self.audit_database_url = self.database_url
        return self

    @field_validator("client_cert_header")
    @classmethod
    def _valid_cert_header(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not re.fullmatch(r"[A-Za-z0-9-]{1,64}", value):
            raise ValueError("SIJILL_CLIENT_CERT_HEADER is a header name such as X-SSL-Client-Cert")
        return value.lower()

    @field_validator("client_cert_proxies")
    @classmethod
    def _valid_cert_proxies(cls, value: str) -> str:
        try:
            _networks(value)
        except ValueError:
            raise ValueError(
                "SIJILL_CLIENT_CERT_PROXIES lists addresses or networks such as 10.0.0.5 or "
                "10.0.0.0/24, comma-separated"
            ) from None
        return value

    @model_validator(mode="after")
    def _cert_header_needs_proxies(self) -> Settings:
        if self.client_cert_header is not None and not self.client_cert_proxies.strip():
            raise ValueError(
                "SIJILL_CLIENT_CERT_HEADER is set: name the proxies allowed to set it in "
                "SIJILL_CLIENT_CERT_PROXIES"
            )
        return self

    @property
    def client_cert_proxy_networks(self) -> tuple[IPNetwork, ...]:
        return _networks(self.client_cert_proxies)

    @field_validator("notify_sender")
    @classmethod
    def _valid_senders(cls, value: str) -> str:
        names = [n.strip() for n in value.split(",") if n.strip()]
        unknown = sorted(set(names) - set(NOTIFY_SENDERS))
        if not names or unknown:
            raise ValueError(
                "SIJILL_NOTIFY_SENDER lists senders among file, smtp, sms-http (comma-separated)"
            )
        return ",".join(names)

    @field_validator("notify_sms_url")
    @classmethod
    def _valid_sms_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme == "https" and parts.hostname:
            return value
        if parts.scheme == "http" and parts.hostname and _is_loopback(parts.hostname):
            return value
        # The gateway receives the person's number and the notice: never in clear on a network.
        raise ValueError(
            "SIJILL_NOTIFY_SMS_URL must be an https:// URL (plain http:// only on loopback)"
        )

    @model_validator(mode="after")
    def _sms_needs_url(self) -> Settings:
        if "sms-http" in self.notify_senders and self.notify_sms_url is None:
            raise ValueError("SIJILL_NOTIFY_SENDER names sms-http: set SIJILL_NOTIFY_SMS_URL")
        return self

    @property
    def notify_senders(self) -> list[str]:
        return self.notify_sender.split(",")

    @field_validator("audit_witnesses")
    @classmethod
    def _valid_witnesses(cls, value: str) -> str:
        WitnessEndpoint.parse_list(value)
        return value

    @field_validator("audit_origin")
    @classmethod
    def _valid_origin(cls, value: str | None) -> str | None:
        if value is not None and (not value or any(c.isspace() for c in value) or "+" in value):
            raise ValueError("SIJILL_AUDIT_ORIGIN is one word: no spaces, no '+'")
        return value

    @property
    def witness_endpoints(self) -> list[WitnessEndpoint]:
        return WitnessEndpoint.parse_list(self.audit_witnesses)

    @property
    def default_audit_origin(self) -> str:
        """The origin a new log takes unless SIJILL_AUDIT_ORIGIN names one: the issuer's host
        name (not its port, which may change) and /audit."""
        assert self.issuer is not None
        return f"{urlsplit(self.issuer).hostname or 'localhost'}/audit"

    @property
    def database_urls(self) -> dict[str, str]:
        """The three stores (the CNDP's "separate stores"); they may all be one database."""
        assert self.database_url and self.vault_database_url and self.audit_database_url
        return {
            "main": self.database_url,
            "vault": self.vault_database_url,
            "audit": self.audit_database_url,
        }

    def prepare_data_dir(self) -> None:
        """Create the data directory (mode 0700) and prove it is writable."""
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            probe = self.data_dir / ".write-probe"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise SettingsError(
                f"SIJILL_DATA_DIR {str(self.data_dir)!r} is not writable: {exc.strerror or exc}"
            ) from None


# Variables of the project's own tooling, not settings of the gateway: the test suite's and the
# benchmarks' databases.
TOOLING_VARIABLES = frozenset(
    {
        "SIJILL_TEST_DATABASE_URL",
        "SIJILL_REQUIRE_POSTGRES",
        "SIJILL_BENCH_DATABASE_URL",
        "SIJILL_TEST_OPA_URL",
    }
)


def check_environment(environ: Mapping[str, str] | None = None) -> None:
    """Refuse a ``SIJILL_`` variable that names no setting: a mistyped one (``SIJILL_PROT``)
    would otherwise be ignored, and the gateway would run on a default the operator did not
    mean."""
    known = {f"SIJILL_{name.upper()}" for name in Settings.model_fields} | TOOLING_VARIABLES
    for variable in sorted(environ if environ is not None else os.environ):
        if variable.upper().startswith("SIJILL_") and variable.upper() not in known:
            close = difflib.get_close_matches(variable.upper(), sorted(known), n=1)
            hint = f"; did you mean {close[0]}?" if close else " (README.md lists them)"
            raise SettingsError(f"{variable} is not a Sijill setting{hint}")


def load_settings(**overrides: object) -> Settings:
    """Read and validate settings; raise :class:`SettingsError` with one readable line."""
    check_environment()
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "settings"
        message = first["msg"].removeprefix("Value error, ")
        env = f"SIJILL_{field.upper()}"
        if env in message or message.startswith("SIJILL_"):
            raise SettingsError(message) from None
        raise SettingsError(f"{env}: {message}") from None
