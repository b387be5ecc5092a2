"""The composition root: builds every room's service object from the settings, once per app.

Routes reach these through :func:`get_services`; nothing else holds global state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from sqlalchemy import Engine

from gateway.db import make_engine, ping
from gateway.settings import Settings


@dataclass
class Services:
    settings: Settings
    engines: dict[str, Engine]
    # name -> check that raises when that dependency is unreachable (see /readyz)
    readiness: dict[str, Callable[[], None]] = field(default_factory=dict)
    closers: list[Callable[[], None]] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)

    def close(self) -> None:
        for closer in reversed(self.closers):
            closer()
        for engine in {id(e): e for e in self.engines.values()}.values():
            engine.dispose()


def build_services(settings: Settings) -> Services:
    by_url: dict[str, Engine] = {}
    engines = {}
    for store, url in settings.database_urls.items():
        if url not in by_url:
            by_url[url] = make_engine(url)
        engines[store] = by_url[url]
    services = Services(settings=settings, engines=engines)
    for store, engine in engines.items():
        services.readiness[f"database.{store}"] = lambda e=engine: ping(e)
    return services


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services
