"""The Lovász losses (Berman, Rannen Triki, Blaschko, CVPR 2018, arXiv:1705.08790): convex surrogates of the
Jaccard (IoU) loss through its Lovász extension. MONAI has none.

- :class:`LovaszSoftmaxLoss`: multi-class, on softmax probabilities (ET-Net's segmentation loss).
- :class:`LovaszHingeLoss`: binary, the Lovász extension of the hinge errors of logits.

Both work per batch or per image, take an ``ignore_index`` (void pixels, such as 255 in VOC-style labels), and are
N-D: the pixels of ``(B, C, *spatial)`` are flattened, as the authors' code does for 2D. Written from the paper's
Algorithm 1 and checked against the authors' released PyTorch code on fixed tensors (tests).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch.nn.modules.loss import _Loss

__all__ = ["lovasz_grad", "LovaszSoftmaxLoss", "LovaszHingeLoss"]


def lovasz_grad(gt_sorted: torch.Tensor) -> torch.Tensor:
    """Gradient of the Lovász extension of the Jaccard loss at errors sorted in decreasing order (Algorithm 1).

    Args:
        gt_sorted: ``(..., P)`` ground truth (0/1) of the ``P`` pixels in the order of decreasing error.

    Returns:
        ``(..., P)``: ``J(1..i) - J(1..i-1)``, the Jaccard loss ``J`` of predicting the first ``i`` pixels wrong.

    >>> lovasz_grad(torch.tensor([1.0, 0.0, 1.0]))
    tensor([0.5000, 0.1667, 0.3333])
    """
    gt_sorted = gt_sorted.float()
    total = gt_sorted.sum(-1, keepdim=True)
    intersection = total - gt_sorted.cumsum(-1)
    union = total + (1.0 - gt_sorted).cumsum(-1)  # >= 1 from the first pixel on
    jaccard = 1.0 - intersection / union
    return torch.cat([jaccard[..., :1], jaccard[..., 1:] - jaccard[..., :-1]], dim=-1)


def _flat(values: torch.Tensor, target: torch.Tensor, ignore_index: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(C, *S)`` values and ``(1, *S)`` target -> ``(C, P)`` and ``(P,)`` without the ignored pixels."""
    values, target = values.reshape(values.shape[0], -1), target.reshape(-1)
    if ignore_index is not None:
        keep = target != ignore_index
        values, target = values[:, keep], target[keep]
    return values, target


