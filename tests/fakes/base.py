"""A threaded HTTP(S) server on a free loopback port, for the fakes."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from werkzeug.serving import make_server


@dataclass
class Call:
    method: str
    path: str
    query: str
    body: bytes
    headers: dict
    at: float = field(default_factory=time.monotonic)


class ServerThread:
    """Serve a WSGI app on 127.0.0.1:<free port> in a daemon thread."""

    def __init__(self, app, ssl_context=None, host: str = "127.0.0.1"):
        assert host.startswith("127."), "fakes bind loopback only"
        self._server = make_server(host, 0, app, threaded=True, ssl_context=ssl_context)
        self.host = host
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    def start(self) -> "ServerThread":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
