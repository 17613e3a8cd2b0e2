"""Recurring legitimate work: a workstation user's day, patch reboots, backups, database
maintenance, malware scans, group-policy refresh, heartbeats, replication, app-pool recycling.

Rare events that recur on a schedule are what a detector must learn to leave alone, so they
are placed by the clock rather than drawn with the day's random activities.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fleetgen.config import DAY, HOUR, MINUTE, SECOND
from fleetgen.emitter import HostGenBase
from fleetgen.vocabulary import SERVICES


class ScheduledWork(HostGenBase):
    """Scheduled work; mixed into HostGen."""

    def user_day(self, day_start: int, weekend: bool) -> None:
        """A workstation user's interactive session: logon in the morning, locks, logoff."""
        r = self.rng
        if r.random() > (0.2 if weekend else 0.93):
            return
        user, lid = self.user, self.default("lid")
        t = day_start + self.gap(7.4 * HOUR, 9.8 * HOUR)
        off = day_start + self.gap(16 * HOUR, 19 * HOUR)
        if r.random() < 0.08:  # a typo first
            self.emit(
                t, "logon_failed", ltype=2, user=user, ip="127.0.0.1", src_host=self.host.name
            )
            t += self.gap(3 * SECOND, 20 * SECOND)
        self.emit(
            t,
            "logon",
            ltype=2,
            user=user,
            lid=lid,
            ip="127.0.0.1",
            src_host=self.host.name,
            lproc="User32",
            auth="Negotiate",
        )
        if r.random() < 0.3:  # local admins get 4672 too
            self.emit(t + self.gap(0, 3), "special_priv", user=user, lid=lid)
        self.process(
            t + self.gap(300, 3_000),
            user=user,
            lid=lid,
            path="C:\\Windows\\explorer.exe",
            life=(off - t, off - t + 1),
        )
        for _ in range(r.randint(2, 6)):
            lock = t + self.gap(0, off - t)
            back = lock + self.gap(2 * MINUTE, 70 * MINUTE)
            if back < off:
                self.emit(lock, "lock", user=user, lid=lid)
                self.emit(back, "unlock", user=user, lid=lid)
                self.emit(
                    back + self.gap(1, 20),
                    "logon",
                    ltype=7,
                    user=user,
                    lid=self.default("lid"),
                    ip="127.0.0.1",
                    src_host=self.host.name,
                    lproc="User32",
                    auth="Negotiate",
                )
        self.emit(off, "user_logoff", user=user, lid=lid)
        self.emit(off + self.gap(5, 400), "logoff", ltype=2, user=user, lid=lid)

    def reboot(self, t: int) -> None:
        """Patch night: the update installs, the log service stops, the host boots again."""
        r = self.rng
        end = self.process(
            t,
            user="SYSTEM",
            path="C:\\Windows\\servicing\\TiWorker.exe",
            life=(2 * MINUTE, 12 * MINUTE),
        )
        self.emit(t + self.gap(100, 2_000), "svc_running", svc="Windows Modules Installer")
        t = end + self.gap(SECOND, 20 * SECOND)
        self.emit(t, "svc_stopped", svc="Windows Modules Installer")
        t += self.gap(SECOND, 30 * SECOND)
        self.emit(t, "log_service_shutdown")
        t += self.gap(MINUTE, 4 * MINUTE)
        for name in ("os_start", "boot_config", "fw_driver", "fw_service"):
            self.emit(t, name)
            t += self.gap(20, 1_500)
        self.system_logon(t)
        for svc in r.sample(SERVICES, r.randint(6, 10)):
            t += self.gap(50, 3_000)
            self.emit(t, "svc_running", svc=svc)
        self.time_sync(t + self.gap(SECOND, 30 * SECOND))

    def backup(self, t: int) -> None:
        lid = self.default("lid")
        self.emit(
            t,
            "logon",
            ltype=5,
            user="svc_backup",
            lid=lid,
            ip="-",
            src_host="-",
            lproc="Advapi",
            auth="Negotiate",
        )
        self.emit(t + self.gap(0, 3), "special_priv", user="svc_backup", lid=lid)
        end = self.process(
            t + self.gap(100, 2_000),
            user="svc_backup",
            lid=lid,
            path="C:\\Windows\\System32\\wbengine.exe",
            life=(15 * MINUTE, 40 * MINUTE),
        )
        self.emit(t + self.gap(2 * SECOND, 10 * SECOND), "svc_running", svc="Volume Shadow Copy")
        s = t + 15 * SECOND
        while s < end - MINUTE:
            s = self.file_access(
                s, user="svc_backup", reads=(1, 1), path="C:\\Windows\\System32\\wbengine.exe"
            ) + self.gap(2 * SECOND, 25 * SECOND)
        self.emit(end + self.gap(SECOND, 10 * SECOND), "svc_stopped", svc="Volume Shadow Copy")
        self.emit(
            end + self.gap(10 * SECOND, 30 * SECOND), "logoff", ltype=5, user="svc_backup", lid=lid
        )

    def db_maintenance(self, t: int) -> None:
        end = self.process(
            t,
            user="svc_sql",
            path="C:\\Program Files\\Microsoft SQL Server\\MSSQL15\\MSSQL\\Binn\\SQLAGENT.EXE",
            life=(10 * MINUTE, 25 * MINUTE),
        )
        s = t + 5 * SECOND
        while s < end - MINUTE:
            s = self.file_access(
                s,
                user="svc_sql",
                reads=(1, 4),
                path="C:\\Program Files\\Microsoft SQL Server\\MSSQL15\\MSSQL\\Binn\\sqlservr.exe",
            )
            s += self.gap(SECOND, 12 * SECOND)

    def defender_scan(self, t: int) -> None:
        end = self.process(
            t,
            user="SYSTEM",
            path="C:\\ProgramData\\Microsoft\\Windows Defender\\Platform\\MpCmdRun.exe",
            life=(3 * MINUTE, 12 * MINUTE),
        )
        s = t + SECOND
        while s < end:
            s = self.file_access(
                s,
                user="SYSTEM",
                reads=(1, 1),
                path="C:\\ProgramData\\Microsoft\\Windows Defender\\Platform\\MsMpEng.exe",
            )
            s += self.gap(2 * SECOND, 30 * SECOND)

    def gpo_refresh(self, t: int) -> None:
        dc = self.rng.choice(self.dcs)
        app = "\\device\\harddiskvolume2\\windows\\system32\\svchost.exe"
        t = self.outbound(t, app=app, dst=dc.ip, dport=389)
        t = self.outbound(t + self.gap(10, 300), app=app, dst=dc.ip, dport=445)
        self.file_access(
            t + self.gap(10, 300),
            user="SYSTEM",
            reads=(1, 2),
            path="C:\\Windows\\System32\\svchost.exe",
        )

    def scheduled(self, t0: int, t1: int) -> None:
        """Recurring legitimate work between t0 and t1 (the whole history and test period)."""
        r, role, idx = self.rng, self.host.role, self.host.index
        # Group policy refresh: every 90 minutes plus a random 0-30 minute offset.
        t = t0 + self.gap(0, 90 * MINUTE)
        while t < t1:
            self.gpo_refresh(t)
            t += 90 * MINUTE + self.gap(0, 30 * MINUTE)
        if role != "workstation":
            # Monitoring agent heartbeat every 5 minutes.
            agent = "\\device\\harddiskvolume2\\program files\\monitoring\\agent.exe"
            t = t0 + self.gap(0, 5 * MINUTE)
            while t < t1:
                self.emit(t, "wfp_conn", app=agent, dst="10.0.0.50", dport=8443, pidd=4242)
                t += 5 * MINUTE + self.gap(-2 * SECOND, 2 * SECOND)
        if role == "controller":
            t = t0 + self.gap(0, 15 * MINUTE)
            other = [d for d in self.dcs if d.name != self.host.name] or self.dcs
            while t < t1:
                partner = r.choice(other).name
                self.emit(t, "repl_begin", dc=self.host.name, dc2=partner)
                self.emit(t + self.gap(300, 6_000), "repl_end", dc=self.host.name, dc2=partner)
                t += 15 * MINUTE + self.gap(-10 * SECOND, 10 * SECOND)
        if role == "webserver":
            t = t0 + self.gap(0, 29 * HOUR)
            while t < t1:  # app pool recycling every 29 hours
                old = self.default("pid")
                self.process(
                    t,
                    user="svc_web",
                    path="C:\\Windows\\System32\\inetsrv\\w3wp.exe",
                    life=(29 * HOUR, 29 * HOUR + MINUTE),
                )
                self.emit(
                    t + self.gap(SECOND, 90 * SECOND),
                    "proc_exit",
                    user="svc_web",
                    path="C:\\Windows\\System32\\inetsrv\\w3wp.exe",
                    pid=old,
                )
                t += 29 * HOUR
        day = 0
        while t0 + day * DAY < t1:
            start = t0 + day * DAY
            weekend = datetime.fromtimestamp(start / 1000, UTC).weekday() >= 5
            self.time_sync(start + (idx * 37 % 24) * HOUR + self.gap(0, HOUR))
            if (day + idx) % 3 == 0:  # patch reboot every third night
                self.reboot(start + 3 * HOUR + (idx * 7 % 60) * MINUTE + self.gap(0, 5 * MINUTE))
            if role == "workstation":
                self.user_day(start, weekend)
                self.defender_scan(start + 11 * HOUR + (idx * 13 % 180) * MINUTE)
            if role in ("fileserver", "sqlserver"):
                self.backup(start + 1 * HOUR + self.gap(0, 20 * MINUTE))
            if role == "sqlserver":
                self.db_maintenance(start + 2 * HOUR + 30 * MINUTE + self.gap(0, 10 * MINUTE))
            day += 1
