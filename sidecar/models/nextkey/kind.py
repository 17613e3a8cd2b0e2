"""DeepLog and LogAnomaly as catalog entries: training, rebuilding and detector wiring."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from sidecar.encoding.marks import MarkedWindow
from sidecar.encoding.semantics import fit_semantic_space, mask_message, most_common_templates
from sidecar.encoding.vocabulary import RESERVED, UNKNOWN, Vocabulary
from sidecar.encoding.windows import TrainingPairs, training_pairs
from sidecar.models.base import (
    DetectorOptions,
    EpochHook,
    ModelKind,
    TrainedNet,
    TrainingChoices,
    UpdatedModel,
)
from sidecar.models.calibration import holdout_mask
from sidecar.models.nextkey.build import build_detector, template_matcher
from sidecar.models.nextkey.calibration import calibrate_next_key, key_log_frequency
from sidecar.models.nextkey.core import count_bursts, train_next_key_model
from sidecar.models.nextkey.deeplog import DeepLogConfig, DeepLogNet
from sidecar.models.nextkey.loganomaly import (
    LogAnomalyConfig,
    LogAnomalyNet,
    count_limits,
    key_text,
)
from sidecar.models.nextkey.online import marked_pairs, online_update
from sidecar.models.replay import replay_set, replay_with_marks
from sidecar.types import LogEvent

__all__ = ["DEEPLOG", "LOGANOMALY", "replay_pairs"]


def _train(net, vocabulary: Vocabulary, streams, config, on_epoch) -> TrainedNet:
    h = config.window_size
    encoded = {host: vocabulary.encode(stream) for host, stream in streams.items()}
    held = {host: holdout_mask(host, len(keys)) for host, keys in encoded.items()}
    if all(mask.all() for mask in held.values()):
        # Too little data for a held-out slice (one short host): calibrate on what it fits.
        held = {host: np.zeros(len(mask), dtype=bool) for host, mask in held.items()}
    fitting = [~held[host] for host in encoded]
    pairs = training_pairs(encoded.values(), h, fitting)
    impossible_of = None
    if isinstance(net, LogAnomalyNet):
        # The count invariant covers the held-out slice too: a count seen anywhere in the
        # training range is possible.
        every = training_pairs(encoded.values(), h)
        limits = count_limits(every.windows, every.targets, vocabulary.size)
        with torch.no_grad():
            net.count_limits.copy_(torch.from_numpy(limits))

        def impossible_of(windows, targets):
            return count_bursts(windows, targets, limits) & (targets != UNKNOWN)

    summary = train_next_key_model(net, pairs, config, on_epoch=on_epoch)
    net.eval()
    frequency = key_log_frequency(pairs.targets, pairs.counts, vocabulary.size)
    if not any(mask.any() for mask in held.values()):
        held = {host: np.ones(len(keys), dtype=bool) for host, keys in encoded.items()}
    calibration = calibrate_next_key(net, encoded, held, streams, h, frequency, impossible_of)
    replay = replay_set({"windows": pairs.windows, "targets": pairs.targets}, pairs.counts)
    return TrainedNet(
        net, summary, {"calibration": calibration.to_json()}, tensors={"replay": replay}
    )


def replay_pairs(artifact) -> TrainingPairs | None:
    replay = (artifact.tensors or {}).get("replay")
    if replay is None:
        return None
    return TrainingPairs(
        replay["windows"].numpy(), replay["targets"].numpy(), replay["counts"].numpy()
    )


def _fit_deeplog(
    streams: Mapping[str, list[LogEvent]],
    vocabulary: Vocabulary,
    config: DeepLogConfig,
    on_epoch: EpochHook | None,
) -> TrainedNet:
    torch.manual_seed(config.seed)
    net = DeepLogNet.from_config(vocabulary.size, config)
    return _train(net, vocabulary, streams, config, on_epoch)


def _fit_loganomaly(
    streams: Mapping[str, list[LogEvent]],
    vocabulary: Vocabulary,
    config: LogAnomalyConfig,
    on_epoch: EpochHook | None,
) -> TrainedNet:
    by_event_id = most_common_templates(
        (e.event_id, e.message) for stream in streams.values() for e in stream
    )
    key_templates = [""] * vocabulary.size
    for key_id in range(RESERVED, vocabulary.size):
        event_id, severity = vocabulary.key_of(key_id)  # type: ignore[misc]
        key_templates[key_id] = key_text(by_event_id.get(event_id, ""), severity)
    space = fit_semantic_space(key_templates[RESERVED:], dim=config.semantic_dim)
    torch.manual_seed(config.seed)
    net = LogAnomalyNet.from_config(vocabulary.size, config, len(space.words))
    with torch.no_grad():
        net.key_vectors[RESERVED:] = torch.from_numpy(space.vectors(key_templates[RESERVED:]))
        net.word_vectors.copy_(torch.from_numpy(space.word_vectors))
    trained = _train(net, vocabulary, streams, config, on_epoch)
    semantics = {**space.to_json(), "key_templates": key_templates}
    return TrainedNet(
        trained.net, trained.summary, {**trained.extra, "semantics": semantics}, trained.tensors
    )


def _empty_loganomaly(vocabulary: Vocabulary, config: LogAnomalyConfig, manifest) -> LogAnomalyNet:
    words = len(manifest["semantics"]["words"])  # type: ignore[index]
    return LogAnomalyNet.from_config(vocabulary.size, config, words)


def _detector(artifact, options: DetectorOptions):
    return build_detector(
        artifact,
        options.top_g,
        options.device,
        options.similarity_threshold,
        options.min_probability,
        verdict_rule=options.verdict_rule,
        alert_budget=options.alert_budget,
        models_sharing=options.models_sharing,
    )


def _update(artifact, marked: list[MarkedWindow], options: DetectorOptions) -> UpdatedModel:
    config = artifact.config
    top_g = options.top_g if options.top_g is not None else config.top_g
    changes: dict[str, object] = {}
    key_vectors_for = None
    texts: dict[tuple[str, str], str] = {}
    if isinstance(artifact.net, LogAnomalyNet):
        space = template_matcher(artifact).space
        texts = {m.observed: key_text(mask_message(m.message or ""), m.observed[1]) for m in marked}

        def key_vectors_for(keys):
            return space.vectors([texts[k] for k in keys])

    update = online_update(
        artifact.vocabulary,
        artifact.net,
        config,
        marked,
        replay_pairs(artifact),
        top_g=top_g,
        min_probability=options.min_probability,
        key_vectors_for=key_vectors_for,
    )
    if texts and update.new_keys:
        semantics = dict(artifact.manifest["semantics"])
        added = [
            update.vocabulary.key_of(i)
            for i in range(artifact.vocabulary.size, update.vocabulary.size)
        ]
        semantics["key_templates"] = [*semantics["key_templates"], *(texts[k] for k in added)]
        changes["semantics"] = semantics
    h = config.window_size
    replay = replay_pairs(artifact) or TrainingPairs(
        np.empty((0, h), np.int64), np.empty(0, np.int64), np.empty(0, np.int64)
    )
    windows, targets = marked_pairs(marked, update.vocabulary, h)
    return UpdatedModel(
        update.vocabulary,
        update.net,
        update.to_json(),
        changes,
        {
            "replay": replay_with_marks(
                {"windows": replay.windows, "targets": replay.targets},
                replay.counts,
                {"windows": windows, "targets": targets},
            )
        },
    )


def _next_key_choices(choices: TrainingChoices) -> dict[str, object]:
    return {
        "window_size": choices.window_size,
        "top_g": choices.top_g,
        "epochs": choices.epochs,
        "batch_size": choices.batch_size,
        "seed": choices.seed,
    }


DEEPLOG = ModelKind(
    name="deeplog",
    config_type=DeepLogConfig,
    configure=lambda choices: DeepLogConfig(**_next_key_choices(choices)),  # type: ignore[arg-type]
    fit=_fit_deeplog,
    empty_net=lambda vocabulary, config, _manifest: DeepLogNet.from_config(vocabulary.size, config),
    detector=_detector,
    update=_update,
)
LOGANOMALY = ModelKind(
    name="loganomaly",
    config_type=LogAnomalyConfig,
    configure=lambda choices: LogAnomalyConfig(
        **_next_key_choices(choices),  # type: ignore[arg-type]
        similarity_threshold=choices.similarity_threshold,
    ),
    fit=_fit_loganomaly,
    empty_net=_empty_loganomaly,
    detector=_detector,
    update=_update,
)
