"""A labelled, Windows-security-like fleet for benchmarks: days of normal history, then a test
period with injected incidents whose log_uuids and time spans are known.

One generator for the fleet benchmark (benchmarks/fleet.py, issue "Quiet by design") and the
training-speed workload (issue "Training that keeps up with a real fleet"). Documents have the
seed's shape:

    {"_zl_timestamp": "<epoch ms>", "log_uuid": "<hex>", "SEVERITY": "success",
     "HOSTNAME": "WKS-017", "EVENTID": "4624", "MESSAGE": "An account was ..."}

What makes it fleet-like (see docs/fleet-benchmark.md):

- hosts of five roles (workstations, file servers, domain controllers, web and SQL servers),
  each with its own mix of activities, volume and daily rhythm;
- interleaved activities: a logon session, its processes (started, then exited minutes later),
  file handles and connections overlap other sessions and background work on the same host;
- rare-but-legitimate events that recur: a patch reboot every third night per host (1100,
  4608, 4826, 5033, 5024 and a burst of service starts), nightly backups and database
  maintenance, daily time sync and malware scans, account lockouts on domain controllers,
  directory changes, audit-policy changes, service restarts;
- periodic legitimate work: monitoring heartbeats every 5 minutes on servers, group-policy
  refresh every 90-120 minutes, directory replication every 15 minutes, app-pool recycling;
- benign bursts and retry storms: bulk copies on file servers, software deployments on
  workstations, an application retrying a blocked connection, a mapped drive retrying a stale
  password, typos before a logon;
- drift: each host's volume trends up or down day by day and the activity mix changes over
  the days (more web traffic, a newly rolled-out application, fewer file reads).

The test period follows the training period and continues the same processes; incidents of
six kinds are injected into it (INCIDENT_KINDS). Event ids of `unseen_event` incidents never
occur in normal data; every other incident uses familiar event ids only.

Deterministic for a given FleetConfig: every host has its own random stream derived from the
seed, and incidents are placed by a stream of their own.

    python benchmarks/fleet_data.py --preset small --seed 1 --out /tmp/fleet
"""

from __future__ import annotations

import argparse
import bisect
import json
import random
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

__all__ = [
    "FleetConfig",
    "PRESETS",
    "INCIDENT_KINDS",
    "InjectedIncident",
    "FleetData",
    "Host",
    "fleet_hosts",
    "plan_incidents",
    "host_documents",
    "write_fleet",
]

# 2026-03-02 is a Monday; the history starts at midnight UTC.
START_MS = int(datetime(2026, 3, 2, tzinfo=UTC).timestamp() * 1000)
HOUR = 3_600_000
MINUTE = 60_000
SECOND = 1_000
DAY = 24 * HOUR

INCIDENT_KINDS = (
    "brute_force",
    "unseen_event",
    "wrong_order",
    "beacon",
    "host_quiet",
    "event_storm",
)


@dataclass(frozen=True, slots=True)
class FleetConfig:
    seed: int = 1
    hosts: int = 60
    days: int = 2  # training history, whole days from midnight
    test_hours: int = 24  # the test period that follows
    events_per_host_day: int = 1_000  # fleet average of a host's events per day (roughly)
    incidents_per_kind: int | None = None  # None: 14 per 60 hosts, at least 2

    def incidents_each(self) -> int:
        if self.incidents_per_kind is not None:
            return self.incidents_per_kind
        return max(2, round(14 * self.hosts / 60))

    @property
    def train_end_ms(self) -> int:
        return START_MS + self.days * DAY

    @property
    def test_end_ms(self) -> int:
        return self.train_end_ms + self.test_hours * HOUR


PRESETS: dict[str, FleetConfig] = {
    # The everyday benchmark: 60 hosts, 48 h of history, ~1,000 events per host-day.
    "small": FleetConfig(hosts=60, days=2, test_hours=24, events_per_host_day=1_000),
    # Issue 16's workload: 60 hosts x 48 h of history, ~13,600 events per host (~800k events).
    "issue16": FleetConfig(hosts=60, days=2, test_hours=24, events_per_host_day=6_800),
}

