"""The citizen portal in Chromium: sign-in through the authorization endpoint with a real
TOTP code, every page and form in Arabic, French and English, the in-browser verification of
the access log (and its failure on altered bytes), CSRF, isolation between citizens, sign-out."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.web.conftest import Citizens, WebDemo, new_page, screenshot, sign_in_citizen

# Each language signs a different demo citizen in (one sign-in per citizen and TOTP step).
CITIZEN_FOR = {"ar": 0, "fr": 1, "en": 2}


@pytest.mark.parametrize("lang", ["ar", "fr", "en"])
def test_a_citizen_signs_in_and_uses_every_portal_page(
    citizens: Citizens, demo: WebDemo, lang: str
) -> None:
    n = CITIZEN_FOR[lang]
    page = citizens.page(n, lang)
    html = page.locator("html")
    expect(html).to_have_attribute("lang", lang)
    expect(html).to_have_attribute("dir", "rtl" if lang == "ar" else "ltr")

    # Access log: the agency by its registered name, the purpose in words, a verify button.
    # (Offices' and the notifier's uses of the same record may be newer: other pages' tests.)
    entries = page.locator(".entry", has=page.locator("h2", has_text="CNSS"))
    expect(entries.first).to_be_visible()
    first = entries.first.locator(".verify")
    first.locator(".verify-button").click()
    expect(first.locator(".verify-result")).to_have_attribute("data-result", "ok", timeout=15_000)
    screenshot(page, f"portal-log-{lang}")
    page.select_option("#outcome", "deny")
    page.click(".filters button")
    expect(page).to_have_url(re.compile(r"outcome=deny"))

    # Consents: give one among the purposes that accept consent, get its receipt, withdraw it.
    page.goto(f"{demo.url}/portal/consents")
    page.locator("input[name=choice]").first.check()
    page.click("form[action='/portal/consents'] button[type=submit]")
    expect(page.locator("[role=status]")).to_be_visible()
    consent = page.locator(".consent").first
    with page.expect_download() as download:
        consent.locator("a[download]").click()
    assert download.value.path().read_text().count(".") == 2  # a signed JWT
    screenshot(page, f"portal-consents-{lang}")
    consent.locator("button.danger").click()
    expect(page.locator("[role=status]")).to_be_visible()
    expect(page.locator(".consent button.danger")).to_have_count(0)

    # My data: readable, and the same as a JSON download.
    page.goto(f"{demo.url}/portal/data")
    idcs = demo.citizen(n)["idcs"]
    expect(page.locator("dl.record")).to_contain_text(idcs)
    with page.expect_download() as download:
        page.click("a[href='/portal/data.json']")
    assert json.loads(download.value.path().read_text())["idcs"] == idcs
    screenshot(page, f"portal-data-{lang}")

    # My score: the index, the programs' thresholds, the chart; a human review requested.
    page.goto(f"{demo.url}/portal/score")
    if page.locator("table.chart").count():
        expect(page.locator("table.chart svg.bar").first).to_be_visible()
        page.click("form[action='/portal/score/review'] button")
        expect(page.locator("[role=status]")).to_be_visible()
    screenshot(page, f"portal-score-{lang}")

    # Objections: submit one and see it listed.
    page.goto(f"{demo.url}/portal/objections")
    before = page.locator(".entry").count()
    page.select_option("#reason", "personal_situation")
    page.click("form[action='/portal/objections'] button")
    expect(page.locator("[role=status]")).to_be_visible()
    expect(page.locator(".entry")).to_have_count(before + 1)
    screenshot(page, f"portal-objections-{lang}")

    # Rectification: ask for a correction with a statement; it is listed, being examined.
    page.goto(f"{demo.url}/portal/rectification")
    before = page.locator(".request").count()
    page.fill("#f-address", "7 Rue Ibn Khaldoun, Fès")
    page.fill("#statement", "I moved in 2025.")
    page.click("form[action='/portal/rectification'] button")
    expect(page.locator("[role=status]")).to_be_visible()
    expect(page.locator(".request")).to_have_count(before + 1)
    expect(page.locator(".request .status-pending").first).to_be_visible()
    screenshot(page, f"portal-rectification-{lang}")
    assert page.errors == []


def _altered(part: str):  # type: ignore[no-untyped-def]
    def alter(route: Any) -> None:
        receipt = route.fetch().json()
        if part == "entry":
            receipt["entry"] = (
                receipt["entry"]
                .replace('"allow"', '"deny"')
                .replace('"read_attributes"', '"eligibility"')
            )
        elif part == "proof":
            first = receipt["audit_path"][0]
            receipt["audit_path"][0] = ("0" if first[0] != "0" else "1") + first[1:]
        else:
            body, _, signatures = receipt["checkpoint"].partition("\n\n")
            line = signatures.split("\n")[0]
            name, _, sig = line.rpartition(" ")
            flipped = sig[:10] + ("A" if sig[10] != "A" else "B") + sig[11:]
            receipt["checkpoint"] = body + "\n\n" + signatures.replace(line, f"{name} {flipped}")
        route.fulfill(json=receipt)

    return alter


@pytest.mark.parametrize(
    ("part", "failure"), [("entry", "leaf"), ("proof", "proof"), ("signature", "signature")]
)
def test_in_browser_verification_turns_red_on_altered_bytes(
    citizens: Citizens, part: str, failure: str
) -> None:
    page = citizens.page(0, "fr")
    page.route("**/receipt.json", _altered(part))
    try:
        box = page.locator(".verify").first
        box.locator(".verify-button").click()
        result = box.locator(".verify-result")
        expect(result).to_have_attribute("data-result", failure, timeout=15_000)
        expect(result).to_have_class(re.compile(r"\bbad\b"))
        screenshot(page, f"portal-verify-altered-{part}")
    finally:
        page.unroute("**/receipt.json")


def test_a_citizen_cannot_reach_another_citizens_entries_consents_or_data(
    citizens: Citizens, demo: WebDemo
) -> None:
    theirs = citizens.page(1, "fr")
    their_indices = [
        int(i.removeprefix("entry-"))
        for i in theirs.locator(".entry").evaluate_all("els => els.map(e => e.id)")
    ]
    assert their_indices
    theirs.goto(f"{demo.url}/portal/consents")
    theirs.locator("input[name=choice]").first.check()
    theirs.click("form[action='/portal/consents'] button[type=submit]")
    their_consent = theirs.locator(".consent a[download]").first.get_attribute("href")

    mine = citizens.page(0, "fr")
    own_ids = mine.locator(".entry").evaluate_all("els => els.map(e => e.id)")
    assert not set(own_ids) & {f"entry-{i}" for i in their_indices}
    for index in their_indices:
        response = mine.goto(f"{demo.url}/portal/log/{index}/receipt.json")
        assert response.status == 404
        assert "entry" not in response.text()
    response = mine.goto(f"{demo.url}{their_consent}")
    assert response.status == 404
    other = demo.citizen(1)["idcs"]
    for url in (
        f"/portal/data?idcs={other}",
        f"/portal/data.json?idcs={other}",
        f"/portal/log?idcs={other}",
        f"/portal/consents?subject={other}",
    ):
        # The page ignores the parameter: it shows the signed-in citizen's own data.
        if ".json" in url:
            body = mine.request.get(f"{demo.url}{url}").text()  # a download, in the browser
        else:
            mine.goto(f"{demo.url}{url}")
            body = mine.locator("main").inner_text()
        assert other not in body.replace(f"idcs={other}", ""), url


def test_a_form_without_the_sessions_csrf_token_is_refused(
    citizens: Citizens, demo: WebDemo
) -> None:
    page = citizens.page(2, "en")
    page.goto(f"{demo.url}/portal/objections")
    before = page.locator(".entry").count()
    form = {"purpose": "household_survey", "reason": "other"}
    missing = page.request.post(f"{demo.url}/portal/objections", form=form)
    assert missing.status == 403
    forged = page.request.post(f"{demo.url}/portal/objections", form={**form, "csrf": "x" * 43})
    assert forged.status == 403
    page.goto(f"{demo.url}/portal/objections")
    expect(page.locator(".entry")).to_have_count(before)


def test_every_page_carries_the_security_headers(citizens: Citizens, demo: WebDemo) -> None:
    page = citizens.page(0, "en")
    for path in ("/portal/", "/portal/log", "/portal/consents", "/portal/data", "/console/"):
        response = page.goto(f"{demo.url}{path}")
        headers = response.headers
        assert "script-src 'self'" in headers["content-security-policy"]
        assert "'unsafe-inline'" not in headers["content-security-policy"]
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert headers["x-frame-options"] == "DENY"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"
    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies["sijill_portal"]
    assert session["httpOnly"] and session["sameSite"] == "Lax"
    # Opaque: the browser holds no token (no JWT, nothing but a random value).
    assert session["value"].count(".") == 0 and len(session["value"]) < 64


def test_sign_out_revokes_the_sign_in(browser: Any, demo: WebDemo) -> None:
    page = new_page(browser, demo, "fr")
    try:
        # Citizen 2's second sign-in: the next TOTP step's code.
        sign_in_citizen(page, demo, 2)
        signed_in = page.context.cookies()
        page.click("form.signout button")
        expect(page).to_have_url(re.compile(r"/portal/\?signed_out=1"))
        expect(page.locator("[role=status]")).to_be_visible()
        # The sign-in cookies the browser had are worth nothing now: the portal session is
        # gone and the authorization server's sign-in is revoked (no silent sign-in again).
        page.context.add_cookies(signed_in)
        page.goto(f"{demo.url}/portal/log")
        expect(page.locator("#idcs")).to_be_visible()
    finally:
        page.context.close()
