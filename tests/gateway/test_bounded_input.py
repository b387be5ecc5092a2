"""Bounded input: bodies over a route's limit are refused (413) while streaming, before they
are parsed and before the caller is authenticated; a body or headers that do not arrive in
time get 408 and the connection closed; integers and times outside what the stores hold are
422 problems, never a 500. The size and time bounds are tested against a real uvicorn server
on loopback, through raw sockets."""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import psutil
import pytest

from tests.gateway.conftest import World
from tests.gateway.live import LiveGateway

MB = 1 << 20
TIMEOUT_S = 1.0  # the live gateway's header and body read timeouts


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveGateway]:
    live = LiveGateway(
        tmp_path_factory.mktemp("live") / "data",
        body_read_timeout_s=str(TIMEOUT_S),
        header_read_timeout_s=str(TIMEOUT_S),
    )
    try:
        yield live
    finally:
        live.stop()


def _connect(gateway: LiveGateway) -> socket.socket:
    return socket.create_connection(("127.0.0.1", gateway.port), timeout=30)


def _read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of one response, read until the server closes."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(
        (k.strip().lower(), v.strip()) for k, _, v in (line.partition(":") for line in lines[1:])
    )
    return int(lines[0].split()[1]), headers, body


def _rss(pid: int) -> int:
    return int(psutil.Process(pid).memory_info().rss)


class _PeakRss:
    """Samples a process's resident memory every 20 ms while the block runs."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = _rss(pid)
        self._stop = threading.Event()

    def __enter__(self) -> _PeakRss:
        def sample() -> None:
            while not self._stop.wait(0.02):
                self.peak = max(self.peak, _rss(self.pid))

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss(self.pid))


def _post_head(path: str, **headers: str) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
    lines += [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _send_declared_50_mb(gateway: LiveGateway, results: list[Any]) -> None:
    """Declare a 50 MB body, read the answer, then try to send the body anyway."""
    with _connect(gateway) as sock:
        sock.sendall(_post_head("/v1/agency/lookup", content_length=str(50 * MB)))
        readable, _, _ = select.select([sock], [], [], 10)
        assert readable, "no answer before the body was sent"
        status, headers, body = _read_response(sock)
        sent = 0
        try:
            while sent < 50 * MB:
                sock.sendall(b"x" * MB)
                sent += MB
        except OSError:
            pass
        results.append((status, headers, body, sent))


def _send_chunked_50_mb(gateway: LiveGateway, results: list[Any]) -> None:
    """Stream a 50 MB chunked body (no length declared) as fast as the server takes it."""
    chunk = b"%x\r\n" % MB + b"x" * MB + b"\r\n"
    with _connect(gateway) as sock:
        sock.sendall(_post_head("/v1/agency/lookup", transfer_encoding="chunked"))
        sent = 0
        try:
            while sent < 50 * MB:
                sock.sendall(chunk)
                sent += MB
            sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass
        results.append(sent)


def test_eight_concurrent_50_mb_bodies_are_refused_without_the_worker_growing(
    gateway: LiveGateway,
) -> None:
    httpx.get(f"{gateway.url}/readyz")  # warm: the first request loads what every one uses
    before = _rss(gateway.pid)
    declared: list[Any] = []
    chunked: list[Any] = []
    threads = [
        threading.Thread(target=_send_declared_50_mb, args=(gateway, declared)) for _ in range(8)
    ] + [threading.Thread(target=_send_chunked_50_mb, args=(gateway, chunked)) for _ in range(8)]
    with _PeakRss(gateway.pid) as rss:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    assert len(declared) == 8 and len(chunked) == 8
    for status, headers, body, sent in declared:
        assert status == 413
        assert headers["content-type"] == "application/problem+json"
        assert headers["connection"] == "close"
        assert json.loads(body)["type"].endswith("/too-large")
        assert sent < 50 * MB  # the connection was closed, not drained
    assert all(sent < 50 * MB for sent in chunked)  # cut off mid-stream
    assert rss.peak - before < 10 * MB, f"RSS grew by {(rss.peak - before) / MB:.1f} MB"


def test_a_streamed_body_over_the_limit_is_413_before_authentication(
    gateway: LiveGateway,
) -> None:
    body = json.dumps({"cnie": "AB123456", "purpose": "x" * 20_000}).encode()
    streamed = httpx.post(
        f"{gateway.url}/v1/agency/lookup", content=iter([body[:100], body[100:]])
    )  # no Content-Length: counted as it arrives
    declared = httpx.post(f"{gateway.url}/v1/agency/lookup", content=body)
    for response in (streamed, declared):
        assert response.status_code == 413  # not 401: the body is refused first
        assert response.headers["content-type"] == "application/problem+json"
        assert "AB123456" not in response.text


def test_a_bulk_route_takes_a_body_a_json_route_refuses(gateway: LiveGateway) -> None:
    body = json.dumps({"members": [], "declaration": {"note": "x" * 20_000}}).encode()
    assert httpx.post(f"{gateway.url}/v1/rnp/persons", content=body).status_code == 413
    # Read whole, then refused for want of a token.
    assert httpx.post(f"{gateway.url}/v1/rsu/households", content=body).status_code == 401


def test_a_body_shorter_than_its_content_length_is_408_and_closed_within_the_timeout(
    gateway: LiveGateway,
) -> None:
    with _connect(gateway) as sock:
        sock.sendall(_post_head("/v1/agency/lookup", content_length="1000") + b'{"cnie": "AB')
        started = time.monotonic()
        status, headers, body = _read_response(sock)  # returns when the server closes
        elapsed = time.monotonic() - started
    assert status == 408
    assert headers["connection"] == "close"
    assert json.loads(body)["type"].endswith("/request-timeout")
    assert elapsed < TIMEOUT_S + 2


def test_headers_that_never_end_are_408_and_closed_within_the_timeout(
    gateway: LiveGateway,
) -> None:
    with _connect(gateway) as sock:
        sock.sendall(b"POST /v1/agency/lookup HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        started = time.monotonic()
        status, headers, body = _read_response(sock)
        assert headers["connection"] == "close"
        elapsed = time.monotonic() - started
    assert status == 408
    assert json.loads(body)["type"].endswith("/request-timeout")
    assert elapsed < TIMEOUT_S + 2


# -- integer and time parameters ------------------------------------------------------------

YEAR_1 = "0001-01-01T00:00:00Z"
YEAR_9999 = "9999-12-31T23:59:59Z"


def _bad_integer_requests(n: int) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(principal, method, path, kwargs) for every integer parameter of a paged or indexed
    route, set to ``n``."""
    return [
        ("citizen", "GET", f"/v1/me/access-log?before={n}", {}),
        ("citizen", "GET", f"/v1/me/access-log/{n}/receipt", {}),
        ("cndp", "GET", f"/v1/audit/entries?after={n}", {}),
        ("cndp", "GET", f"/v1/audit/proofs/inclusion?index={n}", {}),
        ("cndp", "GET", f"/v1/audit/proofs/inclusion?index=0&tree_size={n}", {}),
        ("cndp", "GET", f"/v1/audit/proofs/consistency?first={n}", {}),
        ("cndp", "GET", f"/v1/audit/proofs/consistency?first=0&second={n}", {}),
    ]


