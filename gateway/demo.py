"""The embedded demo: a data dir a newcomer can use at once.

Writes ``<data dir>/demo/credentials.json`` in one fixed shape; each area adds its part
through :data:`STEPS` (keys, a synthetic population, agencies, the auditor …).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console

from gateway.settings import Settings

Credentials = dict[str, Any]
# Each step receives the settings, the credentials being built and a console for progress.
STEPS: list[Callable[[Settings, Credentials, Console], None]] = []


def empty_credentials(settings: Settings) -> Credentials:
    return {"issuer": settings.issuer, "agencies": [], "office": None, "citizens": [],
            "auditor": None}


def initialise(settings: Settings, console: Console) -> Path:
    path = settings.data_dir / "demo" / "credentials.json"
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.exists():
        existing: Credentials = json.loads(path.read_text())
        if existing.get("issuer") == settings.issuer:
            console.print("demo data already initialised; reusing it")
            return path
    credentials = empty_credentials(settings)
    for step in STEPS:
        step(settings, credentials, console)
    # The file holds private keys and TOTP secrets of demo accounts: owner-only.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(credentials, fh, indent=2, ensure_ascii=False)
    return path
