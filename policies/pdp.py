"""``sijill pdp serve``: an OPA Data API–compatible decision server backed by the embedded engine.

It speaks the subset of OPA's REST API the gateway uses (https://www.openpolicyagent.org/docs/rest-api):
``POST /v1/data/{path}`` with ``{"input": …}`` answers ``{"result": …, "decision_id": …}``
(``result`` absent when the document is undefined, as OPA does), ``?provenance=true`` adds
``{"provenance": {"bundles": {"sijill": {"revision": …}}}}``, ``GET /health`` and
``GET /v1/policies``. So the OPA engine is exercised over real HTTP here, and a real OPA can take
this server's place unchanged.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from policies.embedded import EmbeddedEngine
from policies.engine import DECISION_PATH, PolicyError, PolicyUnavailable

__all__ = ["MAX_INPUT_BYTES", "ReloadWatcher", "create_pdp_app"]

# An input document is a few kilobytes; a larger body is refused before it is parsed.
MAX_INPUT_BYTES = 1 << 20
VERSION = "sijill-pdp"


def _error(status: int, code: str, message: str) -> JSONResponse:
    # OPA's error shape: {"code": ..., "message": ...}; messages never echo the input.
    return JSONResponse({"code": code, "message": message}, status_code=status)


class ReloadWatcher:
    """Polls the policy files and reloads the engine when they change (no restart)."""

    def __init__(self, engine: EmbeddedEngine, interval_s: float) -> None:
        self._engine = engine
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pdp-reload", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._engine.reload()
            except (PolicyError, OSError):
                # Keep serving the last good revision; the operator sees it in /health.
                continue


def create_pdp_app(engine: EmbeddedEngine, *, reload_every_s: float | None = None) -> FastAPI:
    watcher = ReloadWatcher(engine, reload_every_s) if reload_every_s else None

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if watcher is not None:
            watcher.start()
        try:
            yield
        finally:
            if watcher is not None:
                watcher.stop()

    app = FastAPI(
        title="Sijill PDP", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan
    )

    @app.get("/health")
    def health() -> JSONResponse:
        try:
            engine.ping()
        except PolicyUnavailable:
            return _error(500, "internal_error", "policy engine is not ready")
        return JSONResponse({})

    @app.get("/v1/policies")
    def policies() -> JSONResponse:
        modules = [
            {"id": p.name, "raw": p.read_text(encoding="utf-8")}
            for p in sorted(engine.policy_dir.glob("*.rego"))
            if not p.name.endswith("_test.rego")
        ]
        return JSONResponse({"result": modules})

    @app.post("/v1/data/{path:path}")
    async def data(path: str, request: Request) -> JSONResponse:
        body = await request.body()
        if len(body) > MAX_INPUT_BYTES:
            return _error(413, "invalid_parameter", "request body too large")
        try:
            doc: Any = json.loads(body) if body else {}
        except ValueError:
            return _error(400, "invalid_parameter", "body is not valid JSON")
        if not isinstance(doc, dict):
            return _error(400, "invalid_parameter", "body must be a JSON object")
        decision_id = str(uuid.uuid4())
        answer: dict[str, Any] = {"decision_id": decision_id}
        if request.query_params.get("provenance", "").lower() in {"true", "1"}:
            answer["provenance"] = {
                "version": VERSION,
                "bundles": {"sijill": {"revision": engine.revision}},
            }
        if path.strip("/") != DECISION_PATH:
            return JSONResponse(answer)  # undefined document: no "result", like OPA
        try:
            # The evaluation blocks (C++), so it runs in the thread pool, not the event loop.
            answer["result"] = await run_in_threadpool(engine.evaluate, doc.get("input"))
        except PolicyUnavailable:
            return _error(500, "internal_error", "policy evaluation failed")
        return JSONResponse(answer)

    return app
