"""The embedded engine: the Rego evaluated in process by regopy (rego-cpp).

regopy 1.5.2 recompiles on every ``Interpreter.query()`` (~2.5 ms); a bundle built once per
policy revision and run with ``query_bundle_entrypoint`` is several times cheaper. The bundle
is immutable and shared; the interpreter that carries the input is not thread-safe (the input
is interpreter state), so each thread gets its own, created lazily and rebuilt when the
revision changes. ``reload()`` compiles the new files off to the side and swaps them in with
one reference assignment, so requests in flight finish on the revision they started with.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import regopy

from policies.decision_log import DecisionLog
from policies.engine import (
    DECISION_PATH,
    POLICY_DIR,
    PolicyError,
    PolicyResult,
    PolicyUnavailable,
    load_data,
    policy_files,
    policy_revision,
    result_from_document,
)

__all__ = ["EmbeddedEngine", "compile_bundle", "evaluate_entrypoint"]

# A request that must be denied by any sane policy: used by ping() to prove the engine runs.
_PROBE = {"subject": {"kind": "probe"}, "action": "probe", "resource": {}, "time_ns": 0}


@dataclass(frozen=True)
class _Compiled:
    revision: str
    bundle: Any  # regopy.Bundle
    data: dict[str, Any]
    entrypoints: tuple[str, ...]


def evaluate_entrypoint(interpreter: Any, bundle: Any, entrypoint: str, input: object) -> Any:
    """Run one entrypoint; return its value, or raise PolicyUnavailable."""
    try:
        interpreter.set_input(regopy.Input(input))
        output = interpreter.query_bundle_entrypoint(bundle, entrypoint)
    except (regopy.RegoError, ValueError, TypeError) as exc:
        # regopy reports evaluation errors (conflicts, recursion) as a non-JSON output,
        # which its Output parser turns into a ValueError.
        raise PolicyUnavailable(f"embedded engine error: {type(exc).__name__}") from None
    results = output.results
    if not results or not results[0].expressions:
        raise PolicyUnavailable("policy decision is undefined")
    return results[0].expressions[0]


def compile_bundle(
    policy_dir: Path,
    data_dir: Path | None,
    entrypoints: tuple[str, ...],
    *,
    include_tests: bool = False,
) -> _Compiled:
    """Compile the Rego and data under ``policy_dir`` into one bundle."""
    files = policy_files(policy_dir, data_dir)
    revision = policy_revision(files)
    rego_files = [p for p in files if p.suffix == ".rego"]
    if include_tests:
        rego_files += sorted(policy_dir.glob("*_test.rego"))
    data = load_data(p for p in files if p.suffix == ".json")
    if not rego_files:
        raise PolicyError(f"no Rego modules in {policy_dir}")
    builder = regopy.Interpreter()
    try:
        for path in rego_files:
            builder.add_module(path.name, path.read_text(encoding="utf-8"))
        builder.add_data_json(json.dumps(data))
        bundle = builder.build(None, list(entrypoints))
    except regopy.RegoError as exc:
        raise PolicyError(f"policy does not compile: {exc}") from None
    # A bundle that failed to build must never be queried: rego-cpp crashes the process.
    if not bundle.ok():
        raise PolicyError(f"policy does not compile: {bundle.node()}")
    return _Compiled(revision, bundle, data, tuple(entrypoints))


class EmbeddedEngine:
    """Decides in process. Thread-safe; ``reload()`` picks up changed files without restart."""

    def __init__(
        self,
        policy_dir: Path | str = POLICY_DIR,
        *,
        data_dir: Path | str | None = None,
        decision_log: DecisionLog | None = None,
        entrypoint: str = DECISION_PATH,
    ) -> None:
        self._policy_dir = Path(policy_dir)
        self._data_dir = None if data_dir is None else Path(data_dir)
        self._entrypoint = entrypoint
        self._reload_lock = threading.Lock()
        self._local = threading.local()
        self._compiled = compile_bundle(self._policy_dir, self._data_dir, (entrypoint,))
        self._log = decision_log or DecisionLog(self._compiled.data)

    @property
    def revision(self) -> str:
        return self._compiled.revision

    @property
    def policy_dir(self) -> Path:
        return self._policy_dir

    @property
    def data(self) -> Mapping[str, Any]:
        """The static data of the loaded revision (registry, programs, fields, actions)."""
        return self._compiled.data

    def reload(self) -> bool:
        """Recompile if the files changed; return whether the revision changed.

        A policy that does not compile raises :class:`PolicyError` and the running revision
        stays in force (a bad deploy must not open or close the gate by accident).
        """
        with self._reload_lock:
            files = policy_files(self._policy_dir, self._data_dir)
            if policy_revision(files) == self._compiled.revision:
                return False
            compiled = compile_bundle(self._policy_dir, self._data_dir, (self._entrypoint,))
            self._compiled = compiled
            self._log.update_vocabulary(compiled.data)
            return True

    def _interpreter(self, compiled: _Compiled) -> Any:
        local = self._local
        if getattr(local, "revision", None) != compiled.revision:
            local.interpreter = regopy.Interpreter()
            local.revision = compiled.revision
        return local.interpreter

    def evaluate(self, input: object) -> Any:
        """The raw decision document (no logging, no id): for tests and the PDP."""
        compiled = self._compiled
        if not isinstance(input, Mapping):
            input = {}
        return evaluate_entrypoint(
            self._interpreter(compiled), compiled.bundle, self._entrypoint, dict(input)
        )

    def decide(self, input: Mapping[str, object]) -> PolicyResult:
        started = time.perf_counter()
        compiled = self._compiled
        try:
            doc = evaluate_entrypoint(
                self._interpreter(compiled), compiled.bundle, self._entrypoint, dict(input)
            )
            result = result_from_document(doc, str(uuid.uuid4()), compiled.revision)
        except PolicyUnavailable:
            self._log.failure(input, "engine_error")
            raise
        self._log.record(input, result, time.perf_counter() - started)
        return result

    def ping(self) -> None:
        compiled = self._compiled
        doc = evaluate_entrypoint(
            self._interpreter(compiled), compiled.bundle, self._entrypoint, _PROBE
        )
        result = result_from_document(doc, "ping", compiled.revision)
        if result.allow:
            raise PolicyUnavailable("policy allows the probe request; refusing to serve")
