"""An agency request takes one thread-pool hop: the token check, the rate limit and the
route's work (consents, policy, durable audit append, vault read) run in the same worker
thread, and the event loop does none of it; a refused caller is still refused before its
request's validation is answered, and no work starts for it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import anyio.to_thread
import pytest

from tests.gateway.conftest import World

PURPOSE = "amo_tadamon_enrolment"


def spy(
    monkeypatch: pytest.MonkeyPatch, owner: object, name: str, seen: dict[str, set[int]]
) -> None:
    """Record the thread each call of ``owner.name`` runs in, then make the real call."""
    real: Callable[..., Any] = getattr(owner, name)

    def recorded(*args: Any, **kwargs: Any) -> Any:
        seen.setdefault(name, set()).add(threading.get_ident())
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, recorded)


def pseudonym_of(world: World, token: str) -> str:
    found = world.api.post(
        "/v1/agency/lookup",
        json={"cnie": "AB123456", "purpose": PURPOSE},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert found.status_code == 200, found.text
    return str(found.json()["pseudonym"])


def test_an_agency_query_checks_its_caller_and_does_its_work_in_one_worker_thread(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = world.token("cnss")
    pseudonym = pseudonym_of(world, token)
    services = world.services
    seen: dict[str, set[int]] = {}
    spy(monkeypatch, services.oauth.verifier, "verify", seen)
    spy(monkeypatch, services.rate_limiter, "take", seen)
    spy(monkeypatch, services.consents, "policy_context", seen)
    spy(monkeypatch, services.policy, "decide", seen)
    spy(monkeypatch, services.audit, "append", seen)
    spy(monkeypatch, services.vault, "reveal_many", seen)
    hops: list[int] = []  # the event loop's thread, once per hand-off to a worker thread
    run_sync = anyio.to_thread.run_sync

    async def counted(*args: Any, **kwargs: Any) -> Any:
        hops.append(threading.get_ident())
        return await run_sync(*args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counted)

    response = world.api.post(
        f"/v1/agency/persons/{pseudonym}/query",
        json={"fields": ["given_name_lat", "birth_date"], "purpose": PURPOSE},
        headers={"Authorization": f"Bearer {token}"},
    )

    assert response.status_code == 200, response.text
    assert response.json()["released"]["given_name_lat"] == "Fatima"
    assert set(seen) == {"verify", "take", "policy_context", "decide", "append", "reveal_many"}
    threads = set().union(*seen.values())
    assert len(threads) == 1, seen
    assert len(hops) == 1
    assert hops[0] not in threads  # the event loop handed the work off and did none of it


@pytest.mark.parametrize(
    ("authorization", "status", "kind"),
    [
        ("Bearer not-a-token", 401, "invalid-token"),
        ("", 401, "unauthorized"),
    ],
)
def test_a_refused_caller_with_an_invalid_request_hears_its_refusal_and_nothing_is_recorded(
    world: World, authorization: str, status: int, kind: str
) -> None:
    pseudonym = pseudonym_of(world, world.token("cnss"))
    before = world.audit_size()

    response = world.api.post(
        f"/v1/agency/persons/{pseudonym}/query",
        json={"fields": [], "purpose": PURPOSE},
        headers={"Authorization": authorization} if authorization else {},
    )

    assert response.status_code == status, response.text
    assert response.json()["type"].endswith(f"/{kind}")
    assert "WWW-Authenticate" in response.headers
    assert world.audit_size() == before


def test_an_admitted_caller_with_an_invalid_request_hears_the_validation_problem(
    world: World,
) -> None:
    token = world.token("cnss")
    pseudonym = pseudonym_of(world, token)
    before = world.audit_size()

    response = world.api.post(
        f"/v1/agency/persons/{pseudonym}/query",
        json={"fields": [], "purpose": PURPOSE},
        headers={"Authorization": f"Bearer {token}"},
    )

    assert response.status_code == 422, response.text
    assert world.audit_size() == before


def test_a_caller_of_another_kind_is_refused_before_any_work(world: World) -> None:
    pseudonym = pseudonym_of(world, world.token("cnss"))
    before = world.audit_size()

    response = world.api.post(
        f"/v1/agency/persons/{pseudonym}/query",
        json={"fields": ["given_name_lat"], "purpose": PURPOSE},
        headers={"Authorization": f"Bearer {world.citizen_token('fatima')}"},
    )

    assert response.status_code == 403, response.text
    assert response.json()["type"].endswith("/forbidden")
    assert world.audit_size() == before
