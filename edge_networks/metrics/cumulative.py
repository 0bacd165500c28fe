"""The per-image metrics as MONAI ``CumulativeIterationMetric`` objects, for bundle configs and ignite handlers.

>>> from monai.handlers import IgniteMetricHandler  # doctest: +SKIP
>>> handler = IgniteMetricHandler(metric_fn=PerImageMetric("boundary_f", tolerance=2))  # doctest: +SKIP

In a bundle config: ``{"_target_": "IgniteMetricHandler", "metric_fn": {"_target_":
"edge_networks.metrics.PerImageMetric", "name": "vcdr_error"}, "output_transform": "$monai.handlers.from_engine(['pred',
'label'])"}``.
"""

from __future__ import annotations

import numpy as np
import torch
from monai.metrics import CumulativeIterationMetric

from . import segmentation2d as m

__all__ = ["PerImageMetric", "PER_IMAGE_METRICS"]

_BINARY = {
    "dice": lambda p, r, roi, kw: m.dice(p, r, **kw),
    "jaccard": lambda p, r, roi, kw: m.jaccard(p, r, **kw),
    "thresholded_jaccard": lambda p, r, roi, kw: m.jaccard(p, r),
    "overlap_error": lambda p, r, roi, kw: m.overlap_error(p, r, **kw),
    "mean_iou": lambda p, r, roi, kw: m.mean_iou(p, r, roi),
    "accuracy": lambda p, r, roi, kw: m.accuracy(p, r, roi),
    "sensitivity": lambda p, r, roi, kw: m.sensitivity(p, r, roi),
    "specificity": lambda p, r, roi, kw: m.specificity(p, r, roi),
    "auc": lambda p, r, roi, kw: m.auc(p, r, roi),
    "hd95": lambda p, r, roi, kw: m.hd95(p, r, **kw),
    "boundary_f": lambda p, r, roi, kw: m.boundary_f_score(p, r, **kw),
    "v_rand": lambda p, r, roi, kw: m.v_rand(p, r),
    "v_info": lambda p, r, roi, kw: m.v_info(p, r),
}
PER_IMAGE_METRICS = (*_BINARY, "vcdr_error", "layer_boundary_mae")


def _spacing(img: torch.Tensor, b: int) -> list[float]:
    """Voxel spacing of batch item ``b`` from a MetaTensor's affine (column norms of its linear part)."""
    affine = getattr(img, "affine", None)
    if affine is None:
        raise ValueError("spacing='from_image' needs MetaTensor predictions with an affine")
    a = torch.as_tensor(affine, dtype=torch.float64)
    if a.ndim == 3:
        a = a[b] if a.shape[0] > b else a[0]
    r = a.shape[-1] - 1
    return torch.linalg.norm(a[:r, :r], dim=0).tolist()


class PerImageMetric(CumulativeIterationMetric):
    """One metric of :mod:`.segmentation2d` per image (and per channel), accumulated over iterations.

    Args:
        name: one of :data:`PER_IMAGE_METRICS`. ``auc`` takes probabilities in ``y_pred``, the others binary
            masks; ``vcdr_error`` takes two channels (disc including cup, cup) and gives one value per image.
        roi_channel: the last channel of ``y`` is a region of interest (DRIVE's FOV), not a class: the
            confusion-matrix metrics and AUC are computed inside it.
        kwargs: passed to the metric (``tolerance`` of ``boundary_f``, ``spacing`` of ``hd95``, ``empty``,
            ``vertical_axis`` of ``vcdr_error`` and ``layer_boundary_mae``; ``threshold`` of
            ``thresholded_jaccard``, default 0.65). ``layer_boundary_mae`` takes one-hot class maps (OCT layers,
            ``C`` classes) and gives, in channel ``k``, the depth error of the top boundary of class ``k`` (NaN in
            channel 0, which has none).
            ``spacing="from_image"`` takes each image's voxel spacing from the affine of ``y_pred`` (a MONAI
            ``MetaTensor``), so HD95 is in mm as BraTS and KiTS report it (MONAI's ignite ``HausdorffDistance``
            handler passes no spacing: voxels).

    ``aggregate()`` is the mean over images and channels with NaN skipped (nnU-Net's convention); ISIC 2018's
    thresholded Jaccard counts values below the threshold as 0 first. ``get_buffer()`` holds the per-image values
    ``(images, channels)``.
    """

    def __init__(self, name: str, roi_channel: bool = False, **kwargs) -> None:
        super().__init__()
        if name not in PER_IMAGE_METRICS:
            raise ValueError(f"unknown metric {name!r}; choose one of {list(PER_IMAGE_METRICS)}")
        self.name = name
        self.roi_channel = roi_channel
        self.threshold = kwargs.pop("threshold", 0.65) if name == "thresholded_jaccard" else None
        self.kwargs = kwargs

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """``y_pred``, ``y``: ``(B, C, *spatial)``; returns ``(B, C)`` (``(B, 1)`` for ``vcdr_error``)."""
        y_pred, y = torch.as_tensor(y_pred), torch.as_tensor(y)
        roi = None
        if self.roi_channel:
            y, roi = y[:, :-1], y[:, -1]
        if y_pred.shape != y.shape:
            raise ValueError(f"y_pred shape {tuple(y_pred.shape)} differs from y shape {tuple(y.shape)}")
        out = []
        kwargs = dict(self.kwargs)
        from_image = kwargs.get("spacing") == "from_image"
        for b in range(y.shape[0]):
            region = None if roi is None else roi[b]
            if from_image:
                kwargs["spacing"] = _spacing(y_pred, b)
            if self.name == "layer_boundary_mae":
                k = y.shape[1]
                errors = m.layer_boundary_mae(y_pred[b].argmax(0), y[b].argmax(0), k, **kwargs)
                out.append([float("nan"), *errors])
                continue
            if self.name == "vcdr_error":
                if y.shape[1] != 2:
                    raise ValueError(f"vcdr_error takes 2 channels (disc, cup), got {y.shape[1]}")
                out.append([m.vcdr_error(y_pred[b, 0], y_pred[b, 1], y[b, 0], y[b, 1], **kwargs)])
                continue
            out.append([_BINARY[self.name](y_pred[b, c], y[b, c], region, kwargs) for c in range(y.shape[1])])
        return torch.tensor(out, dtype=torch.float32, device=y.device)

    def aggregate(self, reduction: str | None = "mean"):  # type: ignore[override]
        data = self.get_buffer()
        if not isinstance(data, torch.Tensor):
            raise ValueError("the buffer holds no per-image values yet")
        values = data.detach().cpu().numpy().astype(np.float64).ravel()
        if self.threshold is not None:
            return torch.tensor(m.thresholded_jaccard(values.tolist(), self.threshold))
        if reduction in (None, "none"):
            return data
        return torch.tensor(m.summarise(values)["mean"])
