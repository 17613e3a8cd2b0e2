"""A host's normal history: scheduled work first, then each day's random activities in the
role's mix, scaled by the host's volume, trend and daily rhythm.

The mix drifts over the days (MIX holds first-day and last-day weights), which is what makes
the test period differ from the history without any incident.
"""

from __future__ import annotations

import bisect
import random
from collections import Counter
from datetime import UTC, datetime

from fleetgen.activities import RoleActivities
from fleetgen.config import DAY, HOUR, START_MS
from fleetgen.hosts import DIURNAL, ROLE_VOLUME, WEEKEND
from fleetgen.scheduled import ScheduledWork


class HostGen(RoleActivities, ScheduledWork):
    """Builds one host's event list: activities, scheduled work, incidents."""

    MIX: dict[str, dict[str, tuple[float, float]]] = {
        # activity -> (weight on the first day, weight on the last): the mix drifts.
        "workstation": {
            "process": (5, 5),
            "file_read": (4, 2.5),
            "file_delete": (0.5, 0.4),
            "outbound": (5, 8),
            "blocked": (0.6, 0.6),
            "system_logon": (2, 2),
            "service_restart": (0.3, 0.3),
            "task": (0.8, 0.8),
            "crypto": (0.8, 0.8),
            "runas": (0.08, 0.08),
            "admin_logon": (0.1, 0.1),
            "logon_typo": (0.2, 0.2),
            "new_app": (0.0, 2.0),
        },
        "fileserver": {
            "smb_session": (6, 6),
            "file_read": (4, 3),
            "file_delete": (1, 1),
            "outbound": (2, 2.5),
            "system_logon": (2, 2),
            "process": (1, 1),
            "audit_policy": (0.05, 0.05),
            "service_restart": (0.2, 0.2),
            "crypto": (0.3, 0.3),
            "admin_logon": (0.15, 0.15),
        },
        "controller": {
            "kerberos": (8, 9),
            "ntlm": (3, 2),
            "net_logon": (3, 3),
            "sysvol": (2, 2),
            "ds_read": (2, 2),
            "preauth_typo": (0.6, 0.6),
            "ntlm_fail": (0.4, 0.3),
            "net_logon_failed": (0.3, 0.3),
            "ds_modify": (0.1, 0.1),
            "outbound": (1, 1),
            "system_logon": (1, 1),
            "process": (0.5, 0.5),
            "service_restart": (0.1, 0.1),
            "admin_logon": (0.1, 0.1),
        },
        "webserver": {
            "app_conn": (8, 10),
            "outbound": (3, 3),
            "process": (1, 1),
            "system_logon": (2, 2),
            "file_read": (1, 1),
            "blocked": (0.3, 0.3),
            "service_restart": (0.1, 0.1),
            "crypto": (0.3, 0.3),
            "admin_logon": (0.1, 0.1),
        },
        "sqlserver": {
            "db_session": (6, 6),
            "outbound": (1, 1),
            "file_read": (2, 2.5),
            "system_logon": (1.5, 1.5),
            "process": (0.5, 0.5),
            "crypto": (0.3, 0.3),
            "service_restart": (0.1, 0.1),
            "admin_logon": (0.15, 0.15),
        },
    }
    # episode -> expected number per host-day, by role
    EPISODES: dict[str, dict[str, float]] = {
        "workstation": {"software_deploy": 0.15, "retry_storm": 0.25, "stale_password": 0.1},
        "fileserver": {"bulk_copy": 1.0, "retry_storm": 0.1, "stale_password": 0.3},
        "controller": {"lockout": 0.4, "stale_password": 0.2},
        "webserver": {"retry_storm": 0.4},
        "sqlserver": {"retry_storm": 0.1, "stale_password": 0.1},
    }

    def activity_day(self, day: int, start: int, volume: float, total_days: int) -> None:
        r, role = self.rng, self.host.role
        weekend = datetime.fromtimestamp(start / 1000, UTC).weekday() >= 5
        hours = DIURNAL[role]
        cum, acc = [], 0.0
        for w in hours:
            acc += w * (WEEKEND[role] if weekend else 1.0)
            cum.append(acc)
        frac = day / max(1, total_days - 1)
        mix = self.MIX[role]
        names = list(mix)
        weights = [a + (b - a) * min(frac, 1.5) for a, b in mix.values()]
        wcum = []
        acc = 0.0
        for w in weights:
            acc += max(w, 0.0)
            wcum.append(acc)
        target = int(volume * (cum[-1] / sum(hours)))
        before = len(self.events)
        while len(self.events) - before < target:
            hour = bisect.bisect_right(cum, r.random() * cum[-1])
            t = start + min(hour, 23) * HOUR + r.randrange(HOUR)
            name = names[bisect.bisect_right(wcum, r.random() * wcum[-1])]
            getattr(self, "act_" + name)(t)
        for name, rate in self.EPISODES[role].items():
            rate *= cum[-1] / sum(hours)
            for _ in range(_poisson(r, rate)):
                hour = bisect.bisect_right(cum, r.random() * cum[-1])
                getattr(self, "ep_" + name)(start + min(hour, 23) * HOUR + r.randrange(HOUR))

    def normal(self) -> None:
        config = self.config
        norm = sum(ROLE_VOLUME[h.role] for h in self.fleet) / len(self.fleet)
        base = config.events_per_host_day * ROLE_VOLUME[self.host.role] / norm * self.scale
        total_days = config.days + (config.test_hours + 23) // 24
        # Scheduled work first; the day's activities make up the rest of its volume.
        self.scheduled(START_MS, config.test_end_ms)
        per_day = Counter((e.t - START_MS) // DAY for e in self.events)
        for day in range(total_days):
            volume = base * max(0.3, 1.0 + self.trend * day)
            volume = max(0.25 * volume, volume - per_day[day])
            self.activity_day(day, START_MS + day * DAY, volume, config.days)


def _poisson(rng: random.Random, lam: float) -> int:
    n, p, limit = 0, 1.0, pow(2.718281828459045, -lam)
    while True:
        p *= rng.random()
        if p <= limit:
            return n
        n += 1
