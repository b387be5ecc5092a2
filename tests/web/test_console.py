"""The CNDP console in Chromium: the auditor signs in with password and TOTP through the
authorization endpoint, reads the latest checkpoint, verifies the whole log in the browser,
browses and filters the entries, reads the statistics, the registry and the policy revisions;
in Arabic, French and English."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from gateway.security import SECURITY_KINDS
from tests.web.conftest import WebDemo, new_page, screenshot, sign_in_auditor


@pytest.fixture(scope="module")
def auditor_page(browser: Any, demo: WebDemo) -> Any:
    page = new_page(browser, demo, "fr")
    sign_in_auditor(page, demo)
    yield page
    page.context.close()


def _lang(page: Any, demo: WebDemo, lang: str, target: str) -> None:
    page.goto(f"{demo.url}/console/language?to={lang}&next={target}")
    expect(page.locator("html")).to_have_attribute("lang", lang)
    expect(page.locator("html")).to_have_attribute("dir", "rtl" if lang == "ar" else "ltr")


@pytest.mark.parametrize("lang", ["ar", "fr", "en"])
def test_the_auditor_verifies_the_whole_log_and_reads_every_console_page(
    auditor_page: Any, demo: WebDemo, lang: str
) -> None:
    page = auditor_page
    _lang(page, demo, lang, "/console/")
    expect(page.locator("dl.record")).to_contain_text("127.0.0.1/audit")
    page.click("#verify-log-button")
    result = page.locator("#verify-log-result")
    expect(result).to_have_attribute("data-result", "ok", timeout=30_000)
    assert re.search(r"\d", result.inner_text())
    expect(page.locator("#verify-log-progress")).to_have_attribute("value", "100")
    screenshot(page, f"console-home-{lang}")

    _lang(page, demo, lang, "/console/entries")
    expect(page.locator("tbody tr").first).to_be_visible()
    page.select_option("#agency", "cnss")
    page.select_option("#outcome", "allow")
    page.click(".filters button")
    expect(page).to_have_url(re.compile(r"agency=cnss"))
    rows = page.locator("tbody tr")
    expect(rows.first).to_be_visible()
    assert all("CNSS" in text for text in rows.locator("td:nth-child(3)").all_inner_texts())
    # Subjects are pseudonyms: no demo citizen's IDCS appears.
    body = page.locator("main").inner_text()
    assert not any(c["idcs"] in body for c in demo.credentials["citizens"])
    screenshot(page, f"console-entries-{lang}")
    # Security events: the filter lists each kind in the page's language.
    page.select_option("#agency", "")
    page.select_option("#outcome", "")
    page.select_option("#security", "any")
    page.click(".filters button")
    expect(page).to_have_url(re.compile(r"security=any"))
    expect(page.locator("#security")).to_have_value("any")
    options = page.locator("#security option").all_inner_texts()
    assert len(options) == 2 + len(SECURITY_KINDS)
    assert not any("security." in text for text in options)  # every kind has its words

    _lang(page, demo, lang, "/console/stats")
    expect(page.locator("table.chart svg.bar").first).to_be_visible()
    expect(page.locator("#by-day")).to_be_visible()
    screenshot(page, f"console-stats-{lang}")

    _lang(page, demo, lang, "/console/registry")
    expect(page.locator("main")).to_contain_text("CNDP-")
    screenshot(page, f"console-registry-{lang}")

    _lang(page, demo, lang, "/console/policies")
    expect(page.locator("tbody tr").first).to_be_visible()
    screenshot(page, f"console-policies-{lang}")
    assert page.errors == []


def test_the_whole_log_verification_turns_red_when_an_entry_is_altered(
    auditor_page: Any, demo: WebDemo
) -> None:
    page = auditor_page

    def alter(route: Any) -> None:
        body = route.fetch().json()
        body["entries"][0]["action"] = (
            "lookup" if body["entries"][0]["action"] != "lookup" else "enrol"
        )
        route.fulfill(json=body)

    page.route("**/console/entries.json*", alter)
    try:
        _lang(page, demo, "en", "/console/")
        page.click("#verify-log-button")
        expect(page.locator("#verify-log-result")).to_have_attribute(
            "data-result", "leaf", timeout=30_000
        )
    finally:
        page.unroute("**/console/entries.json*")


def test_a_citizen_session_is_no_auditor_session(browser: Any, demo: WebDemo) -> None:
    page = new_page(browser, demo, "en")
    try:
        page.goto(f"{demo.url}/console/entries")
        # Not signed in to the console: sent to the authorization endpoint's staff sign-in.
        expect(page.locator("#username")).to_be_visible()
        expect(page.locator("#idcs")).to_have_count(0)
    finally:
        page.context.close()
