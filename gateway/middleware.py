"""Plain ASGI middleware: request id, access log and metrics; bounded request bodies.

Paths are logged and counted by their route template (``/v1/rnp/persons/{idcs}``), never
the raw path: a raw path can carry an IDCS or a pseudonym.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable

import anyio
from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.logs import request_id
from gateway.problems import problem_response

_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
log = logging.getLogger("sijill.access")


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "sijill_http_requests_total",
            "HTTP requests",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "sijill_http_request_seconds",
            "HTTP request latency",
            ["method", "route"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )
        self.audit_alarms = Counter(
            "sijill_audit_alarms_total",
            "Audit log alarms: the signer refused the store's tree, a witness refused or saw "
            "a larger tree",
            registry=self.registry,
        )
        # Decisions the enforcement point had to narrow (gateway/authz.py): a non-zero rate
        # means the engine is misconfigured or not the one deployed.
        self.policy_anomalies = Counter(
            "sijill_policy_anomalies_total",
            "Policy decisions that released fields beyond request and registry (dropped)",
            ["action"],
            registry=self.registry,
        )
        # Every security event seen (gateway/security.py), appended or only counted.
        self.security_events = Counter(
            "sijill_security_events_total",
            "Security events (refused credentials, sign-in failures, rate-limit refusals, "
            "policy anomalies, client registry changes)",
            ["kind"],
            registry=self.registry,
        )


def route_template(scope: Scope) -> str:
    """The template of the route the router matched (it records it in the scope)."""
    route = scope.get("route")
    return str(getattr(route, "path", "<unmatched>")) if route is not None else "<unmatched>"


class RequestContext:
    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        supplied = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        rid = supplied if _SAFE_ID.match(supplied) else uuid.uuid4().hex
        token = request_id.set(rid)
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = route_template(scope)
            self.metrics.requests.labels(scope["method"], route, str(status)).inc()
            self.metrics.latency.labels(scope["method"], route).observe(elapsed)
            log.info(
                "request",
                extra={
                    "method": scope["method"],
                    "route": route,
                    "status": status,
                    "ms": round(elapsed * 1000, 2),
                },
            )
            request_id.reset(token)


# The connection is closed after a refused body: what the client still sends is never read.
_CLOSE = {"Connection": "close"}


def _too_large() -> HTTPException:
    return HTTPException(413, "The request body is larger than this route accepts.", _CLOSE)


def _too_slow() -> HTTPException:
    return HTTPException(408, "The request body did not arrive in time.", _CLOSE)


class BoundedBody:
    """Every request body is bounded in size and in time, before it is parsed or the caller
    authenticated (an unauthenticated client must not make a worker buffer or wait).

    A declared ``Content-Length`` over the route's limit is refused before a byte of the body
    is read; a chunked body is counted as it streams and refused once over. The whole body
    must arrive within ``read_timeout_s`` of the first read: a client that declares more than
    it sends (or trickles it) gets 408, and the connection is closed. Both raise Starlette's
    ``HTTPException``, which FastAPI lets through its body parsing to the problem handlers.
    """

    def __init__(
        self, app: ASGIApp, *, limit_for: Callable[[str, str], int], read_timeout_s: float
    ) -> None:
        self.app = app
        self.limit_for = limit_for
        self.read_timeout_s = read_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["method"], scope["path"])
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            # Refused before the app runs, so answered here rather than by the handlers.
            response = problem_response(
                413, "too-large", "Request too large", _too_large().detail,
                instance=scope["path"], headers=dict(_CLOSE),
            )  # fmt: skip
            await response(scope, receive, send)
            return
        received = 0
        deadline: float | None = None

        async def bounded_receive() -> Message:
            nonlocal received, deadline
            if deadline is None:
                deadline = anyio.current_time() + self.read_timeout_s
            try:
                with anyio.fail_after(max(0.0, deadline - anyio.current_time())):
                    message = await receive()
            except TimeoutError:
                raise _too_slow() from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _too_large()
                if not message.get("more_body", False):
                    deadline = float("inf")  # the body is complete: later reads wait on disconnect
            return message

        await self.app(scope, bounded_receive, send)
