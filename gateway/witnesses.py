"""The witnesses an audit log submits to, as configured (light: no web framework, so that
command-line work and every process it starts can build the log)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from audit import CosignatureVerifier, Cosigner, InvalidCheckpoint

if TYPE_CHECKING:
    from gateway.settings import Settings


@dataclass(frozen=True)
class WitnessEndpoint:
    """A witness the log submits to: its URL prefix and its published cosignature key."""

    url: str
    key: CosignatureVerifier

    @classmethod
    def parse_list(cls, text: str) -> list[WitnessEndpoint]:
        """``SIJILL_AUDIT_WITNESSES``: ``<url> <key>`` pairs separated by commas."""
        endpoints = []
        for item in filter(None, (part.strip() for part in text.split(","))):
            url, _, key = item.partition(" ")
            if not url.startswith(("http://", "https://")) or not key.strip():
                raise ValueError("each witness reads '<http(s) URL> <witness key>'")
            try:
                endpoints.append(cls(url.rstrip("/"), CosignatureVerifier.parse(key.strip())))
            except InvalidCheckpoint as exc:
                raise ValueError(f"witness key of {url}: {exc}") from None
        return endpoints


EMBEDDED_WITNESS = "witness.sijill.demo"


def embedded_witness(settings: Settings) -> Cosigner:
    """The demo's own witness key (``SIJILL_EMBEDDED_WITNESS``), in <data dir>/witness."""
    from gateway.keys import load_or_create_ed25519

    key = load_or_create_ed25519(settings.data_dir / "witness" / "witness-signing.pem")
    return Cosigner(EMBEDDED_WITNESS, key)


def all_witnesses(settings: Settings) -> list[WitnessEndpoint]:
    """The witnesses the log submits to: SIJILL_AUDIT_WITNESSES, and the demo's own."""
    endpoints = settings.witness_endpoints
    if settings.embedded_witness:
        cosigner = embedded_witness(settings)
        endpoints.append(WitnessEndpoint(f"{settings.issuer}/witness", cosigner.verifier))
    return endpoints
