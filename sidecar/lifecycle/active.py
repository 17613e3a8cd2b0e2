"""What keeps detection good after day one, around the active version of each model: loading
the store's active versions, online updates from analysts' false-positive marks, and rollback.

Everything here works through a ModelStore (a directory or the cluster's model index) and
pure detectors; the cluster-specific parts (reading feedback, marking it applied) live in
sidecar/cluster/feedback.py, and gated retraining in sidecar/lifecycle/retraining.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import structlog

from sidecar.encoding.marks import MarkedWindow
from sidecar.errors import ModelError
from sidecar.models.artifacts import ModelArtifact, load_artifact, save_artifact
from sidecar.models.catalog import DetectorOptions, kind_of
from sidecar.models.fitting import TrainingSummary
from sidecar.ports import Activation, Detector, ModelStore
from sidecar.templates.keys import key_scheme_mismatch
from sidecar.workflows.diagnose import attach_workflows

__all__ = ["ActiveModels", "apply_false_positives", "rollback"]

log = structlog.get_logger("sidecar.lifecycle")

# Manifest entries every artifact writes itself; the rest (LogAnomaly's semantics, the
# workflow, ...) is model-specific and carried over to a version derived by an update.
_OWN_MANIFEST_KEYS = {
    "format_version",
    "model",
    "version",
    "created_at",
    "sidecar_version",
    "torch_version",
    "weights_sha256",
    "blobs",
    "config",
    "vocabulary",
    "training",
    "training_data",
    "parent",
    "online_update",
}


class ActiveModels:
    """The detectors of the store's active versions, reloaded when a pointer moves (a
    promotion, an online update, a rollback made by any replica or by the CLI)."""

    def __init__(
        self,
        store: ModelStore,
        names: Sequence[str],
        options: DetectorOptions,
        template_mining: str | None = None,
    ):
        self.store = store
        self.names = list(names)
        self.options = options
        # The mining mode events are keyed under here; None skips the check (tests, tools).
        self.template_mining = template_mining
        self._detectors: dict[str, Detector] = {}
        self.artifacts: dict[str, ModelArtifact] = {}
        # Versions made active that cannot score here, by model: refused once, not reloaded.
        self.refused: dict[str, str] = {}

    @property
    def detectors(self) -> list[Detector]:
        return [self._detectors[name] for name in self.names if name in self._detectors]

    def known_event_ids(self) -> frozenset[str]:
        """Every EVENTID (logged or mined) some active model was trained on."""
        return frozenset(
            key[0]
            for artifact in self.artifacts.values()
            for key in map(artifact.vocabulary.key_of, range(artifact.vocabulary.size))
            if key is not None
        )

    def versions(self) -> dict[str, str]:
        return {name: artifact.version for name, artifact in self.artifacts.items()}

    def refresh(self) -> list[str]:
        """Load every model whose active version changed; returns the names reloaded.

        A version that cannot score here (see `_check_key_scheme`) stops the process at
        start-up; made active later, it is refused with an error log and the loaded version
        keeps scoring, so a bad promotion does not halt detection."""
        changed = []
        for name in self.names:
            version = self.store.active(name)
            if version is None:
                raise ModelError(f"no active {name} model in {self.store}; run `train` first")
            current = self.artifacts.get(name)
            if current is not None and version in (current.version, self.refused.get(name)):
                continue
            artifact = load_artifact(self.store, name, version)
            try:
                self._check_key_scheme(artifact)
            except ModelError as exc:
                if current is None:
                    raise
                self.refused[name] = version
                log.error(
                    "model_refused",
                    model=name,
                    version=version,
                    kept=current.version,
                    error=str(exc),
                )
                continue
            detector = kind_of(name).detector(artifact, self.options)
            attach_workflows(detector, artifact.manifest)  # kinds that do not load them
            self._detectors[name] = detector
            self.artifacts[name] = artifact
            changed.append(name)
            log.info(
                "model_loaded",
                model=name,
                version=version,
                previous=current.version if current else None,
                keys=artifact.vocabulary.known,
            )
        return changed

    def _check_key_scheme(self, artifact: ModelArtifact) -> None:
        if self.template_mining is None:
            return
        vocabulary = artifact.vocabulary
        event_ids = [
            key[0]
            for key in (vocabulary.key_of(i) for i in range(vocabulary.size))
            if key is not None
        ]
        mining = (artifact.manifest.get("training_data") or {}).get("template_mining")  # type: ignore[union-attr]
        trained_mode = mining.get("mode") if isinstance(mining, dict) else None
        miner_format = mining.get("miner_format") if isinstance(mining, dict) else None
        why = key_scheme_mismatch(event_ids, trained_mode, self.template_mining, miner_format)
        if why is not None:
            raise ModelError(f"{artifact.name} {artifact.version} cannot score here: {why}")


# -- online update ---------------------------------------------------------------------------


def apply_false_positives(
    store: ModelStore,
    artifact: ModelArtifact,
    marked: Sequence[MarkedWindow],
    options: DetectorOptions,
) -> ModelArtifact | None:
    """A new active version updated on `marked`, or None when this kind has no online
    update (its false positives are learned at the next retraining instead)."""
    kind = kind_of(artifact.name)
    if kind.update is None or not marked:
        return None
    updated = kind.update(artifact, list(marked), options)
    carried = {k: v for k, v in artifact.manifest.items() if k not in _OWN_MANIFEST_KEYS}
    report = {
        **updated.report,
        "false_positives": len(marked),
        "documents": [m.document_id for m in marked[:1_000]],
    }
    summary = TrainingSummary(epochs_run=int(updated.report.get("epochs", 0)))  # type: ignore[arg-type]
    new = save_artifact(
        store,
        artifact.name,
        updated.net,
        updated.vocabulary,
        artifact.config,
        summary,
        dict(artifact.manifest.get("training_data") or {}),  # type: ignore[arg-type]
        {
            **carried,
            **updated.manifest_changes,
            "parent": artifact.version,
            "online_update": report,
        },
        tensors=updated.tensors or None,
        activate=f"online update: {len(marked)} false positive(s) marked on {artifact.version}",
    )
    log.info(
        "online_update",
        model=artifact.name,
        parent=artifact.version,
        version=new.version,
        **updated.report,
    )
    return new


# -- rollback --------------------------------------------------------------------------------


def rollback(store: ModelStore, name: str, to: str | None = None) -> Activation:
    """Make `to` active again, or by default the version that was active before the current
    one, skipping versions that were themselves rolled back (so rolling back twice goes two
    versions back, not back and forth)."""
    current = store.active(name)
    if current is None:
        raise ModelError(f"no active {name} model to roll back")
    if to is None:
        history = store.history(name)
        rolled_back = {a.previous for a in history if a.reason.startswith("rollback")}
        earlier = [
            a.version
            for a in reversed(history)
            if a.version != current and a.version not in rolled_back
        ]
        if not earlier:
            raise ModelError(f"{name} {current} has no earlier version to roll back to")
        to = earlier[0]
    if to == current:
        raise ModelError(f"{name} {to} is already the active version")
    activation = store.activate(name, to, f"rollback from {current}")
    store.annotate(name, current, {"status": "rolled_back", "rolled_back_at": activation.at})
    return activation
