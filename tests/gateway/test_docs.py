"""The API documentation is served by Sijill itself and renders with no network beyond it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.chromium import chromium
from tests.gateway.live import LiveGateway

LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


@pytest.fixture
def live_url(tmp_path: Path) -> Iterator[str]:
    gateway = LiveGateway(tmp_path / "data")
    try:
        yield gateway.url
    finally:
        gateway.stop()


def _page_without_network(browser_context):  # type: ignore[no-untyped-def]
    page = browser_context.new_page()
    outside: list[str] = []

    def only_loopback(route):  # type: ignore[no-untyped-def]
        host = urlsplit(route.request.url).hostname or ""
        if route.request.url.startswith(("data:", "blob:")) or host in LOOPBACK:
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_loopback)
    return page, outside


def test_docs_render_the_operations_list_in_chromium_without_network(live_url: str) -> None:
    with chromium() as browser:
        page, outside = _page_without_network(browser.new_context())
        page.goto(f"{live_url}/docs")
        page.wait_for_selector(".opblock-summary-path", timeout=20_000)
        paths = page.locator(".opblock-summary-path").all_inner_texts()
        assert "/oauth/token" in paths
        assert any(p.startswith("/v1/agency/") for p in paths)

        page.goto(f"{live_url}/redoc")
        page.wait_for_selector("[data-section-id^='tag/']", timeout=20_000)
    assert outside == []
