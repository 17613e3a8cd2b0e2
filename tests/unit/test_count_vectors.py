"""Count-vector detectors (PCA with the Q-statistic, the count autoencoder): each event is
judged by how often each key occurs in the h events ending at it."""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
import pytest

from sidecar.app.wiring import load_settings, model_config
from sidecar.encoding.vocabulary import PAD, UNKNOWN
from sidecar.errors import ConfigError
from sidecar.lifecycle.training import train_model
from sidecar.models.artifacts import ModelArtifact, load_artifact
from sidecar.models.catalog import DetectorOptions, kind_of
from sidecar.models.countvector.autoencoder import AutoencoderConfig
from sidecar.models.countvector.detector import REASON_COUNT_VECTOR, CountVectorDetector
from sidecar.models.countvector.pca import PCAConfig, fit_pca, q_statistic
from sidecar.models.countvector.vectors import key_counts, training_count_vectors, weighted_quantile
from sidecar.models.nextkey.detector import REASON_UNSEEN_KEY
from sidecar.types import HostSequence, LogEvent

H = 8
LOGON, PRIVILEGES, ACCESS, LOGOFF = "4624", "4672", "4663", "4634"


def session(rng: random.Random) -> list[str]:
    """A logon, its special privileges, one to three object accesses, a logoff."""
    return [LOGON, PRIVILEGES] + [ACCESS] * rng.randint(1, 3) + [LOGOFF]


def stream(host: str, seed: int, sessions: int = 60) -> list[LogEvent]:
    rng = random.Random(seed)
    keys = [k for _ in range(sessions) for k in session(rng)]
    return [LogEvent(host, 1_000 + i, f"{host}-{i}", k, "info") for i, k in enumerate(keys)]


def incident(keys: list[str], tag: str) -> list[LogEvent]:
    return [LogEvent("n", 90_000 + i, f"{tag}-{i}", k, "info") for i, k in enumerate(keys)]


TRAIN = {f"h{i}": stream(f"h{i}", i) for i in range(4)}
# Same process, another seed: windows like the training ones, in another order.
NORMAL = stream("n", 99)
CONTEXT, NEW = tuple(NORMAL[:20]), NORMAL[20:]
CONFIGS = {
    # Few keys, so the normal subspace must leave room for a residual one.
    "pca": PCAConfig(window_size=H, variance=0.9, alpha=0.001, tfidf=False),
    "autoencoder": AutoencoderConfig(
        window_size=H, epochs=60, patience=60, batch_size=8, quantile=1.0
    ),
}


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def trained(request: pytest.FixtureRequest, tmp_path_factory) -> tuple[ModelArtifact, Path]:
    store = tmp_path_factory.mktemp("models")
    name = request.param
    return train_model(name, TRAIN, CONFIGS[name], store, {}), store


def detector(artifact: ModelArtifact) -> CountVectorDetector:
    built = kind_of(artifact.name).detector(artifact, DetectorOptions())
    assert isinstance(built, CountVectorDetector)
    return built


def flagged(det: CountVectorDetector, events: list[LogEvent], context=CONTEXT) -> list[str]:
    batch = det.detect([HostSequence("n", context, events)])
    assert batch.scored == len(events)
    return [d.event.log_uuid for d in batch.detections]


# --- the Q-statistic -------------------------------------------------------------------------


def test_q_statistic_matches_jackson_mudholkar_worked_by_hand() -> None:
    # Residual eigenvalues 1 and 0.25, alpha 0.05 (c = 1.6448536):
    #   phi = 1.25, 1.0625, 1.015625;  h0 = 1 - 2(1.25)(1.015625) / (3 * 1.0625^2) = 0.2502884
    #   bracket = c sqrt(2 * 1.0625 * h0^2) / 1.25 + 1 + 1.0625 h0 (h0 - 1) / 1.25^2
    #           = 0.4801062 + 1 - 0.1275980 = 1.3525083
    #   Q = 1.25 * 1.3525083^(1 / h0) = 4.1770087
    assert q_statistic(np.array([1.0, 0.25]), 0.05) == pytest.approx(4.1770087, rel=1e-6)


