"""The OpenAPI document is the contract: schemathesis generates requests for every operation,
with no token and with a valid token of each kind of principal, and every answer must be no
server error, with a documented status, a documented content type and a body that matches
the documented schema (problem+json for every error)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from gateway import db
from gateway.app import create_app
from gateway.settings import load_settings
from tests.gateway.conftest import World, build_world

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Examples per operation and principal: the whole contract run stays within a few minutes.
MAX_EXAMPLES = 30


@pytest.fixture(scope="module")
def contract_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp: Path = tmp_path_factory.mktemp("contract")
    url = f"sqlite:///{tmp / 'sijill.db'}"
    db.upgrade(dict.fromkeys(db.STORES, url))
    configured = load_settings(
        data_dir=tmp / "data",
        database_url=url,
        host="127.0.0.1",
        port=8000,
        # Generated requests come fast; the rate limit has its own tests.
        agency_rate_per_s=1e6,
        agency_burst=1_000_000,
    )
    configured.prepare_data_dir()
    app = create_app(configured)
    try:
        yield build_world(app, configured)
    finally:
        app.state.services.close()


def _send(world: World, case: schemathesis.Case, headers: dict[str, str]) -> Any:
    """The case through the world's own client: the app is not restarted for each request
    (schemathesis's ASGI transport would run the app's lifespan, which closes its stores)."""
    kwargs = case.as_transport_kwargs(base_url=world.issuer, headers=headers)
    cookies = kwargs.pop("cookies", None) or {}
    if cookies:
        kwargs["headers"]["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    data = kwargs.pop("data", None)
    if isinstance(data, bytes | str):
        kwargs["content"] = data
    elif data is not None:
        kwargs["data"] = data
    return world.api.request(
        kwargs.pop("method"),
        kwargs.pop("url"),
        **{
            k: v
            for k, v in kwargs.items()
            if k in {"params", "headers", "json", "files", "content", "data"}
        },
    )


def _token(world: World, principal: str) -> str | None:
    if principal == "none":
        return None
    if principal == "citizen":
        return world.citizen_token("fatima")
    return world.token({"agency": "cnss", "auditor": "cndp", "office": "office-fes"}[principal])


@pytest.mark.parametrize("principal", ["none", "agency", "citizen", "auditor", "office"])
def test_every_operation_keeps_to_the_contract(contract_world: World, principal: str) -> None:
    schema = schemathesis.openapi.from_dict(contract_world.api.app.openapi())
    token = _token(contract_world, principal)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    failures = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        # Valid requests and requests that break the schema (each must get a documented 4xx).
        strategy = operation.as_strategy(
            generation_mode=schemathesis.GenerationMode.POSITIVE
        ) | operation.as_strategy(generation_mode=schemathesis.GenerationMode.NEGATIVE)

        @given(case=strategy)
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.explicit, Phase.generate],
        )
        def conforms(case: schemathesis.Case) -> None:
            response = _send(contract_world, case, headers)
            case.validate_response(response, checks=CHECKS, headers=headers)

        try:
            conforms()
        except (Exception, BaseExceptionGroup) as exc:  # schemathesis raises a group
            failures.append(f"{operation.label}: {type(exc).__name__}: {str(exc)[:1500]}")
    assert operations > 20
    assert not failures, "\n\n".join(failures)
