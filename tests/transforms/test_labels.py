"""BraTS / Decathlon / KiTS label conventions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from transforms import (
    BratsRegionsToLabels,
    BratsRegionsToLabelsd,
    ConvertToBratsRegions,
    ConvertToBratsRegionsd,
    ConvertToKitsRegions,
    KitsRegionsToLabels,
    KitsRegionsToLabelsd,
    LayoutMask,
    NestedRegions,
    NestedRegionsd,
)


def test_brats_regions_by_hand():
    lab = np.array([0, 1, 2, 4], np.uint8).reshape(1, 4, 1, 1)
    out = ConvertToBratsRegions("brats")(lab)[:, :, 0, 0]
    # columns: background, NCR, ED, ET; rows: TC, WT, ET
    np.testing.assert_array_equal(out, [[0, 1, 0, 1], [0, 1, 1, 1], [0, 0, 0, 1]])


@pytest.mark.parametrize(
    "convention,labels,expected",
    [
        ("brats2023", [0, 1, 2, 3], [[0, 1, 0, 1], [0, 1, 1, 1], [0, 0, 0, 1]]),
        # Decathlon: 1 oedema, 2 non-enhancing, 3 enhancing
        ("decathlon", [0, 1, 2, 3], [[0, 0, 1, 1], [0, 1, 1, 1], [0, 0, 0, 1]]),
    ],
)
def test_other_conventions(convention, labels, expected):
    lab = torch.tensor(labels).reshape(1, 4, 1)
    out = ConvertToBratsRegions(convention)(lab)[:, :, 0]
    assert isinstance(out, torch.Tensor)
    np.testing.assert_array_equal(out.numpy(), expected)


@pytest.mark.parametrize("convention", ["brats", "brats2023", "decathlon"])
def test_round_trip(convention):
    values = {"brats": [0, 1, 2, 4], "brats2023": [0, 1, 2, 3], "decathlon": [0, 1, 2, 3]}[convention]
    rng = np.random.default_rng(0)
    lab = rng.choice(values, size=(1, 10, 9, 8)).astype(np.uint8)
    regions = ConvertToBratsRegions(convention)(lab)
    assert regions.shape == (3, 10, 9, 8)
    # nesting holds: ET within TC within WT
    assert (regions[2] <= regions[0]).all() and (regions[0] <= regions[1]).all()
    back = BratsRegionsToLabels(convention)(regions)
    np.testing.assert_array_equal(back, lab)


def test_regions_to_labels_enforces_nesting_and_thresholds():
    probs = np.zeros((3, 1, 4), np.float32)
    probs[:, 0, 0] = [0.9, 0.2, 0.9]  # TC and ET outside WT: dropped
    probs[:, 0, 1] = [0.2, 0.9, 0.9]  # ET outside TC: oedema only
    probs[:, 0, 2] = [0.7, 0.8, 0.6]  # everything: enhancing
    probs[:, 0, 3] = [0.7, 0.8, 0.1]  # core
    np.testing.assert_array_equal(BratsRegionsToLabels()(probs)[0, 0], [0, 2, 4, 1])
    with pytest.raises(ValueError, match="3 region channels"):
        BratsRegionsToLabels()(np.zeros((2, 4, 4)))
    with pytest.raises(ValueError, match="unknown BraTS label convention"):
        ConvertToBratsRegions("brats2018")


def test_kits_regions_and_back():
    lab = np.array([0, 1, 2, 1], np.uint8).reshape(1, 4, 1)
    regions = ConvertToKitsRegions()(lab)
    np.testing.assert_array_equal(regions[:, :, 0], [[0, 1, 1, 1], [0, 0, 1, 0]])
    np.testing.assert_array_equal(KitsRegionsToLabels()(regions), lab)


def test_nested_regions_disc_cup_kits_and_back():
    """Nested classes -> region masks: the disc holds the cup (1 or 2), KiTS's kidneys hold the tumour; the sum of
    the masks gives the label map back, as LayoutMask's ``disc_cup_indices`` builds it from REFUGE's file values."""
    lab = np.array([0, 1, 2, 1, 0, 2], np.uint8).reshape(1, 2, 3)
    regions = NestedRegions(3)(lab)
    assert regions.shape == (2, 2, 3) and regions.dtype == np.float32
    np.testing.assert_array_equal(regions[0], lab[0] >= 1)
    np.testing.assert_array_equal(regions[1], lab[0] == 2)
    np.testing.assert_array_equal(regions, ConvertToKitsRegions()(lab))  # the same nesting as KiTS
    np.testing.assert_array_equal(regions.sum(0, keepdims=True), lab)
    refuge = torch.tensor([[[255.0, 128.0, 0.0]]])  # background, rim, cup as the BMP stores them
    np.testing.assert_array_equal(NestedRegions(3)(LayoutMask("refuge", "disc_cup_indices")(refuge)),
                                  LayoutMask("refuge", "disc_cup")(refuge))
    four = NestedRegions(4)(torch.tensor([[[3, 0, 2]]]))
    assert four.tolist() == [[[1, 0, 1]], [[1, 0, 1]], [[1, 0, 0]]]
    with pytest.raises(ValueError, match="at least 2"):
        NestedRegions(1)


def test_dict_versions_keep_meta():
    affine = torch.diag(torch.tensor([1.5, 1.5, 2.0, 1.0]))
    lab = MetaTensor(torch.tensor([0, 1, 2, 4]).reshape(1, 4, 1, 1), affine=affine)
    d = ConvertToBratsRegionsd("label")({"label": lab})
    assert d["label"].shape == (3, 4, 1, 1) and torch.equal(d["label"].affine, affine)
    nested = NestedRegionsd("label", num_classes=3)({"label": lab.clamp(max=2)})["label"]
    assert nested.shape == (2, 4, 1, 1) and torch.equal(nested.affine, affine)
    d = BratsRegionsToLabelsd("label")(d)
    assert torch.equal(d["label"].as_tensor().long(), lab.as_tensor().long())
    k = KitsRegionsToLabelsd("pred")({"pred": torch.tensor([[[0.9]], [[0.8]]])})
    assert k["pred"].item() == 2
