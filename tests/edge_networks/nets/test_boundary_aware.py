"""Boundary aware network: shapes in 2D/3D, attention layers as in the paper, scripting, loss weights."""

from __future__ import annotations

import pytest
import torch

from edge_networks import BoundaryAwareLoss, BoundaryAwareNet
from edge_networks.losses import BalancedBCEWithLogitsLoss


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_shapes_and_streams(spatial_dims):
    net = BoundaryAwareNet(spatial_dims, 1, 1, features=(8, 16, 32, 64), shape_channels=8, aspp_channels=8)
    x = torch.randn(2, 1, *([32] * spatial_dims))
    assert net.train()(x).shape == (2, 2, *x.shape[2:])
    with torch.no_grad():
        assert net.eval()(x).shape == (2, 1, *x.shape[2:])
    assert len(net.attention) == 3, "the paper's three attention layers"
    seen = []
    hooks = [a.register_forward_hook(lambda mod, inp, out: seen.append((inp[0], out))) for a in net.attention]
    net.train()(x)
    for h in hooks:
        h.remove()
    for s, o in seen:  # o = s * alpha with alpha in (0, 1): attention only attenuates the shape stream
        assert (o.abs() <= s.abs() + 1e-6).all() and not torch.equal(o, s)


def test_scripts_and_matches_eager():
    net = BoundaryAwareNet(2, 1, 1, features=(8, 16, 32, 64), edges_in_eval=True).eval()
    x = torch.randn(1, 1, 48, 48)
    with torch.no_grad():
        torch.testing.assert_close(torch.jit.script(net)(x), net(x))


def test_gradients_reach_shape_stream_and_encoder():
    net = BoundaryAwareNet(2, 1, 1, features=(8, 16, 32, 64)).train()
    target = torch.zeros(1, 1, 32, 32)
    target[..., 8:20, 10:24] = 1
    loss = BoundaryAwareLoss()(net(torch.randn(1, 1, 32, 32)), target)
    loss.backward()
    assert net.shape_head.weight.grad.abs().sum() > 0
    assert all(a.conv_e.weight.grad.abs().sum() > 0 for a in net.attention)
    assert net.conv_init.weight.grad.abs().sum() > 0


def test_loss_is_the_paper_weighting():
    torch.manual_seed(0)
    target = torch.zeros(2, 1, 24, 24)
    target[:, :, 6:18, 5:15] = 1
    pred = torch.randn(2, 2, 24, 24)
    loss_fn = BoundaryAwareLoss()
    total = loss_fn(pred, target)
    from monai.losses import DiceLoss

    from transforms import label_to_edge

    edge_gt = label_to_edge(target, 2, mode="both").float()
    seg_dice = DiceLoss(sigmoid=True, smooth_nr=0.0, smooth_dr=1e-5, squared_pred=True)(pred[:, :1], target)
    edge_dice = DiceLoss(sigmoid=True, smooth_nr=1.0, smooth_dr=1.0)(pred[:, 1:], edge_gt)  # see EdgeLoss
    bce = BalancedBCEWithLogitsLoss()(pred[:, 1:], edge_gt)
    assert total.item() == pytest.approx((seg_dice + 0.5 * edge_dice + 0.1 * bce).item(), rel=1e-5)
    assert "consistency" not in loss_fn.last
    ablation = BoundaryAwareLoss(edge_weight=0.0)(pred, target)
    assert ablation.item() == pytest.approx(seg_dice.item(), rel=1e-5)
