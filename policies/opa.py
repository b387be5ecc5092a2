"""The OPA engine: decisions from an OPA server (or ``sijill pdp serve``) over its REST Data API.

``POST /v1/data/sijill/authz/decision`` with ``{"input": …}`` through opa-python-client's
``OpaClient.query_rule``, asking for ``provenance`` so the answer names the bundle revision the
server evaluated. A server loaded from plain files reports no bundle revision; the engine then
uses the revision of the policy directory it was deployed from (``policy_dir``).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from opa_client import OpaClient

from policies.decision_log import DecisionLog
from policies.engine import (
    DECISION_PATH,
    POLICY_DIR,
    PolicyResult,
    PolicyUnavailable,
    load_data,
    policy_files,
    policy_revision,
    result_from_document,
)
from policies.unix_http import UnixSocketAdapter

__all__ = ["OpaEngine"]

BUNDLE_NAME = "sijill"


class OpaEngine:
    """Decides by asking an OPA-compatible server; every failure is :class:`PolicyUnavailable`."""

    def __init__(
        self,
        url: str,
        timeout: float = 2.0,
        *,
        policy_dir: Path | str = POLICY_DIR,
        path: str = DECISION_PATH,
        token: str | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme == "unix":
            # unix:///path/to/opa.sock: a sidecar on a socket file (policies/unix_http.py).
            if parts.netloc or not parts.path.startswith("/"):
                raise ValueError("OPA socket URL must be unix:///absolute/path")
            host, port, tls = "localhost", 80, False
        else:
            if parts.scheme not in {"http", "https"} or not parts.hostname:
                raise ValueError("OPA URL must be http(s)://host[:port] or unix:///path")
            if parts.path not in {"", "/"}:
                # opa-python-client builds <scheme>://host:port/v1/...; a path prefix is lost.
                raise ValueError("OPA URL must not carry a path")
            tls = parts.scheme == "https"
            host, port = parts.hostname, parts.port or (443 if tls else 80)
        # retries=0: a caller waiting on a dead PDP should be told 503 now, not after backoff.
        self._client = OpaClient(
            host=host, port=port, ssl=tls, timeout=timeout, retries=0, token=token
        )
        if parts.scheme == "unix":
            # The client has no transport option; its session is the one seam it offers.
            self._client._session.mount("http://", UnixSocketAdapter(parts.path))
        self._package, _, self._rule = path.replace("/", ".").rpartition(".")
        files = policy_files(Path(policy_dir))
        self._local_revision = policy_revision(files)
        self._log = DecisionLog(load_data(p for p in files if p.suffix == ".json"))
        self._revision = self._local_revision

    @property
    def revision(self) -> str:
        """The revision the server reported on its last answer (or the deployed files')."""
        return self._revision

    def _query(self, input: Mapping[str, object]) -> dict[str, Any]:
        try:
            answer = self._client.query_rule(
                dict(input), self._package, self._rule, query_params={"provenance": "true"}
            )
        except requests.Timeout:
            raise PolicyUnavailable("policy engine timed out") from None
        except (requests.RequestException, ValueError) as exc:
            raise PolicyUnavailable(f"policy engine unreachable: {type(exc).__name__}") from None
        if not isinstance(answer, dict) or "result" not in answer:
            raise PolicyUnavailable("policy decision is undefined on the server")
        return answer

    def _revision_of(self, answer: Mapping[str, Any]) -> str:
        provenance = answer.get("provenance")
        if isinstance(provenance, dict):
            bundle = (provenance.get("bundles") or {}).get(BUNDLE_NAME) or {}
            revision = bundle.get("revision") if isinstance(bundle, dict) else None
            if isinstance(revision, str) and revision:
                return revision
        return self._local_revision

    def decide(self, input: Mapping[str, object]) -> PolicyResult:
        started = time.perf_counter()
        try:
            answer = self._query(input)
            revision = self._revision_of(answer)
            decision_id = answer.get("decision_id")
            if not isinstance(decision_id, str) or not decision_id:
                decision_id = str(uuid.uuid4())
            result = result_from_document(answer["result"], decision_id, revision)
        except PolicyUnavailable:
            self._log.failure(input, "engine_error")
            raise
        self._revision = revision
        self._log.record(input, result, time.perf_counter() - started)
        return result

    def ping(self) -> None:
        answer = self._query({"subject": {"kind": "probe"}, "action": "probe", "time_ns": 0})
        result = result_from_document(answer["result"], "ping", self._revision_of(answer))
        if result.allow:
            raise PolicyUnavailable("policy allows the probe request; refusing to serve")

    def close(self) -> None:
        self._client.close_connection()
