"""The one place an OpenSearch client is built from settings."""

from __future__ import annotations

from opensearchpy import OpenSearch

from sidecar.settings import Settings

__all__ = ["make_client"]


def make_client(settings: Settings) -> OpenSearch:
    kwargs: dict[str, object] = {
        "hosts": list(settings.cluster_urls),
        "timeout": settings.request_timeout_seconds,
        "verify_certs": settings.verify_certs,
        "ssl_show_warn": settings.verify_certs,
        "max_retries": 3,
        "retry_on_timeout": True,
        "http_compress": True,
    }
    if settings.ca_bundle is not None:
        kwargs["ca_certs"] = str(settings.ca_bundle)
    if settings.username and settings.password is not None:
        kwargs["http_auth"] = (settings.username, settings.password.get_secret_value())
    if settings.api_key is not None:
        kwargs["headers"] = {"Authorization": f"ApiKey {settings.api_key.get_secret_value()}"}
    return OpenSearch(**kwargs)
