"""The sidecar's exception hierarchy: callers decide by kind, not by message."""

from __future__ import annotations

__all__ = [
    "SidecarError",
    "ConfigError",
    "SourceUnavailable",
    "WriteError",
    "CheckpointError",
    "ModelError",
    "AccessError",
]


class SidecarError(Exception):
    """Base of every error the sidecar raises on purpose."""


class ConfigError(SidecarError):
    """A setting is wrong; the program cannot start. Exit status 2."""


class SourceUnavailable(SidecarError):
    """Reading from the cluster failed in a way that a later cycle may not see (transient)."""


class WriteError(SidecarError):
    """Some anomaly documents were not acknowledged; the cursor must not move."""

    def __init__(self, message: str, failures: list[dict[str, object]] | None = None) -> None:
        super().__init__(message)
        self.failures = failures or []


class CheckpointError(SidecarError):
    """The per-host state could not be read or saved."""


class ModelError(SidecarError):
    """A model artifact is missing, corrupt or incompatible with this version."""


class AccessError(SidecarError):
    """The cluster refused the certificate check or the credentials: retrying cannot help, so
    the program stops at start-up with a message naming the setting to fix. Exit status 3."""
