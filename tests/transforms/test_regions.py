"""nnU-Net's region-based labels: label map -> overlapping region channels and back, as nnU-Net converts them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from transforms import LabelsToRegions, LabelsToRegionsd, RegionsToLabels, RegionsToLabelsd

BRATS = [[1, 2, 3], [2, 3], [3]]  # whole tumour, tumour core, enhancing (nnU-Net's Dataset137)


def test_labels_to_regions_and_back_round_trips_nested_labels():
    label = torch.tensor([[[0, 1, 2, 3], [3, 2, 1, 0]]])
    regions = LabelsToRegions(BRATS)(label)
    assert regions.shape == (3, 2, 4) and regions.dtype == torch.float32
    np.testing.assert_array_equal(regions[0, 0].numpy(), [0, 1, 1, 1])
    np.testing.assert_array_equal(regions[1, 0].numpy(), [0, 0, 1, 1])
    np.testing.assert_array_equal(regions[2, 0].numpy(), [0, 0, 0, 1])
    back = RegionsToLabels([1, 2, 3])(regions * 0.9)
    torch.testing.assert_close(back, label.to(torch.uint8))


def test_later_regions_overwrite_earlier_ones_as_in_nnunet():
    probs = np.array([[0.9, 0.2, 0.6], [0.7, 0.8, 0.4]], np.float32)  # (2 regions, 3 voxels)
    out = RegionsToLabels([5, 9])(probs)
    assert isinstance(out, np.ndarray)
    np.testing.assert_array_equal(out, [[9, 9, 5]])  # region 1 wins where both are above 0.5
    np.testing.assert_array_equal(RegionsToLabels([5, 9], threshold=0.75)(probs), [[5, 9, 0]])


def test_dictionary_versions_and_errors():
    d = LabelsToRegionsd("label", [[1], [2]])({"label": torch.tensor([[0, 1, 2]]), "other": 1})
    assert d["label"].shape == (2, 3) and d["other"] == 1
    d = RegionsToLabelsd("pred", [1, 2])({"pred": d["label"]})
    torch.testing.assert_close(d["pred"], torch.tensor([[0, 1, 2]], dtype=torch.uint8))
    with pytest.raises(ValueError, match="expected 3 region channels"):
        RegionsToLabels([1, 2, 3])(torch.zeros(2, 4))
    with pytest.raises(ValueError, match="one-channel label map"):
        LabelsToRegions(BRATS)(torch.zeros(2, 4))
    with pytest.raises(ValueError, match="non-empty"):
        LabelsToRegions([[1], []])
