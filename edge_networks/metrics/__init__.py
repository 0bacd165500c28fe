"""Per-image 2D segmentation metrics (the papers' and their communities'), and MONAI metric objects for them."""

from .cumulative import PER_IMAGE_METRICS, PerImageMetric
from .segmentation2d import (
    accuracy,
    auc,
    binary_metrics,
    boundary_f_score,
    confusion,
    dice,
    hd95,
    jaccard,
    overlap_error,
    sensitivity,
    specificity,
    summarise,
    thresholded_jaccard,
    v_info,
    v_rand,
    vcdr_error,
    vertical_cdr,
)

__all__ = [
    "PER_IMAGE_METRICS",
    "PerImageMetric",
    "accuracy",
    "auc",
    "binary_metrics",
    "boundary_f_score",
    "confusion",
    "dice",
    "hd95",
    "jaccard",
    "overlap_error",
    "sensitivity",
    "specificity",
    "summarise",
    "thresholded_jaccard",
    "v_info",
    "v_rand",
    "vcdr_error",
    "vertical_cdr",
]
