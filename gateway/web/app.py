"""Mounts the web room on the gateway's app: ``/portal``, ``/console``, ``/office`` and their
assets."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.staticfiles import StaticFiles

from gateway.services import Services
from gateway.web.core import build_room

STATIC = Path(__file__).with_name("static")
ASSETS = "/web-assets"


def mount_web(app: FastAPI, services: Services) -> None:
    """The portal and the console are sub-applications: OAuth clients of the API they sit
    beside, which they call in process (``app``) with the signed-in person's token."""
    from gateway.web import console, office, office_erasure, portal

    room = build_room(app, services)
    rooms = (
        ("/portal", portal.routes()),
        ("/console", console.routes()),
        # The erasure queue builds on the office's desk pages (gateway/web/office_erasure.py).
        ("/office", [*office.routes(), *office_erasure.routes()]),
    )
    for prefix, routes in rooms:
        sub = Starlette(routes=routes)
        sub.state.services = services
        sub.state.settings = services.settings
        sub.state.api_app = app
        sub.state.web_room = room
        app.mount(prefix, sub)
    app.mount(ASSETS, StaticFiles(directory=STATIC), name="web-assets")
