"""The loss of the boundary aware networks (Hatamizadeh, Terzopoulos, Myronenko, MICCAI MLMI 2019)."""

from __future__ import annotations

from .egcnn import EGCNNLoss

__all__ = ["BoundaryAwareLoss"]


class BoundaryAwareLoss(EGCNNLoss):
    """Boundary aware networks' loss: ``1.0 * Dice(seg) + 0.5 * Dice(edge) + 0.1 * balanced BCE(edge)``.

    :class:`EGCNNLoss` with the paper's weights and no consistency term; ``dice_weight``/``edge_bce_weight`` set
    to 0 (or ``edge_weight=0``) gives the paper's "no edge loss" ablation. Edge ground truth: the label's spatial
    gradient support (Sobel, ``edge_mode="both"``), computed online.
    """

    def __init__(
        self,
        out_channels: int = 1,
        sigmoid: bool = True,
        edge_weight: float = 1.0,
        edge_dice_weight: float = 0.5,
        edge_bce_weight: float = 0.1,
        edge_mode: str = "both",
    ) -> None:
        super().__init__(
            out_channels,
            sigmoid=sigmoid,
            edge_weight=edge_weight,
            consistency_weight=0.0,
            edge_dice_weight=edge_dice_weight,
            edge_bce_weight=edge_bce_weight,
            edge_mode=edge_mode,
        )