def test_pca_on_a_tiny_matrix_keeps_the_top_component_and_thresholds_the_rest() -> None:
    # The 8 corners of a box with half-sides 2, 1, 0.5: covariance diag(4, 1, 0.25). 4 / 5.25
    # of the variance lies on the first axis, so asking for 70% keeps one component and leaves
    # eigenvalues 1 and 0.25 to the residual subspace: the Q of the test above.
    corners = np.array([[a, b, c] for a in (-2, 2) for b in (-1, 1) for c in (-0.5, 0.5)])
    fit = fit_pca(corners, np.ones(8), variance=0.7, alpha=0.05)
    assert fit.eigenvalues == pytest.approx([4.0, 1.0, 0.25])
    assert fit.components.shape == (3, 1)
    assert abs(fit.components[0, 0]) == pytest.approx(1.0)
    assert fit.explained == pytest.approx(4 / 5.25)
    assert fit.threshold == pytest.approx(4.1770087, rel=1e-6)


def test_counting_a_window_twice_weighs_it_like_two_windows() -> None:
    rows = np.array([[0.0, 2.0], [1.0, 0.0], [3.0, 1.0]])
    once = fit_pca(np.concatenate([rows, rows[:1]]), np.ones(4), 0.6, 0.01)
    weighted = fit_pca(rows, np.array([2, 1, 1]), 0.6, 0.01)
    assert weighted.eigenvalues == pytest.approx(once.eigenvalues)
    assert weighted.threshold == pytest.approx(once.threshold)


def test_without_a_positive_h0_the_bound_is_boxs_scaled_chi_square() -> None:
    # One large and many small eigenvalues: h0 = 1 - 2(11)(1.1) / (3 * 2^2) < 0, where the
    # power transform does not exist. Box's g * chi2_nu with the Wilson-Hilferty quantile is
    # phi1 (1 - 2 phi2 / (9 phi1^2) + c sqrt(2 phi2) / (3 phi1))^3.
    eigenvalues = np.array([1.0] + [0.1] * 100)
    phi1, phi2, c = 11.0, 2.0, 3.090232306167813  # c: the 0.999 normal quantile
    box = phi1 * (1 - 2 * phi2 / (9 * phi1**2) + c * math.sqrt(2 * phi2) / (3 * phi1)) ** 3
    assert q_statistic(eigenvalues, 0.001) == pytest.approx(box, rel=1e-9)


# --- count vectors ---------------------------------------------------------------------------


def test_a_count_vector_covers_the_h_events_ending_at_the_event() -> None:
    keys = np.array([2, 3, 3, 4, 2])
    data = training_count_vectors([keys], 3, vocab_size=5)
    assert data.total == len(keys)
    # The last event's window is (3, 4, 2): one of each, no padding.
    assert [0, 0, 1, 1, 1] in data.vectors.tolist()
    # The first event's window is two padding slots and the event itself.
    assert [2, 0, 1, 0, 0] in data.vectors.tolist()


def test_an_unknown_key_adds_nothing_to_later_windows_counts() -> None:
    counts = key_counts(np.array([[PAD, UNKNOWN, 2, 2]]), vocab_size=3)
    assert counts.tolist() == [[1.0, 0.0, 2.0]]


def test_the_weighted_quantile_counts_each_vector_as_often_as_it_occurred() -> None:
    errors, counts = np.array([3.0, 1.0, 2.0]), np.array([98, 1, 1])
    assert weighted_quantile(errors, counts, 0.01) == 1.0
    assert weighted_quantile(errors, counts, 0.5) == 3.0
    assert weighted_quantile(errors, counts, 1.0) == 3.0


# --- detectors -------------------------------------------------------------------------------


def test_training_like_windows_are_not_flagged(trained) -> None:
    assert flagged(detector(trained[0]), NEW) == []


def test_privileges_without_a_logon_leave_the_normal_subspace(trained) -> None:
    # Logon and privileges always come together in training; here privileges come alone.
    artifact, _ = trained
    events = incident([PRIVILEGES, ACCESS, LOGOFF] * 3, "priv")
    batch = detector(artifact).detect([HostSequence("n", CONTEXT, events)])
    assert batch.detections, f"{artifact.name} missed privileges without a logon"
    first = batch.detections[0]
    assert first.reason == REASON_COUNT_VECTOR
    assert first.score > 1.0
    assert (first.observed_rank, first.top_g, first.window_size) == (0, 0, H)
    # The key whose count is most out of line is the missing logon.
    assert first.expected[0].event_id == LOGON
    assert sum(e.probability for e in first.expected) <= 1.0 + 1e-9


