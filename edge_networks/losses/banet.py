"""BA-Net's total loss (Wang et al., MedIA 2022, eq. 7-12): ``L_D + sum_i lambda_i (L_i,E + L_i,S)``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from monai.losses import DiceCELoss
from torch.nn.modules.loss import _Loss

from transforms.edges import label_to_edge

__all__ = ["BANetLoss"]


class BANetLoss(_Loss):
    """Decoder loss plus, for each of the four encoder stages, the mini-MTL's segmentation and edge losses, on
    BA-Net's training output ``cat([seg, seg_1..seg_4, edge_1..edge_4])`` (:class:`~edge_networks.nets.banet.BANet`).

    - Decoder: binary cross-entropy (the paper, eq. 12: "the standard binary cross-entropy loss"), plus
      ``decoder_dice_weight`` x Dice (the authors' code trains with cross-entropy + Dice: ``decoder_dice_weight=1``).
      MONAI's :class:`~monai.losses.DiceCELoss`.
    - Stage ``i``: ``seg_weight * BCE(seg_i, y) + edge_weight * BCE(edge_i, edges(y))`` (eq. 7-9), weighted by
      ``stage_weights[i]`` (the paper's ``lambda_i = 1``).
    - Edge ground truth, online from the (augmented) label: the authors' code marks ``|y - avgpool3(y)| > 0``
      (zero padding), the pixels whose 3x3 neighbourhood is not uniform; that is exactly
      :func:`transforms.edges.label_to_edge` with ``mode="both"`` and ``border_as_edge=True`` (tested against their
      formula), the defaults here. For several classes, the union of the foreground classes' edges.

    Args:
        out_channels: segmentation channels of the decoder and of each stage.
        sigmoid: ``True`` (the paper's binary tasks): independent channels with region masks ``(B, out_channels,
            *S)`` as target, binary cross-entropy; ``False``: softmax classes with a label map ``(B, 1, *S)``,
            cross-entropy. Defaults to True.
        decoder_dice_weight: Dice on the decoder output (0: the paper; 1: the code). Defaults to 0.
        seg_weight, edge_weight: the stage segmentation and edge terms. Defaults to 1 and 1.
        stage_weights: ``lambda_1..lambda_4``. Defaults to ``(1, 1, 1, 1)``.
        edge_mode, border_as_edge: the edge target (see :mod:`transforms.edges`). Defaults to ``"both"``, True.

    Shapes: ``pred`` ``(B, 5 * out_channels + 4, *S)`` (or ``(B, out_channels, *S)``: the decoder term alone, for
    the network without the mini-MTL); ``target`` as ``sigmoid`` says. Returns a scalar; ``last`` holds the terms.
    """

    def __init__(self, out_channels: int, sigmoid: bool = True, decoder_dice_weight: float = 0.0,
                 seg_weight: float = 1.0, edge_weight: float = 1.0,
                 stage_weights: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0), edge_mode: str = "both",
                 border_as_edge: bool = True) -> None:
        super().__init__()
        if len(stage_weights) != 4:
            raise ValueError(f"stage_weights needs 4 values (one per encoder stage), got {list(stage_weights)}")
        self.out_channels, self.sigmoid = out_channels, sigmoid
        self.seg_weight, self.edge_weight, self.stage_weights = seg_weight, edge_weight, tuple(stage_weights)
        self.edge_mode, self.border_as_edge = edge_mode, border_as_edge
        self.decoder = DiceCELoss(sigmoid=sigmoid, softmax=not sigmoid, to_onehot_y=not sigmoid,
                                  lambda_dice=decoder_dice_weight, lambda_ce=1.0)
        self.decoder_dice_weight = decoder_dice_weight
        self.last: dict[str, float] = {}

    def edge_target(self, target: torch.Tensor) -> torch.Tensor:
        """``(B, 1, *S)`` float 0/1 edges of the target's foreground classes (their union)."""
        sd = target.ndim - 2
        if self.sigmoid:
            return label_to_edge(target, sd, mode=self.edge_mode, merge=True,
                                 border_as_edge=self.border_as_edge).float()
        classes = list(range(1, max(self.out_channels, 2)))
        return label_to_edge(target.long(), sd, labels=classes, mode=self.edge_mode, merge=True,
                             border_as_edge=self.border_as_edge).float()

    def _seg(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.sigmoid:
            return F.binary_cross_entropy_with_logits(logits, target.float())
        return F.cross_entropy(logits, target[:, 0].long())

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        c = self.out_channels
        if target.ndim == pred.ndim - 1:
            target = target.unsqueeze(1)
        if pred.shape[1] not in (c, 5 * c + 4):
            raise ValueError(f"BANetLoss(out_channels={c}) expects {c} decoder channels and optionally 4 x {c} stage "
                             f"segmentation and 4 stage edge channels ({5 * c + 4}), got {pred.shape[1]}")
        expected = c if self.sigmoid else 1
        if target.shape[1] != expected:
            raise ValueError(f"BANetLoss(sigmoid={self.sigmoid}) needs {expected} target channel(s), got "
                             f"{target.shape[1]}")
        if self.decoder_dice_weight == 0:  # the paper: cross-entropy alone (skip computing a Dice weighted by 0)
            decoder = self._seg(pred[:, :c], target)
        else:
            decoder = self.decoder(pred[:, :c], target)
        self.last = {"decoder": float(decoder.detach())}
        if pred.shape[1] == c:
            return decoder
        edges = self.edge_target(target)
        total = decoder
        for i, w in enumerate(self.stage_weights):
            seg_i = self._seg(pred[:, c * (i + 1) : c * (i + 2)], target)
            edge_i = F.binary_cross_entropy_with_logits(pred[:, 5 * c + i : 5 * c + i + 1], edges)
            self.last[f"seg{i + 1}"], self.last[f"edge{i + 1}"] = float(seg_i.detach()), float(edge_i.detach())
            total = total + w * (self.seg_weight * seg_i + self.edge_weight * edge_i)
        return total
