"""``/v1/me/notifications``: a citizen chooses to be told of the uses of their record (every
agency access, only refusals, or only accesses resting on their consent), by e-mail or SMS, in
their language; reads the choice back; opts out. Law 09.08 art. 4 (the address is used with
the person's consent, for this purpose only) and art. 7 (the person knows who used their data).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field

from consent.notifications import Preference
from gateway.admission import authorize
from gateway.authz import Enforcer, Outcome
from gateway.notify.choices import ADDRESS_FIELD, InvalidAddress, check_address
from gateway.problems import Problem, responses
from gateway.services import Services, get_services
from gateway.timefmt import rfc3339
from identity import PersonErased, UnknownPerson

router = APIRouter(
    prefix="/v1/me/notifications",
    tags=["citizens"],
    responses=responses(400, 401, 403, 404, 408, 413, 422, 503),
)
ACTION = "manage_notifications"


class NotificationsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    channel: Literal["email", "sms"]
    address: Annotated[
        str, Field(max_length=254, description="An e-mail address, or a mobile number as +212…")
    ]
    scope: Literal["all", "denials", "consent"] = Field(
        "all",
        description="all: every agency access, allowed or refused; denials: refused ones only; "
        "consent: accesses resting on my consent",
    )
    language: Literal["ar", "fr", "en"] = "fr"


class NotificationsOut(BaseModel):
    channel: str
    address: str
    scope: str
    language: str
    since: str = Field(description="When the choice was first made, RFC 3339 UTC")
    updated_at: str


def _decide(enforcer: Enforcer, choice: Preference | None) -> Outcome:
    """One decision about the caller's own notice address; 403 unless the policy allows."""
    idcs = enforcer.principal.subject
    return enforcer.decide(
        resource={"kind": "contact", "owner": idcs, "fields": [ADDRESS_FIELD]},
        purpose=None,
        vault_subjects=[choice.contact_subject] if choice else [],
        subject_tag=enforcer.subject_tag(idcs),
    ).require_allowed()


def _view(choice: Preference, address: str) -> NotificationsOut:
    return NotificationsOut(
        channel=choice.channel,
        address=address,
        scope=choice.scope,
        language=choice.language,
        since=rfc3339(choice.created_at_ns),
        updated_at=rfc3339(choice.updated_at_ns),
    )


def _enrolled(services: Services, idcs: str) -> None:
    try:
        services.register.vault_subject(idcs)
    except (UnknownPerson, PersonErased):
        raise Problem(404, "not-found", "The register holds no data about you.") from None


_NONE = "You have not chosen to be notified."


@router.put("", response_model=NotificationsOut, summary="Be told of the uses of my record")
def choose(
    body: NotificationsIn,
    enforcer: Enforcer = Depends(authorize(ACTION, kinds=["citizen"])),
    services: Services = Depends(get_services),
) -> NotificationsOut:
    idcs = enforcer.principal.subject
    _enrolled(services, idcs)
    choices = services.notifications
    if body.channel not in choices.channels:
        raise Problem(
            422, "channel-unavailable", "This gateway does not send notices by this channel."
        )
    try:
        address = check_address(body.channel, body.address)
    except InvalidAddress as exc:
        raise Problem(422, "invalid-address", str(exc)) from None
    _decide(enforcer, None)
    choice = choices.choose(
        idcs, channel=body.channel, address=address, scope=body.scope, language=body.language
    )
    return _view(choice, address)


@router.get("", response_model=NotificationsOut, summary="How I am told of the uses of my record")
def current(
    enforcer: Enforcer = Depends(authorize(ACTION, kinds=["citizen"])),
    services: Services = Depends(get_services),
) -> NotificationsOut:
    found = own_choice(services, enforcer)
    if found is None:
        raise Problem(404, "not-found", _NONE)
    return found


def own_choice(services: Services, enforcer: Enforcer) -> NotificationsOut | None:
    """The caller's choice with its address, under one decision of the enforcer's action
    (``GET`` here, and the export's section); None when they made none."""
    choice = services.notifications.of(enforcer.principal.subject)
    outcome = _decide(enforcer, choice)
    if choice is None:
        return None
    address = services.notifications.address(choice, outcome.decisions[choice.contact_subject])
    return _view(choice, address)


@router.delete("", status_code=204, summary="Stop being told; pending notices are dropped")
def opt_out(
    enforcer: Enforcer = Depends(authorize(ACTION, kinds=["citizen"])),
    services: Services = Depends(get_services),
) -> Response:
    _decide(enforcer, None)
    if not services.notifications.forget(enforcer.principal.subject):
        raise Problem(404, "not-found", _NONE)
    return Response(status_code=204)