# A burst of the busiest key lies inside PCA's normal subspace (its count is what the first
# component measures); reconstructing it is what the autoencoder cannot do.
@pytest.mark.parametrize("trained", ["autoencoder"], indirect=True)
def test_the_autoencoder_flags_a_burst_of_a_familiar_key(trained) -> None:
    artifact, _ = trained
    events = incident([LOGON, PRIVILEGES] + [ACCESS] * 8 + [LOGOFF], "burst")
    batch = detector(artifact).detect([HostSequence("n", CONTEXT, events)])
    burst = {d.event.log_uuid: d for d in batch.detections}
    assert "burst-9" in burst  # eight accesses in a row: more than any training window holds
    assert burst["burst-9"].expected[0].event_id == ACCESS
    assert "burst-0" not in burst  # the logon that opens it is still ordinary


def test_an_unseen_key_is_flagged_as_unseen(trained) -> None:
    events = incident([LOGON, PRIVILEGES, "1102", ACCESS], "audit")
    batch = detector(trained[0]).detect([HostSequence("n", CONTEXT, events)])
    unseen = [d for d in batch.detections if d.event.event_id == "1102"]
    assert len(unseen) == 1
    assert unseen[0].reason == REASON_UNSEEN_KEY
    assert unseen[0].score >= 1.0
    assert unseen[0].observed_rank == 0


def test_windows_span_cycles_through_the_saved_context(trained) -> None:
    det = detector(trained[0])
    events = NEW[:30] + incident([PRIVILEGES, ACCESS, LOGOFF] * 3, "priv")
    whole = det.detect([HostSequence("n", CONTEXT, events)])
    first = det.detect([HostSequence("n", CONTEXT, events[:31])])
    second = det.detect([HostSequence("n", tuple(CONTEXT + tuple(events[:31])), events[31:])])
    split = first.detections + second.detections
    assert whole.detections, "nothing to compare"
    assert [d.event.log_uuid for d in whole.detections] == [d.event.log_uuid for d in split]
    # Equal up to float rounding: the network sees the windows in batches of other sizes.
    assert [d.score for d in whole.detections] == pytest.approx([d.score for d in split])
    # The window shown with a detection: the h-1 events before it (the event completes it).
    assert [e.log_uuid for e in whole.detections[0].window] == [
        e.log_uuid for e in events[: events.index(whole.detections[0].event)][-(H - 1) :]
    ]


def test_an_artifact_round_trips_to_the_same_verdicts(trained) -> None:
    artifact, store = trained
    loaded = load_artifact(store, artifact.name)
    events = NEW[:12] + incident([PRIVILEGES, ACCESS, LOGOFF] * 3 + ["1102"], "mixed")
    before = detector(artifact).detect([HostSequence("n", CONTEXT, events)])
    after = detector(loaded).detect([HostSequence("n", CONTEXT, events)])
    assert before.detections, "nothing to compare"
    assert after.detections == before.detections


# --- configuration ---------------------------------------------------------------------------


def test_settings_select_the_count_models_and_their_training_choices(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SIDECAR_MODELS", "deeplog,pca,autoencoder")
    monkeypatch.setenv("SIDECAR_PCA_VARIANCE", "0.9")
    monkeypatch.setenv("SIDECAR_AUTOENCODER_QUANTILE", "0.995")
    settings = load_settings()
    assert settings.models == ["deeplog", "pca", "autoencoder"]
    pca = model_config("pca", settings)
    assert isinstance(pca, PCAConfig)
    assert (pca.variance, pca.window_size) == (0.9, settings.window_size)
    autoencoder = model_config("autoencoder", settings)
    assert isinstance(autoencoder, AutoencoderConfig)
    assert autoencoder.quantile == 0.995
    assert PCAConfig.from_json(pca.to_json()) == pca


def test_an_alpha_without_meaning_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIDECAR_PCA_ALPHA", "0.7")
    with pytest.raises(ConfigError, match="SIDECAR_PCA_ALPHA"):
        load_settings()
