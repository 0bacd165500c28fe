"""Per-image segmentation metrics of the 2D papers (CE-Net, ET-Net, BA-Net) and their communities.

Every function scores **one image** (binary masks of any spatial shape, channel-less); the papers report the mean
and standard deviation over images (:func:`summarise`). MONAI computes what it already has: the confusion matrix
(``get_confusion_matrix``), AUC (``compute_roc_auc``) and HD95 (``compute_hausdorff_distance``); scikit-image
computes the EM scores (``adapted_rand_error``, ``variation_of_information``). Written here: nnU-Net's empty-mask
convention on top, the vertical cup-to-disc ratio, ISIC 2018's thresholded Jaccard and the boundary F-score.

**Empty masks** (nnU-Net's convention, ``summary.json``): when reference and prediction are both empty, Dice,
Jaccard and the boundary F-score are NaN (no object, nothing to score: :func:`summarise` skips NaN); when only
one of them is empty they are 0 (and the overlap error 1). Sensitivity is NaN without reference foreground,
specificity NaN without reference background, HD95 NaN when either mask is empty. BA-Net's code instead counts an
empty reference with an empty prediction as 0: pass ``empty=0.0``.

**Regions.** ``roi`` (DRIVE's field-of-view mask) restricts the confusion-matrix metrics and AUC to its pixels;
without it they cover the whole image. Report which (CE-Net's DRIVE numbers are whole-image, most others are
inside the FOV).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from monai.metrics import compute_confusion_matrix_metric, compute_hausdorff_distance, compute_roc_auc
from monai.metrics.confusion_matrix import get_confusion_matrix
from scipy import ndimage

__all__ = [
    "edge_map_scores",
    "confusion",
    "dice",
    "jaccard",
    "overlap_error",
    "mean_iou",
    "accuracy",
    "sensitivity",
    "specificity",
    "auc",
    "hd95",
    "boundary_f_score",
    "edge_f_score",
    "vertical_cdr",
    "vcdr_error",
    "layer_boundary_positions",
    "layer_boundary_mae",
    "thresholded_jaccard",
    "v_rand",
    "v_info",
    "summarise",
    "binary_metrics",
]


def _np(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def _bool(x) -> np.ndarray:
    return _np(x) > 0 if _np(x).dtype != bool else _np(x)


def confusion(pred, ref, roi=None) -> tuple[float, float, float, float]:
    """``(tp, fp, tn, fn)`` pixel counts of binary ``pred`` against ``ref`` (inside ``roi`` when given), by MONAI's
    ``get_confusion_matrix``."""
    p, r = _bool(pred), _bool(ref)
    if p.shape != r.shape:
        raise ValueError(f"prediction shape {p.shape} differs from reference shape {r.shape}")
    if roi is not None:
        keep = _bool(roi)
        p, r = p[keep], r[keep]
    t = lambda a: torch.as_tensor(a.reshape(1, 1, -1), dtype=torch.float32)  # noqa: E731
    cm = get_confusion_matrix(t(p), t(r))[0, 0]
    return tuple(float(v) for v in cm)  # type: ignore[return-value]


def _cm_metric(name: str, pred, ref, roi=None) -> float:
    cm = torch.tensor([[confusion(pred, ref, roi)]])
    return float(compute_confusion_matrix_metric(name, cm)[0, 0])


def dice(pred, ref, empty: float = float("nan")) -> float:
    """Dice ``2|P∩R| / (|P| + |R|)``; ``empty`` when both masks are empty (NaN: nnU-Net)."""
    p, r = _bool(pred), _bool(ref)
    denom = p.sum() + r.sum()
    return empty if denom == 0 else float(2.0 * (p & r).sum() / denom)


def jaccard(pred, ref, empty: float = float("nan")) -> float:
    """Jaccard (IoU) ``|P∩R| / |P∪R|``; ``empty`` when both masks are empty."""
    p, r = _bool(pred), _bool(ref)
    union = (p | r).sum()
    return empty if union == 0 else float((p & r).sum() / union)


def overlap_error(pred, ref, empty: float = float("nan")) -> float:
    """CE-Net's overlap error ``E = 1 - IoU``; ``empty`` when both masks are empty."""
    j = jaccard(pred, ref, empty=float("nan"))
    return empty if np.isnan(j) else 1.0 - j


