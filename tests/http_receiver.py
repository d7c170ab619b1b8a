"""A real HTTP server on 127.0.0.1 that records every request: the far end of notifications and pings.

Apprise's ``json://127.0.0.1:PORT/path`` URLs POST a JSON document ({"title", "message", "type", ...})
to it; healthchecks-style pings POST plain text. ``status`` makes it refuse (500), ``hang`` makes it
accept and never answer (until stopped), and :func:`dead_url` names a port nothing listens on.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    """One request as the server saw it."""

    method: str
    path: str
    body: bytes
    content_type: str

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


class Receiver:
    """The server's state: what it received, and how it answers."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.requests: list[Received] = []
        self.status = 200
        self.hang = False  # accept, read, never answer (until stop)
        self.stopping = threading.Event()
        self.lock = threading.Lock()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def json_url(self, path: str) -> str:
        """An Apprise URL posting JSON here."""
        return f"json://127.0.0.1:{self.port}{path}"

    def received(self, prefix: str = "/") -> list[Received]:
        with self.lock:
            return [r for r in self.requests if r.path.startswith(prefix)]

    def notifications(self) -> list[dict[str, Any]]:
        """The JSON documents Apprise posted to ``/notify...`` paths."""
        return [r.json() for r in self.received("/notify")]

    def wait_for(self, count: int, prefix: str = "/", timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.received(prefix)) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.received(prefix)


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _record(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            with receiver.lock:
                receiver.requests.append(Received(self.command, self.path, body, self.headers.get("Content-Type", "")))
            if receiver.hang:
                receiver.stopping.wait(60)
                return
            self.send_response(receiver.status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"OK")

        do_POST = _record  # noqa: N815 - http.server's naming
        do_GET = _record  # noqa: N815

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet test output
            return

    return Handler


@contextmanager
def running_receiver() -> Iterator[Receiver]:
    """A receiver on a free port of 127.0.0.1, always stopped (even when the test fails)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    server.daemon_threads = True
    receiver = Receiver(server.server_address[1])
    server.RequestHandlerClass = _handler(receiver)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join(10)


def dead_url(path: str = "/", scheme: str = "http") -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"{scheme}://127.0.0.1:{port}{path}"
