"""RFC 8785 JSON Canonicalization Scheme (JCS): the one encoder of the bytes Sijill signs.

Audit entries (their leaf hash commits to these bytes) and the policy layer's decisions (their
Ed25519 signature covers them) are both written here. It lives in ``storekit``, the bottom floor,
because ``audit`` and ``vault`` may not import each other and both may import ``storekit``; the
encoder needs nothing but ``orjson`` and ``rfc8785``, and canonical JSON is the form in which
those rooms store what they commit to.

The ``rfc8785`` library is the reference, and it is pure Python. For a *plain* document (strings,
booleans, nulls, integers within I-JSON's ±(2^53 - 1), arrays, and objects whose keys are ASCII)
RFC 8785's output is exactly orjson's with sorted keys:

- orjson writes compact UTF-8 without ``ensure_ascii`` and escapes strings as ECMAScript's
  ``JSON.stringify`` does (RFC 8785 §3.2.2.2): the two short escapes it shares, ``\\u00xx`` in
  lowercase hex for the other controls, every other code point as itself;
- an integer of at most 2^53 - 1 in magnitude is written by ECMAScript's Number serialisation
  (§3.2.2.3) as its plain decimal digits, as orjson writes it;
- on ASCII keys UTF-16 code-unit order (§3.2.3) equals code-point order, which orjson sorts by.

Everything else (floats, larger integers, non-ASCII keys, lone surrogates) goes through the
library. ``tests/storekit/test_jcs.py`` holds the two outputs equal on random documents and on
every Unicode scalar value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
import rfc8785

__all__ = ["MAX_SAFE_INTEGER", "NotCanonicalisable", "canonical_json", "is_plain"]

# I-JSON (RFC 7493 §2.2), which RFC 8785 builds on: integers exactly representable as doubles.
MAX_SAFE_INTEGER = 2**53 - 1


class NotCanonicalisable(ValueError):
    """The document has no RFC 8785 form (a lone surrogate, a non-string key, an integer or
    float I-JSON does not admit, a value JSON does not have). Carries no part of the document."""


def is_plain(value: Any) -> bool:
    """Whether ``value`` is a plain document (see the module docstring): its JCS bytes are
    orjson's sorted output."""
    # Loops rather than all(...) over generators, and plain strings (nearly every value)
    # recognised without a call: this runs for every entry appended and decision checked.
    kind = type(value)
    if kind is str or value is None or kind is bool:
        return True
    if kind is int:
        return bool(-MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER)
    if kind is list:
        for v in value:  # noqa: SIM110 - a loop, not all() over a generator (see above)
            if type(v) is not str and not is_plain(v):
                return False
        return True
    if kind is dict:
        for k, v in value.items():
            if not (type(k) is str and k.isascii()):
                return False
            if type(v) is not str and v is not None and not is_plain(v):
                return False
        return True
    return False


def canonical_json(document: Mapping[str, Any] | list[Any], *, plain: bool | None = None) -> bytes:
    """The RFC 8785 canonical JSON of ``document``.

    ``plain``: whether the caller already knows the document to be plain (:func:`is_plain`),
    so that the walk over it can be skipped; by default it is checked here. Raises
    :class:`NotCanonicalisable` when the document has no canonical form.
    """
    if is_plain(document) if plain is None else plain:
        try:
            return orjson.dumps(document, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:
            pass  # a lone surrogate: the library decides
    try:
        return rfc8785.dumps(document)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise NotCanonicalisable(f"document has no RFC 8785 form: {type(exc).__name__}") from None