def mean_iou(pred, ref, roi=None) -> float:
    """Class-mean IoU of a binary segmentation: the mean of the foreground's and the background's IoU (inside
    ``roi``), the semantic-segmentation ``mIoU`` over the two classes (FCN's mean IU). A class absent from both
    masks is left out of the mean.

    ET-Net's tables give "mIoU" without defining it; its DRIVE value (77.44%) is above any vessel IoU that its
    accuracy allows and fits this two-class mean, so the ET-Net bundles report this and the foreground IoU
    (:func:`jaccard`) side by side.

    >>> mean_iou(np.array([1, 1, 0, 0]), np.array([1, 0, 0, 0]))  # foreground 1/2, background 2/3
    0.5833333333333333
    """
    tp, fp, tn, fn = confusion(pred, ref, roi)
    ious = [i / u for i, u in ((tp, tp + fp + fn), (tn, tn + fp + fn)) if u > 0]
    return float(np.mean(ious)) if ious else float("nan")


def accuracy(pred, ref, roi=None) -> float:
    """Pixel accuracy ``(TP + TN) / N`` (inside ``roi``)."""
    return _cm_metric("accuracy", pred, ref, roi)


def sensitivity(pred, ref, roi=None) -> float:
    """Sensitivity (recall) ``TP / (TP + FN)``; NaN without reference foreground (inside ``roi``)."""
    tp, fp, tn, fn = confusion(pred, ref, roi)
    return float("nan") if tp + fn == 0 else _cm_metric("sensitivity", pred, ref, roi)


def specificity(pred, ref, roi=None) -> float:
    """Specificity ``TN / (TN + FP)``; NaN without reference background (inside ``roi``)."""
    tp, fp, tn, fn = confusion(pred, ref, roi)
    return float("nan") if tn + fp == 0 else _cm_metric("specificity", pred, ref, roi)


def auc(prob, ref, roi=None) -> float:
    """Area under the ROC curve of pixel probabilities ``prob`` against binary ``ref`` (inside ``roi``), by MONAI's
    ``compute_roc_auc``; NaN when the reference holds one class only."""
    p, r = _np(prob).astype(np.float64), _bool(ref)
    if roi is not None:
        keep = _bool(roi)
        p, r = p[keep], r[keep]
    if r.all() or not r.any():
        return float("nan")
    return float(compute_roc_auc(torch.as_tensor(p.ravel()), torch.as_tensor(r.ravel().astype(np.float32))))


def hd95(pred, ref, spacing: Sequence[float] | None = None) -> float:
    """95th-percentile symmetric Hausdorff distance (MONAI's ``compute_hausdorff_distance``) in pixels, or in mm
    with the pixel ``spacing`` per axis; NaN when either mask is empty."""
    p, r = _bool(pred), _bool(ref)
    if not p.any() or not r.any():
        return float("nan")
    t = lambda a: torch.as_tensor(a[None, None].astype(np.float32))  # noqa: E731
    sp = None if spacing is None else [float(s) for s in spacing]
    return float(compute_hausdorff_distance(t(p), t(r), include_background=True, percentile=95, spacing=sp)[0, 0])


def _boundary(mask: np.ndarray) -> np.ndarray:
    """Pixels of ``mask`` with a 4-neighbour outside it (the image border counts as outside)."""
    return mask & ~ndimage.binary_erosion(mask, structure=ndimage.generate_binary_structure(mask.ndim, 1),
                                          border_value=0)


