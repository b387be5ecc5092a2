"""RFC 9457 problem details: every error the API returns, with a stable ``type`` per kind.

A ``detail`` names what was wrong (a field's location, a rule) and never echoes a submitted
value: the request may carry personal data, and error bodies end up in agency logs.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from audit import AuditUnavailable
from policies import PolicyUnavailable
from vault import KeyProviderError

TYPE_BASE = "https://sijill.ma/problems/"
MEDIA_TYPE = "application/problem+json"
# Seconds a client is asked to wait after an outage answer (503) before it tries again.
RETRY_AFTER_S = 5
log = logging.getLogger("sijill.gateway")

_STATUS_TITLES = {
    400: ("bad-request", "Bad request"),
    401: ("unauthorized", "Authentication required"),
    403: ("forbidden", "Forbidden"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    408: ("request-timeout", "Request timeout"),
    409: ("conflict", "Conflict"),
    413: ("too-large", "Request too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    422: ("validation-error", "Invalid request"),
    429: ("rate-limited", "Too many requests"),
    500: ("internal-error", "Internal error"),
    503: ("unavailable", "Service unavailable"),
}


class ValidationIssue(BaseModel):
    """One place where a request was not valid (never the submitted value)."""

    field: str
    error: str | None = None
    message: str | None = None
    reason: str | None = None


class ProblemDocument(BaseModel):
    """RFC 9457 problem details, as every error of this API is answered.

    ``type`` is stable per error kind; the extension members appear where they apply.
    """

    model_config = ConfigDict(title="Problem", extra="allow")

    type: str = Field(description="A URI naming the error kind (stable)")
    title: str = Field(description="A short summary of the error kind")
    status: int = Field(description="The HTTP status code", ge=400, le=599)
    detail: str = Field(description="What went wrong; never echoes submitted personal data")
    instance: str | None = Field(default=None, description="The path the error is about")
    errors: list[ValidationIssue] | None = Field(
        default=None, description="Validation errors: where, and of which kind"
    )
    reasons: list[str] | None = Field(default=None, description="Policy reason codes")
    decision_id: str | None = Field(default=None, description="The policy decision to quote")
    required_scopes: list[str] | None = None
    reason: str | None = None
    unavailable: list[str] | None = Field(
        default=None, description="Readiness: the dependencies that are unreachable"
    )
    error: str | None = Field(default=None, description="OAuth 2.0 error code (RFC 6749 §5.2)")
    error_description: str | None = None


PROBLEM_SCHEMA_REF = "#/components/schemas/Problem"
_STATUS_DESCRIPTIONS = {
    400: "Malformed request",
    401: "No valid access token",
    403: "Not allowed for this caller (kind, scope or policy)",
    404: "No such resource (or not this caller's to know)",
    408: "The request was not received in time",
    409: "Conflicts with the current state",
    413: "The request body is larger than this route accepts",
    422: "Invalid parameters or body",
    429: "Too many requests from this client",
    503: "A database, the key provider or the policy engine is unreachable; retry later",
}


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for these error statuses, each a problem document."""
    return {
        status: {
            "description": _STATUS_DESCRIPTIONS.get(status, _STATUS_TITLES[status][1]),
            "content": {MEDIA_TYPE: {"schema": {"$ref": PROBLEM_SCHEMA_REF}}},
        }
        for status in statuses
    }


def problem_schemas() -> dict[str, Any]:
    """The OpenAPI component schemas of :class:`ProblemDocument` (``Problem`` and its parts)."""
    schema = ProblemDocument.model_json_schema(ref_template="#/components/schemas/{model}")
    return {**schema.pop("$defs", {}), "Problem": schema}


