"""Saved objects to a Dashboards or Kibana server: NDJSON, and the saved-objects import API.

The transport at the edge, apart from the objects' definitions (sidecar/app/dashboards.py)."""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from typing import Literal

__all__ = ["Product", "XSRF_HEADER", "ImportResult", "ndjson", "import_saved_objects"]

Product = Literal["opensearch-dashboards", "kibana"]
XSRF_HEADER = {"opensearch-dashboards": "osd-xsrf", "kibana": "kbn-xsrf"}


def ndjson(objects: list[dict]) -> bytes:
    return b"".join(json.dumps(o, separators=(",", ":")).encode() + b"\n" for o in objects)


@dataclass(frozen=True, slots=True)
class ImportResult:
    success: bool
    count: int
    errors: list[dict]


def import_saved_objects(
    url: str,
    product: Product,
    objects: list[dict],
    *,
    username: str | None = None,
    password: str | None = None,
    api_key: str | None = None,
    ca_bundle: str | None = None,
    verify: bool = True,
    space: str | None = None,
    timeout_s: float = 60,
) -> ImportResult:
    """POST the objects to `<url>[/s/<space>]/api/saved_objects/_import?overwrite=true`."""
    boundary = f"----sidecar{uuid.uuid4().hex}"
    body = (
        (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="file"; filename="log-anomalies.ndjson"\r\n'
            "Content-Type: application/ndjson\r\n\r\n"
        ).encode()
        + ndjson(objects)
        + f"\r\n--{boundary}--\r\n".encode()
    )
    prefix = f"/s/{space}" if space and product == "kibana" else ""
    request = urllib.request.Request(
        f"{url.rstrip('/')}{prefix}/api/saved_objects/_import?overwrite=true",
        data=body,
        method="POST",
        headers={
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            XSRF_HEADER[product]: "true",
        },
    )
    if username and password is not None:
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    elif api_key:
        request.add_header("Authorization", f"ApiKey {api_key}")
    context = (
        ssl.create_default_context(cafile=ca_bundle) if verify else ssl._create_unverified_context()
    )  # noqa: S323
    try:
        with urllib.request.urlopen(request, timeout=timeout_s, context=context) as response:
            answer = json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")[:500]
        raise RuntimeError(f"{product} refused the import ({exc.code}): {detail}") from None
    return ImportResult(
        bool(answer.get("success")),
        int(answer.get("successCount", 0)),
        list(answer.get("errors", [])),
    )
