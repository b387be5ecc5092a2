"""The shapes of the parameters routes share: the ranges of integers and times the stores can
hold, and the IDCS.

A value outside them is a 422 problem, answered before any store is asked (a log index past
a BIGINT, or a time whose nanoseconds overflow one, would otherwise fail in the driver).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Path
from pydantic import AfterValidator, AwareDatetime, Field

# Log indexes and tree sizes are BIGINT columns.
MAX_INDEX = (1 << 63) - 1
# Times are stored as signed 64-bit nanoseconds since the epoch; nothing in the registers
# predates the epoch.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime.fromtimestamp(MAX_INDEX // 1_000_000_000, tz=UTC)


def _storable(value: datetime) -> datetime:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    if not EARLIEST <= value <= LATEST:
        raise ValueError(f"must lie between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d} (UTC)")
    return value


# A time bound of a log query (``since``, ``until``); without an offset, UTC.
LogTime = Annotated[datetime, AfterValidator(_storable)]
# A time a request sets (a consent's expiry): with its offset.
StorableAwareTime = Annotated[AwareDatetime, AfterValidator(_storable)]

# An IDCS: ten digits, never a leading 0 or 1 (identity/idcs.py), in a path and in a body.
IDCS_PATTERN = r"^[2-9][0-9]{9}$"
IdcsPath = Annotated[str, Path(pattern=IDCS_PATTERN, description="The person's IDCS")]
Idcs = Annotated[str, Field(pattern=IDCS_PATTERN)]
