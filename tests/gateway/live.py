"""A real gateway: ``sijill serve`` (uvicorn) in a subprocess on a free loopback port, on a
SQLite data directory of its own."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from tests.policies.conftest import free_port


class LiveGateway:
    def __init__(self, data_dir: Path, **settings: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "SIJILL_DATA_DIR": str(data_dir),
            "SIJILL_HOST": "127.0.0.1",
            "SIJILL_PORT": str(self.port),
            "SIJILL_LOG_LEVEL": "WARNING",
            **{f"SIJILL_{k.upper()}": v for k, v in settings.items()},
        }
        for name in (
            "SIJILL_DATABASE_URL",
            "SIJILL_VAULT_DATABASE_URL",
            "SIJILL_AUDIT_DATABASE_URL",
        ):
            if name.lower().removeprefix("sijill_") not in settings:
                env.pop(name, None)
        sijill = [sys.executable, "-c", "from gateway.cli import main; main()"]
        subprocess.run([*sijill, "init"], env=env, check=True, capture_output=True, timeout=120)
        # stderr to a file, not a pipe: a full pipe would block the server mid-test.
        self._stderr = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            [*sijill, "serve"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gateway exited: {self.stderr()[-800:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=0.5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("gateway did not answer in 60 s")

    @property
    def pid(self) -> int:
        return self.process.pid

    def stderr(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._stderr.close()
