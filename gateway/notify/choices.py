"""A citizen's notification choice: channel, address, scope and language.

The address goes into the vault, a ``contact`` record of its own under a random subject id;
the choice in the main store names that record and the person's audit tag, nothing else. The
caller (a route, the portal) has the policy's decision first; revealing the address back to
the person takes the decision's sealed capability, like any vault read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from consent.notifications import (
    Channel,
    Language,
    NotificationPreferences,
    Preference,
    Scope,
)
from vault import Decision, Vault

CONTACT_KIND = "contact"
ADDRESS_FIELD = "notice_address"
# A mailbox as RFC 5321 §4.1.2 allows it in practice (no quoted local part, no IP literal),
# and an international mobile number in E.164 (ITU-T E.164: + and up to 15 digits).
_EMAIL = re.compile(
    r"\A[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})+\Z"
)
_MOBILE = re.compile(r"\A\+[1-9][0-9]{7,14}\Z")


class InvalidAddress(ValueError):
    """The address does not fit the channel (the message never quotes it)."""


@dataclass(frozen=True)
class Choice:
    preference: Preference
    address: str | None  # when it was revealed


def check_address(channel: Channel, address: str) -> str:
    address = address.strip()
    pattern = _EMAIL if channel == "email" else _MOBILE
    if len(address) > 254 or not pattern.match(address):
        expected = "an e-mail address" if channel == "email" else "a mobile number as +212…"
        raise InvalidAddress(f"The address is not {expected}.")
    return address


class NotificationChoices:
    def __init__(
        self, vault: Vault, preferences: NotificationPreferences, channels: frozenset[str]
    ) -> None:
        self.vault = vault
        self.preferences = preferences
        # The channels this deployment's senders reach (SIJILL_NOTIFY_SENDER).
        self.channels = channels

    def choose(
        self, idcs: str, *, channel: Channel, address: str, scope: Scope, language: Language
    ) -> Preference:
        """Set the person's choice; raises :class:`InvalidAddress` before anything is
        written."""
        address = check_address(channel, address)
        tag = self.vault.subject_tag(idcs)
        existing = self.preferences.get(tag)
        contact = existing.contact_subject if existing else f"contact:{self.vault.new_token()}"
        self.vault.store(contact, CONTACT_KIND, {ADDRESS_FIELD: address})
        try:
            return self.preferences.set(
                tag, contact_subject=contact, channel=channel, scope=scope, language=language
            )
        except Exception:
            if existing is None:
                self.vault.erase(contact)  # no choice names it: no address left behind
            raise

    def of(self, idcs: str) -> Preference | None:
        return self.preferences.get(self.vault.subject_tag(idcs))

    def address(self, preference: Preference, decision: Decision) -> str:
        """The address, under a decision that released it for the contact record."""
        found = self.vault.reveal(preference.contact_subject, [ADDRESS_FIELD], decision)
        return str(found[ADDRESS_FIELD])

    def forget(self, idcs: str) -> bool:
        """Opt out (or erasure): the choice goes, the notices not yet sent to the person are
        dropped and the address is crypto-shredded; whether there was a choice."""
        removed = self.preferences.remove(self.vault.subject_tag(idcs))
        if removed is None:
            return False
        self.vault.erase(removed.contact_subject)
        return True
