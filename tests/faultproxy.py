"""An HTTP/1.1-aware TCP proxy that puts faults between the sidecar and a real OpenSearch node.

Integration tests point the sidecar's opensearch-py client at `FaultProxy.url` instead of the
node. A rule chooses, per request, what happens to it: forwarded untouched, delayed (slow
node), answered locally (429 throttling), the connection reset (node crash), forwarded with the
acknowledgement lost (the write is applied but the client never hears), a rewritten response, a
request that never gets an answer, or a request held at a chosen point until the test calls
`release()`, so that a test can kill the sidecar exactly there.

It speaks just enough HTTP/1.1 to find message boundaries on a keep-alive connection; it is
test equipment, not a general proxy (plain http only, no pipelining, no upgrades).
"""

from __future__ import annotations

import collections
import contextlib
import fnmatch
import gzip
import json
import select
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from http.client import responses
from urllib.parse import urlsplit

UPSTREAM_TIMEOUT_S = 120.0  # a healthy node answers well within this; beyond it, fail loudly
CLIENT_IDLE_TIMEOUT_S = 300.0  # idle keep-alive clients are dropped, like a real node does
MAX_HEAD_BYTES = 64 * 1024
JOIN_BUDGET_S = 1.5  # stop() must return within 2 s even with held or blackholed requests


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # request target, including the query string
    headers: dict[str, str]  # names lower-cased
    body: bytes  # de-chunked and decompressed, for inspection only

    def json_lines(self) -> list[dict]:
        """The NDJSON body (bulk requests), one object per non-empty line."""
        return [json.loads(line) for line in self.body.splitlines() if line.strip()]


# The actions a rule returns. Forward is the default; the others are the faults.
@dataclass(frozen=True)
class Forward: ...  # send upstream, relay the response


@dataclass(frozen=True)
class Delay:
    seconds: float  # a slow node: sleep this long, then forward


@dataclass(frozen=True)
class Reset: ...  # do not forward; reset the client, as a crashed node would


@dataclass(frozen=True)
class Respond:
    status: int  # answer locally without forwarding, e.g. 429 throttling
    body: bytes | dict  # a dict is sent as JSON
    headers: dict[str, str] | None = None


@dataclass(frozen=True)
class Hold: ...  # block until FaultProxy.release() (or stop), then forward


@dataclass(frozen=True)
class ForwardThenReset: ...  # forward, read the answer, reset the client: a lost acknowledgement


@dataclass(frozen=True)
class RewriteResponse:
    fn: Callable[[int, bytes], bytes]  # (status, decoded body) -> body relayed instead


@dataclass(frozen=True)
class Blackhole: ...  # do not forward; keep the connection open, never answer (until stop)


Action = Forward | Delay | Reset | Respond | Hold | ForwardThenReset | RewriteResponse | Blackhole
BULK_ACTIONS = ("index", "create", "update", "delete")


def forward_everything(request: Request) -> Action:
    return Forward()


def is_bulk_to(request: Request, index: str) -> bool:
    """True for a `_bulk` POST aimed at `index` (a name or a pattern such as "anomalies*"), by
    its path or by an action line's `_index`."""
    parts = request.path.split("?", 1)[0].strip("/").split("/")
    if request.method != "POST" or parts[-1] != "_bulk":
        return False
    if len(parts) == 2 and fnmatch.fnmatchcase(parts[0], index):
        return True
    lines = iter(request.json_lines())
    for line in lines:
        op = next((name for name in BULK_ACTIONS if name in line), None)
        if op is None:
            continue
        if fnmatch.fnmatchcase(str(line[op].get("_index")), index):
            return True
        if op != "delete":
            next(lines, None)  # skip the source line, which could look like an action
    return False


class _Closed(Exception):
    """The peer closed the connection before a complete message arrived."""


