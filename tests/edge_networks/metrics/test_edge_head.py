"""Region masks of the scoring code follow the label conventions of ``transforms.labels``."""

from __future__ import annotations

import numpy as np
import pytest

from edge_networks.metrics import region_masks
from transforms.labels import BRATS_CONVENTIONS


def test_brats_regions_are_the_conventions_values():
    label = np.array([0, 1, 2, 4, 3])  # 3 is no BraTS value
    masks = region_masks(label, "brats")
    for region in ("WT", "TC", "ET"):
        np.testing.assert_array_equal(masks[region], np.isin(label, BRATS_CONVENTIONS["brats"][region]))
    assert masks["WT"].tolist() == [False, True, True, True, False]


@pytest.mark.parametrize(("writes", "expected"), [
    ("kits", {"kidneys": [0, 1, 1], "tumour": [0, 0, 1]}),
    ("tc", {"TC": [0, 1, 0]}),
    ("disc", {"disc": [0, 1, 1]}),
])
def test_other_conventions(writes, expected):
    masks = region_masks(np.array([0, 1, 2]), writes)
    assert {k: v.astype(int).tolist() for k, v in masks.items()} == expected
