"""From event lists to files: a host's documents in the product's order with their labels, and
train.jsonl, test.jsonl and labels.json for the whole fleet.

Hosts are generated and written one at a time, so memory holds one host's events, not the
fleet's.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from fleetgen.catalog import EVENTS
from fleetgen.config import HOUR, FleetConfig
from fleetgen.hostgen import HostGen
from fleetgen.hosts import Host, fleet_hosts
from fleetgen.incidents import InjectedIncident, Plan, inject_incident, plan_incidents


def _uuid_hex(rng: random.Random) -> str:
    value = rng.getrandbits(128)
    value = (value & ~(0xF000 << 64)) | (4 << 76)  # version 4
    value = (value & ~(0xC000 << 48)) | (0x8000 << 48)  # RFC 4122 variant
    return f"{value:032x}"


def host_documents(
    config: FleetConfig, host: Host, fleet: list[Host], plans: list[Plan]
) -> tuple[list[dict[str, str]], list[dict[str, str]], list[InjectedIncident]]:
    """One host's (training documents, test documents, incidents), each list in time order."""
    gen = HostGen(config, host, fleet)
    gen.normal()
    injected: dict[int, tuple[Plan, str, str]] = {}
    for plan in plans:
        if plan.host == host.name:
            variant, description = inject_incident(gen, plan)
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
