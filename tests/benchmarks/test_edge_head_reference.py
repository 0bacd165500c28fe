"""``benchmarks/edge_head_reference.py``: the references and the tolerant core score on a ball."""

from __future__ import annotations

import sys

import numpy as np
from scipy import ndimage

from edge_networks.metrics import edge_target
from tests.helpers import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
from edge_head_reference import far_core_fp, reference_maps  # noqa: E402


def _ball(radius: float = 9.0, size: int = 32) -> np.ndarray:
    g = np.indices((size,) * 3) - size / 2
    return np.sqrt((g**2).sum(0)) <= radius


def test_far_core_fp_blob_boundary_and_blur():
    ball = _ball()
    target = edge_target([ball])
    refs = reference_maps(target)
    assert refs["target"] is target
    grown = refs["target grown 1 voxel (6-connected)"]
    assert grown.sum() > target.sum() and (grown & target).sum() == target.sum()
    blob = ndimage.binary_dilation(ball, iterations=2)
    for t in ("1", "1.5", "2"):
        assert far_core_fp(target, ball, target)[f"far_core_fp@{t}"] == 0.0
        assert far_core_fp(blob, ball, target)[f"far_core_fp@{t}"] == 1.0
    # a one-voxel (face-connected) blur of the boundary reaches no core voxel more than 1 voxel from the target;
    # the same blur grown once more does
    assert far_core_fp(grown, ball, target)["far_core_fp@1"] == 0.0
    assert far_core_fp(refs["target grown 2 voxels (6-connected)"], ball, target)["far_core_fp@1"] > 0.3
    # the count of far core voxels shrinks with the tolerance
    counts = [far_core_fp(target, ball, target)[f"far_core_voxels@{t}"] for t in ("1", "1.5", "2")]
    assert counts[0] > counts[1] > counts[2] > 0
