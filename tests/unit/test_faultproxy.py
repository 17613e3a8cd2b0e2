"""The fault proxy, specified against a real local HTTP server and a real HTTP client.

Every test runs http.client -> FaultProxy -> ThreadingHTTPServer over loopback sockets, so what
is asserted is what the sidecar's client and the node would actually see on the wire.
"""

from __future__ import annotations

import gzip
import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

from tests.faultproxy import (
    Blackhole,
    Delay,
    FaultProxy,
    ForwardThenReset,
    Hold,
    Request,
    Reset,
    Respond,
    RewriteResponse,
    is_bulk_to,
)

CHUNKS = (b'{"parts": ', b"[1, 2, 3]", b"}")


@dataclass(frozen=True)
class Seen:
    """A request as the upstream received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes  # de-chunked, but still compressed if it was sent compressed
    peer_port: int  # the proxy's side of the upstream connection


class Upstream(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.seen: list[Seen] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    """JSON with Content-Length by default; /chunked, /legacy and /bye show other framings."""

    protocol_version = "HTTP/1.1"  # keep-alive, as an OpenSearch node speaks
    server: Upstream

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep test output clean

    def _record(self) -> None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = b""
            while size := int(self.rfile.readline().split(b";")[0], 16):
                body += self.rfile.read(size)
                self.rfile.readline()
            self.rfile.readline()  # the empty line after the last chunk
        else:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        headers = {k.lower(): v for k, v in self.headers.items()}
        port = self.client_address[1]
        self.server.seen.append(Seen(self.command, self.path, headers, body, port))

    def _json(self, payload: dict, *, send_body: bool = True) -> None:
        body = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Upstream", "yes")
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def do_GET(self) -> None:
        self._record()
        if self.path == "/chunked":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for piece in CHUNKS:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
        elif self.path == "/legacy":  # no length, no chunking: the body ends when we close
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"until close")
            self.close_connection = True
        else:
            self._json({"path": self.path})
            self.close_connection = self.path == "/bye"  # closes without saying so

    def do_HEAD(self) -> None:
        self._record()
        self._json({"path": self.path}, send_body=False)

    def do_POST(self) -> None:
        self._record()
        self._json({"received": len(self.server.seen[-1].body)})


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    server = Upstream()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def proxy(upstream: Upstream) -> Iterator[FaultProxy]:
    with FaultProxy(upstream.url) as started:
        yield started


def connect(proxy: FaultProxy, timeout: float = 5) -> http.client.HTTPConnection:
    parts = urlsplit(proxy.url)
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)


def call(
    conn: http.client.HTTPConnection, method: str, path: str, body: object = None, **kw: str
) -> tuple[int, dict[str, str], bytes]:
    """One request; keyword arguments are headers (Content_Encoding -> Content-Encoding)."""
    conn.request(method, path, body=body, headers={k.replace("_", "-"): v for k, v in kw.items()})
    response = conn.getresponse()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()


def test_forward_relays_status_body_headers_and_keeps_the_connection_alive(proxy, upstream):
    conn = connect(proxy)
    status, headers, body = call(conn, "GET", "/json?pretty")
    first_socket = conn.sock
    again = call(conn, "GET", "/again")

    assert (status, json.loads(body)) == (200, {"path": "/json?pretty"})
    assert headers["x-upstream"] == "yes"
    assert again[0] == 200 and json.loads(again[2]) == {"path": "/again"}
    assert conn.sock is first_socket  # the client reused its connection
    assert [s.path for s in upstream.seen] == ["/json?pretty", "/again"]
    assert upstream.seen[0].peer_port == upstream.seen[1].peer_port  # and so did the proxy
    assert [r.path for r in proxy.requests] == ["/json?pretty", "/again"]
    assert proxy.actions() == {"Forward": 2}


def test_head_responses_have_no_body_and_the_connection_stays_usable(proxy):
    conn = connect(proxy)
    status, headers, body = call(conn, "HEAD", "/json")
    assert (status, body) == (200, b"") and int(headers["content-length"]) > 0
    assert call(conn, "GET", "/next")[0] == 200


def test_delay_makes_the_request_take_at_least_the_delay(proxy, upstream):
    proxy.rule = lambda request: Delay(0.3)
    started = time.monotonic()
    status, _, _ = call(connect(proxy), "GET", "/slow")
    assert status == 200 and time.monotonic() - started >= 0.3
    assert [s.path for s in upstream.seen] == ["/slow"]


def test_reset_gives_the_client_a_connection_error_and_the_node_never_sees_it(proxy, upstream):
    proxy.rule = lambda request: Reset()
    with pytest.raises(ConnectionError):
        call(connect(proxy), "POST", "/logs/_bulk", b"{}\n")
    assert upstream.seen == []
    assert proxy.actions() == {"Reset": 1}


def test_reset_is_an_rst_not_an_orderly_close(proxy):
    proxy.rule = lambda request: Reset()
    port = urlsplit(proxy.url).port
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        raw.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        with pytest.raises(ConnectionResetError):  # an orderly close would read b"" instead
            raw.recv(1)


def test_respond_answers_locally_and_the_node_never_sees_it(proxy, upstream):
    rejection = {"error": {"type": "es_rejected_execution_exception"}, "status": 429}
    proxy.rule = lambda request: Respond(429, rejection, {"Retry-After": "1"})
    conn = connect(proxy)
    status, headers, body = call(conn, "POST", "/logs/_bulk", b"{}\n")

    assert (status, json.loads(body)) == (429, rejection)
    assert headers["content-type"] == "application/json" and headers["retry-after"] == "1"
    assert upstream.seen == []
    assert call(conn, "POST", "/logs/_bulk", b"{}\n")[0] == 429  # same connection still usable


def test_hold_blocks_the_request_until_release(proxy, upstream):
    proxy.rule = lambda request: Hold()
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(call, connect(proxy), "POST", "/logs/_bulk", b"{}\n")
        assert proxy.held.wait(5)
        time.sleep(0.1)  # give a wrongly forwarded request time to show up
        assert upstream.seen == [] and not pending.done()

        proxy.release()
        status, _, body = pending.result(timeout=5)

    assert (status, json.loads(body)) == (200, {"received": 3})
    assert [s.path for s in upstream.seen] == ["/logs/_bulk"]
    assert not proxy.held.is_set()


def test_forward_then_reset_applies_the_write_but_loses_the_acknowledgement(proxy, upstream):
    proxy.rule = lambda request: ForwardThenReset()
    with pytest.raises(ConnectionError):
        call(connect(proxy), "POST", "/logs/_bulk", b'{"index": {}}\n{"a": 1}\n')
    assert [(s.path, s.body) for s in upstream.seen] == [
        ("/logs/_bulk", b'{"index": {}}\n{"a": 1}\n')
    ]


def test_rewrite_response_replaces_the_body_and_fixes_content_length(proxy):
    proxy.rule = lambda request: RewriteResponse(lambda status, body: b'{"errors": true}')
    status, headers, body = call(connect(proxy), "GET", "/json")
    assert (status, body) == (200, b'{"errors": true}')
    assert headers["content-length"] == str(len(body)) and headers["x-upstream"] == "yes"


def test_rewrite_response_sees_and_replaces_a_chunked_body_whole(proxy):
    seen: list[tuple[int, bytes]] = []
    proxy.rule = lambda request: RewriteResponse(lambda s, b: seen.append((s, b)) or b"[]")
    status, headers, body = call(connect(proxy), "GET", "/chunked")
    assert seen == [(200, b"".join(CHUNKS))]
    assert (status, body, headers["content-length"]) == (200, b"[]", "2")
    assert "transfer-encoding" not in headers


def test_chunked_responses_are_relayed_and_the_connection_stays_usable(proxy):
    conn = connect(proxy)
    status, headers, body = call(conn, "GET", "/chunked")
    assert (status, body, headers["transfer-encoding"]) == (200, b"".join(CHUNKS), "chunked")
    assert call(conn, "GET", "/after")[2] == b'{"path": "/after"}'


def test_a_response_delimited_by_close_is_relayed_whole(proxy):
    status, _, body = call(connect(proxy), "GET", "/legacy")
    assert (status, body) == (200, b"until close")


def test_a_new_upstream_connection_is_opened_when_the_node_closed_the_old_one(proxy, upstream):
    conn = connect(proxy)
    assert call(conn, "GET", "/bye")[0] == 200
    time.sleep(0.2)  # let the node's close reach the proxy
    assert call(conn, "GET", "/json")[0] == 200
    assert upstream.seen[0].peer_port != upstream.seen[1].peer_port


def test_gzip_chunked_requests_are_inspected_decoded_and_forwarded_as_sent(proxy, upstream):
    ndjson = b'{"index": {"_index": "anomalies"}}\n{"score": 0.9}\n'
    compressed = gzip.compress(ndjson)
    halves = [compressed[:10], compressed[10:]]  # an iterable body makes http.client chunk it
    status, _, _ = call(connect(proxy), "POST", "/_bulk", iter(halves), Content_Encoding="gzip")

    assert status == 200
    request = proxy.requests[0]
    assert request.headers["transfer-encoding"] == "chunked"
    assert request.body == ndjson and is_bulk_to(request, "anomalies")
    assert upstream.seen[0].body == compressed


def bulk(path: str, *lines: dict, method: str = "POST") -> Request:
    body = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
    return Request(method, path, {"content-type": "application/x-ndjson"}, body)


def test_is_bulk_to_recognises_path_and_line_targeted_bulks():
    doc = {"message": "x"}
    assert is_bulk_to(bulk("/anomalies/_bulk?refresh=true", {"index": {}}, doc), "anomalies")
    assert is_bulk_to(bulk("/_bulk", {"create": {"_index": "anomalies"}}, doc), "anomalies")
    assert is_bulk_to(bulk("/_bulk", {"delete": {"_index": "a"}}, {"delete": {"_index": "b"}}), "b")

    assert not is_bulk_to(bulk("/other/_bulk", {"index": {}}, doc), "anomalies")
    assert not is_bulk_to(bulk("/_bulk", {"index": {"_index": "other"}}, doc), "anomalies")
    assert not is_bulk_to(bulk("/anomalies/_bulk", method="GET"), "anomalies")
    assert not is_bulk_to(bulk("/anomalies/_search", {"query": {}}), "anomalies")
    # a document that merely looks like an action line is a source line, not a target
    lookalike = {"index": {"_index": "anomalies"}}
    assert not is_bulk_to(bulk("/_bulk", {"index": {"_index": "logs"}}, lookalike), "anomalies")


def test_a_stopped_upstream_gives_the_client_a_connection_error():
    with socket.socket() as probe:  # a port that was free a moment ago has nobody listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with FaultProxy(f"http://127.0.0.1:{port}") as proxy, pytest.raises(ConnectionError):
        call(connect(proxy), "GET", "/")


def test_stop_returns_promptly_with_blackholed_and_held_requests_in_flight(proxy, upstream):
    arrived = {"/black": threading.Event(), "/held": threading.Event()}

    def rule(request: Request) -> Blackhole | Hold:
        arrived[request.path].set()
        return Blackhole() if request.path == "/black" else Hold()

    proxy.rule = rule
    with ThreadPoolExecutor(2) as pool:
        pending = [pool.submit(call, connect(proxy, timeout=30), "GET", p) for p in arrived]
        assert all(event.wait(5) for event in arrived.values())

        started = time.monotonic()
        proxy.stop()
        assert time.monotonic() - started < 2
        alive = [t.name for t in threading.enumerate() if t.name.startswith("faultproxy")]
        assert alive == []  # its threads have ended, not merely been abandoned

        for future in pending:  # the clients are let go, not left waiting for their timeout
            assert isinstance(future.exception(timeout=5), ConnectionError)
    assert upstream.seen == []
    assert proxy.actions() == {"Blackhole": 1, "Hold": 1}
