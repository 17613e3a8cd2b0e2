"""Calibrated scores: p-values against held-out normal data, and thresholds from the budget."""

from __future__ import annotations

import numpy as np
import pytest

from sidecar.models.calibration import (
    HOLDOUT_CHUNK,
    Calibration,
    budget_report,
    events_per_host_day,
    fit_calibration,
    grade,
    holdout_folds,
    holdout_mask,
    threshold_for_budget,
)
from sidecar.models.nextkey.calibration import NextKeyCalibration


def test_p_value_is_the_share_of_held_out_events_at_least_as_surprising() -> None:
    held_out = np.arange(1.0, 100.0)  # 99 events with surprises 1 .. 99
    calibration = fit_calibration(held_out, events_per_host_day=1_000.0)
    p = calibration.p_values(np.array([99.0, 90.0, 50.0, 1.0, 0.0]))
    # (rank + 1) / (n + 1): 99 is the most surprising (1 of 99), 1.0 the least (99 of 99).
    assert p[0] == pytest.approx(1 / 100)
    assert p[1] == pytest.approx(10 / 100)
    assert p[2] == pytest.approx(50 / 100)
    assert p[3] == pytest.approx(99 / 100)
    assert p[4] == 1.0  # below everything held out: as ordinary as it gets


def test_beyond_the_held_out_maximum_the_tail_keeps_falling() -> None:
    calibration = fit_calibration(np.arange(1.0, 100.0), events_per_host_day=1_000.0)
    p = calibration.p_values(np.array([99.0, 105.0, 120.0, np.inf]))
    assert p[0] > p[1] > p[2] > 0.0
    assert p[3] == 0.0  # the impossible (an unseen key) stays maximal
    # Exponential tail: the mean excess of the top 9 (10% of 99) over the 10th is 5.
    assert calibration.tail_scale == pytest.approx(5.0)
    assert p[1] == pytest.approx(0.01 * np.exp(-6.0 / 5.0))


def test_calibration_survives_the_manifest_round_trip() -> None:
    rng = np.random.default_rng(3)
    calibration = fit_calibration(rng.exponential(size=5_000), events_per_host_day=2_400.0)
    again = Calibration.from_json(calibration.to_json())
    probe = np.array([0.1, 1.0, 3.0, 8.0, 12.0, np.inf])
    assert np.allclose(again.p_values(probe), calibration.p_values(probe), rtol=1e-4)
    # A compact table: every rank up to 64, then geometric steps, not 5,000 values.
    assert len(calibration.values) < 200


def test_threshold_follows_the_budget_and_is_shared_by_models() -> None:
    calibration = fit_calibration(np.arange(1.0, 10.0), events_per_host_day=2_000.0)
    assert threshold_for_budget(calibration, 0.1) == pytest.approx(5e-5)
    assert threshold_for_budget(calibration, 0.1, models_sharing=2) == pytest.approx(2.5e-5)


def test_grade_is_fifty_at_the_threshold_and_a_hundred_for_the_impossible() -> None:
    g = grade(np.array([1.0, 1e-2, 1e-4, 1e-8, 0.0]), threshold=1e-4)
    assert g.tolist() == [0.0, 25.0, 50.0, 100.0, 100.0]


def test_a_short_host_counts_as_observed_for_an_hour() -> None:
    # 24 events in 10 seconds, and 2,400 events over a whole day.
    assert events_per_host_day([(0, 10_000, 24)]) == pytest.approx(24 * 24)
    assert events_per_host_day([(0, 86_400_000, 2_400)]) == pytest.approx(2_400)


def test_held_out_slice_is_whole_chunks_chosen_the_same_in_every_process() -> None:
    mask = holdout_mask("host-007", 10 * HOLDOUT_CHUNK)
    chunks = mask.reshape(10, HOLDOUT_CHUNK)
    assert all(row.all() or not row.any() for row in chunks)
    # Pinned: a change to the hash (or a per-process hash) changes which chunks are held out.
    assert np.flatnonzero(chunks[:, 0]).tolist() == [3]
    assert holdout_mask("host-007", 10 * HOLDOUT_CHUNK).tolist() == mask.tolist()


def test_folds_are_whole_chunks_and_fold_zero_is_the_held_out_slice() -> None:
    folds = holdout_folds("host-007", 10 * HOLDOUT_CHUNK)
    per_chunk = folds.reshape(10, HOLDOUT_CHUNK)
    assert all(len(set(row.tolist())) == 1 for row in per_chunk)
    # Pinned, like the held-out slice: chunk 3 is fold 0.
    assert per_chunk[:, 0].tolist() == [1, 1, 3, 0, 4, 4, 1, 2, 1, 2]
    assert (folds == 0).tolist() == holdout_mask("host-007", 10 * HOLDOUT_CHUNK).tolist()
    assert holdout_folds("h", 0).tolist() == []


def test_rare_but_regular_keys_are_not_surprising_and_misplaced_common_ones_are() -> None:
    # Key 2 is common (90%), key 3 rare (1%).
    log_frequency = np.log(np.array([1e-9, 1e-9, 0.9, 0.01]))
    calibration = NextKeyCalibration(
        fit_calibration(np.linspace(0.0, 3.0, 1_000), 1_000.0), log_frequency
    )
    targets = np.array([3, 2, 1])
    probability = np.array([0.01, 1e-4, 0.0])
    s = calibration.surprise(targets, probability)
    assert s[0] == pytest.approx(0.0)  # as likely here as anywhere: not news
    assert s[1] == pytest.approx(np.log(0.9 / 1e-4))
    assert s[2] == np.inf  # the unknown slot
    p = calibration.p_values(targets, probability)
    assert p[0] == pytest.approx(1_000 / 1_001)  # below every held-out surprise
    assert p[1] < 1e-3
    assert p[2] == 0.0


def test_the_manifest_records_what_the_budget_flags_on_the_held_out_slice() -> None:
    # 9,999 held-out events at 500 events per host-day: a budget of 0.5 false incidents per
    # host-day shared by two models is a threshold of 0.5 / (500 * 2) = 5e-4, which flags the
    # 5 most surprising held-out events (p = 1/10,000 .. 5/10,000).
    calibration = fit_calibration(np.arange(1.0, 10_000.0), events_per_host_day=500.0)
    assert budget_report(calibration, 0.5, 2) == {
        "alert_budget": 0.5,
        "models_sharing": 2,
        "threshold": 0.0005,
        "held_out_events": 9_999,
        "held_out_flagged": 5,
        "held_out_flagged_per_10k": 5.0005,
        "false_flags_per_host_day": 0.250025,
    }
    # The same five by the p-values themselves (up to the table's rounding in log space).
    flagged = calibration.p_values(np.arange(1.0, 10_000.0)) <= 0.0005 * (1 + 1e-9)
    assert int(flagged.sum()) == 5
