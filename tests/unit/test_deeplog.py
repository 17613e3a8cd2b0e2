"""DeepLog: learns normal key order, flags keys outside the top g, and unseen keys always."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from sidecar.encoding.vocabulary import UNKNOWN, Vocabulary
from sidecar.encoding.windows import distinct_rows, training_pairs
from sidecar.errors import ModelError
from sidecar.models.artifacts import load_artifact, save_artifact
from sidecar.models.fitting import TrainingSummary
from sidecar.models.nextkey.build import build_detector
from sidecar.models.nextkey.core import padded_rows, score_next_keys, train_next_key_model
from sidecar.models.nextkey.deeplog import DeepLogConfig, DeepLogNet
from sidecar.models.nextkey.detector import REASON_NOT_IN_TOP_G, REASON_UNSEEN_KEY, NextKeyDetector
from sidecar.types import HostSequence, LogEvent

CYCLE = ["a", "b", "c", "d", "e", "f"]


def events(keys: list[str], host: str = "h", start: int = 0) -> list[LogEvent]:
    return [
        LogEvent(host, 1_000 + start + i, f"{host}-{start + i}", k, "ok")
        for i, k in enumerate(keys)
    ]


@pytest.fixture(scope="module")
def cyclic_detector(tmp_path_factory: pytest.TempPathFactory) -> NextKeyDetector:
    """Trained on a strict cycle a->b->...->f->a with g=1: only the true next key passes."""
    train = events(CYCLE * 40)
    vocab = Vocabulary.fit(train)
    config = DeepLogConfig(window_size=4, top_g=1, epochs=60, hidden_size=32, patience=60)
    pairs = training_pairs([vocab.encode(train)], config.window_size)
    net = DeepLogNet.from_config(vocab.size, config)
    train_next_key_model(net, pairs, config)
    artifact = save_artifact(
        tmp_path_factory.mktemp("m"), "deeplog", net, vocab, config, TrainingSummary(), {}
    )
    return build_detector(artifact)


def test_training_pairs_are_distinct_and_weighted() -> None:
    keys = np.array([2, 3, 2, 3, 2, 3, 2, 3])
    pairs = training_pairs([keys], 2)
    assert pairs.total == len(keys)
    assert len(pairs.targets) < len(keys)
    assert pairs.counts.sum() == len(keys)


def test_a_normal_stream_is_not_flagged(cyclic_detector: NextKeyDetector) -> None:
    history = events(CYCLE * 2)
    batch = cyclic_detector.detect([HostSequence("h", tuple(history), events(CYCLE * 3, start=12))])
    assert batch.scored == 18
    assert batch.detections == []


def test_an_out_of_order_key_is_flagged_with_rank_and_expected_keys(
    cyclic_detector: NextKeyDetector,
) -> None:
    history = events(CYCLE * 2)
    new = events(["a", "b", "d", "e"], start=12)  # c skipped
    batch = cyclic_detector.detect([HostSequence("h", tuple(history), new)])
    flagged = [d for d in batch.detections if d.event.log_uuid == new[2].log_uuid]
    assert len(flagged) == 1
    d = flagged[0]
    assert d.reason == REASON_NOT_IN_TOP_G
    assert d.observed_rank > 1
    assert d.expected[0].event_id == "c"
    assert [w.log_uuid for w in d.window] == [e.log_uuid for e in (history[-2:] + new[:2])]
    assert d.padded == 0


def test_an_unseen_key_is_anomalous_by_definition(cyclic_detector: NextKeyDetector) -> None:
    new = events(["a", "b", "zzz"])
    batch = cyclic_detector.detect([HostSequence("h", (), new)])
    unseen = [d for d in batch.detections if d.event.event_id == "zzz"]
    assert len(unseen) == 1
    assert unseen[0].reason == REASON_UNSEEN_KEY
    assert unseen[0].observed_rank == 0
    assert unseen[0].score == 1.0


def test_short_streams_are_scored_with_padded_windows(cyclic_detector: NextKeyDetector) -> None:
    batch = cyclic_detector.detect([HostSequence("h", (), events(["a", "zzz"]))])
    assert batch.scored == 2
    (d,) = [d for d in batch.detections if d.event.event_id == "zzz"]
    assert d.padded == 3 and len(d.window) == 1


def test_deduplicated_batch_scoring_matches_a_naive_per_window_loop(
    cyclic_detector: NextKeyDetector,
) -> None:
    rng = np.random.default_rng(0)
    windows = rng.integers(2, 8, size=(500, 4))
    windows[::3] = windows[0]  # many repeats, as in real logs
    targets = rng.integers(1, 8, size=500)
    model = cyclic_detector.model
    batched = score_next_keys(model, windows, targets, 2, batch_size=7)
    with torch.inference_mode():
        for i in range(len(targets)):
            probs = torch.softmax(
                torch.cat(
                    [
                        torch.full((1, 2), float("-inf")),
                        model(torch.from_numpy(windows[i : i + 1]))[:, 2:],
                    ],
                    dim=1,
                ),
                dim=1,
            )[0]
            if targets[i] == UNKNOWN:
                assert batched.anomalous[i]
                continue
            rank = int((probs > probs[targets[i]]).sum()) + 1
            assert batched.rank[i] == rank
            assert batched.anomalous[i] == (rank > 2)
            assert batched.probability[i] == pytest.approx(float(probs[targets[i]]), abs=1e-6)


def test_chunks_run_in_a_few_batch_shapes_whatever_the_number_of_windows() -> None:
    # Powers of two from 64 up to the batch size: 7 shapes for the default 4,096, however
    # many distinct windows a cycle brings (oneDNN keeps a kernel per shape it has seen).
    assert [padded_rows(n, 4_096) for n in (0, 1, 64, 65, 100, 1_000, 4_095, 4_096)] == [
        0, 64, 64, 128, 128, 1_024, 4_096, 4_096,
    ]  # fmt: skip
    assert padded_rows(3_000, 3_000) == 3_000  # never past the batch size
    assert {padded_rows(n, 4_096) for n in range(1, 4_097)} == {64 << i for i in range(7)}


def test_padding_a_chunk_leaves_its_windows_verdicts_unchanged(
    cyclic_detector: NextKeyDetector,
) -> None:
    """Scored in chunks of 96 (the last, 20 rows, padded to 64), all at once (padded to 512)
    or in chunks of 256 (the last padded from 244): the same ranks and verdicts, and
    probabilities within float noise."""
    rng = np.random.default_rng(1)
    windows = rng.integers(2, 8, size=(500, 4))
    targets = rng.integers(2, 8, size=500)
    model = cyclic_detector.model
    chunked = score_next_keys(model, windows, targets, 2, batch_size=96)
    whole = score_next_keys(model, windows, targets, 2, batch_size=4_096)
    exact = score_next_keys(model, windows, targets, 2, batch_size=256)
    for other in (whole, exact):
        assert np.array_equal(chunked.rank, other.rank)
        assert np.array_equal(chunked.anomalous, other.anomalous)
        np.testing.assert_allclose(chunked.probability, other.probability, atol=1e-6)


def test_artifacts_reload_to_identical_predictions(tmp_path: Path, cyclic_detector) -> None:
    vocab = cyclic_detector.vocabulary
    config = DeepLogConfig(window_size=4, top_g=1, hidden_size=32)
    net = DeepLogNet.from_config(vocab.size, config)
    saved = save_artifact(tmp_path, "deeplog", net, vocab, config, TrainingSummary(), {})
    loaded = load_artifact(tmp_path, "deeplog")
    assert loaded.version == saved.version
    assert loaded.manifest["format_version"] == 1
    x = torch.randint(2, vocab.size, (16, 4))
    with torch.inference_mode():
        assert torch.equal(net(x), loaded.net(x))


def test_a_tampered_or_foreign_artifact_is_refused(tmp_path: Path, cyclic_detector) -> None:
    vocab = cyclic_detector.vocabulary
    config = DeepLogConfig(window_size=4, hidden_size=32)
    saved = save_artifact(
        tmp_path,
        "deeplog",
        DeepLogNet.from_config(vocab.size, config),
        vocab,
        config,
        TrainingSummary(),
        {},
    )
    weights = tmp_path / "deeplog" / saved.version / "weights.pt"
    weights.write_bytes(weights.read_bytes() + b"x")
    with pytest.raises(ModelError, match="checksum"):
        load_artifact(tmp_path, "deeplog")
    with pytest.raises(ModelError, match="run `train` first"):
        load_artifact(tmp_path / "empty", "deeplog")


def test_the_window_cache_is_exact() -> None:
    rng = np.random.default_rng(5)
    rows = rng.integers(0, 40, size=(3_000, 10))
    rows[::4] = rows[1]
    unique, inverse = distinct_rows(rows)
    assert np.array_equal(unique[inverse], rows)
    assert len(unique) == len(np.unique(rows, axis=0))
