"""Fixtures for the policy tests: a real ``sijill pdp serve`` process on a free loopback port."""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PdpProcess:
    """``sijill pdp serve`` in a subprocess; ``url`` once healthy."""

    def __init__(self, policy_dir: Path | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = [
            sys.executable,
            "-c",
            "from gateway.cli import main; main()",
            "pdp",
            "serve",
            "--port",
            str(self.port),
            "--reload-every",
            "0.2",
        ]
        if policy_dir is not None:
            args += ["--policy-dir", str(policy_dir)]
        # stderr to a file, not a pipe: a full pipe would block the server mid-test.
        self._stderr = tempfile.TemporaryFile()
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=self._stderr)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._stderr.seek(0)
                raise RuntimeError(f"pdp exited: {self._stderr.read().decode()[-500:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=0.5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("pdp did not become healthy in 30 s")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._stderr.close()


@pytest.fixture(scope="session")
def pdp() -> Iterator[PdpProcess]:
    process = PdpProcess()
    yield process
    process.stop()