class _Reader:
    """Buffered reads off a socket, so message boundaries can be found without over-reading."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buf = bytearray()

    def _fill(self) -> None:
        data = self._sock.recv(65536)
        if not data:
            raise _Closed
        self._buf += data

    def _take(self, n: int) -> bytes:
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def until(self, marker: bytes, limit: int = MAX_HEAD_BYTES) -> bytes:
        while (i := self._buf.find(marker)) < 0:
            if len(self._buf) > limit:
                raise ValueError("HTTP head too large")
            self._fill()
        return self._take(i + len(marker))

    def exact(self, n: int) -> bytes:
        while len(self._buf) < n:
            self._fill()
        return self._take(n)

    def to_eof(self) -> bytes:
        try:
            while True:
                self._fill()
        except _Closed:
            return self._take(len(self._buf))


@dataclass(frozen=True)
class _Message:
    start: str  # request line or status line
    fields: list[tuple[str, str]]  # headers as sent, in order
    headers: dict[str, str]  # lower-cased names
    raw: bytes  # exactly the bytes on the wire, forwarded untouched
    body: bytes  # de-chunked
    closes: bool  # the connection ends after this message

    @property
    def status(self) -> int:
        return int(self.start.split()[1])


def _read_chunked(reader: _Reader) -> tuple[bytes, bytes]:
    raw, body = bytearray(), bytearray()
    while True:
        line = reader.until(b"\r\n")
        raw += line
        size = int(line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            while (trailer := reader.until(b"\r\n")) != b"\r\n":
                raw += trailer
            return bytes(raw + b"\r\n"), bytes(body)
        data = reader.exact(size + 2)
        raw += data
        body += data[:size]


def _read_message(reader: _Reader, *, is_response: bool, method: str = "") -> _Message:
    head = reader.until(b"\r\n\r\n")
    start, *lines = head[:-4].decode("latin-1").split("\r\n")
    fields = [(k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in lines)]
    headers = {k.lower(): v for k, v in fields}
    connection = headers.get("connection", "").lower()
    version = start.split()[0] if is_response else start.rsplit(" ", 1)[-1]
    closes = "close" in connection or (version == "HTTP/1.0" and "keep-alive" not in connection)
    status = int(start.split()[1]) if is_response else 0
    if is_response and (method == "HEAD" or status in (204, 304) or 100 <= status < 200):
        raw = body = b""  # these never carry a body, whatever the headers say
    elif "chunked" in headers.get("transfer-encoding", "").lower():
        raw, body = _read_chunked(reader)
    elif "content-length" in headers:
        raw = body = reader.exact(int(headers["content-length"]))
    elif is_response:  # neither length nor chunking: the body runs until the node closes
        raw = body = reader.to_eof()
        closes = True
    else:
        raw = body = b""
    return _Message(start, fields, headers, head + raw, body, closes)


def _read_response(reader: _Reader, method: str) -> _Message:
    interim = b""  # 1xx answers (100 Continue) are relayed ahead of the real response
    while True:
        response = _read_message(reader, is_response=True, method=method)
        if not (100 <= response.status < 200) or response.status == 101:
            return replace(response, raw=interim + response.raw)
        interim += response.raw


def _gunzip_if(headers: dict[str, str], body: bytes) -> bytes:
    return gzip.decompress(body) if headers.get("content-encoding", "").lower() == "gzip" else body


def _encode(start: str, fields: list[tuple[str, str]], body: bytes) -> bytes:
    head = "".join(f"{k}: {v}\r\n" for k, v in fields)
    return f"{start}\r\n{head}\r\n".encode("latin-1") + body


def _local_response(action: Respond) -> bytes:
    is_json = isinstance(action.body, dict)
    body = json.dumps(action.body).encode() if is_json else action.body
    fields = [("Content-Type", "application/json")] if is_json else []
    fields += list((action.headers or {}).items()) + [("Content-Length", str(len(body)))]
    return _encode(f"HTTP/1.1 {action.status} {responses.get(action.status, '')}", fields, body)


def _rewritten(response: _Message, fn: Callable[[int, bytes], bytes]) -> bytes:
    body = fn(response.status, _gunzip_if(response.headers, response.body))
    drop = {"content-length", "transfer-encoding", "content-encoding"}
    fields = [(k, v) for k, v in response.fields if k.lower() not in drop]
    return _encode(response.start, fields + [("Content-Length", str(len(body)))], body)


def _reset(sock: socket.socket) -> None:
    """Close with SO_LINGER 0, so the peer gets an RST rather than an orderly FIN."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def _shutdown(sock: socket.socket | None) -> None:
    """Wakes a thread blocked on `sock` (close() alone would not); that thread closes it."""
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


