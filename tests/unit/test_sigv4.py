"""AWS SigV4 (Amazon OpenSearch Service): every request the sidecar's client sends is signed,
and the signature checks out when recomputed here from the request the server received,
following the published algorithm step by step (not through the library that made it)."""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, urlsplit

import pytest

from sidecar.app.wiring import load_settings
from sidecar.cluster.client import make_client
from sidecar.errors import ConfigError

ACCESS_KEY = "AKIDEXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
SESSION_TOKEN = "session-token-example"
REGION = "eu-west-1"


class _Recorder(BaseHTTPRequestHandler):
    seen: list[tuple[str, str, dict[str, str], bytes]] = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.seen.append((self.command, self.path, dict(self.headers.items()), body))
        payload = b'{"count": 0, "errors": false, "items": [], "took": 1}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _answer

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for name in ("AWS_PROFILE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_SESSION_TOKEN", SESSION_TOKEN)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    _Recorder.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def _expected_signature(method: str, path: str, headers: dict[str, str], body: bytes) -> str:
    """SigV4 from its definition: canonical request, string to sign, derived key, HMAC."""
    lower = {k.lower(): v.strip() for k, v in headers.items()}
    auth = lower["authorization"]
    credential = auth.split("Credential=")[1].split(",")[0]
    signed = auth.split("SignedHeaders=")[1].split(",")[0].split(";")
    scope = credential.split("/", 1)[1]
    day, region, service, _ = scope.split("/")
    url = urlsplit(path)
    query = "&".join(
        sorted(
            f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}"
            for k, _, v in (p.partition("=") for p in url.query.split("&") if p)
        )
    )
    canonical = "\n".join(
        [
            method,
            quote(url.path, safe="/-_.~"),
            query,
            "".join(f"{h}:{lower[h]}\n" for h in signed),
            ";".join(signed),
            hashlib.sha256(body).hexdigest(),
        ]
    )
    to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            lower["x-amz-date"],
            scope,
            hashlib.sha256(canonical.encode()).hexdigest(),
        ]
    )
    key = ("AWS4" + SECRET_KEY).encode()
    for part in (day, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def test_every_request_is_signed_and_the_signature_verifies(recorder: str) -> None:
    settings = load_settings(cluster_urls=[recorder], aws_sigv4=True, aws_region=REGION)
    client = make_client(settings)

    client.count(index="logs-*", params={"ignore_unavailable": "true"})
    client.bulk(body=b'{"create": {"_index": "log-anomalies", "_id": "a"}}\n{"x": 1}\n')

    assert len(_Recorder.seen) == 2
    for method, path, headers, body in _Recorder.seen:
        auth = headers["Authorization"]
        assert auth.startswith(f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/")
        assert f"/{REGION}/es/aws4_request" in auth
        assert headers["X-Amz-Security-Token"] == SESSION_TOKEN
        assert auth.split("Signature=")[1] == _expected_signature(method, path, headers, body)
        assert SECRET_KEY not in str(headers)
    assert _Recorder.seen[1][3].startswith(b'{"create"')


def test_serverless_signs_for_the_aoss_service(recorder: str) -> None:
    settings = load_settings(
        cluster_urls=[recorder], aws_sigv4=True, aws_region=REGION, aws_service="aoss"
    )

    make_client(settings).count(index="logs-*")

    assert f"/{REGION}/aoss/aws4_request" in _Recorder.seen[0][2]["Authorization"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({}, "SIDECAR_AWS_REGION"),
        ({"aws_region": REGION, "username": "u", "password": "p"}, "SIDECAR_USERNAME"),
    ],
)
def test_sigv4_settings_are_checked_at_start(extra: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(aws_sigv4=True, **extra)
