"""Answers of the hot routes, serialised once."""

from __future__ import annotations

from pydantic import BaseModel
from starlette.responses import Response


def model_json(model: BaseModel, status_code: int = 200) -> Response:
    """``model`` as a JSON body, serialised by pydantic in one pass.

    A route that returns a :class:`Response` skips FastAPI's validation of its result against
    ``response_model``: the model built here is already that type, and for a synchronous
    route that validation is a second trip through the thread pool. Routes still declare
    ``response_model`` so the OpenAPI document describes the body.
    """
    return Response(model.model_dump_json(), status_code, media_type="application/json")
