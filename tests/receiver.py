"""A local HTTP receiver for notifications: records every POST and answers with scripted
statuses (then 200), so tests can make a webhook or Alertmanager fail and recover."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson

__all__ = ["Received", "Receiver", "receiver"]


@dataclass(frozen=True, slots=True)
class Received:
    path: str
    headers: dict[str, str]
    body: object
    status: int  # what the receiver answered


@dataclass
class Receiver:
    url: str
    statuses: list[int] = field(default_factory=list)  # answered in order, then 200
    received: list[Received] = field(default_factory=list)

    def accepted(self) -> list[Received]:
        return [r for r in self.received if 200 <= r.status < 300]


@contextmanager
def receiver(path: str = "/api/v2/alerts", statuses: list[int] | None = None) -> Iterator[Receiver]:
    lock = threading.Lock()
    state = Receiver("", list(statuses or []))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server interface
            length = int(self.headers.get("Content-Length") or 0)
            body = orjson.loads(self.rfile.read(length)) if length else None
            with lock:
                status = state.statuses.pop(0) if state.statuses else 200
                headers = {k.lower(): v for k, v in self.headers.items()}
                state.received.append(Received(self.path, headers, body, status))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}{path}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