class _Connection:
    """One client connection and its own lazily opened upstream connection."""

    def __init__(self, proxy: FaultProxy, client: socket.socket) -> None:
        self.proxy = proxy
        self.client = client
        self.upstream: socket.socket | None = None
        self.up_reader: _Reader | None = None

    def serve(self) -> None:
        reader = _Reader(self.client)
        try:
            while not self.proxy._stopping.is_set():
                message = _read_message(reader, is_response=False)
                method, path = message.start.split(" ")[:2]
                body = _gunzip_if(message.headers, message.body)
                request = Request(method, path, message.headers, body)
                if not self._handle(request, message):
                    break
        except (_Closed, OSError, ValueError):
            pass  # the client left, or the stream is unusable: either way this connection ends
        finally:
            self.client.close()
            if self.upstream is not None:
                self.upstream.close()
            self.proxy._forget(self)

    def _handle(self, request: Request, message: _Message) -> bool:
        """Applies the rule's action; returns whether the client connection stays open."""
        action = self.proxy._decide(request)
        stopping = self.proxy._stopping
        if isinstance(action, Reset):
            _reset(self.client)
            return False
        if isinstance(action, Respond):
            self.client.sendall(_local_response(action))
            return not message.closes
        if isinstance(action, Blackhole):
            stopping.wait()
            return False
        if isinstance(action, Delay) and stopping.wait(action.seconds):
            return False
        if isinstance(action, Hold) and not self.proxy._hold_until_released():
            return False
        try:
            response = self._exchange(message.raw, request.method)
        except (_Closed, OSError, ValueError):
            _reset(self.client)  # the node is down or died mid-answer: look like it to the client
            return False
        if isinstance(action, ForwardThenReset):
            _reset(self.client)
            return False
        out = _rewritten(response, action.fn) if isinstance(action, RewriteResponse) else None
        self.client.sendall(out if out is not None else response.raw)
        return not (response.closes or message.closes)

    def _exchange(self, raw: bytes, method: str) -> _Message:
        if self.upstream is not None and select.select([self.upstream], [], [], 0)[0]:
            # readable while idle means the node closed it (or sent junk): start afresh
            self.upstream.close()
            self.upstream = None
        if self.upstream is None:
            self.upstream = socket.create_connection(self.proxy._upstream, UPSTREAM_TIMEOUT_S)
            self.up_reader = _Reader(self.upstream)
        assert self.up_reader is not None
        self.upstream.sendall(raw)
        response = _read_response(self.up_reader, method)
        if response.closes:
            self.upstream.close()
            self.upstream = None
        return response

    def abort(self) -> None:
        _shutdown(self.client)
        _shutdown(self.upstream)


class FaultProxy:
    """Listens on 127.0.0.1 and relays to `upstream_url`, applying `rule` to every request."""

    def __init__(self, upstream_url: str) -> None:
        parts = urlsplit(upstream_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"plain http upstream expected, got {upstream_url!r}")
        self._upstream = (parts.hostname, parts.port or 80)
        self.rule: Callable[[Request], Action] = forward_everything
        self.url = ""
        self.held = threading.Event()
        self.requests: list[Request] = []
        self.errors: list[BaseException] = []  # exceptions raised by rules (the request is reset)
        self._counts: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()
        self._release = threading.Condition(self._lock)
        self._generation = 0  # bumped by release(); a held request waits for it to change
        self._stopping = threading.Event()
        self._connections: set[_Connection] = set()
        self._threads: list[threading.Thread] = []
        self._listener: socket.socket | None = None

    def start(self) -> FaultProxy:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._spawn(self._accept_loop, "faultproxy-accept")
        return self

    def stop(self) -> None:
        with self._release:
            self._stopping.set()
            self._release.notify_all()
            connections = list(self._connections)
        _shutdown(self._listener)  # wakes accept() on Linux
        for connection in connections:
            connection.abort()
        deadline = time.monotonic() + JOIN_BUDGET_S
        for thread in list(self._threads):
            thread.join(max(0.0, deadline - time.monotonic()))
        self.held.clear()

    def release(self) -> None:
        """Lets every currently held request proceed; later `Hold`s block until the next call."""
        with self._release:
            self._generation += 1
            self.held.clear()
            self._release.notify_all()

    def actions(self) -> collections.Counter[str]:
        with self._lock:
            return collections.Counter(self._counts)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        with self._listener:
            while True:
                try:
                    client, _ = self._listener.accept()
                except OSError:
                    return  # stop() shut the listener down
                client.settimeout(CLIENT_IDLE_TIMEOUT_S)
                connection = _Connection(self, client)
                with self._lock:
                    if self._stopping.is_set():
                        client.close()
                        return
                    self._connections.add(connection)
                self._spawn(connection.serve, "faultproxy-conn")

    def _forget(self, connection: _Connection) -> None:
        with self._lock:
            self._connections.discard(connection)

    def _decide(self, request: Request) -> Action:
        try:
            action = self.rule(request)
        except Exception as exc:  # a broken rule must not hang the client: record and reset
            with self._lock:
                self.errors.append(exc)
            action = Reset()
        with self._lock:
            self.requests.append(request)
            self._counts[type(action).__name__] += 1
        return action

    def _hold_until_released(self) -> bool:
        """Blocks until release() or stop(); True when the request should go on."""
        with self._release:
            generation = self._generation
            self.held.set()
            while self._generation == generation and not self._stopping.is_set():
                self._release.wait()
            return not self._stopping.is_set()
