"""The one place an OpenSearch client is built from the connection settings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

import orjson
from opensearchpy import OpenSearch
from opensearchpy.exceptions import (
    AuthenticationException,
    AuthorizationException,
    ConnectionTimeout,
    SerializationError,
    SSLError,
)
from opensearchpy.exceptions import ConnectionError as OSConnectionError
from opensearchpy.serializer import JSONSerializer
from pydantic import SecretStr

from sidecar.errors import AccessError

__all__ = ["Connection", "make_client", "OrjsonSerializer", "reachable", "check_access"]


class Connection(Protocol):
    """What building a client reads from the settings (sidecar.app.settings.Settings has it);
    the adapter states it here so that it never imports the command layer."""

    cluster_urls: list[str]
    request_timeout_seconds: float
    request_max_retries: int
    verify_certs: bool
    http_compress: bool
    ca_bundle: Path | None
    username: str | None
    password: SecretStr | None
    api_key: SecretStr | None
    aws_sigv4: bool
    aws_region: str | None
    aws_service: str
    state_index: str

    def redacted(self) -> dict[str, object]: ...


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


def make_client(settings: Connection) -> OpenSearch:
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
    if settings.aws_sigv4:
        kwargs["http_auth"] = aws_signer(settings)
    return OpenSearch(**kwargs)


def aws_signer(settings: Connection) -> Any:
    """SigV4 signing with credentials from botocore's chain, refreshed as they expire."""
    import botocore.session
    from opensearchpy import Urllib3AWSV4SignerAuth

    credentials = botocore.session.Session().get_credentials()
    if credentials is None:
        raise AccessError(
            "SIDECAR_AWS_SIGV4 is on but no AWS credentials were found (environment, "
            "web identity token, shared config or instance profile)"
        )
    return Urllib3AWSV4SignerAuth(credentials, settings.aws_region, settings.aws_service)


def reachable(client: OpenSearch, index: str) -> bool:
    """Whether the cluster answers a request this sidecar is allowed to make.

    Not `HEAD /`: the least-privilege role has no cluster permissions (a secured cluster answers
    403), and minimal Elasticsearch distributions do not serve `/` at all. Counting the state
    index needs only the read privilege the sidecar has anyway, on both engines.
    """
    client.count(index=index, params={"ignore_unavailable": "true", "allow_no_indices": "true"})
    return True


def check_access(client: OpenSearch, settings: Connection) -> None:
    """Fail fast on what no retry can fix: a certificate that does not verify, credentials the
    cluster refuses, a role that may not read the sidecar's own state. A cluster that is merely
    down is left to the cycle loop, which backs off and retries."""
    urls = ", ".join(settings.redacted()["cluster_urls"])  # type: ignore[arg-type]
    try:
        reachable(client, settings.state_index)
    except SSLError as exc:
        reason = str(getattr(exc, "info", "") or exc)[:300]
        raise AccessError(
            f"TLS verification of {urls} failed ({reason}); check SIDECAR_CA_BUNDLE "
            f"(the CA that signed the cluster's certificate) and SIDECAR_VERIFY_CERTS"
        ) from None
    except AuthenticationException:
        raise AccessError(
            f"{urls} refused the credentials (401); check SIDECAR_USERNAME and "
            f"SIDECAR_PASSWORD, or SIDECAR_API_KEY"
        ) from None
    except AuthorizationException:
        raise AccessError(
            f"the user may not read {settings.state_index} on {urls} (403); grant it the "
            f"sidecar role from the README"
        ) from None
    except (OSConnectionError, ConnectionTimeout):
        pass  # unreachable for now: not a configuration problem
