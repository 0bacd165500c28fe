"""The 2D metrics against independent computations: hand-worked cases, scikit-learn, scipy, direct pair counting."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import ndimage
from sklearn.metrics import accuracy_score, f1_score, jaccard_score, recall_score, roc_auc_score

from edge_networks import metrics as M


def _random_pair(seed: int, shape=(40, 50)):
    rng = np.random.default_rng(seed)
    ref = ndimage.gaussian_filter(rng.random(shape), 3) > 0.5
    noise = ndimage.gaussian_filter(rng.standard_normal(shape), 2)
    prob = np.clip(ndimage.gaussian_filter(ref.astype(float), 1.5) + 2.0 * noise, 0, 1)
    pred = prob > 0.5
    assert 0.5 < M.dice(pred, ref) < 0.95, "a prediction that differs from the reference, but not wholly"
    return pred, ref, prob


def test_hand_worked_squares():
    """Two 4x4 squares offset by one pixel on a 10x10 image: |P|=|R|=16, |P∩R|=9."""
    p, r = np.zeros((10, 10), bool), np.zeros((10, 10), bool)
    p[2:6, 2:6], r[3:7, 3:7] = True, True
    assert M.dice(p, r) == pytest.approx(18 / 32)
    assert M.jaccard(p, r) == pytest.approx(9 / 23)
    assert M.overlap_error(p, r) == pytest.approx(14 / 23)
    assert M.confusion(p, r) == (9, 7, 77, 7)
    assert M.accuracy(p, r) == pytest.approx(86 / 100)
    assert M.sensitivity(p, r) == pytest.approx(9 / 16)
    assert M.specificity(p, r) == pytest.approx(77 / 84)
    assert M.mean_iou(p, r) == pytest.approx((9 / 23 + 77 / 91) / 2)  # background: 77 / (77 + 7 + 7)
    # boundaries: 4x4 rings of 12 px each; exactly two pixels, (5,3) and (3,5), lie on both rings: at tolerance 0
    # precision = recall = 2/12; within 1.5 px every ring pixel has a pixel of the other ring (corners: sqrt 2)
    assert M.boundary_f_score(p, r, tolerance=0) == pytest.approx(2 / 12)
    assert M.boundary_f_score(p, r, tolerance=1.5) == pytest.approx(1.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_against_scikit_learn(seed):
    pred, ref, prob = _random_pair(seed)
    y, yp = ref.ravel(), pred.ravel()
    assert M.dice(pred, ref) == pytest.approx(f1_score(y, yp))
    assert M.jaccard(pred, ref) == pytest.approx(jaccard_score(y, yp))
    assert M.accuracy(pred, ref) == pytest.approx(accuracy_score(y, yp))
    assert M.sensitivity(pred, ref) == pytest.approx(recall_score(y, yp))
    assert M.specificity(pred, ref) == pytest.approx(recall_score(y, yp, pos_label=0))
    assert M.mean_iou(pred, ref) == pytest.approx(jaccard_score(y, yp, average="macro"))
    assert M.auc(prob, ref) == pytest.approx(roc_auc_score(y, prob.ravel()))
    roi = np.zeros_like(ref)
    roi[5:35, 5:45] = True  # DRIVE's FOV: scored inside it only
    assert M.accuracy(pred, ref, roi) == pytest.approx(accuracy_score(ref[roi], pred[roi]))
    assert M.mean_iou(pred, ref, roi) == pytest.approx(jaccard_score(ref[roi], pred[roi], average="macro"))
    assert M.auc(prob, ref, roi) == pytest.approx(roc_auc_score(ref[roi], prob[roi]))


def _hd95_reference(p, r, spacing=(1.0, 1.0)):
    """Boundary pixels (4-connected erosion) and Euclidean distance transforms, 95th percentile each way, max."""
    def edges(m):
        return m & ~ndimage.binary_erosion(m)
    ep, er = edges(p), edges(r)
    d_pr = ndimage.distance_transform_edt(~er, sampling=spacing)[ep]
    d_rp = ndimage.distance_transform_edt(~ep, sampling=spacing)[er]
    return max(np.percentile(d_pr, 95), np.percentile(d_rp, 95))


@pytest.mark.parametrize("seed", [0, 3])
def test_hd95_against_distance_transforms(seed):
    pred, ref, _ = _random_pair(seed)
    assert M.hd95(pred, ref) == pytest.approx(_hd95_reference(pred, ref), rel=1e-5)
    assert M.hd95(pred, ref, spacing=(0.5, 2.0)) == pytest.approx(_hd95_reference(pred, ref, (0.5, 2.0)), rel=1e-5)


def test_empty_masks_follow_nnunet():
    e, full = np.zeros((5, 5), bool), np.zeros((5, 5), bool)
    full[1:3, 1:3] = True
    assert math.isnan(M.dice(e, e)) and math.isnan(M.jaccard(e, e)) and math.isnan(M.boundary_f_score(e, e))
    assert M.dice(full, e) == 0.0 and M.dice(e, full) == 0.0 and M.jaccard(full, e) == 0.0
    assert M.overlap_error(e, full) == 1.0 and M.boundary_f_score(e, full) == 0.0
    assert M.dice(e, e, empty=0.0) == 0.0  # BA-Net's code
    assert math.isnan(M.sensitivity(full, e)) and math.isnan(M.hd95(e, full))
    assert math.isnan(M.auc(np.random.default_rng(0).random((5, 5)), e))
    assert M.summarise([0.5, float("nan"), 1.0]) == {"mean": 0.75, "std": 0.25, "n": 2, "n_nan": 1}


def test_vertical_cup_to_disc_ratio():
    disc, cup = np.zeros((20, 30), bool), np.zeros((20, 30), bool)
    disc[4:14, 8:16] = True  # rows 4..13: 10 rows tall, 8 columns wide
    cup[6:10, 9:15] = True  # 4 rows tall
    assert M.vertical_cdr(disc, cup, vertical_axis=0) == pytest.approx(0.4)  # rows-first arrays
    assert M.vertical_cdr(disc.T, cup.T) == pytest.approx(0.4)  # MONAI's x-first order: rows last (default)
    assert M.vertical_cdr(disc.T, cup.T, vertical_axis=0) == pytest.approx(6 / 8)  # the horizontal ratio
    big = cup.copy()
    big[5:11, 9:15] = True
    assert M.vcdr_error(disc, big, disc, cup, vertical_axis=0) == pytest.approx(0.2)
    assert M.vertical_cdr(disc, np.zeros_like(cup), 0) == 0.0 and math.isnan(M.vertical_cdr(cup & False, cup, 0))


def test_isic_thresholded_jaccard():
    assert M.thresholded_jaccard([0.9, 0.64, 0.65, float("nan")]) == pytest.approx((0.9 + 0 + 0.65) / 3)
    assert M.thresholded_jaccard([0.5], threshold=0.4) == 0.5


def _pairs(labels: np.ndarray) -> np.ndarray:
    """Same-segment indicator for every pixel pair (direct pair counting, O(n^2): tiny images only)."""
    v = labels.ravel()
    return v[:, None] == v[None, :]


def test_em_scores_against_direct_counting():
    ref = np.zeros((12, 12), bool)
    ref[6, :] = True
    ref[:, 6] = True  # four cells
    pred = np.zeros_like(ref)
    pred[6, :] = True  # the vertical membrane missed: two cells, each a merge of two
    pred[2, 0:3] = True  # and a spurious wall that splits nothing
    from skimage.measure import label

    gt, seg = label(~ref, connectivity=1), label(~pred, connectivity=1)
    keep = (gt > 0).ravel()
    same_gt, same_seg = _pairs(gt)[np.ix_(keep, keep)], _pairs(seg)[np.ix_(keep, keep)]
    np.fill_diagonal(same_gt, False)
    np.fill_diagonal(same_seg, False)
    # Rand F-score of pixel pairs (what ISBI 2012 calls V_rand) over pixels of reference cells; the prediction's
    # membrane pixels form one segment of their own (label 0, as scikit-image counts the test image's labels)
    tp = (same_gt & same_seg).sum()
    precision, recall = tp / same_seg.sum(), tp / same_gt.sum()
    assert M.v_rand(pred, ref) == pytest.approx(2 * precision * recall / (precision + recall), rel=1e-6)
    # V_info: mutual information over the mean entropy, from the contingency table of the scored pixels
    s, t = seg.ravel()[keep], gt.ravel()[keep]
    joint = np.zeros((s.max() + 1, t.max() + 1))
    np.add.at(joint, (s, t), 1)
    joint /= joint.sum()
    ps, pt = joint.sum(1), joint.sum(0)
    nz = joint > 0
    mi = (joint[nz] * np.log2(joint[nz] / np.outer(ps, pt)[nz])).sum()
    h = lambda p: -(p[p > 0] * np.log2(p[p > 0])).sum()  # noqa: E731
    assert M.v_info(pred, ref) == pytest.approx(2 * mi / (h(ps) + h(pt)), rel=1e-6)
    assert M.v_rand(ref, ref) == pytest.approx(1.0) and M.v_info(ref, ref) == pytest.approx(1.0)


def test_per_image_metric_for_bundles():
    pred, ref, prob = _random_pair(5)
    pred2, ref2, _ = _random_pair(6)
    y_pred = torch.tensor(np.stack([pred, pred2])[:, None], dtype=torch.float32)
    y = torch.tensor(np.stack([ref, ref2])[:, None], dtype=torch.float32)
    metric = M.PerImageMetric("dice")
    metric(y_pred[:1], y[:1])
    metric(y_pred[1:], y[1:])  # two iterations
    assert metric.get_buffer().shape == (2, 1)
    assert float(metric.aggregate()) == pytest.approx((M.dice(pred, ref) + M.dice(pred2, ref2)) / 2)
    roi = np.zeros_like(ref)
    roi[5:35, 5:45] = True
    fov = M.PerImageMetric("accuracy", roi_channel=True)
    fov(y_pred[:1], torch.cat([y[:1], torch.tensor(roi[None, None], dtype=torch.float32)], 1))
    assert float(fov.aggregate()) == pytest.approx(M.accuracy(pred, ref, roi))
    disc_cup = torch.zeros(1, 2, 20, 30)
    disc_cup[0, 0, 8:16, 4:14], disc_cup[0, 1, 9:15, 6:10] = 1, 1  # x-first: rows are the last axis
    vc = M.PerImageMetric("vcdr_error")
    vc(disc_cup, disc_cup)
    assert float(vc.aggregate()) == 0.0
    tj = M.PerImageMetric("thresholded_jaccard")
    tj(y_pred, y)
    expected = [M.jaccard(pred, ref), M.jaccard(pred2, ref2)]
    assert float(tj.aggregate()) == pytest.approx(np.mean([v if v >= 0.65 else 0 for v in expected]))
    with pytest.raises(ValueError, match="unknown metric"):
        M.PerImageMetric("f1")


def test_binary_metrics_reports_fov_and_whole_image():
    pred, ref, prob = _random_pair(7)
    roi = np.zeros_like(ref)
    roi[:, 10:] = True
    out = M.binary_metrics(pred, ref, prob=prob, roi=roi, spacing=(0.5, 0.5), tolerance=2)
    assert {"accuracy", "accuracy_whole", "auc", "auc_whole", "hd95_mm", "boundary_f@2"} <= set(out)
    assert out["hd95_mm"] == pytest.approx(out["hd95"] * 0.5, rel=1e-5)
    assert out["accuracy_whole"] == pytest.approx(accuracy_score(ref.ravel(), pred.ravel()))


def test_per_image_metric_in_a_bundle_config_and_ignite_engine():
    """Built from a config by MONAI's ConfigParser and attached to an ignite engine by MONAI's IgniteMetricHandler,
    as a bundle's evaluator would: the engine's metric equals the mean of the per-image function."""
    from ignite.engine import Engine
    from monai.bundle import ConfigParser

    pairs = [_random_pair(s) for s in (8, 9, 10)]
    parser = ConfigParser({"imports": ["$import monai"], "handler": {
        "_target_": "IgniteMetricHandler",
        "metric_fn": {"_target_": "edge_networks.metrics.PerImageMetric", "name": "boundary_f", "tolerance": 2},
        "output_transform": "$monai.handlers.from_engine(['pred', 'label'])"}})
    handler = parser.get_parsed_content("handler")

    def step(engine, i):
        pred, ref, _ = pairs[i]
        return [{"pred": torch.tensor(pred[None], dtype=torch.float32),
                 "label": torch.tensor(ref[None], dtype=torch.float32)}]

    engine = Engine(step)
    handler.attach(engine, name="bf2")
    engine.run(range(len(pairs)), max_epochs=1)
    expected = np.mean([M.boundary_f_score(p, r, tolerance=2) for p, r, _ in pairs])
    assert engine.state.metrics["bf2"] == pytest.approx(expected)


def test_hd95_in_mm_from_the_images_affine():
    """``spacing="from_image"``: the MetaTensor's affine gives the spacing, per image, as BraTS/KiTS report HD95."""
    from monai.data import MetaTensor

    p, r = np.zeros((1, 12, 12, 12), bool), np.zeros((1, 12, 12, 12), bool)
    p[0, 2:6, 2:6, 2:6], r[0, 2:6, 2:6, 4:8] = True, True  # shifted by two voxels along the last axis
    affine = torch.diag(torch.tensor([1.0, 1.0, 3.0, 1.0]))
    pred = MetaTensor(torch.tensor(p, dtype=torch.float32), affine=affine)
    metric = M.PerImageMetric("hd95", spacing="from_image")
    metric([pred], [torch.tensor(r, dtype=torch.float32)])
    assert float(metric.aggregate()) == pytest.approx(M.hd95(p[0], r[0], (1.0, 1.0, 3.0)))
    assert float(metric.aggregate()) == pytest.approx(3.0 * M.hd95(p[0], r[0]))
    with pytest.raises(ValueError, match="MetaTensor"):
        M.PerImageMetric("hd95", spacing="from_image")(torch.tensor(p[None], dtype=torch.float32),
                                                        torch.tensor(r[None], dtype=torch.float32))


