"""Object wiring: settings -> the concrete store, source, keys and detectors a command uses.

The only place that picks adapters; commands and the service ask it for what they need."""

from __future__ import annotations

import structlog
import torch
from pydantic import ValidationError

from sidecar.app.settings import Settings, describe_validation_error
from sidecar.errors import ConfigError

log = structlog.get_logger("sidecar.app.wiring")


def load_settings(**overrides: object) -> Settings:
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc)) from None


def device_for(settings: Settings) -> torch.device:
    if settings.device == "cuda" or (settings.device == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


def model_store(settings: Settings, client=None):  # -> ModelStore
    """The configured model store: the cluster's model index, or a directory (PVC)."""
    if settings.model_store == "file":
        from sidecar.models.store import FileModelStore

        return FileModelStore(settings.model_dir)
    from sidecar.cluster.client import make_client
    from sidecar.cluster.modelstore import ClusterModelStore

    return ClusterModelStore(client or make_client(settings), settings.model_index)


def detector_options(settings: Settings):  # -> DetectorOptions
    from sidecar.models.catalog import DetectorOptions

    if settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    return DetectorOptions(
        top_g=settings.top_g,
        device=device_for(settings),
        similarity_threshold=settings.template_similarity,
        min_probability=settings.min_probability,
        parameter_confidence=settings.parameter_confidence,
        verdict_rule=settings.verdict_rule,
        alert_budget=settings.alert_budget,
        models_sharing=len(settings.models),
    )


def training_choices(settings: Settings):  # -> TrainingChoices
    from sidecar.models.base import TrainingChoices

    return TrainingChoices(
        window_size=settings.window_size,
        top_g=settings.top_g,
        epochs=settings.train_epochs,
        batch_size=settings.train_batch_size,
        seed=settings.train_seed,
        similarity_threshold=settings.template_similarity,
        parameter_confidence=settings.parameter_confidence,
        pca_variance=settings.pca_variance,
        pca_alpha=settings.pca_alpha,
        autoencoder_quantile=settings.autoencoder_quantile,
        host_group_pattern=settings.host_group_pattern or None,
    )


def model_config(name: str, settings: Settings):
    """The training configuration of model `name` from settings (the catalog picks the kind)."""
    from sidecar.models.catalog import kind_of

    return kind_of(name).configure(training_choices(settings))


def cycle_options(settings: Settings):
    from sidecar.pipeline.cycle import CycleOptions

    return CycleOptions(
        read_lag_ms=int(settings.read_lag_seconds * 1000),
        initial_lookback_ms=int(settings.initial_lookback_seconds * 1000),
        batch_events=settings.batch_events,
        message_excerpt_chars=settings.message_excerpt_chars,
        shard=settings.shard(),
        lateness_ms=int(settings.lateness_seconds * 1000),
        future_tolerance_ms=int(settings.future_tolerance_seconds * 1000),
        incident_gap_ms=int(settings.incident_gap_seconds * 1000),
        incident_event_docs=settings.incident_event_docs,
    )


def cluster_source(settings: Settings, client):  # -> ClusterSource
    from sidecar.cluster.reader import ClusterSource

    return ClusterSource(
        client,
        settings.watched_indices,
        settings.fields,
        settings.page_size,
        case_sensitive_hosts=settings.host_case_sensitive,
        event_id_optional=settings.template_mining != "off",
    )


def event_keys(settings: Settings, client=None, known=frozenset()):  # -> TemplateLabeller | None
    """Template mining as SIDECAR_TEMPLATE_MINING says (None when off), its state in the state
    index with a client, else in SIDECAR_MODEL_DIR. A fresh one per cycle: it loads the
    shared state when first needed, and a failed cycle's learning is dropped with it.
    `known`: the event ids the scoring models know (see TemplateLabeller)."""
    if settings.template_mining == "off":
        return None
    from sidecar.templates.keys import TemplateLabeller

    if client is not None:
        from sidecar.cluster.minerstate import ClusterMinerStore

        return TemplateLabeller(
            settings.template_mining,
            ClusterMinerStore(client, settings.state_index),
            max_clusters=settings.template_max_clusters,
            known=known,
        )
    from sidecar.files.minerstate import MINER_STATE_FILE, FileMinerStore

    return TemplateLabeller(
        settings.template_mining,
        FileMinerStore(settings.model_dir / MINER_STATE_FILE),
        max_clusters=settings.template_max_clusters,
        known=known,
    )


def active_models(settings: Settings, client=None, store=None):  # -> ActiveModels
    from sidecar.lifecycle.active import ActiveModels

    store = store if store is not None else model_store(settings, client)
    models = ActiveModels(
        store, settings.models, detector_options(settings), settings.template_mining
    )
    models.refresh()
    return models


def install_sidecar_templates(settings: Settings, client) -> None:
    from sidecar.cluster.bootstrap import install_templates
    from sidecar.cluster.policies import install_policy, policy_name

    policy = policy_name(settings.anomaly_index)
    if settings.retention_by != "sidecar":
        bases = partitioned_bases(settings)
        patterns = [f"{base}-*" for base in bases]
        install_policy(client, settings.retention_by, policy, patterns, settings.retention_days)
    install_templates(
        client,
        settings.anomaly_index,
        settings.state_index,
        settings.dead_letter_index,
        settings.model_index if settings.model_store == "cluster" else None,
        settings.incident_index,
        settings.notify_index if settings.notify_url else None,
        partitioning=settings.partitioning,
        ilm_policy=policy if settings.retention_by == "ilm" else None,
    )


def partitioned_bases(settings: Settings) -> list[str]:
    """The result indices cut into partitions and kept for RETENTION_DAYS."""
    return [settings.anomaly_index, settings.incident_index, settings.dead_letter_index]


def notifier_config(settings: Settings):  # -> NotifierConfig
    from sidecar.app.notifier import NotifierConfig

    return NotifierConfig(
        url=settings.notify_url,
        fmt=settings.notify_format,
        min_band=settings.notify_min_band,
        interval_s=settings.notify_interval_seconds,
        timeout_s=settings.notify_timeout_seconds,
        lookback_s=settings.notify_lookback_seconds,
        authorization=(
            settings.notify_authorization.get_secret_value()
            if settings.notify_authorization is not None
            else None
        ),
        link=settings.notify_link,
    )

