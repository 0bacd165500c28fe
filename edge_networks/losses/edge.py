"""Edge losses shared by the papers: class-balanced BCE (HED), the Dice + BCE edge loss, Gated-SCNN's dual-task
consistency loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from monai.losses import DiceLoss
from torch.nn.modules.loss import _Loss

from transforms.edges import sobel_gradient_magnitude

__all__ = ["BalancedBCEWithLogitsLoss", "EdgeLoss", "DualTaskConsistencyLoss"]


class BalancedBCEWithLogitsLoss(_Loss):
    """Class-balanced binary cross-entropy for edges (HED / CASENet, as EG-CNN and boundary-aware nets use).

    ``L = mean_voxels[ -beta * y * log(p) - (1 - beta) * (1 - y) * log(1 - p) ]`` with ``p = sigmoid(logits)`` and
    ``beta = |non-edge voxels| / |voxels|``, computed per sample and channel from the target: the rare edge
    voxels weigh ``beta`` (close to 1), the many non-edge voxels ``1 - beta``.

    A crop without any edge voxel (a tumour-free crop, a KiTS negative crop) would give ``beta = 1``: a loss of
    exactly 0 and no gradient, so false edges there were never penalised. The non-edge weight is therefore at
    least ``min_negative_weight`` (default 0.01, about what a crop with 1 % edge voxels gives them).

    Args:
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
        min_negative_weight: floor of the non-edge voxels' weight ``1 - beta``.

    Shapes: ``logits``, ``target``: ``(B, C, *S)``; returns a scalar (``reduction="mean"``) or ``(B, C)``
    (``"none"``).
    """

    def __init__(self, reduction: str = "mean", min_negative_weight: float = 0.01) -> None:
        super().__init__(reduction=reduction)
        self.min_negative_weight = min_negative_weight

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if logits.shape != target.shape:
            raise ValueError(f"logits {tuple(logits.shape)} and target {tuple(target.shape)} differ")
        target = target.to(logits.dtype)
        dims = tuple(range(2, logits.ndim))
        beta = 1.0 - target.mean(dim=dims, keepdim=True)  # fraction of non-edge voxels
        weight = beta * target + (1.0 - beta).clamp_min(self.min_negative_weight) * (1.0 - target)
        per_voxel = F.binary_cross_entropy_with_logits(logits, target, weight=weight, reduction="none")
        per_channel = per_voxel.mean(dim=dims)
        if self.reduction == "none":
            return per_channel
        return per_channel.sum() if self.reduction == "sum" else per_channel.mean()


class EdgeLoss(_Loss):
    """``dice_weight * Dice(sigmoid(logits), y) + bce_weight * balanced BCE(logits, y)`` on binary edge maps.

    ``balanced=False`` uses the plain (unweighted) BCE instead. The class-balanced BCE weighs an edge voxel 25-100
    times a non-edge voxel on 64^3 crops of small tumours, so at its optimum a voxel is called an edge
    (``p > 0.5``) once its chance of being one passes 1-4 %: where the features cannot yet tell a thin band from
    the region inside it, the head fills the region (HED's thick edges). The demo trains with ``balanced=False``
    for that reason (what it did there: docs/research_notes.md, "The edge head: a boundary or a blob?"); the
    paper's balanced BCE stays the default.

    The Dice term is smoothed by 1 in numerator and denominator (``1 - (2|P∩Y| + 1) / (|P| + |Y| + 1)``): on a crop
    without edges it is ``|P| / (|P| + 1)``, which falls as false edges are removed (with MONAI's default 1e-5 it
    sat at about 1 with a vanishing gradient); on crops with edges, hundreds of edge voxels make the 1 negligible.
    """

    def __init__(self, dice_weight: float = 1.0, bce_weight: float = 1.0, balanced: bool = True) -> None:
        super().__init__()
        self.dice_weight = dice_weight
        self.bce_weight = bce_weight
        self.balanced = balanced
        self.dice = DiceLoss(sigmoid=True, smooth_nr=1.0, smooth_dr=1.0)
        self.bce = BalancedBCEWithLogitsLoss()

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.balanced:
            bce = self.bce(logits, target)
        else:
            bce = F.binary_cross_entropy_with_logits(logits, target.to(logits.dtype))
        return self.dice_weight * self.dice(logits, target) + self.bce_weight * bce


class DualTaskConsistencyLoss(_Loss):
    """Dual-task (consistency) loss of Gated-SCNN, used by EG-CNN.

    A differentiable sample of the segmentation -- Gumbel-softmax over the classes with temperature ``tau`` (for
    sigmoid outputs the binary version, logistic noise) -- has its spatial gradient magnitude (normalised Sobel)
    compared by L1 with the ground truth's; the L1 map is averaged over voxels where the predicted boundary is
    non-zero and over voxels where the true boundary is non-zero, half each.

    Args:
        tau: Gumbel-softmax temperature (0.5 in Gated-SCNN).
        sigmoid: multi-label (sigmoid) outputs such as BraTS regions; otherwise softmax over classes.
        threshold: magnitude above which a voxel counts as boundary (Gated-SCNN: 1e-8).
        noise: add Gumbel noise (``False``: plain temperature softmax, deterministic).

    Shapes: ``logits`` ``(B, C, *S)``; ``target`` one-hot/region masks ``(B, C, *S)``.
    """

    def __init__(self, tau: float = 0.5, sigmoid: bool = False, threshold: float = 1e-8, noise: bool = True) -> None:
        super().__init__()
        self.tau = tau
        self.sigmoid = sigmoid
        self.threshold = threshold
        self.noise = noise

    def sample(self, logits: torch.Tensor) -> torch.Tensor:
        if self.sigmoid:
            if self.noise:
                u = torch.rand_like(logits).clamp_(1e-6, 1 - 1e-6)
                logits = logits + torch.log(u) - torch.log1p(-u)
            return torch.sigmoid(logits / self.tau)
        if self.noise:
            return F.gumbel_softmax(logits, tau=self.tau, hard=False, dim=1)
        return torch.softmax(logits / self.tau, dim=1)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        spatial_dims = logits.ndim - 2
        pred_mag = sobel_gradient_magnitude(self.sample(logits.float()), spatial_dims, normalize=True)
        with torch.no_grad():
            gt_mag = sobel_gradient_magnitude(target.float(), spatial_dims, normalize=True)
        l1 = (pred_mag - gt_mag).abs()
        pred_mask = (pred_mag > self.threshold).detach().to(l1.dtype)
        gt_mask = (gt_mag > self.threshold).to(l1.dtype)
        loss_pred = (l1 * pred_mask).sum() / pred_mask.sum().clamp_min(1.0)
        loss_gt = (l1 * gt_mask).sum() / gt_mask.sum().clamp_min(1.0)
        return 0.5 * (loss_pred + loss_gt)
