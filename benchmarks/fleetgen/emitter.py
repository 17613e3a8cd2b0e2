"""One host's event list and the means to add to it: HostGenBase holds the host's random stream
and emit(), fills message placeholders, and provides the building blocks (a process, a file
access, an outbound connection, a network session, ...) that activities, scheduled work and
incidents are made of.

Determinism rests on the order of draws from `self.rng`: every event and placeholder value
comes from that one stream, so code may move between modules but must not reorder calls.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from fleetgen.catalog import EVENTS
from fleetgen.config import HOUR, MINUTE, SECOND, START_MS, FleetConfig
from fleetgen.hosts import Host
from fleetgen.vocabulary import (
    ADMINS,
    ATTRS,
    BAD_PROCS,
    DS_CLASSES,
    FILES,
    FIRST_NAMES,
    SERVICES,
    SHARES,
    SPNS,
    SYSTEM_PROCS,
    TASKS,
    USER_PROCS,
)


class _Params(dict):
    """Message placeholders: given ones, else a plausible value drawn from the host's stream."""

    def __init__(self, gen: HostGenBase, given: dict[str, object]) -> None:
        super().__init__(given)
        self.gen = gen

    def __missing__(self, key: str) -> object:
        value = self.gen.default(key)
        self[key] = value
        return value


@dataclass(slots=True)
class _Event:
    t: int
    seq: int
    name: str
    message: str
    incident: int  # -1: normal


