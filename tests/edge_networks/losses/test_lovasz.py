"""Lovász losses: against exact properties (hard predictions give 1 - Jaccard, piecewise linearity, finite
gradients with empty classes and void pixels) and against values of the authors' released PyTorch code
(bermanmaxim/LovaszSoftmax ``pytorch/lovasz_losses.py`` at 7d48792, run on the tensors below; not vendored)."""

from __future__ import annotations

import pytest
import torch

from edge_networks.losses.lovasz import LovaszHingeLoss, LovaszSoftmaxLoss, lovasz_grad

# fixed tensors (softmax logits (2, 3, 3, 4), labels with void 255 and class 2 absent from image 1; binary logits
# and labels (2, 3, 4)) and what the authors' lovasz_softmax(softmax(LOGITS), LABELS, classes, per_image,
# ignore=255) and lovasz_hinge(BLOG, BLAB, per_image, ignore=255) return for them
LOGITS = [[[[-0.2, 0.7, -1.6, 0.1], [1.3, -0.6, 3.2, -3.2], [-0.1, -0.6, 0.5, -0.4]],
           [[1.8, 0.4, 1.1, 0.8], [0.5, 1.9, -1.0, -3.3], [2.1, 1.0, -0.3, 0.1]],
           [[1.1, 4.5, 3.7, -2.4], [2.0, 0.9, 4.9, -0.3], [-1.0, -0.6, -0.7, 0.7]]],
          [[[0.1, -0.1, 0.9, -1.7], [-0.5, 0.3, 0.3, 1.4], [-1.9, 0.1, 1.3, 1.6]],
           [[-0.9, 4.4, -0.8, -0.3], [1.3, -4.7, 2.5, -0.5], [1.4, 2.2, 3.5, -2.9]],
           [[2.3, 4.1, -0.9, 3.5], [0.7, 1.0, 1.1, -0.5], [-1.2, 1.7, -2.6, 1.4]]]]
LABELS = [[[255, 255, 0, 1], [2, 1, 0, 1], [2, 0, 0, 1]], [[1, 1, 1, 1], [1, 1, 0, 1], [1, 1, 0, 1]]]
BLOG = [[[-0.8, 1.0, 1.2, -0.0], [4.5, -0.6, -1.4, -5.3], [-1.5, -3.2, -0.4, 2.1]],
        [[-0.0, 2.4, 1.5, 2.9], [2.9, 1.6, -0.3, 0.2], [-0.4, -0.2, 1.9, -0.2]]]
BLAB = [[[1, 0, 1, 1], [1, 0, 0, 1], [0, 1, 0, 1]], [[1, 0, 0, 1], [0, 0, 1, 1], [1, 1, 1, 255]]]
REFERENCE = {(False, "present"): 0.8130598664283752, (False, "all"): 0.8130598664283752,
             (True, "present"): 0.7933512330055237, (True, "all"): 0.8182309865951538}
REFERENCE_HINGE = {False: 1.8858026266098022, True: 1.8822275400161743}


@pytest.mark.parametrize(("per_image", "classes"), list(REFERENCE))
def test_softmax_matches_the_authors_code(per_image, classes):
    loss = LovaszSoftmaxLoss(classes=classes, per_image=per_image, ignore_index=255)
    out = loss(torch.tensor(LOGITS), torch.tensor(LABELS)[:, None])
    assert float(out) == pytest.approx(REFERENCE[(per_image, classes)], abs=1e-6)


@pytest.mark.parametrize("per_image", [False, True])
def test_hinge_matches_the_authors_code(per_image):
    out = LovaszHingeLoss(per_image=per_image, ignore_index=255)(torch.tensor(BLOG)[:, None], torch.tensor(BLAB))
    assert float(out) == pytest.approx(REFERENCE_HINGE[per_image], abs=1e-6)


def _jaccard(pred: torch.Tensor, ref: torch.Tensor) -> float:
    return float((pred & ref).sum() / (pred | ref).sum())