def boundary_f_score(pred, ref, tolerance: float = 2.0, empty: float = float("nan")) -> float:
    """Boundary F-score (Csurka et al. 2013; DAVIS's F): the harmonic mean of boundary precision (share of predicted
    boundary pixels within ``tolerance`` pixels of the reference boundary) and boundary recall (the converse).

    ``empty`` when both masks are empty; 0 when only one is.
    """
    return edge_f_score(_boundary(_bool(pred)), _boundary(_bool(ref)), tolerance, empty)


def edge_f_score(pred_edges, ref_edges, tolerance: float = 2.0, empty: float = float("nan")) -> float:
    """F-score of two edge maps (binary boundary pixels/voxels, e.g. an edge head's thresholded output against the
    label's edges): precision = share of predicted edge pixels within ``tolerance`` of a reference edge pixel,
    recall = the converse. ``empty`` when both are empty; 0 when only one is."""
    bp, br = _bool(pred_edges), _bool(ref_edges)
    if not bp.any() and not br.any():
        return empty
    if not bp.any() or not br.any():
        return 0.0
    d_to_r = ndimage.distance_transform_edt(~br)
    d_to_p = ndimage.distance_transform_edt(~bp)
    precision = float((d_to_r[bp] <= tolerance).mean())
    recall = float((d_to_p[br] <= tolerance).mean())
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def edge_map_scores(pred_edges, regions: Sequence, target_edges, far: float = 2.0) -> dict[str, float]:
    """How much an edge map (binary, e.g. an edge head's output at 0.5) is a boundary rather than a blob.

    Args:
        pred_edges: the predicted edge pixels/voxels.
        regions: the reference region masks (nested regions allowed); their one-pixel inner boundaries
            (``mask & ~erosion(mask)``, union) are the thin boundary.
        target_edges: the edge map the head was trained towards (e.g. Sobel-support edges, two pixels thick).
        far: distance (pixels) beyond which a predicted edge pixel counts as interior.

    Returns:
        ``bf1``, ``bf2``: :func:`edge_f_score` at 1 and 2 against ``target_edges``; ``thin_bf1``, ``thin_bf2``: the
        same against the thin boundary; ``interior``: the share of predicted edge pixels more than ``far`` from
        every thin boundary (0 for a boundary, large for a blob); ``thickness``: predicted edge pixels per
        thin-boundary pixel; ``fill`` and ``target_fill``: the share of the regions' pixels (their union) that the
        prediction and the target cover; ``core_fp``: the share of the regions' pixels off the target (the cores
        the head must leave open) that the prediction calls edge -- 1 for a blob, 0 for a boundary. On small
        nested regions every pixel lies near some boundary, so ``interior`` stays low even for a blob; ``fill``
        near 1 while ``target_fill`` is well below it, and ``core_fp`` near 1, show the blob there.
    """
    pred, target = _bool(pred_edges), _bool(target_edges)
    thin, union = np.zeros_like(pred), np.zeros_like(pred)
    for r in regions:
        r = _bool(r)
        thin |= r & ~ndimage.binary_erosion(r)
        union |= r
    away = ndimage.distance_transform_edt(~thin) > far if thin.any() else np.ones_like(thin)
    core = union & ~target
    return {"bf1": edge_f_score(pred, target, 1), "bf2": edge_f_score(pred, target, 2),
            "thin_bf1": edge_f_score(pred, thin, 1), "thin_bf2": edge_f_score(pred, thin, 2),
            "interior": float(away[pred].mean()) if pred.any() else float("nan"),
            "thickness": float(pred.sum() / thin.sum()) if thin.any() else float("nan"),
            "fill": float(pred[union].mean()) if union.any() else float("nan"),
            "target_fill": float(target[union].mean()) if union.any() else float("nan"),
            "core_fp": float(pred[core].mean()) if core.any() else float("nan")}


