"""The words of a notice, in the person's language (the portal's catalogues, ``notice.*``).

An access notice says which agency used the record, for which purpose, when, and whether it
was refused: never a field's name or value, never an identifier (Law 09.08 art. 23: the
message crosses a network and a phone's lock screen). The other notices say what their
document holds: an activation code, a breach's nature and measures.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from gateway.web.i18n import Formats, translations


def _words(language: str) -> Callable[[str], str]:
    return translations(language).gettext


def access_notice(
    body: Mapping[str, Any], language: str, agency_name: str, portal_url: str
) -> tuple[str, str]:
    """(subject, text) of a notice of an agency's use of the record (``body`` as the delivery
    job queued it: agency, purpose, time_ns, outcome)."""
    _ = _words(language)
    purpose = body.get("purpose")
    named = _(f"purpose.{purpose}") if purpose else _("notice.no_purpose")
    if purpose and named == f"purpose.{purpose}":
        named = str(purpose)  # a purpose the catalogue does not name yet: its code
    key = "notice.access.allowed" if body["outcome"] == "allow" else "notice.access.refused"
    text = _(key).format(
        agency=agency_name, purpose=named, when=Formats(language).datetime(int(body["time_ns"]))
    )
    return _("notice.access.subject"), f"{text}\n{_('notice.see_log').format(url=portal_url)}"


def court_order_words(language: str, authority: str, reference: str) -> str:
    """Who used the record, for a law-enforcement authority: it and the court order."""
    return _words(language)("notice.court_order").format(agency=authority, order=reference)


def activation_notice(code: str, expires_at_s: int, language: str) -> tuple[str, str]:
    _ = _words(language)
    until = Formats(language).datetime(expires_at_s * 1_000_000_000)
    text = _("notice.activation").format(code=code, until=until)
    return _("notice.activation.subject"), text


def breach_notice(document: Mapping[str, Any], language: str) -> tuple[str, str]:
    _ = _words(language)
    contact = document.get("contact", {})
    text = _("notice.breach").format(
        title=document.get("title", ""),
        consequences=document.get("likely_consequences") or "",
        measures=document.get("measures") or "",
        contact=contact.get("email", ""),
    )
    return _("notice.breach.subject"), text
