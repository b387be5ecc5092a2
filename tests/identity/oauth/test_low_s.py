"""ECDSA signatures are malleable: (r, s) verifies as (r, n - s). Sijill issues every ES256
token with s ≤ n/2 and refuses the other form, so a copy of a live token cannot pass as a new
token (the one token attack an outside probe got through)."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from identity.oauth.jose import P256_ORDER, is_low_s
from identity.oauth.tokens import InvalidToken


def _high_s(token: str) -> str:
    signing_input, _, encoded = token.rpartition(".")
    raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    s = int.from_bytes(raw[32:], "big")
    flipped = raw[:32] + (P256_ORDER - s).to_bytes(32, "big")
    return f"{signing_input}.{base64.urlsafe_b64encode(flipped).rstrip(b'=').decode()}"


def test_every_token_issued_has_the_low_s_form(oauth: Any) -> None:
    for _ in range(64):  # a random s is above n/2 half the time
        token, _claims = oauth.issuer.access_token(client_id="portal", scope="openid")
        assert is_low_s(token)


def test_the_high_s_copy_of_a_live_token_is_refused(oauth: Any) -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    token, claims = oauth.issuer.access_token(client_id="portal", scope="openid")
    assert oauth.verifier.verify(token).token_id == claims["jti"]
    copy = _high_s(token)
    # The copy's signature is valid ECDSA: plain verification accepts it …
    signing_input, _, encoded = copy.rpartition(".")
    raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    r, s = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
    from identity.oauth.jose import unverified_header

    key = oauth.issuer._keys.find(unverified_header(token)["kid"]).private_key.public_key()
    key.verify(encode_dss_signature(r, s), signing_input.encode(), ec.ECDSA(hashes.SHA256()))
    # … and the resource server refuses it.
    with pytest.raises(InvalidToken, match="canonical form"):
        oauth.verifier.verify(copy)
