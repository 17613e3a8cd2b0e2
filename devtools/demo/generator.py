"""A synthetic fleet of Windows hosts logging in the seed's document shape, with incidents.

Each host has a role; a role runs a mix of workflows (logon sessions, file access, process
runs, Kerberos, ...), each a short, ordered run of Security-log events whose logon, handle or
process ID is the workflow's own (so identifiers link its events). Incidents are injected
into a host's stream and returned with the log_uuids they consist of, so tests and the demo can
check what was found. Deterministic for a given seed.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

__all__ = [
    "HostProfile",
    "Incident",
    "INCIDENT_KINDS",
    "fleet",
    "host_stream",
    "normal_documents",
    "documents_with_incidents",
]

# (EVENTID, SEVERITY, message template). {u} user, {p} process, {o} object, {h} hex, {ip}, {port}
EVENTS: dict[str, tuple[str, str, str]] = {
    "logon": (
        "4624",
        "success",
        "An account was successfully logged on. Account Name: {u} Logon Type: {t} Source Network Address: {ip} Logon ID: 0x{h}",
    ),
    "logon_failed": (
        "4625",
        "failure",
        "An account failed to log on. Account Name: {u} Failure Reason: Unknown user name or bad password. Source Network Address: {ip}",
    ),
    "logoff": ("4634", "success", "An account was logged off. Account Name: {u} Logon ID: 0x{h}"),
    "user_logoff": ("4647", "success", "User initiated logoff. Account Name: {u} Logon ID: 0x{h}"),
    "special_priv": (
        "4672",
        "success",
        "Special privileges assigned to new logon. Account Name: {u} Logon ID: 0x{h} Privileges: SeDebugPrivilege SeBackupPrivilege",
    ),
    "explicit_creds": (
        "4648",
        "success",
        "A logon was attempted using explicit credentials. Account Name: {u} Target Server Name: {ip}",
    ),
    "cred_validate": (
        "4776",
        "success",
        "The computer attempted to validate the credentials for an account. Logon Account: {u}",
    ),
    "tgt": (
        "4768",
        "success",
        "A Kerberos authentication ticket (TGT) was requested. Account Name: {u} Client Address: {ip}",
    ),
    "service_ticket": (
        "4769",
        "success",
        "A Kerberos service ticket was requested. Account Name: {u} Service Name: HTTP/{o}",
    ),
    "ticket_renew": ("4770", "success", "A Kerberos service ticket was renewed. Account Name: {u}"),
    "proc_start": (
        "4688",
        "success",
        "A new process has been created. New Process Name: C:\\Windows\\System32\\{p} New Process ID: 0x{h}",
    ),
    "proc_exit": (
        "4689",
        "success",
        "A process has exited. Process Name: C:\\Windows\\System32\\{p} Exit Status: 0x0",
    ),
    "handle_req": (
        "4656",
        "success",
        "A handle to an object was requested. Object Name: C:\\Data\\{o} Handle ID: 0x{h}",
    ),
    "obj_access": (
        "4663",
        "success",
        "An attempt was made to access an object. Object Name: C:\\Data\\{o} Accesses: ReadData",
    ),
    "handle_close": ("4658", "success", "The handle to an object was closed. Handle ID: 0x{h}"),
    "handle_dup": (
        "4690",
        "success",
        "An attempt was made to duplicate a handle to an object. Source Handle ID: 0x{h}",
    ),
    "obj_delete": ("4660", "success", "An object was deleted. Object Name: C:\\Data\\{o}"),
    "wfp_bind": (
        "5158",
        "success",
        "The Windows Filtering Platform has permitted a bind to a local port. Application Name: {p} Source Port: {port}",
    ),
    "wfp_conn": (
        "5156",
        "success",
        "The Windows Filtering Platform has permitted a connection. Application Name: {p} Destination Address: {ip} Destination Port: {port}",
    ),
    "wfp_block": (
        "5157",
        "failure",
        "The Windows Filtering Platform has blocked a connection. Application Name: {p} Destination Address: {ip}",
    ),
    "svc_running": ("7036", "information", "The {o} service entered the running state."),
    "svc_stopped": ("7036", "warning", "The {o} service entered the stopped state."),
    "task_updated": (
        "4702",
        "success",
        "A scheduled task was updated. Task Name: \\Microsoft\\Windows\\{o}",
    ),
    "policy_change": (
        "4907",
        "success",
        "Auditing settings on object were changed. Object Name: C:\\Data\\{o}",
    ),
    "share_access": (
        "5140",
        "success",
        "A network share object was accessed. Share Name: \\\\*\\{o} Source Address: {ip}",
    ),
    "share_check": (
        "5145",
        "success",
        "A network share object was checked to see whether client can be granted desired access. Share Name: \\\\*\\{o}",
    ),
    "crypto_op": ("5061", "success", "Cryptographic operation. Algorithm Name: RSA Key Name: {o}"),
    "crypto_read": (
        "5058",
        "success",
        "Key file operation. Key Name: {o} Operation: Read persisted key from file.",
    ),
    "dpapi": (
        "4692",
        "success",
        "Backup of data protection master key was attempted. Key Identifier: {h}",
    ),
    "time_change": (
        "4616",
        "information",
        "The system time was changed. Process Name: C:\\Windows\\System32\\svchost.exe",
    ),
    # Never logged in normal operation: only incidents use these.
    "log_cleared": ("1102", "success", "The audit log was cleared. Account Name: {u}"),
}

WORKFLOWS: dict[str, list[str]] = {
    "interactive_session": [
        "cred_validate",
        "logon",
        "special_priv",
        "proc_start",
        "proc_exit",
        "user_logoff",
        "logoff",
    ],
    "network_logon": ["logon", "share_access", "share_check", "logoff"],
    "typo_then_logon": ["logon_failed", "logon", "proc_start", "proc_exit", "logoff"],
    "file_read": ["handle_req", "obj_access", "obj_access", "handle_close"],
    "file_delete": ["handle_req", "obj_access", "obj_delete", "handle_close"],
    "handle_duplicate": ["handle_req", "handle_dup", "handle_close"],
    "outbound": ["wfp_bind", "wfp_conn"],
    "blocked": ["wfp_bind", "wfp_block"],
    "batch_job": ["task_updated", "proc_start", "proc_exit"],
    "kerberos": ["tgt", "service_ticket", "ticket_renew"],
    "service_restart": ["svc_stopped", "svc_running"],
    "crypto": ["crypto_read", "crypto_op", "dpapi"],
    "time_sync": ["time_change"],
    "audit_policy": ["handle_req", "policy_change", "handle_close"],
}

ROLES: dict[str, dict[str, float]] = {
    "workstation": {
        "interactive_session": 3,
        "typo_then_logon": 1,
        "file_read": 4,
        "file_delete": 1,
        "handle_duplicate": 2,
        "outbound": 4,
        "blocked": 1,
        "batch_job": 1,
        "crypto": 1,
        "time_sync": 0.5,
    },
    "fileserver": {
        "network_logon": 4,
        "file_read": 5,
        "file_delete": 2,
        "handle_duplicate": 2,
        "audit_policy": 1,
        "outbound": 1,
        "service_restart": 0.5,
        "time_sync": 0.5,
    },
    "controller": {
        "kerberos": 5,
        "network_logon": 2,
        "typo_then_logon": 1,
        "outbound": 2,
        "service_restart": 1,
        "crypto": 1,
        "time_sync": 0.5,
        "batch_job": 1,
    },
}

USERS = ["alice", "bob", "carol", "dave", "erin", "svc_backup", "svc_web", "frank"]
PROCS = ["svchost.exe", "cmd.exe", "powershell.exe", "notepad.exe", "explorer.exe", "msedge.exe"]
OBJECTS = ["reports.xlsx", "payroll.csv", "notes.txt", "Spooler", "W32Time", "BITS", "share$"]

INCIDENT_KINDS = ("audit_log_cleared", "brute_force", "privilege_without_logon", "logoff_storm")


@dataclass(frozen=True, slots=True)
class HostProfile:
    name: str
    role: str


@dataclass(slots=True)
class Incident:
    kind: str
    host: str
    description: str
    log_uuids: list[str] = field(default_factory=list)


def fleet(hosts: int) -> list[HostProfile]:
    roles = ["workstation", "workstation", "fileserver", "workstation", "controller"]
    return [HostProfile(f"host-{i:03d}", roles[i % len(roles)]) for i in range(hosts)]


class _Emitter:
    """Turns event names into documents with increasing timestamps on one host."""

    def __init__(
        self, host: str, start_ms: int, rng: random.Random, pace_ms: tuple[int, int]
    ) -> None:
        self.host = host
        self.clock = start_ms
        self.rng = rng
        self.pace_ms = pace_ms
        # The logon, handle or process ID the events of the running workflow share (as a
        # logon's 4624, 4672 and 4634 do), so identifiers link a workflow's events as they do
        # in real logs; None outside a workflow (an incident's lone event gets a fresh one).
        self.identifier: str | None = None
        self._last_drawn = ""

    def doc(self, name: str, gap_ms: tuple[int, int] | None = None) -> dict[str, object]:
        self.clock += self.rng.randint(*(gap_ms or self.pace_ms))
        event_id, severity, template = EVENTS[name]
        r = self.rng
        # Drawn in this order whatever the template uses, so a seed's stream stays the same.
        user, process, obj = r.choice(USERS), r.choice(PROCS), r.choice(OBJECTS)
        self._last_drawn = f"{r.getrandbits(24):x}"
        message = template.format(
            u=user,
            p=process,
            o=obj,
            h=self.identifier or self._last_drawn,
            ip=f"10.{r.randint(0, 9)}.{r.randint(0, 255)}.{r.randint(1, 254)}",
            port=r.randint(1024, 65535),
            t=r.choice([2, 3, 10]),
        )
        return {
            "_zl_timestamp": str(self.clock),
            "log_uuid": uuid.UUID(int=r.getrandbits(128), version=4).hex,
            "SEVERITY": severity,
            "HOSTNAME": self.host,
            "EVENTID": event_id,
            "MESSAGE": message,
            "LOGTYPE": "Security" if event_id != "7036" else "System",
        }

    def workflow(self, name: str) -> list[dict[str, object]]:
        # The first event's drawn identifier is the workflow's; every value is still drawn
        # per event, so a seed yields the same stream of everything else.
        self.identifier = None
        docs = []
        for step in WORKFLOWS[name]:
            docs.append(self.doc(step))
            self.identifier = self.identifier or self._last_drawn
        self.identifier = None
        return docs


def _normal_run(emitter: _Emitter, role: str, events: int) -> list[dict[str, object]]:
    mix = ROLES[role]
    names, weights = list(mix), list(mix.values())
    docs: list[dict[str, object]] = []
    while len(docs) < events:
        docs.extend(emitter.workflow(emitter.rng.choices(names, weights)[0]))
    return docs


def _incident(kind: str, emitter: _Emitter) -> tuple[list[dict[str, object]], str]:
    if kind == "audit_log_cleared":
        return [
            emitter.doc("log_cleared")
        ], "security log cleared (EVENTID 1102, never seen in training)"
    if kind == "brute_force":
        docs = [emitter.doc("logon_failed", (1, 5)) for _ in range(30)]
        docs += [emitter.doc("logon"), emitter.doc("special_priv"), emitter.doc("proc_start")]
        return docs, "30 failed logons in a row, then a privileged logon"
    if kind == "privilege_without_logon":
        docs = [
            emitter.doc("wfp_bind"),
            emitter.doc("wfp_conn"),
            emitter.doc("special_priv"),
            emitter.doc("obj_delete"),
            emitter.doc("obj_delete"),
        ]
        return (
            docs,
            "special privileges assigned with no logon, then objects deleted without a handle",
        )
    if kind == "logoff_storm":
        docs = [emitter.doc("handle_req"), emitter.doc("handle_dup")]
        docs += [emitter.doc("logoff", (1, 5)) for _ in range(12)]
        return docs, "a handle duplicated, then a burst of logoffs with no logons"
    raise ValueError(f"unknown incident kind {kind!r}")


def normal_documents(
    profiles: Iterable[HostProfile],
    start_ms: int,
    events_per_host: int,
    seed: int,
    pace_ms: tuple[int, int] = (50, 2_000),
) -> list[dict[str, object]]:
    docs, _ = documents_with_incidents(profiles, start_ms, events_per_host, seed, {}, pace_ms)
    return docs


def host_stream(
    profile: HostProfile, start_ms: int, seed: int, pace_ms: tuple[int, int] = (50, 2_000)
) -> Iterator[dict[str, object]]:
    """One host's normal documents without end, workflow after workflow: the stream
    `normal_documents` cuts at a length (the same documents for the same seed), for a writer
    that must never replay what training read."""
    emitter = _Emitter(profile.name, start_ms, random.Random(f"{seed}:{profile.name}"), pace_ms)
    while True:
        yield from _normal_run(emitter, profile.role, 1)


def documents_with_incidents(
    profiles: Iterable[HostProfile],
    start_ms: int,
    events_per_host: int,
    seed: int,
    incidents: dict[str, str],
    pace_ms: tuple[int, int] = (50, 2_000),
    lead: int | None = None,
) -> tuple[list[dict[str, object]], list[Incident]]:
    """Normal streams with an incident in each host named in `incidents`.

    The incident follows `lead` normal events (default: half the stream); `pace_ms` is the
    range of gaps between a host's consecutive events.
    """
    docs: list[dict[str, object]] = []
    found: list[Incident] = []
    for profile in profiles:
        rng = random.Random(f"{seed}:{profile.name}")
        emitter = _Emitter(profile.name, start_ms, rng, pace_ms)
        kind = incidents.get(profile.name)
        if kind is None:
            docs.extend(_normal_run(emitter, profile.role, events_per_host))
            continue
        before = events_per_host // 2 if lead is None else lead
        if before:
            docs.extend(_normal_run(emitter, profile.role, before))
        injected, description = _incident(kind, emitter)
        docs.extend(injected)
        found.append(
            Incident(kind, profile.name, description, [str(d["log_uuid"]) for d in injected])
        )
        docs.extend(_normal_run(emitter, profile.role, events_per_host - before))
    return docs, found