def vertical_cdr(disc, cup, vertical_axis: int = -1) -> float:
    """Vertical cup-to-disc ratio: the cup's vertical extent over the disc's (pixels along ``vertical_axis``).

    ``vertical_axis``: the image's up-down axis. MONAI's 2D order (``Image2DReader``, ``LoadImage2D``) is x first,
    so rows are the **last** axis (the default ``-1``); for a ``numpy.asarray(PIL.Image.open(f))`` array
    (rows first) pass ``0``. NaN without a disc; 0 without a cup.
    """
    d, c = _bool(disc), _bool(cup)
    axis = vertical_axis % d.ndim
    other = tuple(i for i in range(d.ndim) if i != axis)
    d_rows = np.nonzero(d.any(axis=other))[0]
    c_rows = np.nonzero(c.any(axis=other))[0]
    if len(d_rows) == 0:
        return float("nan")
    if len(c_rows) == 0:
        return 0.0
    return float((c_rows[-1] - c_rows[0] + 1) / (d_rows[-1] - d_rows[0] + 1))


def vcdr_error(pred_disc, pred_cup, ref_disc, ref_cup, vertical_axis: int = -1) -> float:
    """Absolute vertical cup-to-disc ratio error (REFUGE's ranking metric, averaged over images)."""
    return abs(vertical_cdr(pred_disc, pred_cup, vertical_axis) - vertical_cdr(ref_disc, ref_cup, vertical_axis))


def layer_boundary_positions(layers, num_classes: int, vertical_axis: int = -1) -> np.ndarray:
    """Depth of each layer boundary in each A-scan (column) of a retinal OCT label map.

    Boundary ``k`` (``1 <= k < num_classes``) is the top of layer ``k``: in each column, the number of pixels whose
    class is below ``k`` -- the first row of class ``>= k`` when the layers are ordered top to bottom, and a
    well-defined count when a prediction is not.

    Args:
        layers: class-index map, rows along ``vertical_axis`` (MONAI's x-first 2D order: ``-1``).
        num_classes: classes, background (vitreous) included.
        vertical_axis: the depth axis. Defaults to ``-1``.

    Returns:
        ``(num_classes - 1, columns)`` float array of positions in pixels.
    """
    lab = np.moveaxis(np.rint(_np(layers)).astype(np.int64), vertical_axis, -1)
    if lab.ndim != 2:
        raise ValueError(f"layers must be a 2D map, got shape {lab.shape}")
    return np.stack([(lab < k).sum(-1) for k in range(1, num_classes)]).astype(np.float64)


def layer_boundary_mae(pred_layers, ref_layers, num_classes: int, vertical_axis: int = -1) -> list[float]:
    """CE-Net's OCT metric: the mean absolute error, in pixels over the columns, of each layer boundary's depth
    (:func:`layer_boundary_positions`); one value per boundary ``1 .. num_classes - 1``.

    >>> ref = np.array([[0, 0, 1, 1, 2], [0, 1, 1, 2, 2]]).T  # two columns, rows first: vertical_axis=0
    >>> pred = np.array([[0, 1, 1, 1, 2], [0, 1, 1, 2, 2]]).T
    >>> layer_boundary_mae(pred, ref, 3, vertical_axis=0)  # boundary 1 off by 1 px in one of 2 columns
    [0.5, 0.0]
    """
    p = layer_boundary_positions(pred_layers, num_classes, vertical_axis)
    r = layer_boundary_positions(ref_layers, num_classes, vertical_axis)
    if p.shape != r.shape:
        raise ValueError(f"prediction and reference differ in shape: {p.shape} vs {r.shape}")
    return np.abs(p - r).mean(-1).tolist()


def thresholded_jaccard(values: Sequence[float], threshold: float = 0.65) -> float:
    """ISIC 2018's score: the mean of per-image Jaccard values, each below ``threshold`` counted as 0."""
    v = np.asarray([x for x in values if not np.isnan(x)], dtype=np.float64)
    return float(np.where(v < threshold, 0.0, v).mean()) if v.size else float("nan")


