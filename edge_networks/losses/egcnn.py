"""EG-CNN's total loss (Hatamizadeh, Terzopoulos, Myronenko, MIDL 2020): semantic Dice, edge loss, dual-task
consistency loss, with the edge ground truth computed online from the label batch."""

from __future__ import annotations

import torch
from monai.losses import DiceLoss
from monai.networks.utils import one_hot
from torch.nn.modules.loss import _Loss

from transforms.edges import label_to_edge

from .edge import DualTaskConsistencyLoss, EdgeLoss

__all__ = ["EGCNNLoss"]


class EGCNNLoss(_Loss):
    """EG-CNN's total loss ``Dice(seg) + edge_weight * EdgeLoss(edge) + consistency_weight * DualTask(seg)``.

    The edge ground truth is computed online from the (augmented) label batch with the Sobel label-to-edge
    transform, on the batch's device. Works with EG-CNN's training output ``cat([seg, edge], 1)``; an input with
    only ``out_channels`` channels (edge stream off) gets the semantic Dice loss alone.

    Args:
        out_channels: segmentation channels (the first ``out_channels`` of the prediction).
        sigmoid: region outputs with sigmoid (BraTS TC/WT/ET, target = region masks); otherwise softmax classes
            with a label-map target ``(B, 1, *S)``.
        edge_weight, consistency_weight: weights of the edge and consistency terms.
        edge_dice_weight, edge_bce_weight: the two terms of the edge loss.
        edge_bce_balanced: the paper's class-balanced BCE; ``False``: plain BCE (see
            :class:`~edge_networks.losses.edge.EdgeLoss`). Defaults to ``True``.
        tau: Gumbel-softmax temperature.
        edge_mode, edge_thickness: edge ground truth definition (see :mod:`transforms.edges`); ``"both"`` is the
            support of the Sobel magnitude, as in the paper.
    """

    def __init__(
        self,
        out_channels: int,
        sigmoid: bool = True,
        edge_weight: float = 1.0,
        consistency_weight: float = 1.0,
        edge_dice_weight: float = 1.0,
        edge_bce_weight: float = 1.0,
        tau: float = 0.5,
        edge_mode: str = "both",
        edge_thickness: int = 1,
        edge_bce_balanced: bool = True,
    ) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.sigmoid = sigmoid
        self.edge_weight = edge_weight
        self.consistency_weight = consistency_weight
        self.edge_mode = edge_mode
        self.edge_thickness = edge_thickness
        if sigmoid:
            self.dice = DiceLoss(sigmoid=True, smooth_nr=0.0, smooth_dr=1e-5, squared_pred=True)
        else:
            self.dice = DiceLoss(softmax=True, to_onehot_y=True, smooth_nr=0.0, smooth_dr=1e-5, squared_pred=True)
        self.edge = EdgeLoss(edge_dice_weight, edge_bce_weight, balanced=edge_bce_balanced)
        self.consistency = DualTaskConsistencyLoss(tau=tau, sigmoid=sigmoid)
        self.last: dict[str, float] = {}

    def masks(self, target: torch.Tensor) -> torch.Tensor:
        """Target as per-channel masks ``(B, out_channels, *S)``."""
        if self.sigmoid:
            return target.float()
        return one_hot(target.long(), num_classes=self.out_channels, dim=1)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        seg = pred[:, : self.out_channels]
        loss = self.dice(seg, target)
        self.last = {"dice": float(loss.detach())}
        if pred.shape[1] == self.out_channels:
            return loss
        edge_logits = pred[:, self.out_channels :]
        masks = self.masks(target)
        edge_gt = label_to_edge(masks, pred.ndim - 2, mode=self.edge_mode, thickness=self.edge_thickness)
        if edge_gt.shape[1] != edge_logits.shape[1]:
            raise ValueError(f"{edge_logits.shape[1]} edge channels predicted, {edge_gt.shape[1]} in the target")
        edge = self.edge(edge_logits, edge_gt.to(edge_logits.dtype))
        self.last["edge"] = float(edge.detach())
        loss = loss + self.edge_weight * edge
        if self.consistency_weight:
            cons = self.consistency(seg, masks)
            self.last["consistency"] = float(cons.detach())
            loss = loss + self.consistency_weight * cons
        return loss
