"""Injected incidents: where and when they happen (plan_incidents) and the events each kind
writes into a host's list (inject_incident).

Plans are drawn from a random stream of their own, seeded by the fleet's seed alone, so a
change to the hosts' normal activity never moves an incident.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field

from fleetgen.catalog import EVENTS, UNSEEN_EVENT_NAMES
from fleetgen.config import DAY, HOUR, INCIDENT_KINDS, MINUTE, SECOND, START_MS, FleetConfig
from fleetgen.emitter import HostGenBase
from fleetgen.hosts import Host
from fleetgen.vocabulary import ADMINS, BAD_PROCS


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
class Plan:
    id: int
    kind: str
    host: str
    at_ms: int
    length_ms: int  # beacon and host_quiet: how long; others: a reservation


def plan_incidents(config: FleetConfig, hosts: list[Host]) -> list[Plan]:
    """Where and when each incident happens: hosts drawn at random, incidents on one host at
    least 45 minutes apart, all inside the test period with an hour's margin at both ends."""
    rng = random.Random(f"fleet-incidents:{config.seed}")
    t0, t1 = config.train_end_ms + HOUR, config.test_end_ms - HOUR
    taken: dict[str, list[tuple[int, int]]] = {}
    plans: list[Plan] = []
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
                    plans.append(Plan(len(plans), kind, host, at, length))
                    break
    return plans


def inject_incident(gen: HostGenBase, plan: Plan) -> tuple[str, str]:
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
