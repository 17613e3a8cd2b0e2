"""Which hosts a replica owns when N replicas split the host space: hash(host) mod N.

The hash is SHA-1 of the host name (stable across processes and Python versions, unlike
`hash()`), so every replica agrees on the split without talking to the others.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

__all__ = ["Shard", "shard_of", "ordinal_from_hostname"]


def shard_of(host: str, count: int) -> int:
    digest = hashlib.sha1(host.encode("utf-8", "surrogatepass"), usedforsecurity=False)
    return int.from_bytes(digest.digest()[:8], "big") % count


def ordinal_from_hostname(hostname: str) -> int | None:
    """A StatefulSet pod's ordinal from its name (`log-anomaly-sidecar-2` -> 2)."""
    match = re.search(r"-(\d+)$", hostname)
    return int(match.group(1)) if match else None


@dataclass(frozen=True, slots=True)
class Shard:
    index: int
    count: int

    def __post_init__(self) -> None:
        if not 0 <= self.index < self.count:
            raise ValueError(f"shard index {self.index} is outside 0..{self.count - 1}")

    def owns(self, host: str) -> bool:
        return self.count == 1 or shard_of(host, self.count) == self.index