class HostGenBase:
    """One host's events so far, its random stream, and the blocks events are emitted in."""

    def __init__(self, config: FleetConfig, host: Host, fleet: list[Host]) -> None:
        self.config = config
        self.host = host
        self.fleet = fleet
        self.rng = random.Random(f"fleet:{config.seed}:{host.name}")
        self.events: list[_Event] = []
        self.seq = 0
        self.end_ms = config.test_end_ms
        self.incident = -1
        users = [f"{n}.{chr(97 + i % 26)}" for i, n in enumerate(FIRST_NAMES * 8)]
        self.users = users
        self.user = users[host.index % len(users)]  # a workstation's primary user
        self.dcs = [h for h in fleet if h.role == "controller"] or [host]
        self.workstations = [h for h in fleet if h.role == "workstation"] or [host]
        self.webs = [h for h in fleet if h.role == "webserver"] or [host]
        self.sqls = [h for h in fleet if h.role == "sqlserver"] or [host]
        self.files = [h for h in fleet if h.role == "fileserver"] or [host]
        # Per-host workload trend: volume changes by this fraction per day.
        self.trend = self.rng.uniform(-0.08, 0.15)
        self.scale = self.rng.lognormvariate(0.0, 0.25)

    # -- emission ------------------------------------------------------------------------------

    def emit(self, t: int, name: str, **given: object) -> None:
        if t >= self.end_ms or t < START_MS:
            return
        message = EVENTS[name][2].format_map(_Params(self, given))
        self.events.append(_Event(t, self.seq, name, message, self.incident))
        self.seq += 1

    def default(self, key: str) -> object:
        r = self.rng
        if key == "user":
            return (
                self.user
                if self.host.role == "workstation" and r.random() < 0.7
                else r.choice(self.users)
            )
        if key in ("lid", "hid"):
            return f"{r.getrandbits(28):x}"
        if key == "pid":
            return f"{r.randrange(0x100, 0x4000):x}"
        if key == "pidd":
            return r.randrange(300, 16000)
        if key == "port":
            return r.randrange(49152, 65535)
        if key == "ip":
            return r.choice(self.workstations).ip
        if key == "src_host":
            return r.choice(self.workstations).name
        if key == "ip_local":
            return self.host.ip
        if key == "ltype":
            return 3
        if key == "lproc":
            return "NtLmSsp" if r.random() < 0.3 else "Kerberos"
        if key == "auth":
            return "NTLM" if r.random() < 0.3 else "Kerberos"
        if key == "path":
            return r.choice(USER_PROCS if self.host.role == "workstation" else SYSTEM_PROCS)
        if key == "parent":
            return (
                "C:\\Windows\\explorer.exe"
                if r.random() < 0.5
                else "C:\\Windows\\System32\\svchost.exe"
            )
        if key == "obj":
            share = r.choice(SHARES)
            return f"D:\\{share}\\" + r.choice(FILES).format(n=r.randrange(1, 999))
        if key == "rel":
            return r.choice(FILES).format(n=r.randrange(1, 999))
        if key == "access":
            return r.choice(
                ["ReadData (or ListDirectory)", "ReadAttributes", "WriteData (or AddFile)"]
            )
        if key == "app":
            return "\\device\\harddiskvolume2\\" + r.choice(SYSTEM_PROCS + USER_PROCS)[3:].lower()
        if key == "direction":
            return "Outbound"
        if key == "dst":
            return r.choice(
                [
                    r.choice(self.fleet).ip,
                    f"52.{r.randrange(96, 120)}.{r.randrange(256)}.{r.randrange(1, 255)}",
                    f"13.{r.randrange(64, 108)}.{r.randrange(256)}.{r.randrange(1, 255)}",
                ]
            )
        if key == "dport":
            return r.choice([443, 443, 443, 80, 445, 389, 88, 135, 1433])
        if key == "svc":
            return r.choice(SERVICES)
        if key == "task":
            return r.choice(TASKS)
        if key == "share":
            return r.choice(SHARES)
        if key == "key":
            return r.choice(
                [
                    "Microsoft Connected Devices Platform device certificate",
                    "TSSecKeySet1",
                    "iisConfigurationKey",
                    "NetFrameworkConfigurationKey",
                ]
            )
        if key == "guid":
            g = r.getrandbits(128)
            return f"{g >> 96:08x}-{g >> 80 & 0xFFFF:04x}-{g >> 64 & 0xFFFF:04x}-{g >> 48 & 0xFFFF:04x}-{g & (1 << 48) - 1:012x}"
        if key == "spn":
            return r.choice(SPNS).format(n=f"{r.randrange(1, 8):02d}")
        if key == "dsclass":
            return r.choice(DS_CLASSES)
        if key == "dn":
            return f"CN={r.choice(self.users)},OU={r.choice(['Staff', 'IT', 'Sales', 'Servers'])},DC=corp,DC=example"
        if key == "attr":
            return r.choice(ATTRS)
        if key == "admin":
            return r.choice(ADMINS)
        if key == "target":
            return r.choice(self.fleet).name.lower() + ".corp.example"
        if key in ("dc", "dc2"):
            return r.choice(self.dcs).name
        if key == "newuser":
            return f"{r.choice(FIRST_NAMES)}{r.randrange(10, 99)}"
        if key == "svcname":
            return r.choice(["WinUpdSvc", "PSEXESVC", "RemoteHelper", "svcmon"])
        if key == "svcpath":
            return r.choice(BAD_PROCS)
        if key == "taskname":
            return r.choice(["OneDrive Sync Helper", "GoogleUpdateCore", "SystemCheck"])
        raise KeyError(key)

    # -- building blocks -----------------------------------------------------------------------

    def gap(self, lo: float, hi: float) -> int:
        return int(self.rng.uniform(lo, hi))

    def process(
        self,
        t: int,
        user: str | None = None,
        lid: str | None = None,
        path: str | None = None,
        life: tuple[int, int] = (2 * SECOND, 20 * MINUTE),
    ) -> int:
        """A process started now, exiting later (other events land in between)."""
        r = self.rng
        user = user or self.default("user")
        lid = lid or self.default("lid")
        path = path or self.default("path")
        pid = self.default("pid")
        self.emit(t, "proc_start", user=user, lid=lid, path=path, pid=pid)
        end = t + self.gap(*life) if r.random() < 0.97 else t + self.gap(HOUR, 8 * HOUR)
        self.emit(end, "proc_exit", user=user, lid=lid, path=path, pid=pid)
        return end

    def file_access(
        self,
        t: int,
        user: str | None = None,
        reads: tuple[int, int] = (1, 3),
        delete: bool = False,
        path: str | None = None,
    ) -> int:
        r = self.rng
        p = {
            "user": user or self.default("user"),
            "hid": self.default("hid"),
            "obj": self.default("obj"),
            "path": path or self.default("path"),
        }
        self.emit(t, "handle_req", **p)
        for _ in range(r.randint(*reads)):
            t += self.gap(2, 400)
            self.emit(t, "obj_access", **p)
        if delete:
            t += self.gap(2, 50)
            self.emit(t, "obj_delete", **p)
        t += self.gap(1, 200)
        self.emit(t, "handle_close", **p)
        return t

    def outbound(
        self, t: int, app: str | None = None, dst: str | None = None, dport: int | None = None
    ) -> int:
        p = {
            "app": app or self.default("app"),
            "pidd": self.default("pidd"),
            "port": self.default("port"),
        }
        self.emit(t, "wfp_bind", **p)
        t += self.gap(1, 40)
        self.emit(
            t, "wfp_conn", **p, dst=dst or self.default("dst"), dport=dport or self.default("dport")
        )
        return t

    def blocked(self, t: int, app: str | None = None, dst: str | None = None) -> int:
        p = {
            "app": app or self.default("app"),
            "pidd": self.default("pidd"),
            "port": self.default("port"),
            "dst": dst or self.default("dst"),
        }
        self.emit(t, "wfp_bind", **p)
        t += self.gap(1, 40)
        self.emit(t, "wfp_block", **p)
        return t

    def system_logon(self, t: int) -> int:
        lid = self.default("lid")
        self.emit(
            t,
            "logon",
            ltype=5,
            user="SYSTEM",
            lid=lid,
            ip="-",
            src_host="-",
            lproc="Advapi",
            auth="Negotiate",
        )
        t += self.gap(0, 3)
        self.emit(t, "special_priv", user="SYSTEM", lid=lid)
        return t

    def network_session(
        self,
        t: int,
        user: str | None = None,
        src: Host | None = None,
        length: tuple[int, int] = (2 * SECOND, 10 * MINUTE),
        admin: bool = False,
        body: Callable[[int, str, str], int] | None = None,
    ) -> int:
        """Network logon (type 3), optional work, logoff later."""
        src = src or self.rng.choice(self.workstations)
        user = user or self.default("user")
        lid = self.default("lid")
        self.emit(t, "logon", ltype=3, user=user, lid=lid, ip=src.ip, src_host=src.name)
        if admin:
            t += self.gap(0, 3)
            self.emit(t, "special_priv", user=user, lid=lid)
        end = t + self.gap(*length)
        if body is not None:
            body(t + self.gap(5, 500), user, src.ip)
        self.emit(end, "logoff", ltype=3, user=user, lid=lid)
        return end

    def service_restart(self, t: int, svc: str | None = None) -> int:
        svc = svc or self.default("svc")
        self.emit(t, "svc_stopped", svc=svc)
        t += self.gap(SECOND, 15 * SECOND)
        self.emit(t, "svc_running", svc=svc)
        return t

    def time_sync(self, t: int) -> None:
        fmt = "%Y-%m-%dT%H:%M:%S.%f"
        before = datetime.fromtimestamp(t / 1000, UTC)
        after = datetime.fromtimestamp((t + self.rng.randrange(-900, 900)) / 1000, UTC)
        self.emit(
            t,
            "time_change",
            prev=before.strftime(fmt)[:-3] + "Z",
            new=after.strftime(fmt)[:-3] + "Z",
        )
