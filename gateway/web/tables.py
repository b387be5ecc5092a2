"""The web room's table (``main`` store): the browser sessions of the portal and the console.

Migration ``web_0001`` creates it. A session row is found by the SHA-256 of the cookie's
random value (a copy of the table cannot be replayed as cookies); the tokens it holds are
sealed under the room's own key file. Times are integer Unix seconds.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, LargeBinary, MetaData, String, Table

metadata = MetaData()

web_sessions = Table(
    "web_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("client", String(16), nullable=False),  # "portal" | "console" | "office"
    Column("subject", String(64), nullable=False),
    Column("tokens", LargeBinary, nullable=False),  # sealed JSON: access and ID token, sid
    Column("csrf", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False, index=True),
)
