"""Times in the public API: RFC 3339 strings in UTC with a ``Z`` (docs/api-times.md).

Inside, Sijill counts integer nanoseconds since the epoch (the audit entries, the policy input,
the stores). At the HTTP boundary every time is an RFC 3339 string; an integer count appears
only where a verifier needs the exact value, and then its name ends in ``_ns``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

NS = 1_000_000_000


def rfc3339(ns: int) -> str:
    """``ns`` (nanoseconds since the epoch) as RFC 3339 UTC, to the microsecond."""
    seconds, rest = divmod(ns, NS)
    moment = datetime.fromtimestamp(seconds, tz=UTC).replace(microsecond=rest // 1000)
    return moment.isoformat().replace("+00:00", "Z")


def to_ns(moment: datetime) -> int:
    """An RFC 3339 time from a request as nanoseconds (a time without offset is UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp()) * NS + moment.microsecond * 1000


def public_times(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with each ``…_at_ns`` member as ``…_at`` in RFC 3339."""
    out: dict[str, Any] = {}
    for key, value in document.items():
        if key.endswith("_at_ns"):
            out[key.removesuffix("_ns")] = rfc3339(value) if value is not None else None
        else:
            out[key] = value
    return out
