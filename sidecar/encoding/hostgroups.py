"""Host groups: which hosts share one normal workflow (web-01, web-02 -> web).

A fleet names its machines by role plus an ordinal, so the name without its trailing number is
a cheap, configuration-free guess at the role. Where that guess is wrong, a regular expression
with one capture group names the group instead.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["HostGrouping", "default_group", "host_group", "check_pattern"]

# A trailing ordinal and the separators before it: web-01, web_02, web.3, web4.
_TRAILING_ORDINAL = re.compile(r"[-_.]*\d+$")


def default_group(host: str) -> str:
    """The host name without its trailing ordinal; a name that is nothing but an ordinal or an
    IP address (which would otherwise group a whole subnet) is its own group."""
    if _is_ip_address(host):
        return host
    stem = _TRAILING_ORDINAL.sub("", host)
    return stem or host


def _is_ip_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@lru_cache(maxsize=16)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def check_pattern(pattern: str) -> str:
    """The pattern if it compiles and has exactly one capture group; ValueError otherwise."""
    try:
        compiled = _compiled(pattern)
    except re.error as exc:
        raise ValueError(f"{pattern!r} is not a regular expression: {exc}") from None
    if compiled.groups != 1:
        raise ValueError(f"{pattern!r} must have exactly one capture group, not {compiled.groups}")
    return pattern


def host_group(host: str, pattern: str | None = None) -> str:
    """The group of `host`: with a pattern, its capture group where the pattern is found in the
    name (a host it does not match, or matches with an empty group, is its own group);
    without one, `default_group`."""
    if not pattern:
        return default_group(host)
    found = _compiled(pattern).search(host)
    group = found.group(1) if found else None
    return group or host


@dataclass(frozen=True, slots=True)
class HostGrouping:
    """The grouping rule a workflow was learned with, kept beside it so scoring groups hosts
    the way training did."""

    pattern: str | None = None

    def __post_init__(self) -> None:
        if self.pattern:
            check_pattern(self.pattern)

    def group_of(self, host: str) -> str:
        return host_group(host, self.pattern)

    def to_json(self) -> dict[str, object]:
        return {"pattern": self.pattern or None}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> HostGrouping:
        pattern = data.get("pattern")
        return cls(str(pattern) if pattern else None)
