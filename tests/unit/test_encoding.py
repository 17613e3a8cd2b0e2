"""Log keys and windows."""

from __future__ import annotations

import numpy as np
import pytest

from sidecar.encoding import windows as windows_module
from sidecar.encoding.vocabulary import PAD, UNKNOWN, Vocabulary
from sidecar.encoding.windows import training_pairs, windows_for_streams, windows_with_targets
from sidecar.types import LogEvent


def ev(event_id: str, severity: str = "success", i: int = 0) -> LogEvent:
    return LogEvent("h", 1_000 + i, f"u{i}", event_id, severity)


def test_keys_combine_event_id_and_severity() -> None:
    vocab = Vocabulary.fit([ev("4624"), ev("4624"), ev("4625", "failure"), ev("4624", "failure")])
    assert vocab.known == 3
    assert vocab.id_of("4624", "success") != vocab.id_of("4624", "failure")


def test_vocabulary_is_deterministic_most_frequent_first() -> None:
    events = [ev("b"), ev("a"), ev("b"), ev("c"), ev("a"), ev("b")]
    assert Vocabulary.fit(events) == Vocabulary.fit(list(reversed(events)))
    vocab = Vocabulary.fit(events)
    assert vocab.key_of(2) == ("b", "success")


def test_unseen_keys_map_to_the_unknown_slot() -> None:
    vocab = Vocabulary.fit([ev("4624")])
    assert vocab.encode([ev("1102")]).tolist() == [UNKNOWN]
    assert vocab.id_of("4624", "failure") == UNKNOWN


def test_vocabulary_round_trips_through_json() -> None:
    vocab = Vocabulary.fit([ev("4624"), ev("4625", "failure")])
    assert Vocabulary.from_json(vocab.to_json()) == vocab


def test_first_events_get_left_padded_windows() -> None:
    windows, targets = windows_with_targets(np.array([], dtype=np.int64), np.array([5, 6, 7]), 3)
    assert windows.tolist() == [[PAD, PAD, PAD], [PAD, PAD, 5], [PAD, 5, 6]]
    assert targets.tolist() == [5, 6, 7]


def test_windows_continue_from_the_saved_context() -> None:
    context = np.array([1, 2, 3, 4])
    windows, targets = windows_with_targets(context, np.array([8, 9]), 3)
    assert windows.tolist() == [[2, 3, 4], [3, 4, 8]]
    assert targets.tolist() == [8, 9]


def test_one_stream_split_in_two_gives_the_same_windows_as_whole() -> None:
    keys = np.arange(2, 30)
    whole, _ = windows_with_targets(np.array([], dtype=np.int64), keys, 10)
    first, _ = windows_with_targets(np.array([], dtype=np.int64), keys[:13], 10)
    second, _ = windows_with_targets(keys[:13], keys[13:], 10)
    assert np.array_equal(whole, np.concatenate([first, second]))


def test_windows_for_many_streams_equal_windows_per_stream() -> None:
    rng = np.random.default_rng(3)
    contexts = [rng.integers(2, 9, size=n) for n in (0, 3, 15, 1)]
    streams = [rng.integers(2, 9, size=n) for n in (5, 0, 7, 1)]
    windows, targets = windows_for_streams(contexts, streams, 4)
    expected = [windows_with_targets(c, s, 4) for c, s in zip(contexts, streams, strict=True)]
    assert np.array_equal(windows, np.concatenate([w for w, _ in expected]))
    assert np.array_equal(targets, np.concatenate([t for _, t in expected]))


@pytest.mark.parametrize("merge_rows", [1, 50, 1_000_000])
def test_training_pairs_gathered_host_by_host_are_the_distinct_pairs_of_all_events(
    merge_rows: int, monkeypatch: pytest.MonkeyPatch
):
    """Pairs are made distinct per sequence and merged as they gather (memory follows the
    distinct pairs); the result is np.unique over every event's pair, counts summed."""
    monkeypatch.setattr(windows_module, "MERGE_ROWS", merge_rows)
    rng = np.random.default_rng(4)
    sequences = [rng.integers(2, 6, size=n) for n in (0, 1, 7, 40, 300, 300)]
    keep = [rng.random(len(s)) < 0.8 for s in sequences]
    every = [
        np.concatenate([w, t[:, None]], axis=1)[m]
        for s, m in zip(sequences, keep, strict=True)
        for w, t in [windows_with_targets(np.empty(0, dtype=np.int64), s, 3)]
    ]
    rows, counts = np.unique(np.concatenate(every), axis=0, return_counts=True)

    pairs = training_pairs(sequences, 3, keep)

    assert pairs.windows.tolist() == rows[:, :3].tolist()
    assert pairs.targets.tolist() == rows[:, 3].tolist()
    assert pairs.counts.tolist() == counts.tolist()
    assert int(pairs.counts.sum()) == sum(int(m.sum()) for m in keep)
