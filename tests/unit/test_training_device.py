"""Training on a GPU when one is present (issue 16): the network and the items it is fed go to
the device SIDECAR_DEVICE names, and the trained network comes back to the CPU, so a model
saved after GPU training is the same kind of file as any other."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from sidecar.encoding.windows import TrainingPairs
from sidecar.models.fitting import (
    TrainingSummary,
    current_training_device,
    fit_weighted,
    training_device,
)
from sidecar.models.nextkey.core import score_next_keys, train_next_key_model
from sidecar.models.nextkey.deeplog import DeepLogConfig, DeepLogNet
from tests.unit.test_training_speed import Schedule

META = torch.device("meta")


class Seen(Exception):
    pass


def test_the_training_device_is_the_cpu_unless_a_command_names_another() -> None:
    assert current_training_device() == torch.device("cpu")
    with training_device(META):
        assert current_training_device() == META
    assert current_training_device() == torch.device("cpu")


def test_the_network_and_its_batches_go_to_the_named_device() -> None:
    # The meta device holds no data, so the first loss cannot be computed: what reached
    # item_loss by then is where training ran.
    net = nn.Linear(4, 1)
    seen: list[tuple[torch.device, torch.device]] = []

    def item_loss(indices: torch.Tensor) -> torch.Tensor:
        seen.append((indices.device, next(net.parameters()).device))
        raise Seen

    with training_device(META), pytest.raises(Seen):
        fit_weighted(net, torch.ones(32), item_loss, Schedule(), TrainingSummary())
    assert seen == [(META, META)]


def pairs(seed: int = 0) -> TrainingPairs:
    """Windows of 3 keys (ids 2..6) whose next key is the window's last plus one."""
    rng = np.random.default_rng(seed)
    windows = rng.integers(2, 6, size=(64, 3)).astype(np.int64)
    targets = (windows[:, -1] + 1).astype(np.int64)
    counts = rng.integers(1, 20, size=64).astype(np.int64)
    return TrainingPairs(windows, targets, counts)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU on this machine")
def test_a_model_trained_on_a_gpu_comes_back_to_the_cpu_and_predicts_like_a_cpu_trained_one() -> (
    None
):
    config = DeepLogConfig(
        window_size=3, epochs=30, batch_size=16, learning_rate=0.02, embedding_dim=8, hidden_size=16
    )
    data = pairs()
    torch.manual_seed(1)
    cpu_net = DeepLogNet.from_config(8, config)
    train_next_key_model(cpu_net, data, config)
    torch.manual_seed(1)
    gpu_net = DeepLogNet.from_config(8, config)
    with training_device(torch.device("cuda")):
        train_next_key_model(gpu_net, data, config)
    assert {p.device.type for p in gpu_net.parameters()} == {"cpu"}
    on_cpu = score_next_keys(cpu_net, data.windows, data.targets, 1)
    on_gpu = score_next_keys(gpu_net, data.windows, data.targets, 1)
    # Both learn the rule (on the CPU: every next key the most likely, p >= 0.98); different
    # kernels round differently, so the probabilities are close, not equal.
    assert not on_cpu.anomalous.any() and not on_gpu.anomalous.any()
    assert np.allclose(on_cpu.probability, on_gpu.probability, atol=0.05)
