"""Training data from the cluster or files: reading every host's stream, and keying it as the
cycles will (template mining)."""

from __future__ import annotations

import time

import structlog

from sidecar.app.output import parse_instant
from sidecar.app.settings import Settings
from sidecar.app.wiring import cluster_source, event_keys
from sidecar.files.spill import SpilledStreams
from sidecar.types import InputStats

log = structlog.get_logger("sidecar.app.training_data")


# Events between two "training_data_reading" progress lines.
READ_PROGRESS_EVERY = 100_000


def read_streams(
    settings: Settings, client, start_ms: int, end_ms: int, stats: InputStats, progress=None
) -> SpilledStreams:
    """Every host's events in [start, end] from the watched indices, in reading order, page by
    page onto local disk (sidecar/files/spill.py): memory holds a page, not the range."""
    source = cluster_source(settings, client)
    streams = SpilledStreams(settings.training_spill_dir)
    reported = 0
    for host in source.hosts_with_new({}, start_ms, end_ms):
        for page in source.read(host, None, start_ms, end_ms, stats):
            streams.add(host, page.events)
        if progress is not None and streams.events - reported >= READ_PROGRESS_EVERY:
            progress.read(streams.events, len(streams))
            reported = streams.events
    streams.flush()
    if progress is not None:
        progress.read(streams.events, len(streams), done=True)
    return streams


def settled_until(settings: Settings, now_ms: int) -> int:
    """The end of what training may read: documents within the lateness window can still
    arrive, and a model trained on their gaps learns them as normal (a handle closed with no
    open, a privilege with no logon)."""
    return now_ms - int((settings.read_lag_seconds + settings.lateness_seconds) * 1000)


def cluster_training_streams(args, settings: Settings, stats: InputStats, progress=None):
    from sidecar.cluster.client import make_client

    end_ms = (
        parse_instant(args.end) if args.end else settled_until(settings, int(time.time() * 1000))
    )
    days = args.days if args.days is not None else settings.train_days
    start_ms = parse_instant(args.start) if args.start else end_ms - int(days * 86_400_000)
    streams = read_streams(settings, make_client(settings), start_ms, end_ms, stats, progress)
    data = {
        "source": "cluster",
        "indices": settings.watched_indices,
        "start_ms": start_ms,
        "end_ms": end_ms,
    }
    return streams, data


def mine_training_keys(
    settings: Settings, streams: dict, stats: InputStats, in_cluster: bool
) -> int | None:
    """Key the training events as the cycles will and save the miner state the cycles start
    from, so the vocabulary holds the ids they produce. Returns how many events got a mined
    id, None with template mining off."""
    if settings.template_mining == "off":
        return None
    client = None
    if in_cluster:
        from sidecar.cluster.client import make_client

        client = make_client(settings)
    keys = event_keys(settings, client)
    assert keys is not None
    mined = 0
    for host, stream in streams.items():
        labelled = keys.label(stream, stats)
        mined += labelled.mined
        # Spilled streams are rewritten only where keying changed something (a fleet that
        # carries EVENTID leaves its streams as they were read).
        if _changed(stream, labelled.events):
            streams[host] = labelled.events
    # Templates merged after their first events were keyed (a place learned to vary): those
    # events take the merged template's id, the one the cycles will give their messages.
    if mined:
        for host, stream in streams.items():
            final = keys.final_ids(stream)
            if _changed(stream, final):
                streams[host] = final
    if mined:
        if client is not None and settings.manage_templates:
            from sidecar.cluster.bootstrap import install_templates

            # The state index must have its strict mapping before the state lands in it.
            install_templates(
                client,
                settings.anomaly_index,
                settings.state_index,
                settings.dead_letter_index,
                partitioning=settings.partitioning,
            )
        keys.save()
        log.info(
            "template_mining",
            mode=settings.template_mining,
            mined_event_ids=mined,
            templates=len(keys.miner.clusters),
        )
    return mined


def _changed(before: list, after: list) -> bool:
    return len(before) != len(after) or any(a is not b for a, b in zip(before, after, strict=True))
