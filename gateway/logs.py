"""JSON logs through structlog, one object a line, each carrying its request's id.

Every logger of the process (ours, uvicorn's, libraries') goes through one structlog
``ProcessorFormatter``. Nothing here formats exception messages: a database error's message
can quote the parameters of the statement, so errors are logged by class and stack location
only. uvicorn's ``color_message`` (the same message with ANSI colour escapes) is dropped, and
escapes are stripped from messages: a log collector stores them as garbage.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import traceback
from contextvars import ContextVar

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _request_id(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    event["request_id"] = request_id.get()
    return event


def _plain(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    event.pop("color_message", None)
    if isinstance(event.get("msg"), str):
        event["msg"] = _ANSI.sub("", event["msg"])
    return event


def _error_location(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    info = event.pop("exc_info", None)
    exc = info[1] if isinstance(info, tuple) else info if isinstance(info, BaseException) else None
    if exc is not None:
        event["error_class"] = type(exc).__name__
        event["stack"] = [
            f"{f.filename}:{f.lineno} {f.name}" for f in traceback.extract_tb(exc.__traceback__)
        ]
    return event


def _level_lower(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    event["level"] = str(event.get("level", "")).lower()
    return event


def formatter() -> structlog.stdlib.ProcessorFormatter:
    chain: list[Processor] = [
        structlog.stdlib.add_log_level,
        _level_lower,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
        _request_id,
        structlog.processors.EventRenamer("msg"),
        _plain,
        _error_location,
    ]
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=chain,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.JSONRenderer(
                serializer=json.dumps, default=str, ensure_ascii=False
            ),
        ],
    )


def configure(level: str = "INFO", stream: object = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)  # type: ignore[arg-type]
    handler.setFormatter(formatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # The access log repeats what our own request log says, with the query string.
    logging.getLogger("uvicorn.access").disabled = True
    # One line a witness submission a second says nothing an operator needs; failures are
    # logged by the checkpointer itself.
    logging.getLogger("httpx").setLevel(logging.WARNING)
