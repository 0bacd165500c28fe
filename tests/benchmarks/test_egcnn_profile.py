"""``benchmarks/egcnn_profile.py``: operator categories and the bf16 model built on them (in-process, no profiling)."""

from __future__ import annotations

import sys

import pytest

from tests.helpers import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
from egcnn_profile import CATEGORIES, category, model_ratio  # noqa: E402


@pytest.mark.parametrize(("op", "expected"), [
    ("aten::mkldnn_convolution", "convolution"), ("aten::convolution_backward", "convolution"),
    ("aten::slow_conv3d_forward", "convolution"), ("aten::upsample_trilinear3d_backward", "upsampling"),
    ("aten::native_group_norm_backward", "normalisation"), ("aten::_foreach_add_", "optimiser"),
    ("aten::sigmoid_backward", "elementwise"), ("aten::threshold_backward", "elementwise"),
    ("aten::cat", "elementwise"), ("aten::copy_", "elementwise"), ("aten::binary_cross_entropy_with_logits", "other")])
def test_operator_categories(op, expected):
    assert category(op) == expected


def _step(**ms: float) -> dict:
    full = dict.fromkeys(CATEGORIES, 0.0) | ms
    return {"ms": full, "total_ms": sum(full.values())}


def test_bf16_model_by_hand():
    # SegResNet 80 ms of convolution + 20 of the rest, 2.5x faster on the bf16 machine: 40 ms there, so the
    # convolutions must take 20 ms (4x faster). EG-CNN adds 40 ms of convolution (10 ms there) and 20 ms of
    # upsampling/elementwise work (unchanged): (40 + 10 + 20) / 40 = 1.75; for 1.4x the rest may take 6 ms.
    out = model_ratio(_step(convolution=80, elementwise=20), _step(convolution=120, elementwise=30, upsampling=10),
                      backbone_speedup=2.5, target=1.4)
    assert out["conv_speedup_solved"] == pytest.approx(4.0)
    assert out["modelled_ratio"] == pytest.approx(1.75)
    assert out["edge_rest_allowed_ms"] == pytest.approx(6.0)
    assert out["edge_rest_speedup_needed"] == pytest.approx(20 / 6, abs=0.01)
    # with no speed-up anywhere the model is the float32 ratio itself
    same = model_ratio(_step(convolution=80, elementwise=20), _step(convolution=120, elementwise=30, upsampling=10),
                       backbone_speedup=1.0, target=1.4)
    assert same["modelled_ratio"] == pytest.approx(160 / 100)
    # a backbone faster than its own non-convolution work allows is refused, not modelled
    assert "note" in model_ratio(_step(convolution=10, elementwise=90), _step(convolution=20, elementwise=90), 5.0, 1.4)
