"""Activation: an office (or ``sijill citizens activation-code``) issues a one-time code; the
citizen turns it into a sign-in on /portal/activate (QR code, first TOTP code) and signs in
through the authorization endpoint; a new code disables the old sign-in. In each language."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import httpx
import pyotp
import pytest
from playwright.sync_api import expect

from tests.web.conftest import WebDemo, new_page, office_token, screenshot

# Household heads who are not demo citizens: enrolled, with no sign-in yet.
HEAD_FOR = {"ar": 1, "fr": 2, "en": 3}


def _head(demo: WebDemo, n: int) -> str:
    return str(demo.credentials["households"][n]["head_idcs"])


def _cli_code(demo: WebDemo, idcs: str) -> str:
    result = demo.cli("citizens", "activation-code", idcs, "--json")
    assert result.returncode == 0, result.stderr
    return str(json.loads(result.stdout)["activation_code"])


def _activate(page: Any, demo: WebDemo, idcs: str, code: str) -> str:
    page.goto(f"{demo.url}/portal/activate")
    page.fill("#idcs", idcs)
    page.fill("#code", code)
    page.click("form[action='/portal/activate'] button")
    expect(page.locator(".qr svg")).to_be_visible()
    secret = page.locator("#secret").inner_text().strip()
    page.fill("#totp", pyotp.TOTP(secret).now())
    page.click("form[action='/portal/activate/confirm'] button")
    expect(page.locator("[role=status]")).to_be_visible()
    return secret


def _sign_in(page: Any, demo: WebDemo, idcs: str, code: str) -> None:
    page.goto(f"{demo.url}/portal/signin")
    page.fill("#idcs", idcs)
    page.fill("#code", code)
    page.click("button[type=submit]")


@pytest.mark.parametrize("lang", ["ar", "fr", "en"])
def test_a_citizen_activates_with_an_offices_code_and_signs_in(
    browser: Any, demo: WebDemo, lang: str
) -> None:
    idcs = _head(demo, HEAD_FOR[lang])
    page = new_page(browser, demo, lang)
    try:
        page.goto(f"{demo.url}/portal/activate")
        page.fill("#idcs", idcs)
        page.fill("#code", "WRNG-CODE-0000")
        page.click("form[action='/portal/activate'] button")
        expect(page.locator("[role=alert]")).to_be_visible()

        # From the command line once, from an office's request otherwise.
        if lang == "ar":
            code = _cli_code(demo, idcs)
        else:
            issued = httpx.post(
                f"{demo.url}/v1/rnp/persons/{idcs}/activation-code",
                headers={"Authorization": f"Bearer {office_token(demo)}"},
            )
            assert issued.status_code == 201, issued.text
            code = issued.json()["activation_code"]
        page.goto(f"{demo.url}/portal/activate")
        page.fill("#idcs", idcs)
        page.fill("#code", code)
        page.click("form[action='/portal/activate'] button")
        expect(page.locator(".qr svg")).to_be_visible()
        screenshot(page, f"portal-activate-{lang}")
        secret = page.locator("#secret").inner_text().strip()
        page.fill("#totp", pyotp.TOTP(secret).now())
        page.click("form[action='/portal/activate/confirm'] button")
        expect(page.locator("[role=status]")).to_be_visible()

        _sign_in(page, demo, idcs, pyotp.TOTP(secret).now())
        page.wait_for_url(re.compile(re.escape(f"{demo.url}/portal/log")))
        expect(page.locator("html")).to_have_attribute("lang", lang)

        # The code worked once.
        other = new_page(browser, demo, lang)
        try:
            other.goto(f"{demo.url}/portal/activate")
            other.fill("#idcs", idcs)
            other.fill("#code", code)
            other.click("form[action='/portal/activate'] button")
            expect(other.locator("[role=alert]")).to_be_visible()
        finally:
            other.context.close()
    finally:
        page.context.close()


def test_an_office_reissues_a_code_and_the_old_sign_in_stops(browser: Any, demo: WebDemo) -> None:
    idcs = _head(demo, 4)
    headers = {"Authorization": f"Bearer {office_token(demo)}"}
    url = f"{demo.url}/v1/rnp/persons/{idcs}/activation-code"
    first = httpx.post(url, headers=headers)
    assert first.status_code == 201, first.text
    page = new_page(browser, demo, "fr")
    try:
        old_secret = _activate(page, demo, idcs, first.json()["activation_code"])
        audit_before = httpx.get(f"{demo.url}/v1/audit/checkpoint?format=json").json()

        # A lost phone: the office issues a new code; the old secret no longer signs in.
        second = httpx.post(url, headers=headers)
        assert second.status_code == 201, second.text
        assert second.json()["activation_code"] != first.json()["activation_code"]
        _sign_in(page, demo, idcs, pyotp.TOTP(old_secret).now())
        expect(page.locator("[role=alert]")).to_be_visible()

        new_secret = _activate(page, demo, idcs, second.json()["activation_code"])
        assert new_secret != old_secret
        _sign_in(page, demo, idcs, pyotp.TOTP(new_secret).now())
        page.wait_for_url(re.compile(re.escape(f"{demo.url}/portal/log")))
    finally:
        page.context.close()
    # Both issues are on the record: the decision and the issue itself each time.
    for _ in range(50):
        after = httpx.get(f"{demo.url}/v1/audit/checkpoint?format=json").json()
        if after["tree_size"] >= audit_before["tree_size"] + 2:
            break
        time.sleep(0.1)
    assert after["tree_size"] >= audit_before["tree_size"] + 2
    unknown = httpx.post(f"{demo.url}/v1/rnp/persons/2999999999/activation-code", headers=headers)
    assert unknown.status_code in (403, 404)


def test_enrolment_at_an_office_yields_an_activation_code_that_opens_the_portal(
    browser: Any, demo: WebDemo
) -> None:
    headers = {"Authorization": f"Bearer {office_token(demo)}"}
    newcomer = {
        "given_name_ar": "سلمى", "family_name_ar": "بنعلي", "given_name_lat": "Salma",
        "family_name_lat": "Benali", "sex": "F", "birth_date": "1996-02-11", "birth_place": "Fès",
        "cnie": "EE918273", "address": "12 Derb Sidi Ahmed, Fès", "region": "Fès-Meknès",
        "province": "Fès", "phone": "+212611119999",
    }  # fmt: skip
    enrolled = httpx.post(f"{demo.url}/v1/rnp/persons", headers=headers, json=newcomer)
    assert enrolled.status_code == 201, enrolled.text
    body = enrolled.json()
    assert re.fullmatch(r"[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}", body["activation_code"])
    page = new_page(browser, demo, "ar")
    try:
        secret = _activate(page, demo, body["idcs"], body["activation_code"])
        _sign_in(page, demo, body["idcs"], pyotp.TOTP(secret).now())
        page.wait_for_url(re.compile(re.escape(f"{demo.url}/portal/log")))
    finally:
        page.context.close()


def test_sijill_demo_totp_prints_a_demo_accounts_current_code(demo: WebDemo) -> None:
    for account, secret in (
        (demo.citizen(0)["idcs"], demo.citizen(0)["totp_secret"]),
        (demo.auditor["username"], demo.auditor["totp_secret"]),
    ):
        result = demo.cli("demo", "totp", account)
        assert result.returncode == 0, result.stderr
        totp = pyotp.TOTP(secret)
        assert result.stdout.strip() in {totp.now(), totp.at(time.time() - 30)}
    unknown = demo.cli("demo", "totp", "0000000000")
    assert unknown.returncode != 0
    assert "not a demo account" in unknown.stderr