class LovaszSoftmaxLoss(_Loss):
    """Multi-class Lovász-Softmax loss: per class ``c``, the Lovász extension of the Jaccard loss at the errors
    ``|1[y = c] - p_c|``, averaged over classes.

    Args:
        softmax: apply a softmax over the channels to the input (logits); False: the input is probabilities.
            Defaults to True.
        classes: ``"present"`` (the classes present in the target, per image with ``per_image``), ``"all"``, or a
            list of class indices to average. Defaults to ``"present"``.
        per_image: the loss of each image, averaged; otherwise one loss over the batch's pixels. Defaults to False.
        ignore_index: target value of pixels left out (void). Defaults to None.

    Shapes: ``input`` ``(B, C, *S)`` logits (or probabilities); ``target`` ``(B, 1, *S)`` or ``(B, *S)`` class
    indices. Returns a scalar. A batch (or image) whose pixels are all ignored, or with no class to average,
    gives 0 with a zero gradient (the authors' convention).

    >>> logits = torch.tensor([[[[9.0, -9.0]], [[-9.0, 9.0]]]])  # (1, 2, 1, 2): confident and right
    >>> round(float(LovaszSoftmaxLoss()(logits, torch.tensor([[[[0, 1]]]]))), 4)
    0.0
    """

    def __init__(self, softmax: bool = True, classes: str | Sequence[int] = "present", per_image: bool = False,
                 ignore_index: int | None = None) -> None:
        super().__init__()
        if isinstance(classes, str) and classes not in ("present", "all"):
            raise ValueError(f"classes must be 'present', 'all' or a list of class indices, got {classes!r}")
        self.softmax, self.classes, self.per_image, self.ignore_index = softmax, classes, per_image, ignore_index

    def _flat_loss(self, probas: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``probas`` ``(C, P)``, ``target`` ``(P,)`` -> the mean over the chosen classes."""
        n_classes = probas.shape[0]
        if probas.numel() == 0:
            return probas.sum() * 0.0
        chosen = list(range(n_classes)) if isinstance(self.classes, str) else [int(c) for c in self.classes]
        fg = (target[None] == torch.as_tensor(chosen, device=target.device)[:, None]).to(probas.dtype)  # (K, P)
        if self.classes == "present":
            present = fg.sum(-1) > 0
            fg, chosen = fg[present], [c for c, p in zip(chosen, present.tolist()) if p]
            if not chosen:
                return probas.sum() * 0.0
        errors = (fg - probas[chosen]).abs()
        errors_sorted, order = torch.sort(errors, dim=-1, descending=True)
        grad = lovasz_grad(torch.gather(fg, -1, order))
        return (errors_sorted * grad).sum(-1).mean()

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if target.ndim == input.ndim - 1:
            target = target.unsqueeze(1)
        if target.shape[1] != 1 or target.shape[0] != input.shape[0] or target.shape[2:] != input.shape[2:]:
            raise ValueError(f"target {tuple(target.shape)} must be class indices (B, 1, *S) for input "
                             f"{tuple(input.shape)}")
        probas = F.softmax(input.float(), dim=1) if self.softmax else input.float()
        target = target.long()
        if self.per_image:
            return torch.stack([self._flat_loss(*_flat(p, t, self.ignore_index)) for p, t in zip(probas, target)]
                               ).mean()
        flat_p = probas.movedim(1, 0).reshape(probas.shape[1], -1)
        return self._flat_loss(*_flat(flat_p, target.movedim(1, 0).reshape(1, -1), self.ignore_index))


class LovaszHingeLoss(_Loss):
    """Binary Lovász hinge loss: the Lovász extension of the Jaccard loss at the hinge errors
    ``max(0, 1 - s * logit)`` with signs ``s = 2y - 1``.

    Args:
        per_image: the loss of each image, averaged; otherwise one loss over the batch's pixels. Defaults to True,
            as the authors' code.
        ignore_index: target value of pixels left out (void). Defaults to None.

    Shapes: ``input`` ``(B, 1, *S)`` logits; ``target`` ``(B, 1, *S)`` (or ``(B, *S)``) 0/1. Returns a scalar.

    >>> round(float(LovaszHingeLoss()(torch.tensor([[[[2.0, -2.0]]]]), torch.tensor([[[[1, 0]]]]))), 4)
    0.0
    """

    def __init__(self, per_image: bool = True, ignore_index: int | None = None) -> None:
        super().__init__()
        self.per_image, self.ignore_index = per_image, ignore_index

    @staticmethod
    def _flat_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits = logits.reshape(-1)
        if logits.numel() == 0:
            return logits.sum() * 0.0
        signs = 2.0 * target.float() - 1.0
        errors_sorted, order = torch.sort(1.0 - logits * signs, descending=True)
        return torch.dot(F.relu(errors_sorted), lovasz_grad(target[order]))

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if target.ndim == input.ndim - 1:
            target = target.unsqueeze(1)
        if input.shape[1] != 1 or target.shape != input.shape:
            raise ValueError(f"binary Lovász hinge: input {tuple(input.shape)} must be (B, 1, *S) logits and target "
                             f"{tuple(target.shape)} the same shape")
        logits, target = input.float(), target.long()
        if self.per_image:
            return torch.stack([self._flat_loss(*_flat(x, t, self.ignore_index)) for x, t in zip(logits, target)]
                               ).mean()
        return self._flat_loss(*_flat(logits.reshape(1, -1), target.reshape(1, -1), self.ignore_index))
