"""Edge losses against hand computations and their expected behaviour."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from monai.losses import DiceLoss

from edge_networks.losses import BalancedBCEWithLogitsLoss, DualTaskConsistencyLoss, EdgeLoss, EGCNNLoss


def test_balanced_bce_by_hand():
    logits = torch.tensor([2.0, -1.0, 0.5, -3.0]).reshape(1, 1, 4)
    target = torch.tensor([1.0, 0.0, 0.0, 0.0]).reshape(1, 1, 4)
    beta = 3 / 4  # non-edge fraction
    p = [1 / (1 + math.exp(-v)) for v in (2.0, -1.0, 0.5, -3.0)]
    expected = (-beta * math.log(p[0]) - (1 - beta) * sum(math.log(1 - q) for q in p[1:])) / 4
    assert BalancedBCEWithLogitsLoss()(logits, target).item() == pytest.approx(expected, rel=1e-6)


def test_balanced_bce_per_channel_beta():
    logits = torch.zeros(1, 2, 10)
    target = torch.zeros(1, 2, 10)
    target[0, 0, :5] = 1  # beta 0.5
    target[0, 1, :1] = 1  # beta 0.9
    per = BalancedBCEWithLogitsLoss(reduction="none")(logits, target)
    log2 = math.log(2)
    assert per[0, 0].item() == pytest.approx((0.5 * 5 + 0.5 * 5) * log2 / 10)
    assert per[0, 1].item() == pytest.approx((0.9 * 1 + 0.1 * 9) * log2 / 10)


def test_edge_loss_prefers_right_edges():
    target = torch.zeros(1, 1, 16, 16)
    target[0, 0, 4:12, 4] = 1
    good, bad = (target * 20 - 10), (torch.roll(target, 5, dims=3) * 20 - 10)
    loss = EdgeLoss()
    assert loss(good, target) < 0.05 < loss(bad, target)


def _square(shift=0, size=32):
    m = torch.zeros(1, 1, size, size)
    m[0, 0, 8 + shift : 24 + shift, 8:24] = 1
    return m


@pytest.mark.parametrize("sigmoid", [True, False])
def test_consistency_near_zero_for_sharp_copy_and_larger_when_shifted(sigmoid):
    torch.manual_seed(0)
    gt = _square()
    target = gt if sigmoid else torch.cat([1 - gt, gt], 1)
    sharp = (target * 2 - 1) * 30.0
    shifted = (torch.roll(target, 3, dims=2) * 2 - 1) * 30.0
    loss = DualTaskConsistencyLoss(tau=0.5, sigmoid=sigmoid)
    same, moved = loss(sharp, target).item(), loss(shifted, target).item()
    assert same < 0.02 and moved > 10 * max(same, 1e-3) and moved > 0.2


def test_consistency_is_differentiable():
    logits = torch.randn(1, 3, 12, 12, 12, requires_grad=True)
    target = torch.nn.functional.one_hot(torch.randint(0, 3, (1, 12, 12, 12)), 3).permute(0, 4, 1, 2, 3).float()
    DualTaskConsistencyLoss()(logits, target).backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0


def test_egcnn_loss_regions_and_classes():
    """EGCNNLoss against its parts computed here independently: MONAI's Dice on the segmentation channels, the
    edge loss on Sobel-support edges of each region (or class) from scipy morphology, the consistency term (no
    noise: deterministic), summed with the weights; edge stream off: the Dice alone."""
    from scipy import ndimage

    torch.manual_seed(0)
    regions = torch.zeros(2, 3, 16, 16, 16)
    regions[:, 1, 4:12, 4:12, 4:12] = 1
    regions[:, 0, 6:10, 6:10, 6:10] = 1
    regions[:, 2, 7:9, 7:9, 7:9] = 1
    pred = torch.randn(2, 6, 16, 16, 16)

    def scipy_edges(masks):
        st = np.ones((3, 3, 3), bool)
        out = np.zeros(masks.shape, bool)
        for b in range(masks.shape[0]):
            for c in range(masks.shape[1]):
                m = masks[b, c].numpy() > 0
                out[b, c] = ndimage.binary_dilation(m, st) & ~ndimage.binary_erosion(m, st, border_value=1)
        return torch.from_numpy(out).float()

    loss_fn = EGCNNLoss(out_channels=3, sigmoid=True, edge_weight=0.7, consistency_weight=0.3)
    loss_fn.consistency.noise = False
    dice = DiceLoss(sigmoid=True, smooth_nr=0.0, smooth_dr=1e-5, squared_pred=True)(pred[:, :3], regions)
    edge = EdgeLoss()(pred[:, 3:], scipy_edges(regions))
    cons = DualTaskConsistencyLoss(sigmoid=True, noise=False)(pred[:, :3], regions)
    assert loss_fn(pred, regions).item() == pytest.approx((dice + 0.7 * edge + 0.3 * cons).item(), rel=1e-5)
    # softmax classes with a label-map target (KiTS): edges of each class's one-hot mask, background included
    labels = torch.zeros(2, 1, 16, 16, 16, dtype=torch.long)
    labels[:, :, 4:12, 4:12, 4:12] = 1
    labels[:, :, 6:9, 6:9, 6:9] = 2
    onehot = torch.nn.functional.one_hot(labels[:, 0], 3).permute(0, 4, 1, 2, 3).float()
    kits = EGCNNLoss(out_channels=3, sigmoid=False, consistency_weight=0.0)
    expected = DiceLoss(softmax=True, to_onehot_y=True, smooth_nr=0.0, smooth_dr=1e-5, squared_pred=True)(
        pred[:, :3], labels) + EdgeLoss()(pred[:, 3:], scipy_edges(onehot))
    assert kits(pred, labels).item() == pytest.approx(expected.item(), rel=1e-5)
    # edge stream off: Dice alone
    assert kits(pred[:, :3], labels).item() == pytest.approx(
        DiceLoss(softmax=True, to_onehot_y=True, smooth_nr=0.0, smooth_dr=1e-5, squared_pred=True)(
            pred[:, :3], labels).item(), rel=1e-6)
    with pytest.raises(ValueError, match="edge channels"):
        EGCNNLoss(out_channels=3)(torch.randn(1, 5, 8, 8, 8), regions[:1, :, :8, :8, :8])


def test_edge_free_crops_penalise_false_edges():
    """A target without any edge voxel: both edge-loss terms still penalise predicted edges, with a gradient
    (the balanced BCE's beta was 1 there, giving exactly 0; the Dice term sat at ~1 with a vanishing gradient)."""
    empty = torch.zeros(1, 1, 8, 8)
    logits = torch.full((1, 1, 8, 8), -6.0)  # confident background ...
    logits[0, 0, 2:6, 3] = 4.0  # ... and four false edges
    logits.requires_grad_(True)
    bce = BalancedBCEWithLogitsLoss()(logits, empty)
    p = torch.sigmoid(logits.detach())
    assert bce.item() == pytest.approx((0.01 * -torch.log1p(-p)).mean().item(), rel=1e-5)  # floor 0.01 by hand
    bce.backward()
    assert logits.grad[0, 0, 2:6, 3].min() > 1e-4, "pushes the false edges down"
    logits.grad = None
    dice_only = EdgeLoss(dice_weight=1.0, bce_weight=0.0)
    loss = dice_only(logits, empty)
    loss.backward()
    ours = logits.grad[0, 0, 2:6, 3].min()
    logits.grad = None
    DiceLoss(sigmoid=True, smooth_nr=1e-5, smooth_dr=1e-5)(logits, empty).backward()  # the previous smoothing
    assert ours > 1e-5 and ours > 1000 * logits.grad[0, 0, 2:6, 3].max()
    cleaner = logits.detach().clone()
    cleaner[0, 0, 2:6, 3] = -6.0
    assert dice_only(cleaner, empty) < 0.5 * loss.item(), "fewer false edges, lower loss"


def test_consistency_mask_is_the_predicted_boundary_with_or_without_grad():
    """A flat prediction has no boundary: only the ground-truth half of the loss counts, and the value is the same
    under autograd (an epsilon in the Sobel magnitude used to make every voxel 'boundary' there)."""
    target = _square()
    flat = torch.full_like(target, 5.0)  # everything foreground: no predicted boundary
    loss = DualTaskConsistencyLoss(sigmoid=True, noise=False)
    with torch.no_grad():
        plain = loss(flat, target).item()
    with_grad = loss(flat.clone().requires_grad_(True), target).item()
    assert with_grad == pytest.approx(plain, rel=1e-6, abs=1e-9)
    from transforms.edges import sobel_gradient_magnitude

    gt_mag = sobel_gradient_magnitude(target, 2, normalize=True)
    mag = sobel_gradient_magnitude(torch.sigmoid(flat / 0.5), 2, normalize=True)
    expected = 0.5 * ((mag - gt_mag).abs()[gt_mag > 1e-8]).mean().item()
    assert plain == pytest.approx(expected, rel=1e-5)
    x = torch.ones(1, 1, 6, 6, requires_grad=True)
    m = sobel_gradient_magnitude(x, 2)
    assert (m == 0).all()
    m.sum().backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("balanced, expected", [(True, 0.5), (False, 0.02)])
def test_edge_bce_balanced_or_plain_where_features_cannot_tell(balanced, expected):
    """Where every voxel looks the same and 2 % of them are edges, the best constant probability is the edge rate
    under the plain BCE and 0.5 under the class-balanced one: the balanced loss calls a voxel an edge once its chance
    passes about the edge rate, which is what fills a region the head cannot yet resolve."""
    target = torch.zeros(1, 1, 50, 50)
    target[0, 0, :, 0] = 1.0  # 50 of 2500 voxels: 2 %
    logit = torch.zeros(1, requires_grad=True)
    loss_fn = EdgeLoss(dice_weight=0.0, bce_weight=1.0, balanced=balanced)
    opt = torch.optim.SGD([logit], lr=20.0 if balanced else 5.0)
    for _ in range(300):
        opt.zero_grad()
        loss_fn(logit.expand_as(target), target).backward()
        opt.step()
    assert float(torch.sigmoid(logit)) == pytest.approx(expected, abs=0.01)


def test_egcnn_loss_passes_edge_bce_balanced():
    torch.manual_seed(0)
    pred, target = torch.randn(2, 6, 16, 16, 16), (torch.rand(2, 3, 16, 16, 16) > 0.7).float()
    plain, balanced = EGCNNLoss(3, edge_bce_balanced=False), EGCNNLoss(3)
    plain(pred, target), balanced(pred, target)
    assert plain.last["dice"] == balanced.last["dice"] and plain.last["edge"] != balanced.last["edge"]
    edge_logits = pred[:, 3:]
    from transforms import label_to_edge

    edge_gt = label_to_edge(target, 3, mode="both").float()
    expected = DiceLoss(sigmoid=True, smooth_nr=1.0, smooth_dr=1.0)(edge_logits, edge_gt) + \
        torch.nn.functional.binary_cross_entropy_with_logits(edge_logits, edge_gt)
    assert plain.last["edge"] == pytest.approx(float(expected), rel=1e-5)
