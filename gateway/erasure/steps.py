"""The steps of one person's erasure, in the order they run, each idempotent.

``register`` first: the vault crypto-shreds every version of the person's record (their data
keys go, so no ciphertext of theirs can be decrypted again), the sector pseudonyms and blind
indexes are deleted (every sector's pseudonym then resolves as an unknown one), their
rectification requests are shredded, and the IDCS stays as an ``erased`` tombstone that
issuance never draws again (Law 72.18 art. 8). Then
their RSU membership ends and the household is rescored (the last member: the household is
dissolved and its declaration shredded), the consent room forgets them (with the notices not
yet sent to their keyed tag, their activation code's among them), their sign-in goes (TOTP
secret, activation code) and so does their notification choice (its address
crypto-shredded). Any sign-in token still valid is refused by the enforcement point, which
serves no erased person.
"""

from __future__ import annotations

from collections.abc import Callable

from consent import ConsentService
from gateway.erasure.service import StepFn
from identity import RectificationRequests, Register
from identity.activation import ActivationCodes
from identity.oauth import CitizenTotpAuthenticator
from rsu import HouseholdRegister

__all__ = ["STEP_NAMES", "person_steps"]

STEP_NAMES = ("register", "household", "consents", "sign_in", "notifications")


def person_steps(
    *,
    register: Register,
    rectifications: RectificationRequests,
    households: HouseholdRegister,
    consents: ConsentService,
    citizens: CitizenTotpAuthenticator,
    activation_codes: ActivationCodes,
    notifications: Callable[[str], bool],
) -> list[tuple[str, StepFn]]:
    def shred(idcs: str) -> int:
        register.set_status(idcs, "erased")
        # Their rectification requests hold proposed values of the record: shredded with it.
        return 1 + rectifications.forget(idcs)

    def leave_household(idcs: str) -> int:
        return 0 if households.remove_member(idcs, reason="erased", succession=True) is None else 1

    def sign_in(idcs: str) -> int:
        return int(citizens.disable(idcs)) + int(activation_codes.withdraw(idcs))

    def notices(idcs: str) -> int:
        return int(notifications(idcs))

    steps: list[tuple[str, StepFn]] = [
        ("register", shred),
        ("household", leave_household),
        ("consents", consents.forget),
        ("sign_in", sign_in),
        ("notifications", notices),
    ]
    assert tuple(name for name, _ in steps) == STEP_NAMES
    return steps
