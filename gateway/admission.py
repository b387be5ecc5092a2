"""How a route reaches the enforcement point: the dependencies that authenticate its caller and
give its work an :class:`gateway.authz.Enforcer` bound to the caller and the action.

:func:`authorize` gives a synchronous route its enforcer (the caller checked in one worker
thread, the route's work in another); :func:`admit` gives an asynchronous route an
:class:`Admission`, whose :meth:`Admission.run` checks the caller and does the whole work in
one worker thread. Both are marked with :data:`MEDIATED_ATTR`, which the route walk
(gateway/route_walk.py) looks for.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from gateway.auth import Credentials, PrincipalKind, checked_principal, credentials_of, source_of
from gateway.authz import Enforcer
from gateway.middleware import route_template
from gateway.problems import Problem
from gateway.services import Services, get_services
from policies.registry import action_scope

T = TypeVar("T")

# The clients whose requests spend a rate limit: machines querying persons' records. A
# law-enforcement client queries one order's person at a time; a flood is misuse either way.
RATE_LIMITED: frozenset[PrincipalKind] = frozenset({"agency", "law_enforcement"})

# Marks a dependency as the route's policy enforcement; the route-walk test looks for it.
MEDIATED_ATTR = "__sijill_mediated_action__"


@dataclass
class Admission:
    """A request's credentials and the action it asks, to be checked in a worker thread:
    :meth:`run` authenticates the caller, checks kind and scope, spends a client's rate limit
    and only then hands the route's work its :class:`Enforcer`, all in one thread-pool hop
    (the event loop reads headers only, so neither a revocation read, the rate limit's
    statement nor the audit append's fsync ever blocks it).

    The route's work cannot reach an :class:`Enforcer` any other way: a refused caller gets
    its 401, 403 or 429 and the work never starts (fail closed)."""

    services: Services
    credentials: Credentials
    action: str
    kinds: frozenset[PrincipalKind]
    scopes: tuple[str, ...]
    route: str | None = None
    source: str | None = None
    per_item: bool = False
    _enforcer: Enforcer | None = field(default=None, init=False, repr=False)

    def enforcer(self) -> Enforcer:
        """The enforcer of an admitted caller, or the problem that refuses it (blocking:
        call it off the event loop). Checked once a request."""
        if self._enforcer is None:
            principal = checked_principal(self.credentials, self.kinds, self.scopes)
            enforcer = Enforcer(
                services=self.services,
                principal=principal,
                action=self.action,
                route=self.route,
                source=self.source,
            )
            if principal.kind in RATE_LIMITED and not self.per_item:
                try:
                    self.services.rate_limiter.check(principal.client_id)
                except Problem:
                    enforcer.record_rate_limited()
                    raise
            self._enforcer = enforcer
        return self._enforcer

    async def run(self, work: Callable[[Enforcer], T]) -> T:
        """``work`` with this request's enforcer, after the caller is admitted, in one worker
        thread."""
        return await run_in_threadpool(lambda: work(self.enforcer()))

    async def settle(self) -> None:
        """Check the caller without running any work: a request whose body or path fails
        validation is still answered 401/403/429 first when its caller is refused, as for
        a route whose dependency authenticates (gateway/problems.py)."""
        if self._enforcer is None:
            await run_in_threadpool(self.enforcer)


def _needed_scopes(action: str, scopes: Sequence[str] | None) -> tuple[str, ...]:
    needed = (action_scope(action),)
    if scopes is not None and tuple(scopes) != needed:
        raise ValueError(
            f"route for {action!r} names scopes {list(scopes)}, the policy data "
            f"requires {list(needed)}"
        )
    return needed


def _admission(
    request: Request,
    services: Services,
    action: str,
    kinds: frozenset[PrincipalKind],
    needed: tuple[str, ...],
    per_item: bool,
) -> Admission:
    return Admission(
        services=services,
        credentials=credentials_of(request),
        action=action,
        kinds=kinds,
        scopes=needed,
        route=route_template(request.scope),
        source=source_of(request),
        per_item=per_item,
    )


def authorize(
    action: str,
    *,
    kinds: Sequence[PrincipalKind],
    scopes: Sequence[str] | None = None,
    per_item: bool = False,
) -> Callable[..., Awaitable[Enforcer]]:
    """The dependency every personal-data route takes: authenticated principal + enforcer.

    The scope the action needs comes from the policy data (``actions.json``), so the
    gateway's early 403 ``insufficient_scope`` and the policy agree by construction; a route
    that names scopes must name exactly that one (checked when the route is defined).
    An agency's request spends one token of its rate limit here; a batch route (``per_item``)
    spends one per item instead, once it knows their number (:meth:`Enforcer.charge`).
    Authentication and the rate limit take one worker-thread hop; the route's own work
    (a synchronous route) another. :func:`admit` makes both one.
    """
    needed = _needed_scopes(action, scopes)
    allowed = frozenset(kinds)

    async def dependency(request: Request, services: Services = Depends(get_services)) -> Enforcer:
        admission = _admission(request, services, action, allowed, needed, per_item)
        return await run_in_threadpool(admission.enforcer)

    setattr(dependency, MEDIATED_ATTR, action)
    dependency.__name__ = f"authorize_{action}"
    return dependency


def admit(
    action: str, *, kinds: Sequence[PrincipalKind], scopes: Sequence[str] | None = None
) -> Callable[..., Awaitable[Admission]]:
    """:func:`authorize` for an asynchronous route that hands its whole work to
    :meth:`Admission.run`: the caller is checked in the worker thread that does the work, so
    a request costs one thread-pool hop instead of two or three."""
    needed = _needed_scopes(action, scopes)
    allowed = frozenset(kinds)

    async def dependency(request: Request, services: Services = Depends(get_services)) -> Admission:
        admission = _admission(request, services, action, allowed, needed, False)
        request.state.settle_credentials = admission.settle
        return admission

    setattr(dependency, MEDIATED_ATTR, action)
    dependency.__name__ = f"admit_{action}"
    return dependency
