"""The fleet's hosts: roles in fixed shares, their relative volume and daily rhythm, and the
host list itself.

Host names carry the role (WKS-001, DC-01) because the product groups hosts by name without
the trailing number, so roles become its default host groups.
"""

from __future__ import annotations

from dataclasses import dataclass

from fleetgen.config import FleetConfig

ROLES = ("workstation", "fileserver", "controller", "webserver", "sqlserver")
ROLE_PREFIX = {
    "workstation": "WKS",
    "fileserver": "FS",
    "controller": "DC",
    "webserver": "WEB",
    "sqlserver": "SQL",
}
ROLE_SHARE = {
    "workstation": 0.62,
    "fileserver": 0.12,
    "controller": 0.08,
    "webserver": 0.10,
    "sqlserver": 0.08,
}
# Relative volume of a host of each role (normalised so the fleet averages events_per_host_day).
ROLE_VOLUME = {
    "workstation": 0.7,
    "fileserver": 1.6,
    "controller": 2.2,
    "webserver": 1.3,
    "sqlserver": 1.0,
}
# Activity intensity by hour of day (UTC), weekdays; weekends scale it by WEEKEND.
DIURNAL = {
    "workstation": [0.04] * 6
    + [
        0.15,
        0.5,
        1.0,
        1.0,
        1.0,
        1.0,
        0.6,
        1.0,
        1.0,
        1.0,
        0.9,
        0.5,
        0.2,
        0.1,
        0.06,
        0.05,
        0.04,
        0.04,
    ],
    "fileserver": [0.15] * 7
    + [0.5, 1.0, 1.0, 1.0, 1.0, 0.7, 1.0, 1.0, 1.0, 0.9, 0.5, 0.3, 0.2, 0.2, 0.15, 0.15, 0.15],
    "controller": [0.25] * 7
    + [0.8, 1.8, 1.4, 1.0, 1.0, 0.9, 1.2, 1.0, 1.0, 0.9, 0.6, 0.4, 0.3, 0.3, 0.25, 0.25, 0.25],
    "webserver": [0.4] * 7
    + [0.6, 0.9, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.9, 0.9, 0.8, 0.7, 0.6, 0.5, 0.45],
    "sqlserver": [0.45] * 7
    + [0.6, 0.9, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.9, 0.8, 0.7, 0.6, 0.55, 0.5, 0.5],
}
WEEKEND = {
    "workstation": 0.15,
    "fileserver": 0.4,
    "controller": 0.5,
    "webserver": 0.8,
    "sqlserver": 0.7,
}


@dataclass(frozen=True, slots=True)
class Host:
    name: str
    role: str
    index: int  # position in the fleet
    ip: str


def fleet_hosts(config: FleetConfig) -> list[Host]:
    """Hosts of every role in fixed shares (largest remainder), named by role: WKS-001, DC-01."""
    exact = {role: config.hosts * ROLE_SHARE[role] for role in ROLES}
    counts = {role: int(exact[role]) for role in ROLES}
    for role in sorted(ROLES, key=lambda r: exact[r] - counts[r], reverse=True):
        if sum(counts.values()) >= config.hosts:
            break
        counts[role] += 1
    hosts: list[Host] = []
    for r, role in enumerate(ROLES):
        width = 3 if role == "workstation" else 2
        for n in range(1, counts[role] + 1):
            hosts.append(
                Host(
                    f"{ROLE_PREFIX[role]}-{n:0{width}d}",
                    role,
                    len(hosts),
                    f"10.{10 + r}.{n // 250}.{n % 250 + 1}",
                )
            )
    return hosts
