"""Per-channel normalisation of a dataset's plan: nnU-Net's CT, z-score, RGB and no-op schemes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from transforms import NormalizeChannels, NormalizeChannelsd


def test_each_channel_gets_its_scheme():
    img = torch.stack([torch.tensor([[-2000.0, 0.0, 500.0, 3000.0]]), torch.tensor([[1.0, 2.0, 3.0, 4.0]]),
                       torch.tensor([[0.0, 51.0, 102.0, 255.0]]), torch.tensor([[7.0, 8.0, 9.0, 10.0]])])
    schemes = [{"scheme": "ct", "lower": -1000, "upper": 1000, "mean": 0, "std": 500}, {"scheme": "zscore"},
               {"scheme": "rgb"}, {"scheme": "none"}]
    out = NormalizeChannels(schemes)(img)
    np.testing.assert_allclose(out[0, 0].numpy(), [-2.0, 0.0, 1.0, 2.0])  # clipped to +-1000, then /500
    z = (np.array([1, 2, 3, 4]) - 2.5) / np.std([1, 2, 3, 4])
    np.testing.assert_allclose(out[1, 0].numpy(), z, rtol=1e-6)
    np.testing.assert_allclose(out[2, 0].numpy(), [0.0, 0.2, 0.4, 1.0])
    np.testing.assert_allclose(out[3, 0].numpy(), [7.0, 8.0, 9.0, 10.0])


def test_one_scheme_applies_to_every_channel_and_numpy_stays_numpy():
    rgb = np.random.default_rng(0).integers(0, 255, (3, 5, 6)).astype(np.float32)
    out = NormalizeChannelsd("image", [{"scheme": "zscore"}])({"image": rgb})["image"]
    assert isinstance(out, np.ndarray) and out.shape == (3, 5, 6)
    np.testing.assert_allclose(out.reshape(3, -1).mean(1), 0.0, atol=1e-5)


def test_bad_schemes_are_refused():
    with pytest.raises(ValueError, match="unknown intensity scheme 'minmax'"):
        NormalizeChannels([{"scheme": "minmax"}])
    with pytest.raises(ValueError, match="ct scheme needs lower, upper, mean and std"):
        NormalizeChannels([{"scheme": "ct", "lower": 0}])
    with pytest.raises(ValueError, match="2 intensity schemes for an image of 3 channels"):
        NormalizeChannels([{"scheme": "zscore"}, {"scheme": "rgb"}])(torch.zeros(3, 2, 2))
