"""The witnesses an audit log submits to, as the settings name them (light: no web framework
and nothing else of the gateway, so that the settings parse them and every command-line
process can build the log)."""

from __future__ import annotations

from dataclasses import dataclass

from audit import CosignatureVerifier, InvalidCheckpoint


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