def test_hard_predictions_give_one_minus_jaccard():
    """On one-hot predictions the Lovász extension is the Jaccard loss itself: 1 - mean IoU over the classes."""
    g = torch.Generator().manual_seed(0)
    label = torch.randint(0, 3, (1, 1, 6, 7, 5), generator=g)
    pred = torch.where(torch.rand(label.shape, generator=g) < 0.3, torch.randint(0, 3, label.shape, generator=g), label)
    onehot = torch.nn.functional.one_hot(pred[:, 0], 3).movedim(-1, 1).float()
    expected = 1 - sum(_jaccard(pred == c, label == c) for c in range(3)) / 3
    assert float(LovaszSoftmaxLoss(softmax=False)(onehot, label)) == pytest.approx(expected, abs=1e-6)
    # binary: logits of +-1 (hinge errors 0 or 2) give 2 * (1 - IoU of the foreground)
    fg, ref = pred[:, :1] == 1, label == 1
    hinge = LovaszHingeLoss(per_image=False)(fg.float() * 2 - 1, ref.long())
    assert float(hinge) == pytest.approx(2 * (1 - _jaccard(fg, ref)), abs=1e-6)


def test_piecewise_linear_in_the_probabilities():
    """Between changes of the errors' order the loss is linear: equal steps give equal changes, and a step
    that reorders the errors changes the slope."""
    g = torch.Generator().manual_seed(1)
    label = torch.randint(0, 2, (1, 1, 40), generator=g)
    probas = torch.rand(1, 2, 40, generator=g)
    step = torch.randn(1, 2, 40, generator=g) * 1e-5
    loss = LovaszSoftmaxLoss(softmax=False)
    values = [float(loss(probas + k * step, label).double()) for k in range(3)]
    assert values[2] - values[1] == pytest.approx(values[1] - values[0], abs=1e-6)
    assert values[1] != values[0]
    # the gradient is the Lovász weights: constant inside a piece
    p = probas.clone().requires_grad_(True)
    loss(p, label).backward()
    q = (probas + step).clone().requires_grad_(True)
    loss(q, label).backward()
    assert torch.allclose(p.grad, q.grad)


def test_empty_classes_and_void_pixels_keep_gradients_finite():
    logits = torch.randn(2, 4, 5, 5, requires_grad=True)
    label = torch.zeros(2, 1, 5, 5, dtype=torch.long)  # classes 1..3 absent
    label[1, 0, :2] = 255
    for classes in ("present", "all", [1, 2]):
        for per_image in (False, True):
            out = LovaszSoftmaxLoss(classes=classes, per_image=per_image, ignore_index=255)(logits, label)
            (grad,) = torch.autograd.grad(out, logits)
            assert torch.isfinite(out.detach()) and torch.isfinite(grad).all()
            assert grad.abs().sum() > 0
    void = torch.full((2, 1, 5, 5), 255)  # every pixel void: zero loss, zero gradient
    out = LovaszSoftmaxLoss(ignore_index=255)(logits, void)
    (grad,) = torch.autograd.grad(out, logits)
    assert float(out.detach()) == 0.0 and float(grad.abs().sum()) == 0.0
    blog = torch.randn(2, 1, 5, 5, requires_grad=True)
    out = LovaszHingeLoss(ignore_index=255)(blog, void)
    assert float(out.detach()) == 0.0


def test_lovasz_grad_sums_to_the_jaccard_loss_of_all_wrong():
    gt = torch.tensor([0.0, 1.0, 1.0, 0.0, 1.0])
    assert torch.allclose(lovasz_grad(gt).cumsum(0)[-1], torch.tensor(1.0))  # J(everything wrong) = 1
    # J after each wrong pixel: 1/4, 2/4, 3/4, 4/5, 1 (a wrong background pixel grows the union only)
    assert torch.allclose(lovasz_grad(gt), torch.tensor([1 / 4, 1 / 4, 1 / 4, 1 / 20, 1 / 5]))


def test_bad_targets_are_refused():
    with pytest.raises(ValueError, match="class indices"):
        LovaszSoftmaxLoss()(torch.randn(2, 3, 4, 4), torch.zeros(2, 3, 4, 4))
    with pytest.raises(ValueError, match="binary"):
        LovaszHingeLoss()(torch.randn(2, 2, 4, 4), torch.zeros(2, 2, 4, 4))
    with pytest.raises(ValueError, match="classes"):
        LovaszSoftmaxLoss(classes="some")
