"""The HTTP server's own bound: a client must send a request's headers in time.

uvicorn waits for headers as long as a client likes (its keep-alive timeout stops with the
first byte of a request), so a client that trickles headers holds a connection forever. The
body is bounded once the app runs (gateway.middleware.BoundedBody); the headers must be
bounded here, before it does.
"""

from __future__ import annotations

import asyncio
import json
from functools import cache
from typing import Any

from uvicorn.protocols.http.auto import AutoHTTPProtocol

from gateway.problems import MEDIA_TYPE, TYPE_BASE
from gateway.settings import load_settings


@cache
def _header_timeout_s() -> float:
    # Worker processes re-read the settings from the environment, as create_app does.
    return load_settings().header_read_timeout_s


def _timeout_response() -> bytes:
    body = json.dumps(
        {
            "type": TYPE_BASE + "request-timeout",
            "title": "Request timeout",
            "status": 408,
            "detail": "The request headers did not arrive in time.",
        }
    ).encode()
    head = (
        "HTTP/1.1 408 Request Timeout\r\n"
        f"content-type: {MEDIA_TYPE}\r\ncontent-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


class HeaderTimeoutProtocol(AutoHTTPProtocol):  # type: ignore[valid-type,misc]
    """uvicorn's HTTP protocol, answering 408 and closing when a request's headers are not
    complete within ``SIJILL_HEADER_READ_TIMEOUT_S`` of the connection opening or of the
    previous response."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)
        self._arm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
        # A new request's headers are complete when the protocol starts a new cycle.
        waiting_after = self.cycle
        self._header_timer = self.loop.call_later(
            _header_timeout_s(), self._headers_late, waiting_after
        )

    def _headers_late(self, waiting_after: object) -> None:
        self._header_timer = None
        if self.cycle is not waiting_after or self.transport.is_closing():
            return  # the headers came in time; BoundedBody watches the body from here
        self.transport.write(_timeout_response())
        self.transport.close()
