"""The fleet generator behind benchmarks/fleet_data.py, one module per job.

Import modules directly (`from fleetgen.writer import write_fleet`): this file stays empty so
that importing one part never drags in the rest. The modules import each other absolutely,
as `fleetgen.*`, because the package is reached with benchmarks/ on sys.path, both when
fleet_data.py runs as a script and when benchmarks/fleet.py imports it; benchmarks/ is not a
package itself.

Layers, each importing only those above it (no cycles):

    config        FleetConfig, PRESETS, time constants, INCIDENT_KINDS
    catalog       EVENTS: event ids, severities, message templates
    vocabulary    the names placeholders are drawn from (users, processes, services, ...)
    hosts         roles, their shares, volumes and daily rhythm; Host, fleet_hosts
    emitter       HostGenBase: one host's random stream, emit(), placeholder values,
                  building blocks (a process, a file access, a network session, ...)
    activities    RoleActivities: the day's random activities and benign episodes
    scheduled     ScheduledWork: recurring work (reboots, backups, heartbeats, replication)
    hostgen       HostGen: the activity mix per role and its drift; a host's normal history
    incidents     InjectedIncident, plan_incidents, inject_incident
    writer        host_documents, FleetData, iter_fleet, write_fleet
"""
