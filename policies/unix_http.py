"""HTTP over a Unix domain socket, for an OPA sidecar reached as ``unix:///path/to/opa.sock``.

A socket file is reachable only by processes of this host that its file mode lets in: no
network path, so no one on it can read or rewrite a decision (the reason a remote engine must
be ``https://``). opa-python-client (over requests and urllib3) speaks TCP only; this adapter
gives its session a connection pool whose sockets are ``AF_UNIX``. See docs/dependencies.md.
"""

from __future__ import annotations

import socket
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection
from urllib3.connectionpool import HTTPConnectionPool
from urllib3.exceptions import NewConnectionError

__all__ = ["UnixSocketAdapter"]


class _UnixConnection(HTTPConnection):
    def __init__(self, path: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._socket_path = path

    def _new_conn(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        timeout = self.timeout
        sock.settimeout(timeout if isinstance(timeout, int | float) else None)
        try:
            sock.connect(self._socket_path)
        except OSError as exc:
            sock.close()
            raise NewConnectionError(self, f"cannot connect to the socket: {exc}") from exc
        return sock


class _UnixPool(HTTPConnectionPool):
    def __init__(self, path: str, **kwargs: Any) -> None:
        super().__init__("localhost", **kwargs)
        self._socket_path = path

    def _new_conn(self) -> HTTPConnection:
        self.num_connections += 1
        return _UnixConnection(
            self._socket_path, host="localhost", port=None, timeout=self.timeout.connect_timeout
        )


class UnixSocketAdapter(HTTPAdapter):
    """A requests adapter sending every ``http://`` request of its session to one socket."""

    def __init__(self, path: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._pool = _UnixPool(path, maxsize=self._pool_maxsize)

    def get_connection_with_tls_context(
        self, request: Any, verify: Any, proxies: Any = None, cert: Any = None
    ) -> HTTPConnectionPool:
        return self._pool

    def close(self) -> None:
        self._pool.close()
        super().close()
