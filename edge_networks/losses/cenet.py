"""CE-Net's segmentation losses, by name: the paper's Dice loss, and the two the authors' released code suggests."""

from __future__ import annotations

from monai.losses import DiceCELoss, DiceLoss
from torch.nn.modules.loss import _Loss

__all__ = ["CENET_LOSSES", "cenet_loss"]

CENET_LOSSES = ("dice", "bce", "dice_bce")


def cenet_loss(name: str = "dice", sigmoid: bool = True) -> _Loss:
    """The loss ``name`` on logits of ``(B, C, *S)`` against labels ``(B, 1, *S)`` (softmax: class indices) or
    ``(B, C, *S)`` (sigmoid):

    - ``"dice"``: the paper's Dice loss (eq. 2: squared denominators), MONAI's ``DiceLoss(squared_pred=True)``;
    - ``"bce"``: binary cross-entropy alone (cross-entropy for softmax), what the authors' released code trains with:
      its ``dice_bce_loss`` computes BCE and Dice but returns the BCE term only;
    - ``"dice_bce"``: BCE plus a batch Dice (what that loss's name promises), MONAI's ``DiceCELoss(batch=True)``.

    Raises:
        ValueError: an unknown ``name``.

    >>> type(cenet_loss("bce")).__name__
    'DiceCELoss'
    """
    if name not in CENET_LOSSES:
        raise ValueError(f"unknown CE-Net loss_name {name!r}; choose one of {list(CENET_LOSSES)}")
    onehot = dict(sigmoid=sigmoid, softmax=not sigmoid, to_onehot_y=not sigmoid)
    if name == "dice":
        return DiceLoss(**onehot, squared_pred=True)
    return DiceCELoss(**onehot, batch=True, lambda_dice=0.0 if name == "bce" else 1.0)
