"""Every page of the portal, the console and the office, in each language: no message id left
untranslated, no English on an Arabic page, right to left in Arabic, and no serious or
critical accessibility violation found by axe-core (injected into the page)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from gateway.web.i18n import message_ids
from tests.web.conftest import (
    AXE,
    LANGS,
    WebDemo,
    new_page,
    sign_in_auditor,
    sign_in_citizen,
    sign_in_officer,
)

ANONYMOUS = ["/portal/", "/console/", "/office/", "/portal/callback", "/portal/activate"]
PORTAL = ["/portal/", "/portal/log", "/portal/consents", "/portal/data", "/portal/score",
          "/portal/objections", "/portal/household", "/portal/notifications",
          "/portal/rectification"]  # fmt: skip
OFFICE = ["/office/reviews", "/office/rectifications"]
CONSOLE = ["/console/", "/console/entries", "/console/stats", "/console/registry",
           "/console/policies"]  # fmt: skip
# A message id looks like ``portal.log.title``: a known prefix, dots, lowercase words.
PREFIXES = sorted({i.split(".")[0] for i in message_ids("en")})
MESSAGE_ID = re.compile(rf"\b(?:{'|'.join(PREFIXES)})\.[a-z_]+(?:\.[a-zA-Z_]+)*\b")
# Latin-script words an Arabic page may hold: acronyms and product names written so in Arabic
# too (the authenticator apps, the JSON format, the IDCS and the CNDP as the law names them).
LATIN_OK = {"IDCS", "JSON", "CNDP", "AMO", "FreeOTP", "Aegis", "Google", "Authenticator", "sijill",
            "audit", "verify", "Ed25519", "ln", "MAD", "QR"}  # fmt: skip

# The page's words: visible text, labels for assistive technology and the script's messages;
# for the Arabic check, without data (translate="no") nor another language's own name.
_TEXT = """(skipForeign) => {
  const root = document.documentElement.cloneNode(true);
  if (skipForeign) {
    for (const el of root.querySelectorAll('[translate="no"], code, [lang]:not(html)')) el.remove();
  }
  for (const el of root.querySelectorAll('script, style')) el.remove();
  const parts = [root.querySelector('title') ? root.querySelector('title').textContent : ''];
  for (const el of root.querySelectorAll('[aria-label], [title], [alt]')) {
    parts.push(el.getAttribute('aria-label') || '', el.getAttribute('title') || '',
               el.getAttribute('alt') || '');
  }
  for (const t of root.querySelectorAll('template')) parts.push(t.content.textContent);
  parts.push(root.querySelector('body').textContent);
  return parts.join('\\n');
}"""

_AXE = """async () => {
  const found = await axe.run(document, {resultTypes: ['violations']});
  return found.violations
    .filter(v => v.impact === 'serious' || v.impact === 'critical')
    .map(v => `${v.id} (${v.impact}): ${v.help} at ` +
              v.nodes.map(n => n.target.join(' ')).join(', '));
}"""


def _check(page: Any, lang: str, path: str) -> list[str]:
    problems = []
    html = page.locator("html")
    if html.get_attribute("lang") != lang:
        problems.append(f"{path}: lang is {html.get_attribute('lang')}")
    if html.get_attribute("dir") != ("rtl" if lang == "ar" else "ltr"):
        problems.append(f"{path}: dir is {html.get_attribute('dir')}")
    text = page.evaluate(_TEXT, False)
    for found in sorted(set(MESSAGE_ID.findall(text))):
        problems.append(f"{path} [{lang}]: untranslated {found}")
    if lang == "ar":
        arabic_only = page.evaluate(_TEXT, True)
        english = {w for w in re.findall(r"[A-Za-z][A-Za-z0-9]+", arabic_only) if w not in LATIN_OK}
        if english:
            problems.append(f"{path} [ar]: Latin words {sorted(english)}")
    page.add_script_tag(path=str(AXE))
    assert page.evaluate("typeof axe.run") == "function"
    problems.extend(f"{path} [{lang}]: {v}" for v in page.evaluate(_AXE))
    return problems


def _walk(page: Any, demo: WebDemo, room: str, paths: list[str]) -> list[str]:
    problems = []
    for lang in LANGS:
        for path in paths:
            page.goto(f"{demo.url}/{room}/language?to={lang}&next={path}")
            problems.extend(_check(page, lang, path))
    return problems


def test_every_page_is_translated_and_accessible_in_each_language(
    browser: Any, demo: WebDemo
) -> None:
    problems = []
    anonymous = new_page(browser, demo, "fr", inject=True)
    try:
        problems += _walk(anonymous, demo, "portal", ANONYMOUS)
    finally:
        anonymous.context.close()
    citizen = new_page(browser, demo, "ar", inject=True)
    try:
        sign_in_citizen(citizen, demo, 0)
        problems += _walk(citizen, demo, "portal", PORTAL)
    finally:
        citizen.context.close()
    auditor = new_page(browser, demo, "ar", inject=True)
    try:
        sign_in_auditor(auditor, demo)
        problems += _walk(auditor, demo, "console", CONSOLE)
    finally:
        auditor.context.close()
    officer = new_page(browser, demo, "ar", inject=True)
    try:
        sign_in_officer(officer, demo)
        problems += _walk(officer, demo, "office", OFFICE)
    finally:
        officer.context.close()
    assert problems == [], "\n".join(problems)


def test_the_sign_in_page_is_translated_and_accessible_in_each_language(
    browser: Any, demo: WebDemo
) -> None:
    # The authorization server's own page, reached as a citizen reaches it: from the portal,
    # which asks for the language the person picked (ui_locales).
    problems = []
    for lang in LANGS:
        page = new_page(browser, demo, lang, inject=True)
        try:
            page.goto(f"{demo.url}/portal/language?to={lang}&next=/portal/log")
            assert "/oauth/authorize" in page.url, page.url
            problems += _check(page, lang, "/oauth/authorize")
        finally:
            page.context.close()
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("lang", LANGS)
def test_every_catalogue_translates_every_message_the_templates_use(lang: str) -> None:
    from pathlib import Path

    templates = Path(__file__).resolve().parents[2] / "gateway" / "web" / "templates"
    used = set()
    for template in templates.rglob("*.html"):
        used |= set(re.findall(r"""_\(\s*["']([a-z_.]+[a-z_])["']\s*[,)]""", template.read_text()))
    assert used - message_ids(lang) == set()
    assert message_ids(lang) == message_ids("en")
