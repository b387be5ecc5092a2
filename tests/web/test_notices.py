"""The portal's notifications page in Chromium, in Arabic, French and English: a citizen
chooses to be told by e-mail, an agency then reads their record, and the demo's sender (run by
``sijill serve``'s delivery job) writes the notice in the citizen's language within a minute,
with the agency and the purpose but no value; a bad address is refused on the page; opting out
says the pending messages were dropped."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from playwright.sync_api import expect

from tests.web.conftest import ROOT, Citizens, WebDemo, screenshot

# A citizen of the demo for each language, other than the portal tests' own choices.
CITIZEN_FOR = {"ar": 2, "fr": 0, "en": 1}
ALLOWED = {"ar": "اطلعت", "fr": "a consulté votre dossier", "en": "accessed your record"}
STOPPED = {"ar": "لن تتوصل", "fr": "ne serez plus prévenu", "en": "no longer be notified"}


def _sent_to(demo: WebDemo, address: str) -> list[dict[str, str]]:
    path = demo.data_dir / "notifications.jsonl"
    if not path.exists():
        return []
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return [m for m in lines if m["to"] == address]


@pytest.mark.parametrize("lang", ["ar", "fr", "en"])
def test_a_citizen_chooses_notifications_and_an_access_reaches_them(
    citizens: Citizens, demo: WebDemo, lang: str
) -> None:
    n = CITIZEN_FOR[lang]
    citizen = demo.citizen(n)
    address = f"citizen-{lang}@example.ma"
    page = citizens.page(n, lang, "/portal/notifications")
    expect(page.locator("nav a[aria-current=page]")).to_have_attribute(
        "href", "/portal/notifications"
    )

    # A mobile number is not an e-mail address: refused on the page, nothing saved.
    page.check("#channel-email")
    page.fill("#address", "+212600000000")
    page.click("form[action='/portal/notifications'] button[type=submit]")
    expect(page.locator("[role=alert]")).to_be_visible()
    expect(page.locator("form[action='/portal/notifications/stop']")).to_have_count(0)

    page.check("#channel-email")
    page.fill("#address", address)
    page.check("#scope-all")
    page.select_option("#language", lang)
    page.click("form[action='/portal/notifications'] button[type=submit]")
    expect(page.locator("[role=status]")).to_be_visible()
    expect(page.locator("dl")).to_contain_text(address)
    screenshot(page, f"portal-notices-{lang}")

    started = time.monotonic()
    subprocess.run(
        [sys.executable, str(ROOT / "examples" / "agency_client.py"),
         "--credentials", str(demo.data_dir / "demo" / "credentials.json"),
         "--cnie", citizen["cnie"]],
        env=demo.env, check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    deadline = started + 60
    while not _sent_to(demo, address) and time.monotonic() < deadline:
        time.sleep(0.5)
    messages = _sent_to(demo, address)
    assert messages, "no notice within a minute"
    for message in messages:
        assert message["language"] == lang
        assert ALLOWED[lang] in message["text"] or "refuse" in message["text"]
        for value in (citizen["idcs"], citizen["cnie"]):
            assert value not in message["text"]

    page.click("form[action='/portal/notifications/stop'] button")
    expect(page.locator("[role=status]")).to_contain_text(STOPPED[lang])
    expect(page.locator("form[action='/portal/notifications/stop']")).to_have_count(0)