# name -> (EVENTID, SEVERITY, message template); {placeholders} are filled per event.
EVENTS: dict[str, tuple[str, str, str]] = {
    "logon": (
        "4624",
        "success",
        "An account was successfully logged on. Logon Type: {ltype} New Logon: Account Name: {user} Account Domain: CORP Logon ID: 0x{lid} Network Information: Workstation Name: {src_host} Source Network Address: {ip} Source Port: {port} Logon Process: {lproc} Authentication Package: {auth}",
    ),
    "logon_failed": (
        "4625",
        "failure",
        "An account failed to log on. Logon Type: {ltype} Account For Which Logon Failed: Account Name: {user} Account Domain: CORP Failure Reason: Unknown user name or bad password. Status: 0xC000006D Sub Status: 0xC000006A Workstation Name: {src_host} Source Network Address: {ip} Source Port: {port}",
    ),
    "special_priv": (
        "4672",
        "success",
        "Special privileges assigned to new logon. Account Name: {user} Account Domain: CORP Logon ID: 0x{lid} Privileges: SeSecurityPrivilege SeBackupPrivilege SeRestorePrivilege SeTakeOwnershipPrivilege SeDebugPrivilege SeImpersonatePrivilege",
    ),
    "logoff": (
        "4634",
        "success",
        "An account was logged off. Account Name: {user} Account Domain: CORP Logon ID: 0x{lid} Logon Type: {ltype}",
    ),
    "user_logoff": (
        "4647",
        "success",
        "User initiated logoff: Account Name: {user} Account Domain: CORP Logon ID: 0x{lid}",
    ),
    "explicit_creds": (
        "4648",
        "success",
        "A logon was attempted using explicit credentials. Account Name: {user} Account Whose Credentials Were Used: {admin} Target Server Name: {target} Process Name: C:\\Windows\\System32\\runas.exe",
    ),
    "proc_start": (
        "4688",
        "success",
        "A new process has been created. Creator Subject: Account Name: {user} Logon ID: 0x{lid} New Process ID: 0x{pid} New Process Name: {path} Token Elevation Type: %%1936 Creator Process Name: {parent}",
    ),
    "proc_exit": (
        "4689",
        "success",
        "A process has exited. Account Name: {user} Logon ID: 0x{lid} Process ID: 0x{pid} Process Name: {path} Exit Status: 0x0",
    ),
    "handle_req": (
        "4656",
        "success",
        "A handle to an object was requested. Account Name: {user} Object Type: File Object Name: {obj} Handle ID: 0x{hid} Process Name: {path} Accesses: ReadData (or ListDirectory)",
    ),
    "obj_access": (
        "4663",
        "success",
        "An attempt was made to access an object. Account Name: {user} Object Type: File Object Name: {obj} Handle ID: 0x{hid} Process Name: {path} Accesses: {access}",
    ),
    "handle_close": (
        "4658",
        "success",
        "The handle to an object was closed. Account Name: {user} Handle ID: 0x{hid} Process Name: {path}",
    ),
    "obj_delete": (
        "4660",
        "success",
        "An object was deleted. Account Name: {user} Handle ID: 0x{hid} Process Name: {path}",
    ),
    "wfp_bind": (
        "5158",
        "success",
        "The Windows Filtering Platform has permitted a bind to a local port. Process ID: {pidd} Application Name: {app} Source Address: 0.0.0.0 Source Port: {port} Protocol: 6",
    ),
    "wfp_conn": (
        "5156",
        "success",
        "The Windows Filtering Platform has permitted a connection. Process ID: {pidd} Application Name: {app} Direction: {direction} Source Address: {ip_local} Source Port: {port} Destination Address: {dst} Destination Port: {dport} Protocol: 6",
    ),
    "wfp_block": (
        "5157",
        "failure",
        "The Windows Filtering Platform has blocked a connection. Process ID: {pidd} Application Name: {app} Direction: Outbound Source Address: {ip_local} Destination Address: {dst} Destination Port: {dport} Protocol: 6",
    ),
    "svc_running": ("7036", "information", "The {svc} service entered the running state."),
    "svc_stopped": ("7036", "warning", "The {svc} service entered the stopped state."),
    "task_updated": (
        "4702",
        "success",
        "A scheduled task was updated. Account Name: {user} Task Name: \\Microsoft\\Windows\\{task}",
    ),
    "time_change": (
        "4616",
        "success",
        "The system time was changed. Account Name: LOCAL SERVICE Process Name: C:\\Windows\\System32\\svchost.exe Previous Time: {prev} New Time: {new}",
    ),
    "share_access": (
        "5140",
        "success",
        "A network share object was accessed. Account Name: {user} Source Address: {ip} Share Name: \\\\*\\{share} Share Path: \\??\\D:\\{share}",
    ),
    "share_check": (
        "5145",
        "success",
        "A network share object was checked to see whether client can be granted desired access. Account Name: {user} Source Address: {ip} Share Name: \\\\*\\{share} Relative Target Name: {rel}",
    ),
    "crypto_read": (
        "5058",
        "success",
        "Key file operation. Account Name: {user} Provider Name: Microsoft Software Key Storage Provider Key Name: {key} Operation: Read persisted key from file.",
    ),
    "crypto_op": (
        "5061",
        "success",
        "Cryptographic operation. Account Name: {user} Provider Name: Microsoft Software Key Storage Provider Algorithm Name: RSA Key Name: {key} Operation: Open Key.",
    ),
    "dpapi": (
        "4692",
        "success",
        "Backup of data protection master key was attempted. Account Name: {user} Key Identifier: {guid}",
    ),
    "lock": (
        "4800",
        "success",
        "The workstation was locked. Account Name: {user} Logon ID: 0x{lid}",
    ),
    "unlock": (
        "4801",
        "success",
        "The workstation was unlocked. Account Name: {user} Logon ID: 0x{lid}",
    ),
    "tgt": (
        "4768",
        "success",
        "A Kerberos authentication ticket (TGT) was requested. Account Name: {user} Service Name: krbtgt Client Address: ::ffff:{ip} Result Code: 0x0 Ticket Encryption Type: 0x12",
    ),
    "service_ticket": (
        "4769",
        "success",
        "A Kerberos service ticket was requested. Account Name: {user}@CORP.EXAMPLE Service Name: {spn} Client Address: ::ffff:{ip} Failure Code: 0x0",
    ),
    "ticket_renew": (
        "4770",
        "success",
        "A Kerberos service ticket was renewed. Account Name: {user}@CORP.EXAMPLE Service Name: {spn} Client Address: ::ffff:{ip}",
    ),
    "preauth_failed": (
        "4771",
        "failure",
        "Kerberos pre-authentication failed. Account Name: {user} Service Name: krbtgt/CORP Client Address: ::ffff:{ip} Failure Code: 0x18",
    ),
    "cred_validate": (
        "4776",
        "success",
        "The computer attempted to validate the credentials for an account. Authentication Package: MICROSOFT_AUTHENTICATION_PACKAGE_V1_0 Logon Account: {user} Source Workstation: {src_host} Error Code: 0x0",
    ),
    "cred_validate_failed": (
        "4776",
        "failure",
        "The computer attempted to validate the credentials for an account. Authentication Package: MICROSOFT_AUTHENTICATION_PACKAGE_V1_0 Logon Account: {user} Source Workstation: {src_host} Error Code: 0xC000006A",
    ),
    "ds_access": (
        "4662",
        "success",
        "An operation was performed on an object. Account Name: {user} Object Server: DS Operation Type: Object Access Object Type: {dsclass} Object Name: {dn} Accesses: Read Property",
    ),
    "ds_modify": (
        "5136",
        "success",
        "A directory service object was modified. Account Name: {admin} DN: {dn} Class: {dsclass} LDAP Display Name: {attr} Operation Type: Value Added",
    ),
    "account_changed": (
        "4738",
        "success",
        "A user account was changed. Subject: Account Name: {admin} Target Account: Account Name: {user} Account Domain: CORP",
    ),
    "lockout": (
        "4740",
        "success",
        "A user account was locked out. Subject: Account Name: {dc}$ Account That Was Locked Out: Account Name: {user} Caller Computer Name: {src_host}",
    ),
    "account_unlocked": (
        "4767",
        "success",
        "A user account was unlocked. Subject: Account Name: {admin} Target Account: Account Name: {user}",
    ),
    "repl_begin": (
        "4932",
        "success",
        "Synchronization of a replica of an Active Directory naming context has begun. Destination DRA: {dc} Source DRA: {dc2} Naming Context: DC=corp,DC=example Options: 0x{hid}",
    ),
    "repl_end": (
        "4933",
        "success",
        "Synchronization of a replica of an Active Directory naming context has ended. Destination DRA: {dc} Source DRA: {dc2} Naming Context: DC=corp,DC=example Status Code: 0",
    ),
    "audit_policy_obj": (
        "4907",
        "success",
        "Auditing settings on object were changed. Account Name: {admin} Object Type: File Object Name: {obj} Process Name: C:\\Windows\\explorer.exe",
    ),
    "log_service_shutdown": ("1100", "information", "The event logging service has shut down."),
    "os_start": ("4608", "success", "Windows is starting up."),
    "boot_config": (
        "4826",
        "success",
        "Boot Configuration Data loaded. Load Options: - Advanced Options: No Configuration Access Policy: Default Kernel Debugging: No Integrity Checks: Enabled",
    ),
    "fw_driver": ("5033", "success", "The Windows Firewall Driver started successfully."),
    "fw_service": ("5024", "success", "The Windows Firewall service started successfully."),
    # Incidents only: these event ids never occur in normal data.
    "log_cleared": (
        "1102",
        "success",
        "The audit log was cleared. Subject: Account Name: {user} Domain Name: CORP Logon ID: 0x{lid}",
    ),
    "user_created": (
        "4720",
        "success",
        "A user account was created. Subject: Account Name: {user} Logon ID: 0x{lid} New Account: Account Name: {newuser} Account Domain: CORP",
    ),
    "group_member_added": (
        "4732",
        "success",
        "A member was added to a security-enabled local group. Subject: Account Name: {user} Member: Account Name: CORP\\{newuser} Group: Group Name: Administrators",
    ),
    "service_installed": (
        "7045",
        "information",
        "A service was installed in the system. Service Name: {svcname} Service File Name: {svcpath} Service Type: user mode service Service Start Type: auto start Service Account: LocalSystem",
    ),
    "task_created": (
        "4698",
        "success",
        "A scheduled task was created. Account Name: {user} Logon ID: 0x{lid} Task Name: \\{taskname}",
    ),
}
UNSEEN_EVENT_NAMES = ("log_cleared", "user_created", "service_installed", "task_created")
INCIDENT_ONLY = frozenset(
    {"log_cleared", "user_created", "group_member_added", "service_installed", "task_created"}
)

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

