"""The UserInfo endpoint (OpenID Connect Core 1.0 §5.3).

A citizen's portal token, presented as RFC 6750 bearer (or DPoP) credentials, yields ``sub``
and the claims its scopes release (``identity.oauth.SCOPE_CLAIMS``); register data is read
through the policy-mediated API only, never through this endpoint.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from gateway.auth import Principal, require_principal
from gateway.problems import responses
from gateway.routes.oauth import NO_STORE
from gateway.services import services_of

router = APIRouter(tags=["oauth"])
_citizen = Depends(require_principal(kinds=["citizen"], scopes=["openid"]))


def _claims(request: Request, principal: Principal) -> JSONResponse:
    body: dict[str, Any] = services_of(request).oauth.userinfo(principal.scopes, principal.subject)
    return JSONResponse(body, headers=NO_STORE)


@router.get(
    "/oauth/userinfo",
    summary="UserInfo (OpenID Connect Core §5.3)",
    responses=responses(401, 403, 503),
)
def userinfo(request: Request, principal: Principal = _citizen) -> JSONResponse:
    return _claims(request, principal)


@router.post(
    "/oauth/userinfo",
    summary="UserInfo, form-posted (OpenID Connect Core §5.3.1)",
    responses=responses(401, 403, 408, 413, 503),
)
def userinfo_post(request: Request, principal: Principal = _citizen) -> JSONResponse:
    return _claims(request, principal)
