"""CE-Net's losses by name: the paper's Dice, the released code's BCE alone, and BCE + Dice."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from edge_networks.losses import cenet_loss


def _soft_dice(prob, target, squared):
    """Per-channel Dice over the batch's spatial dims (MONAI's default reduction: mean over batch and channels)."""
    dims = tuple(range(2, prob.ndim))
    inter = (prob * target).sum(dims)
    denom = (prob**2).sum(dims) + (target**2).sum(dims) if squared else prob.sum(dims) + target.sum(dims)
    return (1 - (2 * inter + 1e-5) / (denom + 1e-5)).mean()


def test_cenet_losses_by_name():
    torch.manual_seed(0)
    logits, target = torch.randn(2, 1, 8, 8), (torch.rand(2, 1, 8, 8) > 0.5).float()
    bce = F.binary_cross_entropy_with_logits(logits, target)
    # the released code's dice_bce_loss returns its BCE term alone
    torch.testing.assert_close(cenet_loss("bce")(logits, target), bce)
    torch.testing.assert_close(cenet_loss("dice")(logits, target), _soft_dice(torch.sigmoid(logits), target, True))
    prob = torch.sigmoid(logits)  # batch Dice: one sum over the batch and the image (one channel)
    batch_dice = 1 - (2 * (prob * target).sum() + 1e-5) / (prob.sum() + target.sum() + 1e-5)
    torch.testing.assert_close(cenet_loss("dice_bce")(logits, target), bce + batch_dice)
    # softmax: cross-entropy against class indices
    multi, labels = torch.randn(2, 3, 8, 8), torch.randint(0, 3, (2, 1, 8, 8))
    torch.testing.assert_close(cenet_loss("bce", sigmoid=False)(multi, labels), F.cross_entropy(multi, labels[:, 0]))
    with pytest.raises(ValueError, match="unknown CE-Net loss_name 'focal'"):
        cenet_loss("focal")