FIRST_NAMES = [
    "anna",
    "ben",
    "carla",
    "dev",
    "elif",
    "farid",
    "grace",
    "hugo",
    "ines",
    "jon",
    "kemal",
    "lena",
    "mateo",
    "nora",
    "omar",
    "priya",
    "quinn",
    "rosa",
    "sven",
    "tara",
    "umar",
    "vera",
    "wei",
    "xena",
    "yusuf",
    "zoe",
]
ADMINS = ["adm-jdoe", "adm-mrossi", "adm-kchen", "adm-helpdesk"]
USER_PROCS = [
    "C:\\Program Files\\Microsoft Office\\root\\Office16\\OUTLOOK.EXE",
    "C:\\Program Files\\Microsoft Office\\root\\Office16\\EXCEL.EXE",
    "C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE",
    "C:\\Program Files (x86)\\Microsoft\\Edge\\Application\\msedge.exe",
    "C:\\Windows\\explorer.exe",
    "C:\\Windows\\System32\\notepad.exe",
    "C:\\Windows\\System32\\cmd.exe",
    "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
    "C:\\Program Files\\7-Zip\\7zFM.exe",
]
SYSTEM_PROCS = [
    "C:\\Windows\\System32\\svchost.exe",
    "C:\\Windows\\System32\\conhost.exe",
    "C:\\Windows\\System32\\taskhostw.exe",
    "C:\\Windows\\System32\\wbem\\WmiPrvSE.exe",
    "C:\\Windows\\System32\\backgroundTaskHost.exe",
    "C:\\Windows\\System32\\RuntimeBroker.exe",
    "C:\\Windows\\System32\\dllhost.exe",
]
SERVICES = [
    "Windows Update",
    "Background Intelligent Transfer Service",
    "Print Spooler",
    "Windows Time",
    "WinHTTP Web Proxy Auto-Discovery Service",
    "Windows Modules Installer",
    "Software Protection",
    "Windows Defender Antivirus Service",
    "Volume Shadow Copy",
    "Microsoft Software Shadow Copy Provider",
    "Network List Service",
    "DNS Client",
]
SHARES = ["Finance", "HR", "Projects", "Public", "Scans", "Engineering", "Sales", "IT$"]
FILES = [
    "Q1-report.xlsx",
    "budget.xlsx",
    "minutes.docx",
    "contract.pdf",
    "roadmap.pptx",
    "notes.txt",
    "invoice-{n}.pdf",
    "scan-{n}.pdf",
    "build-{n}.zip",
    "data-{n}.csv",
]
TASKS = [
    "UpdateOrchestrator\\Schedule Scan",
    "WindowsUpdate\\Scheduled Start",
    "Defrag\\ScheduledDefrag",
    "Diagnosis\\Scheduled",
    "Time Synchronization\\SynchronizeTime",
    "Application Experience\\ProgramDataUpdater",
]
SPNS = [
    "cifs/FS-{n}.corp.example",
    "HTTP/web-{n}.corp.example",
    "MSSQLSvc/sql-{n}.corp.example:1433",
    "ldap/dc-{n}.corp.example",
    "host/wks-{n}.corp.example",
]
DS_CLASSES = ["user", "group", "groupPolicyContainer", "computer", "organizationalUnit"]
ATTRS = ["description", "member", "userAccountControl", "servicePrincipalName", "gPLink"]
BAD_PROCS = [
    "C:\\Users\\Public\\svch0st.exe",
    "C:\\Windows\\Temp\\upd.exe",
    "C:\\ProgramData\\rundll64.exe",
    "C:\\Users\\Public\\Libraries\\msupd.exe",
]


