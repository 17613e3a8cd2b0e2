"""Configuration from SIDECAR_* environment variables.

Every setting the sidecar reads lives here, so the Helm chart, the README and this class can be
kept in step. Values are validated once at start; a bad value stops the program with one line
naming the variable (see `describe_validation_error`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AnyHttpUrl, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from sidecar.app.setting_checks import (
    ENV_PREFIX,
    check_partitions,
    describe_validation_error,
    url_without_userinfo,
)
from sidecar.cluster.partitions import Partitioning
from sidecar.encoding.events import FieldNames
from sidecar.encoding.hostgroups import check_pattern
from sidecar.pipeline.sharding import Shard, ordinal_from_hostname

__all__ = [
    "Settings",
    "FieldNames",
    "KNOWN_MODELS",
    "describe_validation_error",
    "ENV_PREFIX",
    "url_without_userinfo",
]

KNOWN_MODELS = (
    "deeplog",
    "loganomaly",
    "parameters",
    "pca",
    "autoencoder",
    "volume",
    "periodic",
    "sessions",
    "content",
)

CommaList = Annotated[list[str], NoDecode]


def _split_commas(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, case_sensitive=False, extra="ignore", frozen=True
    )

    # --- cluster connection -------------------------------------------------------------
    cluster_urls: CommaList = Field(default_factory=lambda: ["http://127.0.0.1:9200"])
    username: str | None = None
    password: SecretStr | None = None
    api_key: SecretStr | None = None
    # Amazon OpenSearch Service: sign every request with AWS SigV4 (credentials from the
    # standard AWS chain: environment, IRSA web identity, instance profile), instead of
    # basic auth or an API key. `aoss` for OpenSearch Serverless.
    aws_sigv4: bool = False
    aws_region: str | None = None
    aws_service: Literal["es", "aoss"] = "es"
    verify_certs: bool = True
    ca_bundle: Path | None = None
    request_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    # Retries of one request after a connection error or timeout; with the timeout this bounds
    # how long a request can take: timeout × (retries + 1).
    request_max_retries: int = Field(default=3, ge=0, le=10)
    # gzip on the wire: worth it over a slow link, a CPU cost next to the cluster.
    http_compress: bool = False

    # --- what to read -------------------------------------------------------------------
    watched_indices: CommaList = Field(default_factory=lambda: ["logs-*"])
    field_host: str = Field(default="HOSTNAME", min_length=1)
    field_timestamp: str = Field(default="_zl_timestamp", min_length=1)
    field_event_id: str = Field(default="EVENTID", min_length=1)
    field_severity: str = Field(default="SEVERITY", min_length=1)
    field_log_uuid: str = Field(default="log_uuid", min_length=1)
    field_message: str = Field(default="MESSAGE", min_length=1)

    # --- schedule -----------------------------------------------------------------------
    interval_seconds: float = Field(default=60.0, gt=0, le=86_400)
    read_lag_seconds: float = Field(default=30.0, ge=0, le=86_400)
    initial_lookback_seconds: float = Field(default=3_600.0, gt=0)
    page_size: int = Field(default=2_000, ge=10, le=10_000)
    batch_events: int = Field(default=50_000, ge=100)
    # Documents that reach the cluster up to this long after the read lag, with timestamps the
    # host's cursor has already passed, are still scored in their place (the host is re-read
    # from the first late bucket). 0 turns the check off. See docs/reliability.md.
    lateness_seconds: float = Field(default=600.0, ge=0, le=7 * 86_400)
    # Timestamps further than this ahead of now are counted as bad input, not read (they would
    # otherwise move a cursor past every event still to come).
    future_tolerance_seconds: float = Field(default=300.0, ge=0, le=86_400)
    # DNS and NetBIOS names are case-insensitive: GOKUL-L3C and gokul-l3c are one machine.
    host_case_sensitive: bool = False
    # Logs without EVENTID: key an event by the template mined from its MESSAGE ("T-<id>").
    # auto: only events whose EVENTID is missing or empty; always: every event (EVENTID
    # ignored); off: never. See docs/template-mining.md.
    template_mining: Literal["off", "auto", "always"] = "auto"
    # At most this many templates (statement variants) are kept; past it, messages of new
    # statements share one overflow key, counted in sidecar_template_overflow_total and logged
    # (template_miner_full). Bounds the miner's memory and its saved state.
    template_max_clusters: int = Field(default=50_000, ge=100, le=5_000_000)

    # --- replicas -----------------------------------------------------------------------
    # N replicas split the hosts: replica i scores the hosts with hash(host) mod N == i.
    # Without SHARD_INDEX, a StatefulSet pod's ordinal (the number ending HOSTNAME) is used.
    shard_count: int = Field(default=1, ge=1, le=1_024)
    shard_index: int | None = Field(default=None, ge=0)

    # --- where results go ---------------------------------------------------------------
    anomaly_index: str = Field(default="log-anomalies", min_length=1)
    state_index: str = Field(default="log-anomaly-sidecar-state", min_length=1)
    # Anomaly documents the cluster refuses for good (a 400 such as a mapping conflict) are kept
    # here with the reason, so a cursor can move on without losing them.
    dead_letter_index: str = Field(default="log-anomaly-sidecar-dead-letters", min_length=1)
    # Anomaly documents per bulk request: smaller for a small or busy cluster.
    bulk_chunk_docs: int = Field(default=1_000, ge=1, le=10_000)
    # After a failed cycle the next one waits interval × 2^(failures-1), with jitter, up to this.
    max_backoff_seconds: float = Field(default=600.0, gt=0, le=86_400)
    # Where model versions live: "cluster" keeps them in SIDECAR_MODEL_INDEX (pods stay
    # stateless), "file" in SIDECAR_MODEL_DIR (a PVC, or the embedded mode).
    model_store: Literal["file", "cluster"] = "file"
    model_index: str = Field(default="log-anomaly-sidecar-models", min_length=1)
    model_dir: Path = Path("models")
    # Training keeps the events it reads on local disk, one host in memory at a time
    # (sidecar/files/spill.py); unset: the system's temporary directory (TMPDIR).
    training_spill_dir: Path | None = None
    message_excerpt_chars: int = Field(default=512, ge=16, le=32_766)
    # `run` installs its index templates at start. Turn off where the sidecar's role may not
    # manage templates (least privilege) and a separate `setup` step does it instead.
    manage_templates: bool = True

    # --- detection ----------------------------------------------------------------------
    # DeepLog for orders, LogAnomaly for counts too (a burst of familiar events, such as thirty
    # failed logons, breaks its count invariant while every single transition looks normal).
    models: CommaList = Field(default_factory=lambda: ["deeplog", "volume", "periodic", "sessions"])
    window_size: int = Field(default=10, ge=1, le=1_000)
    # How an event becomes a verdict. calibrated: its p-value against held-out normal data
    # (computed when the model was trained) is below what ALERT_BUDGET allows; top_g: the
    # papers' rule (the observed key is not among the g most likely). See README "Verdicts".
    verdict_rule: Literal["calibrated", "top_g"] = "calibrated"
    # The false-alarm budget: expected false incidents per host per day, all models together.
    # Thresholds follow from it (no retraining needed to change it).
    alert_budget: float = Field(default=0.05, gt=0, le=1_000)
    top_g: int = Field(default=9, ge=1)
    # Also flag an event the model gives less than this probability, even inside the top g:
    # with a small vocabulary the top g reaches down to transitions never seen in training.
    # 0 keeps the papers' pure top-g rule.
    min_probability: float = Field(default=0.0, ge=0.0, lt=1.0)
    # LogAnomaly: an unseen key whose template is at least this similar (cosine) to a known
    # key's template is read as that key.
    template_similarity: float = Field(default=0.9, gt=0, le=1)
    # The parameter model (DeepLog's timing and parameter values): flag an event whose
    # prediction error lies above this one-sided quantile of the error on normal events.
    parameter_confidence: float = Field(default=0.995, ge=0.5, lt=1)
    # PCA on window count vectors (docs/hdfs-benchmark.md): the normal subspace keeps this
    # fraction of the training variance, and a window is anomalous when its squared prediction
    # error exceeds the Q-statistic at significance PCA_ALPHA. Both are read when training; the
    # threshold is saved with the model.
    pca_variance: float = Field(default=0.99, gt=0, lt=1)
    pca_alpha: float = Field(default=0.001, gt=0, lt=0.5)
    # The count autoencoder: its threshold is this quantile of the reconstruction errors of the
    # training windows (1 = the largest). Read when training.
    autoencoder_quantile: float = Field(default=0.999, gt=0.5, le=1)

    # --- incidents ----------------------------------------------------------------------
    # Anomalies of one host less than this apart belong to one incident.
    incident_gap_seconds: float = Field(default=600.0, gt=0, le=7 * 86_400)
    # Per-event anomaly documents kept per incident and model (the rest is counted on the
    # incident): a retry storm of 600 lines is one incident, not 600 documents.
    incident_event_docs: int = Field(default=10, ge=1, le=10_000)
    incident_index: str = Field(default="log-anomaly-incidents", min_length=1)
    # Notifications (sidecar/app/notifier.py): each incident of at least NOTIFY_MIN_BAND, once,
    # to an Alertmanager v2 endpoint (.../api/v2/alerts) or a generic JSON webhook; off unset.
    notify_url: str = ""
    notify_format: Literal["alertmanager", "webhook"] = "alertmanager"
    notify_min_band: Literal["medium", "high", "critical"] = "high"
    notify_interval_seconds: float = Field(default=15.0, gt=0, le=86_400)
    notify_timeout_seconds: float = Field(default=10.0, gt=0, le=600)
    # Incidents updated this long before the start are still sent if no record says they were.
    notify_lookback_seconds: float = Field(default=86_400.0, ge=0, le=30 * 86_400)
    # An Authorization header value (e.g. "Bearer ..."); a secret, never logged.
    notify_authorization: SecretStr | None = None
    # Where a person opens the incident, "{incident_id}" replaced (e.g. a Dashboards URL).
    notify_link: str = ""
    notify_index: str = Field(default="log-anomaly-sidecar-notifications", min_length=1)

    # --- retention ----------------------------------------------------------------------
    # Anomaly, incident and dead-letter indices are cut by the event time of what they hold:
    # "month" writes log-anomalies-2026.12, "day" log-anomalies-2026.12.01, "none" one index as
    # before. Readers, feedback and Dashboards use "log-anomalies*". See README "Retention".
    result_partition: Literal["none", "day", "month"] = "month"
    # Partitions whose every event is older than this many days are dropped, and results of
    # events older than this are counted (sidecar_results_expired_total), never written.
    # 0 keeps everything.
    retention_days: int = Field(default=0, ge=0, le=36_500)
    # Who drops old partitions: the sidecar itself (every engine, no plugin), or an ISM
    # (OpenSearch) / ILM (Elasticsearch) policy that `setup` installs.
    retention_by: Literal["sidecar", "ism", "ilm"] = "sidecar"

    # --- training -----------------------------------------------------------------------
    train_days: float = Field(default=7.0, gt=0)
    train_epochs: int = Field(default=100, ge=1, le=10_000)
    train_batch_size: int = Field(default=128, ge=1, le=65_536)
    train_seed: int = 42
    # Scheduled retraining on the last SIDECAR_TRAIN_DAYS (0 turns it off). The newest
    # RETRAIN_HOLDOUT_FRACTION of the window is held out: the candidate trains on the rest and
    # replaces the active model only if its false-positive rate on the held-out slice is not
    # higher (by more than RETRAIN_FPR_TOLERANCE, absolute) and it flags no smaller share of
    # the events analysts confirmed as incidents (feedback.verdict true_positive) than the
    # active one (less RETRAIN_RECALL_TOLERANCE, absolute). See docs/model-lifecycle.md.
    retrain_interval_seconds: float = Field(default=0.0, ge=0, le=365 * 86_400)
    retrain_holdout_fraction: float = Field(default=0.2, gt=0, lt=1)
    retrain_fpr_tolerance: float = Field(default=0.0, ge=0, le=1)
    retrain_recall_tolerance: float = Field(default=0.0, ge=0, le=1)
    # Learn analysts' false-positive marks (feedback.verdict on anomaly documents) before each
    # cycle, as a new model version (DeepLog's online update).
    online_update: bool = True
    # Hosts sharing a normal workflow (docs/workflow.md): by default the host name without its
    # trailing number (web-01, web-02 -> web); a regex whose one capture group names the group
    # overrides that (a host it does not match is its own group). Applied when training.
    host_group_pattern: str = ""

    # --- runtime ------------------------------------------------------------------------
    # /healthz, /readyz and /metrics while `run` is scheduled; port 0 turns the server off.
    http_host: str = "0.0.0.0"
    http_port: int = Field(default=8080, ge=0, le=65_535)
    # /readyz fails after this many failed cycles in a row.
    ready_max_failed_cycles: int = Field(default=3, ge=0)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["auto", "json", "console"] = "auto"
    torch_threads: int = Field(default=0, ge=0, le=256)
    device: Literal["auto", "cpu", "cuda"] = "auto"

    _split = field_validator("cluster_urls", "watched_indices", "models", mode="before")(
        _split_commas
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("cluster_urls")
    @classmethod
    def _urls_are_http(cls, urls: list[str]) -> list[str]:
        if not urls:
            raise ValueError("at least one URL is required")
        for url in urls:
            AnyHttpUrl(url)  # raises a ValueError naming the problem
        return urls

    @field_validator("watched_indices")
    @classmethod
    def _patterns_are_valid(cls, patterns: list[str]) -> list[str]:
        if not patterns:
            raise ValueError("at least one index pattern is required")
        for pattern in patterns:
            if any(ch in pattern for ch in ' "\\/<>|?#') or pattern.startswith(("_", "-")):
                raise ValueError(f"{pattern!r} is not a valid index pattern")
        return patterns

    @field_validator("models")
    @classmethod
    def _models_are_known(cls, models: list[str]) -> list[str]:
        models = [m.lower() for m in models]
        unknown = sorted(set(models) - set(KNOWN_MODELS))
        if unknown or not models:
            raise ValueError(f"unknown model(s) {unknown}; choose from {list(KNOWN_MODELS)}")
        return list(dict.fromkeys(models))

    @field_validator("notify_url")
    @classmethod
    def _notify_url_is_http(cls, url: str) -> str:
        if url and not url.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return url

    @field_validator(
        "anomaly_index",
        "state_index",
        "model_index",
        "incident_index",
        "notify_index",
        "dead_letter_index",
    )
    @classmethod
    def _index_name_is_valid(cls, name: str) -> str:
        if name != name.lower() or any(ch in name for ch in ' "\\/*?<>|,#:') or name[0] in "_-+":
            raise ValueError(f"{name!r} is not a valid index name (lowercase, no special chars)")
        return name

    @field_validator("host_group_pattern")
    @classmethod
    def _group_pattern_is_valid(cls, pattern: str) -> str:
        return check_pattern(pattern) if pattern else pattern

    @field_validator("ca_bundle")
    @classmethod
    def _ca_bundle_exists(cls, path: Path | None) -> Path | None:
        if path is not None and not path.is_file():
            raise ValueError(f"CA bundle {str(path)!r} does not exist or is not a file")
        return path

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.password is not None and not self.username:
            raise ValueError("SIDECAR_PASSWORD is set but SIDECAR_USERNAME is not")
        if self.username and self.password is None:
            raise ValueError("SIDECAR_USERNAME is set but SIDECAR_PASSWORD is not")
        if self.api_key is not None and self.username:
            raise ValueError("set either SIDECAR_API_KEY or SIDECAR_USERNAME/PASSWORD, not both")
        if self.shard_index is not None and self.shard_index >= self.shard_count:
            raise ValueError(
                f"SIDECAR_SHARD_INDEX {self.shard_index} must be below SIDECAR_SHARD_COUNT "
                f"{self.shard_count}"
            )
        if self.aws_sigv4 and (self.username or self.api_key is not None):
            raise ValueError(
                "SIDECAR_AWS_SIGV4 signs requests itself; unset SIDECAR_USERNAME/PASSWORD and "
                "SIDECAR_API_KEY"
            )
        if self.aws_sigv4 and not self.aws_region:
            raise ValueError("SIDECAR_AWS_SIGV4 needs SIDECAR_AWS_REGION (e.g. eu-west-1)")
        names = {
            "ANOMALY_INDEX": self.anomaly_index,
            "INCIDENT_INDEX": self.incident_index,
            "DEAD_LETTER_INDEX": self.dead_letter_index,
            "STATE_INDEX": self.state_index,
            "MODEL_INDEX": self.model_index,
            "NOTIFY_INDEX": self.notify_index,
        }
        check_partitions(self.result_partition, self.retention_days, self.retention_by, names)
        return self

    @property
    def partitioning(self) -> Partitioning:
        return Partitioning(self.result_partition, self.retention_days)

    @property
    def anomaly_search(self) -> str:
        """The name that reads every anomaly document: its partitions (see partitions.py)."""
        return self.partitioning.search_name(self.anomaly_index)

    @property
    def incident_search(self) -> str:
        return self.partitioning.search_name(self.incident_index)

    @property
    def dead_letter_search(self) -> str:
        return self.partitioning.search_name(self.dead_letter_index)

    @property
    def fields(self) -> FieldNames:
        return FieldNames(
            host=self.field_host,
            timestamp=self.field_timestamp,
            event_id=self.field_event_id,
            severity=self.field_severity,
            log_uuid=self.field_log_uuid,
            message=self.field_message,
        )

    def shard(self, hostname: str | None = None) -> Shard:
        """This replica's share of the hosts; raises ConfigError-worthy ValueError if unknown."""
        if self.shard_count == 1:
            return Shard(0, 1)
        index = self.shard_index
        if index is None:
            name = hostname if hostname is not None else os.environ.get("HOSTNAME", "")
            index = ordinal_from_hostname(name)
            if index is None:
                raise ValueError(
                    f"SIDECAR_SHARD_COUNT is {self.shard_count} but SIDECAR_SHARD_INDEX is unset "
                    f"and HOSTNAME {name!r} ends in no ordinal"
                )
        return Shard(index, self.shard_count)

    def redacted(self) -> dict[str, object]:
        """Settings safe to log: secrets are replaced, never echoed."""
        shown = self.model_dump(mode="json")
        shown["cluster_urls"] = [url_without_userinfo(u) for u in self.cluster_urls]
        shown["notify_url"] = url_without_userinfo(self.notify_url)
        for secret in ("password", "api_key", "notify_authorization"):
            if shown.get(secret) is not None:
                shown[secret] = "***"
        return shown
