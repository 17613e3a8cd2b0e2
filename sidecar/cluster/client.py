"""The one place an OpenSearch client is built from settings."""

from __future__ import annotations

import json
from typing import Any

import orjson
from opensearchpy import OpenSearch
from opensearchpy.exceptions import SerializationError
from opensearchpy.serializer import JSONSerializer

from sidecar.settings import Settings

__all__ = ["make_client", "OrjsonSerializer"]


class OrjsonSerializer(JSONSerializer):
    """The client's JSON codec, on orjson: decoding search pages is the reader's main cost
    after the cluster itself. Falls back to the standard encoder for types orjson lacks."""

    def loads(self, s: str | bytes) -> Any:
        try:
            return orjson.loads(s)
        except orjson.JSONDecodeError:
            # orjson refuses lone surrogates (a "\ud800" escape the cluster stores as given);
            # one such message must not make a whole page unreadable, so the standard decoder,
            # which accepts them, gets a second look. Parsing then cleans the strings.
            try:
                return json.loads(s)
            except ValueError as exc:
                raise SerializationError(s, exc) from exc

    def dumps(self, data: Any) -> Any:
        if isinstance(data, str | bytes):
            return data
        try:
            return orjson.dumps(data, default=self.default).decode()
        except TypeError:
            return super().dumps(data)


def make_client(settings: Settings) -> OpenSearch:
    kwargs: dict[str, object] = {
        "hosts": list(settings.cluster_urls),
        "timeout": settings.request_timeout_seconds,
        "verify_certs": settings.verify_certs,
        "ssl_show_warn": settings.verify_certs,
        "max_retries": settings.request_max_retries,
        "retry_on_timeout": True,
        "http_compress": settings.http_compress,
        "serializer": OrjsonSerializer(),
    }
    if settings.ca_bundle is not None:
        kwargs["ca_certs"] = str(settings.ca_bundle)
    if settings.username and settings.password is not None:
        kwargs["http_auth"] = (settings.username, settings.password.get_secret_value())
    if settings.api_key is not None:
        kwargs["headers"] = {"Authorization": f"ApiKey {settings.api_key.get_secret_value()}"}
    return OpenSearch(**kwargs)