# --------------------------------------------------------------------------------------------
# hosts


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


# --------------------------------------------------------------------------------------------
# one host's events


class _Params(dict):
    """Message placeholders: given ones, else a plausible value drawn from the host's stream."""

    def __init__(self, gen: _HostGen, given: dict[str, object]) -> None:
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


class _HostGen:
    """Builds one host's event list: activities, scheduled work, incidents."""

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

    # -- activities by role --------------------------------------------------------------------

    def act_process(self, t: int) -> None:
        self.process(t)

    def act_file_read(self, t: int) -> None:
        self.file_access(t)

    def act_file_delete(self, t: int) -> None:
        self.file_access(t, reads=(1, 2), delete=True)

    def act_outbound(self, t: int) -> None:
        self.outbound(t)

    def act_blocked(self, t: int) -> None:
        self.blocked(t)

    def act_system_logon(self, t: int) -> None:
        self.system_logon(t)

    def act_service_restart(self, t: int) -> None:
        self.service_restart(t)

    def act_task(self, t: int) -> None:
        self.emit(t, "task_updated", user="SYSTEM")
        t += self.gap(50, 2_000)
        self.process(
            t, user="SYSTEM", path="C:\\Windows\\System32\\taskhostw.exe", life=(SECOND, 5 * MINUTE)
        )

    def act_crypto(self, t: int) -> None:
        user = self.default("user")
        self.emit(t, "crypto_read", user=user)
        t += self.gap(1, 30)
        self.emit(t, "crypto_op", user=user)
        if self.rng.random() < 0.3:
            self.emit(t + self.gap(1, 50), "dpapi", user=user)

    def act_new_app(self, t: int) -> None:
        """The application rolled out during the history: starts, connects, exits later."""
        user = self.user
        path = "C:\\Users\\" + user + "\\AppData\\Local\\Microsoft\\Teams\\current\\Teams.exe"
        end = self.process(t, user=user, path=path, life=(MINUTE, 2 * HOUR))
        for _ in range(self.rng.randint(1, 3)):
            t += self.gap(200, 30 * SECOND)
            if t < end:
                self.outbound(
                    t, app="\\device\\harddiskvolume2\\users\\" + user + "\\teams.exe", dport=443
                )

    def act_runas(self, t: int) -> None:
        admin = self.rng.choice(ADMINS)
        self.emit(t, "explicit_creds", user=self.user, admin=admin)
        lid = self.default("lid")
        t += self.gap(5, 200)
        self.emit(
            t,
            "logon",
            ltype=9,
            user=admin,
            lid=lid,
            ip="::1",
            src_host="-",
            lproc="seclogo",
            auth="Negotiate",
        )
        t += self.gap(0, 3)
        self.emit(t, "special_priv", user=admin, lid=lid)
        end = self.process(
            t + self.gap(10, 500), user=admin, lid=lid, path="C:\\Windows\\System32\\mmc.exe"
        )
        self.emit(end + self.gap(10, 2_000), "logoff", ltype=9, user=admin, lid=lid)

    def act_admin_logon(self, t: int) -> None:
        """IT reaching this host over the network (remote management), privileged."""
        admin = self.rng.choice(ADMINS)
        self.network_session(
            t,
            user=admin,
            admin=True,
            length=(SECOND, 3 * MINUTE),
            body=lambda s, u, ip: self.process(
                s, user=u, path="C:\\Windows\\System32\\wbem\\WmiPrvSE.exe"
            ),
        )

    def act_logon_typo(self, t: int) -> None:
        """A mistyped password, then the right one (interactive, on a workstation)."""
        lid = self.default("lid")
        self.emit(
            t, "logon_failed", ltype=2, user=self.user, ip="127.0.0.1", src_host=self.host.name
        )
        t += self.gap(3 * SECOND, 15 * SECOND)
        self.emit(t, "unlock", user=self.user, lid=lid)
        t += self.gap(1, 20)
        self.emit(
            t, "logon", ltype=7, user=self.user, lid=lid, ip="127.0.0.1", src_host=self.host.name
        )

    def act_smb_session(self, t: int) -> None:
        """A user on a share: logon, share access, some files, logoff minutes later."""

        def body(s: int, user: str, ip: str) -> int:
            share = self.default("share")
            self.emit(s, "share_access", user=user, ip=ip, share=share)
            for _ in range(self.rng.randint(1, 3)):
                s += self.gap(5, 3_000)
                self.emit(s, "share_check", user=user, ip=ip, share=share)
            for _ in range(self.rng.randint(0, 5)):
                s += self.gap(100, 60 * SECOND)
                s = self.file_access(s, user=user, path="System")
            return s

        self.network_session(t, length=(30 * SECOND, 30 * MINUTE), body=body)

    def act_kerberos(self, t: int) -> None:
        r = self.rng
        user, src = r.choice(self.users), r.choice(self.workstations)
        self.emit(t, "tgt", user=user, ip=src.ip)
        for _ in range(r.randint(1, 4)):
            t += self.gap(5, 2_000)
            self.emit(t, "service_ticket", user=user, ip=src.ip)
        if r.random() < 0.25:
            self.emit(t + self.gap(MINUTE, 4 * HOUR), "ticket_renew", user=user, ip=src.ip)

    def act_ntlm(self, t: int) -> None:
        src = self.rng.choice(self.workstations)
        user = self.rng.choice(self.users)
        self.emit(t, "cred_validate", user=user, src_host=src.name)
        if self.rng.random() < 0.5:
            self.network_session(
                t + self.gap(1, 30), user=user, src=src, length=(SECOND, 30 * SECOND)
            )

    def act_sysvol(self, t: int) -> None:
        src = self.rng.choice(self.workstations)
        user = src.name + "$"
        self.emit(t, "share_access", user=user, ip=src.ip, share="SYSVOL")
        for _ in range(self.rng.randint(1, 3)):
            t += self.gap(5, 500)
            self.emit(t, "share_check", user=user, ip=src.ip, share="SYSVOL")

    def act_ds_read(self, t: int) -> None:
        for _ in range(self.rng.randint(1, 3)):
            self.emit(t, "ds_access")
            t += self.gap(1, 300)

    def act_preauth_typo(self, t: int) -> None:
        user, src = self.rng.choice(self.users), self.rng.choice(self.workstations)
        self.emit(t, "preauth_failed", user=user, ip=src.ip)
        t += self.gap(2 * SECOND, 20 * SECOND)
        self.emit(t, "tgt", user=user, ip=src.ip)
        self.emit(t + self.gap(5, 500), "service_ticket", user=user, ip=src.ip)

    def act_ntlm_fail(self, t: int) -> None:
        user, src = self.rng.choice(self.users), self.rng.choice(self.workstations)
        self.emit(t, "cred_validate_failed", user=user, src_host=src.name)
        self.emit(
            t + self.gap(2 * SECOND, 20 * SECOND), "cred_validate", user=user, src_host=src.name
        )

    def act_net_logon_failed(self, t: int) -> None:
        user, src = self.rng.choice(self.users), self.rng.choice(self.workstations)
        self.emit(t, "logon_failed", ltype=3, user=user, ip=src.ip, src_host=src.name)
        self.network_session(
            t + self.gap(2 * SECOND, 20 * SECOND), user=user, src=src, length=(SECOND, 60 * SECOND)
        )

    def act_net_logon(self, t: int) -> None:
        self.network_session(t, length=(200, 60 * SECOND))

    def act_ds_modify(self, t: int) -> None:
        admin = self.rng.choice(ADMINS)
        for _ in range(self.rng.randint(1, 2)):
            self.emit(t, "ds_modify", admin=admin)
            t += self.gap(10, 3_000)
        if self.rng.random() < 0.5:
            self.emit(t, "account_changed", admin=admin)

    def act_app_conn(self, t: int) -> None:
        """A client calling the web application: an inbound connection, sometimes a logon."""
        r = self.rng
        src = r.choice(self.workstations)
        self.emit(
            t,
            "wfp_conn",
            app="\\device\\harddiskvolume2\\windows\\system32\\inetsrv\\w3wp.exe",
            direction="Inbound",
            dst=self.host.ip,
            dport=443,
            ip_local=src.ip,
        )
        if r.random() < 0.4:
            self.network_session(
                t + self.gap(1, 50), user=r.choice(self.users), src=src, length=(100, 5 * SECOND)
            )
        if r.random() < 0.5:
            self.outbound(
                t + self.gap(5, 200),
                app="\\device\\harddiskvolume2\\windows\\system32\\inetsrv\\w3wp.exe",
                dst=r.choice(self.sqls).ip,
                dport=1433,
            )

    def act_db_session(self, t: int) -> None:
        r = self.rng
        web = r.choice(self.webs)
        self.emit(
            t,
            "wfp_conn",
            app="\\device\\harddiskvolume2\\program files\\microsoft sql server\\mssql15.mssqlserver\\mssql\\binn\\sqlservr.exe",
            direction="Inbound",
            dst=self.host.ip,
            dport=1433,
            ip_local=web.ip,
        )
        self.network_session(
            t + self.gap(1, 30), user="svc_web", src=web, length=(SECOND, 20 * MINUTE)
        )

    def act_audit_policy(self, t: int) -> None:
        self.emit(t, "audit_policy_obj")

    # -- episodes: rarer, larger, still normal ----------------------------------------------

    def ep_software_deploy(self, t: int) -> None:
        """A software deployment: a burst of installer processes over a few minutes."""
        n = self.rng.randint(40, 140)
        for _ in range(n):
            t += self.gap(200, 3_000)
            self.process(
                t,
                user="SYSTEM",
                path=self.rng.choice(
                    [
                        "C:\\Windows\\System32\\msiexec.exe",
                        "C:\\Windows\\ccmcache\\setup.exe",
                        "C:\\Windows\\System32\\conhost.exe",
                    ]
                ),
                life=(200, 20 * SECOND),
            )
            if self.rng.random() < 0.3:
                self.file_access(
                    t + self.gap(5, 100),
                    user="SYSTEM",
                    reads=(1, 2),
                    path="C:\\Windows\\System32\\msiexec.exe",
                )

    def ep_bulk_copy(self, t: int) -> None:
        """Someone copies a folder: a burst of file handles on a file server."""
        user = self.rng.choice(self.users)
        for _ in range(self.rng.randint(40, 160)):
            t += self.gap(50, 1_500)
            t = self.file_access(t, user=user, reads=(1, 2), path="System")

    def ep_retry_storm(self, t: int) -> None:
        """An application retrying a connection the firewall blocks, every second or so."""
        app = self.default("app")
        dst = f"10.{self.rng.randrange(200, 250)}.{self.rng.randrange(256)}.{self.rng.randrange(1, 255)}"
        for _ in range(self.rng.randint(20, 80)):
            t = self.blocked(t, app=app, dst=dst) + self.gap(700, 4_000)

    def ep_stale_password(self, t: int) -> None:
        """A mapped drive or a service still using an old password: a few failures, no success."""
        user = self.rng.choice(self.users + ["svc_backup", "svc_scan"])
        src = self.rng.choice(self.workstations)
        for _ in range(self.rng.randint(3, 8)):
            self.emit(t, "logon_failed", ltype=3, user=user, ip=src.ip, src_host=src.name)
            t += self.gap(5 * SECOND, 40 * SECOND)

    def ep_lockout(self, t: int) -> None:
        """A user locks themself out; the help desk unlocks the account later."""
        user, src = self.rng.choice(self.users), self.rng.choice(self.workstations)
        for _ in range(self.rng.randint(2, 4)):
            self.emit(t, "preauth_failed", user=user, ip=src.ip)
            t += self.gap(2 * SECOND, 20 * SECOND)
        self.emit(t, "lockout", user=user, src_host=src.name)
        t += self.gap(5 * MINUTE, 40 * MINUTE)
        self.emit(t, "account_unlocked", user=user)
        t += self.gap(10 * SECOND, 5 * MINUTE)
        self.emit(t, "tgt", user=user, ip=src.ip)

    # -- scheduled work ------------------------------------------------------------------------

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

    # -- the day's random activity -------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------
