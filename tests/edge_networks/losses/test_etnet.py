"""ET-Net's loss: 0.3 Lovász-Softmax(seg) + 0.7 Lovász-Softmax(edge) with the edge target computed here
independently (a pixel whose 3x3 neighbourhood holds another class), penalties on boundary-free crops, void pixels,
the binary form and the channel check."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from edge_networks.losses.etnet import ETNetLoss
from edge_networks.losses.lovasz import LovaszHingeLoss, LovaszSoftmaxLoss


def _label(b=2, h=12, w=14):
    label = torch.zeros(b, 1, h, w, dtype=torch.long)
    label[0, 0, 3:9, 4:10] = 1
    label[0, 0, 5:7, 6:8] = 2  # a cup inside a disc
    label[1, 0, 2:6, 2:12] = 1
    return label


def _both_edges(label: torch.Tensor) -> torch.Tensor:
    out = []
    for lab in label[:, 0].numpy():
        hi = ndimage.maximum_filter(lab, size=3, mode="nearest")
        lo = ndimage.minimum_filter(lab, size=3, mode="nearest")
        out.append(hi != lo)
    return torch.as_tensor(np.stack(out)[:, None].astype(np.int64))


def test_total_is_the_papers_weighted_sum_with_an_independent_edge_target():
    torch.manual_seed(0)
    label = _label()
    pred = torch.randn(2, 3 + 2, 12, 14)
    loss = ETNetLoss(out_channels=3)
    edges = _both_edges(label)
    assert torch.equal(loss.edge_target(label), edges) and 0 < int(edges.sum()) < edges.numel() // 2
    expected = 0.3 * LovaszSoftmaxLoss()(pred[:, :3], label) + 0.7 * LovaszSoftmaxLoss()(pred[:, 3:], edges)
    torch.testing.assert_close(loss(pred, label), expected)
    assert set(loss.last) == {"seg", "edge"}
    torch.testing.assert_close(loss(pred[:, :3], label), LovaszSoftmaxLoss()(pred[:, :3], label))  # no edge head


def test_false_edges_on_a_boundary_free_crop_are_penalised():
    label = torch.zeros(1, 1, 10, 10, dtype=torch.long)
    pred = torch.zeros(1, 4, 10, 10)
    pred[:, 3] = 3.0  # the edge head says "edge" everywhere
    pred.requires_grad_(True)
    out = ETNetLoss(out_channels=2)(pred, label)
    (grad,) = torch.autograd.grad(out, pred)
    assert float(out.detach()) > 0.5 and grad[:, 2:].abs().sum() > 0


def test_void_pixels_are_left_out_of_both_terms():
    torch.manual_seed(1)
    label = _label()
    pred = torch.randn(2, 5, 12, 14)
    void = label.clone()
    void[:, :, :, :3] = 255
    with_void = ETNetLoss(out_channels=3, ignore_index=255)(pred, void)
    target = ETNetLoss(out_channels=3, ignore_index=255).edge_target(void)
    assert (target[:, :, :, :3] == 255).all()
    ref_seg = LovaszSoftmaxLoss(ignore_index=255)(pred[:, :3], void)
    ref_edge = LovaszSoftmaxLoss(ignore_index=255)(pred[:, 3:], target)
    torch.testing.assert_close(with_void, 0.3 * ref_seg + 0.7 * ref_edge)


def _two_class(logit):
    """The channel's two class probabilities (background 1 - p, foreground p), written out."""
    p = torch.sigmoid(logit)
    return torch.cat([1 - p, p], dim=1)


def test_binary_form_is_the_two_class_lovasz_softmax_and_channels_are_checked():
    """A sigmoid channel is trained with the paper's Lovász-Softmax over its two classes (the mean of the background
    and foreground IoU losses), not the hinge (foreground IoU alone) unless ``binary="hinge"``."""
    torch.manual_seed(2)
    label = (_label() > 0).long()
    pred = torch.randn(2, 3, 12, 14)
    loss = ETNetLoss(out_channels=1, sigmoid=True)
    softmax_on_probs = LovaszSoftmaxLoss(softmax=False)
    edge = 0.7 * LovaszSoftmaxLoss()(pred[:, 1:], _both_edges(label))
    torch.testing.assert_close(loss(pred, label), 0.3 * softmax_on_probs(_two_class(pred[:, :1]), label) + edge)
    hinge = ETNetLoss(out_channels=1, sigmoid=True, binary="hinge")
    torch.testing.assert_close(hinge(pred, label), 0.3 * LovaszHingeLoss(per_image=False)(pred[:, :1], label) + edge)
    assert not torch.isclose(loss(pred, label), hinge(pred, label))
    with pytest.raises(ValueError, match="expects 1 segmentation"):
        loss(torch.randn(2, 4, 12, 14), label)
    with pytest.raises(ValueError, match="binary"):
        ETNetLoss(out_channels=1, sigmoid=True, binary="focal")
    # region masks (BraTS-like nested TC/WT): the two-class loss per channel, the union of the regions' edges
    regions = torch.cat([(_label() == 2), (_label() > 0)], dim=1).long()
    pred = torch.randn(2, 4, 12, 14)
    seg = (softmax_on_probs(_two_class(pred[:, :1]), regions[:, :1])
           + softmax_on_probs(_two_class(pred[:, 1:2]), regions[:, 1:2])) / 2
    expected = 0.3 * seg + 0.7 * LovaszSoftmaxLoss()(pred[:, 2:], _both_edges(_label()))
    torch.testing.assert_close(ETNetLoss(out_channels=2, sigmoid=True)(pred, regions), expected)
    with pytest.raises(ValueError, match="2 target mask channels"):
        ETNetLoss(out_channels=2, sigmoid=True)(pred, regions[:, :1])