def _bad_time_requests(when: str) -> list[tuple[str, str, str, dict[str, Any]]]:
    return [
        ("cndp", "GET", "/v1/audit/entries", {"params": {"since": when}}),
        ("cndp", "GET", "/v1/audit/entries", {"params": {"until": when}}),
        ("cndp", "GET", "/v1/audit/stats", {"params": {"since": when}}),
        ("cndp", "GET", "/v1/audit/stats", {"params": {"until": when}}),
        (
            "citizen",
            "POST",
            "/v1/me/consents",
            {
                "json": {
                    "recipient": "cnss",
                    "purpose": "amo_tadamon_enrolment",
                    "fields": ["region"],
                    "expires_at": when,
                }
            },
        ),
    ]


def _assert_all_422(world: World, requests: list[tuple[str, str, str, dict[str, Any]]]) -> None:
    tokens = {"citizen": world.citizen_token("fatima"), "cndp": world.token("cndp")}
    for principal, method, path, kwargs in requests:
        headers = {"Authorization": f"Bearer {tokens[principal]}"}
        response = world.api.request(method, path, headers=headers, **kwargs)
        assert response.status_code == 422, (path, kwargs, response.status_code, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"].endswith("/validation-error")


@pytest.mark.parametrize("n", [1 << 63, 10**40], ids=["2^63", "10^40"])
def test_integers_past_a_bigint_are_422_on_every_paged_route(world: World, n: int) -> None:
    _assert_all_422(world, _bad_integer_requests(n))


@pytest.mark.parametrize("when", [YEAR_1, YEAR_9999], ids=["year-1", "year-9999"])
def test_times_the_log_cannot_hold_are_422_on_every_paged_route(world: World, when: str) -> None:
    _assert_all_422(world, _bad_time_requests(when))


def test_the_largest_index_a_log_can_hold_is_served(world: World) -> None:
    token = world.citizen_token("fatima")
    response = world.api.get(
        f"/v1/me/access-log?before={(1 << 63) - 1}", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.text