# incidents


@dataclass(slots=True)
class InjectedIncident:
    id: int
    kind: str
    variant: str
    host: str
    description: str
    start_ms: int  # first event of the incident (host_quiet: the last event before the silence)
    end_ms: int  # last event (host_quiet: the first event after the silence)
    log_uuids: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class _Plan:
    id: int
    kind: str
    host: str
    at_ms: int
    length_ms: int  # beacon and host_quiet: how long; others: a reservation


def plan_incidents(config: FleetConfig, hosts: list[Host]) -> list[_Plan]:
    """Where and when each incident happens: hosts drawn at random, incidents on one host at
    least 45 minutes apart, all inside the test period with an hour's margin at both ends."""
    rng = random.Random(f"fleet-incidents:{config.seed}")
    t0, t1 = config.train_end_ms + HOUR, config.test_end_ms - HOUR
    taken: dict[str, list[tuple[int, int]]] = {}
    plans: list[_Plan] = []
    margin = 45 * MINUTE
    for kind in INCIDENT_KINDS:
        for _ in range(config.incidents_each()):
            for _attempt in range(500):
                host = rng.choice(hosts).name
                if kind == "beacon":
                    length = rng.randrange(2 * HOUR, 4 * HOUR)
                elif kind == "host_quiet":
                    length = rng.randrange(3 * HOUR, 7 * HOUR)
                else:
                    length = 20 * MINUTE
                if t1 - length <= t0:
                    length = max(MINUTE, (t1 - t0) // 3)
                if kind == "host_quiet":  # goes quiet during working hours
                    day0 = t0 - (t0 - START_MS) % DAY
                    at = day0 + rng.randrange(7 * HOUR, 13 * HOUR)
                    if at < t0 or at + length > t1:
                        at = rng.randrange(t0, t1 - length)
                else:
                    at = rng.randrange(t0, t1 - length)
                span = (at - margin, at + length + margin)
                if all(span[1] < a or span[0] > b for a, b in taken.get(host, [])):
                    taken.setdefault(host, []).append(span)
                    plans.append(_Plan(len(plans), kind, host, at, length))
                    break
    return plans


def _inject(gen: _HostGen, plan: _Plan) -> tuple[str, str]:
    """Emits one incident's events into the host's list; returns (variant, description)."""
    r, t = gen.rng, plan.at_ms
    gen.incident = plan.id
    try:
        if plan.kind == "brute_force":
            user = r.choice(ADMINS + gen.users[:10])
            src = f"10.{r.randrange(200, 250)}.{r.randrange(256)}.{r.randrange(1, 255)}"
            n = r.randint(20, 60)
            for _ in range(n):
                gen.emit(t, "logon_failed", ltype=3, user=user, ip=src, src_host="-")
                t += gen.gap(300, 3_000)
            lid = gen.default("lid")
            gen.emit(
                t,
                "logon",
                ltype=3,
                user=user,
                lid=lid,
                ip=src,
                src_host="-",
                lproc="NtLmSsp",
                auth="NTLM",
            )
            gen.emit(t + gen.gap(0, 3), "special_priv", user=user, lid=lid)
            gen.process(
                t + gen.gap(200, 3_000),
                user=user,
                lid=lid,
                path="C:\\Windows\\System32\\cmd.exe",
                life=(5 * SECOND, 60 * SECOND),
            )
            return (
                "failures_then_success",
                f"{n} failed logons for {user} from {src} in a burst, then a privileged logon",
            )
        if plan.kind == "unseen_event":
            name = r.choice(UNSEEN_EVENT_NAMES)
            user, lid = r.choice(ADMINS), gen.default("lid")
            tool = {
                "log_cleared": "C:\\Windows\\System32\\wevtutil.exe",
                "user_created": "C:\\Windows\\System32\\net.exe",
                "service_installed": "C:\\Windows\\System32\\sc.exe",
                "task_created": "C:\\Windows\\System32\\schtasks.exe",
            }[name]
            gen.emit(t, "proc_start", user=user, lid=lid, path=tool, pid=gen.default("pid"))
            t += gen.gap(50, 2_000)
            gen.emit(t, name, user=user, lid=lid)
            if name == "user_created":
                gen.emit(t + gen.gap(200, 3_000), "group_member_added", user=user, lid=lid)
            eid = EVENTS[name][0]
            return name, f"EVENTID {eid} ({name.replace('_', ' ')}), never seen in training"
        if plan.kind == "wrong_order":
            user, lid = r.choice(ADMINS + gen.users[:10]), gen.default("lid")
            if r.random() < 0.5:
                gen.emit(t, "special_priv", user=user, lid=lid)
                gen.process(
                    t + gen.gap(50, 1_000),
                    user=user,
                    lid=lid,
                    path="C:\\Windows\\System32\\cmd.exe",
                    life=(2 * SECOND, 30 * SECOND),
                )
                gen.file_access(
                    t + gen.gap(1_000, 5_000),
                    user=user,
                    reads=(1, 1),
                    delete=True,
                    path="C:\\Windows\\System32\\cmd.exe",
                )
                return (
                    "privileges_without_logon",
                    f"4672 for {user} with no logon before it, then a delete",
                )
            for name in ("logoff", "user_logoff", "special_priv", "logon"):
                gen.emit(
                    t,
                    name,
                    user=user,
                    lid=lid,
                    ltype=2,
                    ip="127.0.0.1",
                    src_host=gen.host.name,
                    lproc="User32",
                    auth="Negotiate",
                )
                t += gen.gap(1, 400)
            return (
                "session_reversed",
                f"a session of {user} logged backwards: 4634, 4647, 4672, 4624",
            )
        if plan.kind == "beacon":
            app = "\\device\\harddiskvolume2\\" + r.choice(BAD_PROCS)[3:].lower()
            dst = f"{r.choice([45, 91, 185, 193])}.{r.randrange(256)}.{r.randrange(256)}.{r.randrange(1, 255)}"
            every = r.choice([30, 45, 60, 90, 120]) * SECOND
            end, pidd, beats = t + plan.length_ms, gen.default("pidd"), 0
            while t < end:
                gen.emit(t, "wfp_bind", app=app, pidd=pidd, port=gen.default("port"))
                gen.emit(t + gen.gap(1, 20), "wfp_conn", app=app, pidd=pidd, dst=dst, dport=443)
                t += every + gen.gap(-300, 300)
                beats += 1
            return (
                f"every_{every // SECOND}s",
                f"{beats} connections to {dst}:443 every {every // SECOND} s",
            )
        if plan.kind == "host_quiet":
            return "silent", f"no events for {plan.length_ms / HOUR:.1f} h"
        if plan.kind == "event_storm":
            n = r.randint(200, 600)
            seconds = r.randint(5, 30)
            choice = r.choice(
                [
                    "obj_access",
                    "wfp_conn",
                    "proc_start",
                    "logoff",
                    "service_ticket" if gen.host.role == "controller" else "handle_close",
                ]
            )
            fixed = {
                "user": r.choice(gen.users),
                "lid": gen.default("lid"),
                "hid": gen.default("hid"),
                "path": gen.default("path"),
                "pid": gen.default("pid"),
                "app": gen.default("app"),
                "pidd": gen.default("pidd"),
                "obj": gen.default("obj"),
            }
            step = seconds * SECOND / n
            for i in range(n):
                gen.emit(t + int(i * step), choice, **fixed)
            eid = EVENTS[choice][0]
            return choice, f"{n} events {eid} ({choice.replace('_', ' ')}) in {seconds} s"
        raise ValueError(f"unknown incident kind {plan.kind!r}")
    finally:
        gen.incident = -1


# --------------------------------------------------------------------------------------------
# documents


def _uuid_hex(rng: random.Random) -> str:
    value = rng.getrandbits(128)
    value = (value & ~(0xF000 << 64)) | (4 << 76)  # version 4
    value = (value & ~(0xC000 << 48)) | (0x8000 << 48)  # RFC 4122 variant
    return f"{value:032x}"


def host_documents(
    config: FleetConfig, host: Host, fleet: list[Host], plans: list[_Plan]
) -> tuple[list[dict[str, str]], list[dict[str, str]], list[InjectedIncident]]:
    """One host's (training documents, test documents, incidents), each list in time order."""
    gen = _HostGen(config, host, fleet)
    gen.normal()
    injected: dict[int, tuple[_Plan, str, str]] = {}
    for plan in plans:
        if plan.host == host.name:
            variant, description = _inject(gen, plan)
            injected[plan.id] = (plan, variant, description)
    events = sorted(gen.events, key=lambda e: (e.t, e.seq))
    # The product orders a host's events by (timestamp, log_uuid): keep the emitted order by
    # giving every event its own millisecond.
    last = -1
    for e in events:
        if e.t <= last:
            e.t = last + 1
        last = e.t
    quiet = [p for p, _, _ in injected.values() if p.kind == "host_quiet"]
    for plan in quiet:
        events = [e for e in events if not (plan.at_ms <= e.t < plan.at_ms + plan.length_ms)]
    uuid_rng = random.Random(f"fleet-uuids:{config.seed}:{host.name}")
    train: list[dict[str, str]] = []
    test: list[dict[str, str]] = []
    members: dict[int, list[tuple[int, str]]] = {}
    for e in events:
        eid, severity, _ = EVENTS[e.name]
        uid = _uuid_hex(uuid_rng)
        doc = {
            "_zl_timestamp": str(e.t),
            "log_uuid": uid,
            "SEVERITY": severity,
            "HOSTNAME": host.name,
            "EVENTID": eid,
            "MESSAGE": e.message,
        }
        (train if e.t < config.train_end_ms else test).append(doc)
        if e.incident >= 0:
            members.setdefault(e.incident, []).append((e.t, uid))
    incidents: list[InjectedIncident] = []
    for plan_id, (plan, variant, description) in sorted(injected.items()):
        if plan.kind == "host_quiet":
            before = [e.t for e in events if e.t < plan.at_ms]
            after = [(i, e) for i, e in enumerate(events) if e.t >= plan.at_ms + plan.length_ms]
            start = before[-1] if before else plan.at_ms
            if after:
                first = after[0][1]
                end = first.t
                uid = next(d["log_uuid"] for d in test if int(d["_zl_timestamp"]) == end)
                uuids = [uid]
            else:
                end, uuids = plan.at_ms + plan.length_ms, []
            description = f"no events for {(end - start) / HOUR:.1f} h"
        else:
            got = members.get(plan_id, [])
            start, end = (got[0][0], got[-1][0]) if got else (plan.at_ms, plan.at_ms)
            uuids = [u for _, u in got]
        incidents.append(
            InjectedIncident(
                plan_id, plan.kind, variant, host.name.lower(), description, start, end, uuids
            )
        )
    return train, test, incidents


@dataclass(slots=True)
class FleetData:
    config: FleetConfig
    train_path: Path
    test_path: Path
    labels_path: Path
    hosts: list[Host]
    incidents: list[InjectedIncident]
    train_events: int
    test_events: int
    normal_test_events: int
    training_keys: list[str]
    unseen_normal_test_keys: list[str]  # normal test keys absent from training (should be none)
    seconds: float

    def summary(self) -> dict[str, object]:
        roles = Counter(h.role for h in self.hosts)
        return {
            "config": asdict(self.config),
            "roles": dict(roles),
            "train_events": self.train_events,
            "test_events": self.test_events,
            "normal_test_events": self.normal_test_events,
            "training_keys": len(self.training_keys),
            "unseen_normal_test_keys": self.unseen_normal_test_keys,
            "incidents": dict(Counter(i.kind for i in self.incidents)),
            "generation_seconds": round(self.seconds, 1),
        }


def iter_fleet(
    config: FleetConfig,
) -> Iterator[tuple[Host, list[dict], list[dict], list[InjectedIncident]]]:
    hosts = fleet_hosts(config)
    plans = plan_incidents(config, hosts)
    for host in hosts:
        train, test, incidents = host_documents(config, host, hosts, plans)
        yield host, train, test, incidents


def write_fleet(config: FleetConfig, out_dir: Path) -> FleetData:
    """train.jsonl, test.jsonl and labels.json (the injected incidents) under out_dir."""
    import time

    started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        import orjson

        def dumps(doc: dict) -> bytes:
            return orjson.dumps(doc)
    except ImportError:  # the generator runs without the project's virtualenv too

        def dumps(doc: dict) -> bytes:
            return json.dumps(doc, separators=(",", ":")).encode()

    train_path, test_path = out_dir / "train.jsonl", out_dir / "test.jsonl"
    labels_path = out_dir / "labels.json"
    incidents: list[InjectedIncident] = []
    train_keys: set[tuple[str, str]] = set()
    test_keys: set[tuple[str, str]] = set()
    n_train = n_test = n_injected = 0
    hosts: list[Host] = []
    with train_path.open("wb") as ftrain, test_path.open("wb") as ftest:
        for host, train, test, found in iter_fleet(config):
            hosts.append(host)
            members = {u for i in found for u in i.log_uuids}
            for doc in train:
                train_keys.add((doc["EVENTID"], doc["SEVERITY"]))
                ftrain.write(dumps(doc) + b"\n")
            for doc in test:
                if doc["log_uuid"] in members:
                    n_injected += 1
                else:
                    test_keys.add((doc["EVENTID"], doc["SEVERITY"]))
                ftest.write(dumps(doc) + b"\n")
            n_train += len(train)
            n_test += len(test)
            incidents.extend(found)
    incidents.sort(key=lambda i: i.id)
    data = FleetData(
        config=config,
        train_path=train_path,
        test_path=test_path,
        labels_path=labels_path,
        hosts=hosts,
        incidents=incidents,
        train_events=n_train,
        test_events=n_test,
        normal_test_events=n_test - n_injected,
        training_keys=sorted(f"{e}:{s}" for e, s in train_keys),
        unseen_normal_test_keys=sorted(f"{e}:{s}" for e, s in test_keys - train_keys),
        seconds=time.perf_counter() - started,
    )
    labels_path.write_text(
        json.dumps(
            {"summary": data.summary(), "incidents": [i.to_json() for i in incidents]}, indent=1
        )
    )
    return data


def config_from_args(args: argparse.Namespace) -> FleetConfig:
    config = replace(PRESETS[args.preset], seed=args.seed)
    for name in ("hosts", "days", "test_hours", "events_per_host_day", "incidents_per_kind"):
        value = getattr(args, name, None)
        if value is not None:
            config = replace(config, **{name: value})
    return config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=1, help="random seed of the fleet")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="small")
    parser.add_argument("--hosts", type=int, help="number of hosts (preset's by default)")
    parser.add_argument("--days", type=int, help="days of training history")
    parser.add_argument("--test-hours", type=int, help="hours of test period after the history")
    parser.add_argument("--events-per-host-day", type=int, help="fleet-average events per host-day")
    parser.add_argument(
        "--incidents-per-kind", type=int, help="incidents of each kind (default 14 per 60 hosts)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    parser.add_argument("--out", type=Path, required=True, help="directory for train/test/labels")
    args = parser.parse_args(argv)
    data = write_fleet(config_from_args(args), args.out)
    print(json.dumps(data.summary(), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