class Problem(Exception):
    """Raise from a route to answer with a problem document."""

    def __init__(
        self,
        status: int,
        kind: str,
        detail: str,
        *,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: object,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.kind = kind
        self.title = title or _STATUS_TITLES.get(status, ("", "Error"))[1]
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra

    def document(self, instance: str | None = None) -> dict[str, object]:
        """The problem document this answers with (alone, or as one item of a batch)."""
        return problem_document(
            self.status, self.kind, self.title, self.detail, instance=instance, **self.extra
        )


def problem_document(
    status: int,
    kind: str,
    title: str,
    detail: str,
    *,
    instance: str | None = None,
    **extra: object,
) -> dict[str, object]:
    body: dict[str, object] = {
        "type": TYPE_BASE + kind,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    body.update(extra)
    return body


def problem_response(
    status: int,
    kind: str,
    title: str,
    detail: str,
    *,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: object,
) -> JSONResponse:
    body = problem_document(status, kind, title, detail, instance=instance, **extra)
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def outage_response(request: Request, kind: str, detail: str) -> JSONResponse:
    """503 with Retry-After: a dependency is down, nothing was released or changed."""
    return problem_response(
        503,
        kind,
        "Service unavailable",
        detail,
        instance=request.url.path,
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


def _where(loc: Sequence[object]) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    return ".".join(parts) or "body"


def _document(app: FastAPI) -> None:
    """Add the Problem schema to the app's OpenAPI document (routes refer to it by $ref)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            schema.setdefault("components", {}).setdefault("schemas", {}).update(problem_schemas())
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]


def install(app: FastAPI) -> None:
    _document(app)

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return _problem_json(request, exc)

    def _problem_json(request: Request, exc: Problem) -> JSONResponse:
        return JSONResponse(
            exc.document(instance=request.url.path),
            status_code=exc.status,
            media_type=MEDIA_TYPE,
            headers=exc.headers,
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # A route that checks its caller in its own worker thread (gateway/authz.py admit)
        # has not checked it yet: a refused caller hears its refusal, not the validation.
        settle = getattr(request.state, "settle_credentials", None)
        if settle is not None:
            try:
                await settle()
            except Problem as refused:
                return _problem_json(request, refused)
        # Only where and what kind of error, never the input: pydantic's "input" key carries
        # the submitted value, which may be a CNIE number or a name.
        broken = next((e for e in exc.errors() if e.get("type") == "json_invalid"), None)
        if broken is not None:
            # Its location is a character offset in the body, not a member's name.
            at = [p for p in broken.get("loc", ()) if isinstance(p, int)]
            where = f" (at character {at[0]})" if at else ""
            return problem_response(
                422,
                "malformed-json",
                "Malformed JSON",
                f"The request body is not valid JSON{where}: check its quotes, commas and "
                "brackets, and that Content-Type is application/json.",
                instance=request.url.path,
                errors=[{"field": "body", "error": "json_invalid", "message": "invalid JSON"}],
            )
        errors = [
            {
                "field": _where(e.get("loc", ())),
                "error": e.get("type", "invalid"),
                "message": e.get("msg", "invalid"),
            }
            for e in exc.errors()
        ]
        fields = ", ".join(sorted({e["field"] for e in errors}))
        return problem_response(
            422,
            "validation-error",
            "Invalid request",
            f"The request is not valid at: {fields}.",
            instance=request.url.path,
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind, title = _STATUS_TITLES.get(exc.status_code, ("error", "Error"))
        detail = exc.detail if isinstance(exc.detail, str) else title
        if exc.status_code == 404 and detail == "Not Found":
            detail = "No such resource."
        if exc.status_code == 405:
            detail = "This method is not allowed on this resource."
        return problem_response(
            exc.status_code,
            kind,
            title,
            detail,
            instance=request.url.path,
            headers=getattr(exc, "headers", None),
        )

    # Outages that reach the app from any layer (a route, token verification, the token
    # endpoint): the request fails closed with 503, never a 500 or a dropped connection.
    @app.exception_handler(AuditUnavailable)
    async def _audit_down(request: Request, exc: AuditUnavailable) -> JSONResponse:
        log.warning("audit store unavailable", extra={"error_class": type(exc).__name__})
        return outage_response(
            request, "audit-unavailable", "The audit log store is unreachable; try again."
        )

    @app.exception_handler(PolicyUnavailable)
    async def _policy_down(request: Request, exc: PolicyUnavailable) -> JSONResponse:
        log.warning("policy engine unavailable", extra={"error_class": type(exc).__name__})
        return outage_response(
            request, "policy-unavailable", "The policy engine did not answer; try again."
        )

    @app.exception_handler(KeyProviderError)
    async def _keys_down(request: Request, exc: KeyProviderError) -> JSONResponse:
        log.warning("key provider unavailable", extra={"error_class": type(exc).__name__})
        return outage_response(
            request, "key-provider-unavailable", "The key provider is unreachable; try again."
        )

    @app.exception_handler(PoolTimeout)
    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: Exception) -> JSONResponse:
        # Connection-level failures only (refused, reset, pool exhausted, locked); a
        # constraint violation or a bad statement is a bug and stays a 500.
        down = isinstance(exc, OperationalError | InterfaceError | PoolTimeout) or bool(
            getattr(exc, "connection_invalidated", False)
        )
        if not down:
            return await _unexpected(request, exc)
        log.warning("database unavailable", extra={"error_class": type(exc).__name__})
        return outage_response(
            request, "database-unavailable", "A database is unreachable; try again."
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # exc_info: the JSON formatter logs the class and stack locations, never the message.
        log.error("unhandled error", exc_info=exc)
        return problem_response(
            500,
            "internal-error",
            "Internal error",
            "The server could not complete the request; it has been logged.",
            instance=request.url.path,
        )
