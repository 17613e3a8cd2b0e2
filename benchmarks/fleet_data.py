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

The code lives in the fleetgen package next to this file (benchmarks/fleetgen/, one module per
job, listed in its __init__); this module is the front door: the command line, and the names
benchmarks/fleet.py imports.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from fleetgen.config import (
    DAY,
    HOUR,
    INCIDENT_KINDS,
    MINUTE,
    PRESETS,
    SECOND,
    START_MS,
    FleetConfig,
)
from fleetgen.hosts import Host, fleet_hosts
from fleetgen.incidents import InjectedIncident, plan_incidents
from fleetgen.writer import FleetData, host_documents, iter_fleet, write_fleet

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
    # also re-exported for importers: the clock and the streaming form of write_fleet
    "START_MS",
    "HOUR",
    "MINUTE",
    "SECOND",
    "DAY",
    "iter_fleet",
]


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
