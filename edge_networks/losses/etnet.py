"""ET-Net's total loss (Zhang et al., MICCAI 2019, section 2.2): ``alpha * L_seg + (1 - alpha) * L_edge``, both
Lovász-Softmax, ``alpha = 0.3``."""

from __future__ import annotations

import torch
from torch.nn.modules.loss import _Loss

from transforms.edges import label_to_edge

from .lovasz import LovaszHingeLoss, LovaszSoftmaxLoss

__all__ = ["ETNetLoss"]


class ETNetLoss(_Loss):
    """``seg_weight * Lovasz(seg) + edge_weight * Lovasz-Softmax(edge)`` on ET-Net's training output
    ``cat([seg, edge], 1)`` (:class:`~edge_networks.nets.etnet.ETNet`), the paper's 0.3 and 0.7.

    The edge ground truth is computed online from the (augmented) label batch: the union of every class's edges by
    the project's label-to-edge transform (:func:`transforms.edges.label_to_edge`, ``merge=True``), as a
    two-class (non-edge, edge) target for the edge head's 2 logits. The paper does not define its edge target
    beyond "edge detection results"; the default ``edge_mode="both"`` is the support of the label map's Sobel
    gradient (one pixel on each side of every boundary between classes, as EG-CNN's target), ``"inner"`` the
    pixels of each class on its own boundary. A crop without any boundary still has a target (every pixel
    non-edge, the one class present), so false edges there are penalised.

    Args:
        out_channels: segmentation channels (the first ``out_channels`` of the prediction).
        sigmoid: ``False`` (the paper): softmax classes with a label-map target ``(B, 1, *S)``, Lovász-Softmax;
            ``True``: independent binary channels (region masks as target, ``(B, out_channels, *S)``, such as
            BraTS TC/WT/ET or one foreground), each channel's loss by ``binary``, averaged; the edge target is
            then the union of the regions' edges. Defaults to False.
        binary: with ``sigmoid``, each channel's loss: ``"softmax"`` (the paper's Lovász-Softmax over the two
            classes background/foreground, probabilities ``(1 - p, p)`` of the channel's sigmoid ``p``: the mean of
            both classes' IoU losses) or ``"hinge"`` (Berman's Lovász hinge on the logit: the foreground IoU alone, a
            different objective). Defaults to ``"softmax"``.
        seg_weight, edge_weight: the paper's ``alpha`` and ``1 - alpha``. Defaults to 0.3 and 0.7.
        edge_mode, edge_thickness: the edge target (see :mod:`transforms.edges`). Defaults to ``"both"``, 1.
        per_image: Lovász per image (averaged) instead of per batch. Defaults to False (Berman's default for the
            Lovász-Softmax; his Lovász hinge defaults to per image).
        ignore_index: void label value left out of both terms (for example 255). Defaults to None.

    Shapes: ``pred`` ``(B, out_channels + 2, *S)`` (or ``(B, out_channels, *S)``: the segmentation term alone,
    unweighted); ``target`` ``(B, 1, *S)`` class indices, or ``(B, out_channels, *S)`` masks with ``sigmoid``.
    Returns a scalar; ``last`` holds the two terms.
    """

    def __init__(self, out_channels: int, sigmoid: bool = False, seg_weight: float = 0.3, edge_weight: float = 0.7,
                 edge_mode: str = "both", edge_thickness: int = 1, per_image: bool = False,
                 ignore_index: int | None = None, binary: str = "softmax") -> None:
        super().__init__()
        if binary not in ("softmax", "hinge"):
            raise ValueError(f"binary must be 'softmax' or 'hinge', got {binary!r}")
        self.out_channels, self.sigmoid, self.binary = out_channels, sigmoid, binary
        self.seg_weight, self.edge_weight = seg_weight, edge_weight
        self.edge_mode, self.edge_thickness, self.ignore_index = edge_mode, edge_thickness, ignore_index
        self.seg = (LovaszHingeLoss(per_image=per_image, ignore_index=ignore_index) if sigmoid and binary == "hinge"
                    else LovaszSoftmaxLoss(per_image=per_image, ignore_index=ignore_index))
        self.edge = LovaszSoftmaxLoss(per_image=per_image, ignore_index=ignore_index)
        self.last: dict[str, float] = {}

    def edge_target(self, target: torch.Tensor) -> torch.Tensor:
        """``(B, 1, *S)`` 0/1 edges of the label map (or region masks) ``target``, void pixels kept as
        ``ignore_index``."""
        if self.sigmoid:  # region masks: the union of their edges
            return label_to_edge(target, target.ndim - 2, mode=self.edge_mode, thickness=self.edge_thickness,
                                 merge=True).long()
        label = target.long()
        void = label == self.ignore_index if self.ignore_index is not None else None
        if void is not None:
            label = label.masked_fill(void, 0)
        classes = list(range(1, max(self.out_channels, 2)))  # every foreground class
        edges = label_to_edge(label, target.ndim - 2, labels=classes, mode=self.edge_mode,
                              thickness=self.edge_thickness, merge=True).long()
        return edges.masked_fill(void, self.ignore_index) if void is not None else edges

    def _binary(self, logit: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """One sigmoid channel's loss: the Lovász hinge, or the two-class Lovász-Softmax (logits ``(0, z)``, whose
        softmax is ``(1 - sigmoid(z), sigmoid(z))``)."""
        if self.binary == "hinge":
            return self.seg(logit, mask)
        return self.seg(torch.cat([torch.zeros_like(logit), logit], dim=1), mask.long())

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if target.ndim == pred.ndim - 1:
            target = target.unsqueeze(1)
        if pred.shape[1] not in (self.out_channels, self.out_channels + 2):
            raise ValueError(f"ETNetLoss(out_channels={self.out_channels}) expects {self.out_channels} segmentation "
                             f"channels and optionally 2 edge channels, got {pred.shape[1]}")
        if self.sigmoid:
            if target.shape[1] != self.out_channels:
                raise ValueError(f"ETNetLoss(sigmoid=True) needs {self.out_channels} target mask channels, got "
                                 f"{target.shape[1]}")
            seg = torch.stack([self._binary(pred[:, c : c + 1], target[:, c : c + 1])
                               for c in range(self.out_channels)]).mean()
        else:
            seg = self.seg(pred[:, : self.out_channels], target)
        self.last = {"seg": float(seg.detach())}
        if pred.shape[1] == self.out_channels:
            return seg
        edge = self.edge(pred[:, self.out_channels :], self.edge_target(target))
        self.last["edge"] = float(edge.detach())
        return self.seg_weight * seg + self.edge_weight * edge
