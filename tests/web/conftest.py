"""One demo deployment per test session (per xdist worker), served by ``sijill serve`` on a
loopback port, and Debian's Chromium driven by Playwright (never a downloaded browser).

The demo's data directory is made by ``sijill demo --no-serve`` (synthetic citizens with TOTP
secrets, households with scores, agencies, an auditor); every demo citizen then has their
data used by an agency through ``examples/agency_client.py``, so that their access logs hold
agencies' entries. Screenshots go to ``tests/web/artefacts/`` (kept by CI, ignored by git).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pyotp
import pytest

from tests.chromium import chromium
from tests.policies.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
ARTEFACTS = Path(__file__).with_name("artefacts")
AXE = Path(__file__).with_name("vendor") / "axe-core" / "axe.min.js"
LANGS = ("ar", "fr", "en")
SIJILL = [sys.executable, "-c", "from gateway.cli import main; main()"]
# The call a named official makes on the first demo citizen's case (see the demo fixture).
OFFICIAL_CALL = {"purpose": "asd_case_review", "case": "ASD-R-2026-0042"}


@dataclass
class WebDemo:
    url: str
    data_dir: Path
    credentials: dict[str, Any]
    process: subprocess.Popen[bytes]
    env: dict[str, str]

    def citizen(self, n: int) -> dict[str, Any]:
        return dict(self.credentials["citizens"][n])

    @property
    def auditor(self) -> dict[str, Any]:
        return dict(self.credentials["auditor"])

    @property
    def officer(self) -> dict[str, Any]:
        return dict(self.credentials["officer"])

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*SIJILL, *args], env=self.env, capture_output=True, text=True, timeout=120
        )


def _env(data_dir: Path, port: int) -> dict[str, str]:
    env = {
        **os.environ,
        "SIJILL_DATA_DIR": str(data_dir),
        "SIJILL_HOST": "127.0.0.1",
        "SIJILL_PORT": str(port),
        "SIJILL_LOG_LEVEL": "WARNING",
    }
    for name in ("SIJILL_DATABASE_URL", "SIJILL_VAULT_DATABASE_URL", "SIJILL_AUDIT_DATABASE_URL"):
        env.pop(name, None)
    return env


def _agency_program(data_dir: Path, env: dict[str, str], *args: str) -> None:
    """examples/agency_client.py against the demo, as an agency runs it."""
    credentials = str(data_dir / "demo" / "credentials.json")
    subprocess.run(
        [sys.executable, str(ROOT / "examples" / "agency_client.py"), "--credentials", credentials,
         *args],
        env=env, check=True, capture_output=True, timeout=60,
    )  # fmt: skip


@pytest.fixture(scope="session")
def demo() -> Iterator[WebDemo]:
    with tempfile.TemporaryDirectory(prefix="sijill-web-") as tmp:
        data_dir = Path(tmp) / "data"
        port = free_port()
        env = _env(data_dir, port)
        subprocess.run(
            [*SIJILL, "demo", "--no-serve"], env=env, check=True, capture_output=True, timeout=300
        )
        credentials = json.loads((data_dir / "demo" / "credentials.json").read_text())
        stderr = tempfile.TemporaryFile()
        process = subprocess.Popen(
            [*SIJILL, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=stderr
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                if process.poll() is not None:
                    stderr.seek(0)
                    raise RuntimeError(stderr.read().decode(errors="replace")[-800:])
                try:
                    if httpx.get(f"{url}/healthz", timeout=0.5).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("the gateway did not answer in 60 s")
                time.sleep(0.1)
            # An agency uses every demo citizen's data: their access logs hold entries.
            for citizen in credentials["citizens"]:
                _agency_program(data_dir, env, "--cnie", citizen["cnie"])
            # And a named official of CNSS reviews the first citizen's case (token exchange):
            # that log then says who acted, on which case.
            _agency_program(
                data_dir, env,
                "--agency", "cnss", "--purpose", OFFICIAL_CALL["purpose"], "--program", "asd",
                "--official", "agent-1187", "--case", OFFICIAL_CALL["case"],
                "--cnie", credentials["citizens"][0]["cnie"],
            )  # fmt: skip
            yield WebDemo(url, data_dir, credentials, process, env)
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            stderr.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


def new_page(browser: Any, demo: WebDemo, lang: str, *, inject: bool = False) -> Any:
    """A fresh browser (own cookies) 360 px wide, with the language picked; anything
    outside the gateway is refused. ``inject``: the test may add its own scripts (axe-core)
    to the pages, which their Content-Security-Policy would otherwise refuse."""
    context = browser.new_context(
        bypass_csp=inject,
        viewport={"width": 360, "height": 780},
        locale={"ar": "ar-MA", "fr": "fr-MA"}.get(lang, "en-GB"),
    )
    page = context.new_page()
    page.errors = []  # type: ignore[attr-defined]
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))  # type: ignore[attr-defined]

    def only_the_gateway(route: Any) -> None:
        if route.request.url.startswith((demo.url, "data:")):
            route.continue_()
        else:
            route.abort()

    page.route("**/*", only_the_gateway)
    page.goto(f"{demo.url}/portal/language?to={lang}&next=/portal/")
    return page


# Codes are accepted once per 30 s step, and one step ahead for clock drift: a test that
# signs the same account in again uses the next step's code.
_used_steps: dict[str, int] = {}


def totp_code(secret: str) -> str:
    totp = pyotp.TOTP(secret)
    step = int(time.time() // 30)
    last = _used_steps.get(secret, -1)
    if step <= last:
        step = last + 1
        # A step more than one ahead is refused: wait until it is at most one ahead.
        while step > int(time.time() // 30) + 1:
            time.sleep(30 - time.time() % 30 + 0.5)
    _used_steps[secret] = step
    return totp.at(step * 30)


def sign_in_citizen(page: Any, demo: WebDemo, n: int, target: str = "/portal/log") -> None:
    citizen = demo.citizen(n)
    page.goto(f"{demo.url}{target}")
    assert "/oauth/authorize" in page.url, page.url
    page.fill("#idcs", citizen["idcs"])
    page.fill("#code", totp_code(citizen["totp_secret"]))
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(re.escape(demo.url + target)))


def sign_in_officer(page: Any, demo: WebDemo, which: str = "officer") -> None:
    officer = dict(demo.credentials[which])
    page.goto(f"{demo.url}/office/signin")
    assert "/oauth/authorize" in page.url, page.url
    page.fill("#username", officer["username"])
    page.fill("#password", officer["password"])
    page.fill("#code", totp_code(officer["totp_secret"]))
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(re.escape(demo.url + "/office/")))


def sign_in_auditor(page: Any, demo: WebDemo) -> None:
    auditor = demo.auditor
    page.goto(f"{demo.url}/console/signin")
    assert "/oauth/authorize" in page.url, page.url
    page.fill("#username", auditor["username"])
    page.fill("#password", auditor["password"])
    page.fill("#code", totp_code(auditor["totp_secret"]))
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(re.escape(demo.url + "/console/")))


def screenshot(page: Any, name: str) -> None:
    ARTEFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTEFACTS / f"{name}.png"), full_page=True)


class Citizens:
    """One browser per demo citizen, signed in once through the authorization endpoint (a
    TOTP code is good once per 30 s step), reused by every test of the module."""

    def __init__(self, browser: Any, demo: WebDemo) -> None:
        self.browser = browser
        self.demo = demo
        self.pages: dict[int, Any] = {}

    def page(self, n: int, lang: str, target: str = "/portal/log") -> Any:
        if n not in self.pages:
            page = new_page(self.browser, self.demo, lang)
            sign_in_citizen(page, self.demo, n, target)
            self.pages[n] = page
            return page
        page = self.pages[n]
        page.goto(f"{self.demo.url}/portal/language?to={lang}&next={target}")
        return page


@pytest.fixture(scope="module")
def citizens(browser: Any, demo: WebDemo) -> Iterator[Citizens]:
    pool = Citizens(browser, demo)
    yield pool
    for page in pool.pages.values():
        page.context.close()


def office_token(demo: WebDemo) -> str:
    """An access token of the demo registration office (client credentials, private_key_jwt)."""
    office = demo.credentials["office"]
    key = jwt.PyJWK(office["private_jwk"])
    now = int(time.time())
    assertion = jwt.encode(
        {"iss": office["client_id"], "sub": office["client_id"], "aud": f"{demo.url}/oauth/token",
         "jti": secrets.token_urlsafe(16), "iat": now, "exp": now + 60},
        key.key,
        algorithm="ES256",
        headers={"kid": office["private_jwk"]["kid"]},
    )  # fmt: skip
    response = httpx.post(
        f"{demo.url}/oauth/token",
        data={
            "grant_type": "client_credentials",
            "scope": office["scopes"],
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
        },
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])