def _first_rows(layers: np.ndarray, k: int) -> np.ndarray:
    """Depth of boundary k per column by scanning down each column (rows first): the first row of class >= k."""
    out = []
    for col in layers.T:
        rows = np.nonzero(col >= k)[0]
        out.append(rows[0] if len(rows) else len(col))
    return np.asarray(out, dtype=float)


def test_layer_boundary_mae_against_column_scans():
    """On ordered layer maps (as OCT B-scans are) the boundary depth is the first row of each layer; the MAE per
    boundary is the mean over A-scans of the depth difference."""
    rng = np.random.default_rng(0)
    h, w, k = 40, 25, 5
    def layered(shift):
        tops = np.sort(rng.integers(2, h - 2, size=(k - 1, w)), axis=0) + shift
        rows = np.arange(h)[:, None]
        return sum((rows >= t[None, :]).astype(int) for t in tops)
    ref, pred = layered(0), layered(0)
    expected = [np.abs(_first_rows(pred, b) - _first_rows(ref, b)).mean() for b in range(1, k)]
    np.testing.assert_allclose(M.layer_boundary_mae(pred, ref, k, vertical_axis=0), expected)
    # MONAI's x-first order: the same maps transposed, depth along the last axis
    np.testing.assert_allclose(M.layer_boundary_mae(pred.T, ref.T, k), expected)
    assert M.layer_boundary_mae(ref, ref, k, vertical_axis=0) == [0.0] * (k - 1)
    # as a bundle metric on one-hot (B, C, W, H) maps: NaN for channel 0, then one value per boundary
    onehot = lambda a: torch.nn.functional.one_hot(torch.as_tensor(a.T), k).permute(2, 0, 1)[None].float()  # noqa: E731
    metric = M.PerImageMetric("layer_boundary_mae")
    values = metric(onehot(pred), onehot(ref))
    assert np.isnan(values[0, 0].item())
    np.testing.assert_allclose(values[0, 1:].numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(metric.aggregate().item(), np.mean(expected), rtol=1e-6)