def _cells(membranes: np.ndarray) -> np.ndarray:
    from skimage.measure import label

    return label(~membranes, connectivity=1, background=0)


def v_rand(pred_membranes, ref_membranes) -> float:
    """ISBI 2012's foreground-restricted Rand score ``V_rand`` (higher is better): cells are the 4-connected
    components of the non-membrane pixels of each mask, scored by scikit-image's ``adapted_rand_error``
    (``V_rand = 1 - error``, the F-score of Rand split and merge over pixel pairs): pixels on reference membranes
    are not scored; the prediction's membrane pixels count as one segment of their own."""
    from skimage.metrics import adapted_rand_error

    seg, gt = _cells(_bool(pred_membranes)), _cells(_bool(ref_membranes))
    err, _, _ = adapted_rand_error(gt, seg, ignore_labels=(0,))
    return float(1.0 - err)


def v_info(pred_membranes, ref_membranes) -> float:
    """ISBI 2012's information-theoretic score ``V_info = 2 I(S;T) / (H(S) + H(T))`` (higher is better) on the
    same cells and pixels as :func:`v_rand`: scikit-image's ``variation_of_information`` gives the conditional
    entropy ``H(S|T)`` (bits); the entropies come from the label histograms of the scored pixels."""
    from skimage.metrics import variation_of_information

    seg, gt = _cells(_bool(pred_membranes)), _cells(_bool(ref_membranes))
    keep = gt > 0
    s, t = seg[keep], gt[keep]
    if s.size == 0:
        return float("nan")
    h_t_given_s, h_s_given_t = variation_of_information(s, t)  # (H(image1|image0), H(image0|image1)), bits

    def entropy(x):
        p = np.bincount(x.ravel()) / x.size
        p = p[p > 0]
        return float(-(p * np.log2(p)).sum())

    h_s, h_t = entropy(s), entropy(t)
    if h_s + h_t == 0:
        return 1.0
    mutual = h_s - h_s_given_t
    del h_t_given_s
    return float(np.clip(2 * mutual / (h_s + h_t), 0.0, 1.0))


def summarise(values: Sequence[float]) -> dict:
    """``{"mean", "std", "n", "n_nan"}`` over per-image values, NaN skipped (nnU-Net's ``nanmean``); std is the
    population std (``ddof=0``), as the papers' tables."""
    v = np.asarray(values, dtype=np.float64)
    ok = v[~np.isnan(v)]
    return {"mean": float(ok.mean()) if ok.size else float("nan"), "std": float(ok.std()) if ok.size else float("nan"),
            "n": int(ok.size), "n_nan": int(v.size - ok.size)}


def binary_metrics(pred, ref, prob=None, roi=None, spacing=None, tolerance: float = 2.0) -> dict[str, float]:
    """Every binary metric of one image: Dice, Jaccard, overlap error, accuracy, sensitivity, specificity, HD95
    (pixels; ``hd95_mm`` too with ``spacing``), boundary F-score at ``tolerance`` px, and AUC with ``prob``; the
    confusion-matrix metrics and AUC inside ``roi`` when given and ``*_whole`` over the whole image."""
    out = {"dice": dice(pred, ref), "jaccard": jaccard(pred, ref), "overlap_error": overlap_error(pred, ref),
           "hd95": hd95(pred, ref), f"boundary_f@{tolerance:g}": boundary_f_score(pred, ref, tolerance)}
    if spacing is not None:
        out["hd95_mm"] = hd95(pred, ref, spacing)
    for suffix, region in ([("", roi), ("_whole", None)] if roi is not None else [("", None)]):
        out[f"accuracy{suffix}"] = accuracy(pred, ref, region)
        out[f"sensitivity{suffix}"] = sensitivity(pred, ref, region)
        out[f"specificity{suffix}"] = specificity(pred, ref, region)
        if prob is not None:
            out[f"auc{suffix}"] = auc(prob, ref, region)
    return out
