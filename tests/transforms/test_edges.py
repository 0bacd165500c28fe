"""The Sobel label-to-edge transform against scipy.ndimage references."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import Compose, EnsureChannelFirstd, LoadImaged
from scipy import ndimage

from transforms import LabelToEdge, LabelToEdged, label_to_edge, masks_from_labels, sobel_gradient_magnitude


def random_blobs(shape, seed, n_classes=1, thresh=0.6):
    """Label map of irregular blobs (smoothed noise thresholded), classes 1..n_classes."""
    rng = np.random.default_rng(seed)
    lab = np.zeros(shape, np.int64)
    for c in range(1, n_classes + 1):
        field = ndimage.gaussian_filter(rng.standard_normal(shape), 2.0)
        lab[field > thresh * field.std()] = c
    return lab


def ref_edges(mask, mode="inner", iterations=1):
    st = np.ones((3,) * mask.ndim, bool)
    eroded = ndimage.binary_erosion(mask, st, iterations=iterations, border_value=1)
    dilated = ndimage.binary_dilation(mask, st, iterations=iterations)
    return {"inner": mask & ~eroded, "outer": dilated & ~mask, "both": dilated & ~eroded}[mode]


def chessboard_dist_to(mask):
    """Chessboard distance of every voxel to the nearest True voxel of ``mask``."""
    if not mask.any():
        return np.full(mask.shape, np.inf)
    return ndimage.distance_transform_cdt(~mask, metric="chessboard")


@pytest.mark.parametrize("shape", [(64, 64), (40, 36, 32)])
@pytest.mark.parametrize("mode", ["inner", "outer", "both"])
def test_matches_scipy_morphology(shape, mode):
    lab = random_blobs(shape, seed=len(shape))
    out = LabelToEdge(mode=mode)(lab[None])
    assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.shape == (1, *shape)
    expected = ref_edges(lab > 0, mode)
    assert expected.any()
    np.testing.assert_array_equal(out[0] > 0, expected)


@pytest.mark.parametrize("shape", [(64, 64), (40, 36, 32)])
def test_within_one_voxel_of_scipy_sobel_boundary(shape):
    """Every true boundary voxel (scipy Sobel support) is within 1 voxel of an edge, and vice versa."""
    lab = random_blobs(shape, seed=11)
    m = (lab > 0).astype(np.float64)
    sob = np.sqrt(sum(ndimage.sobel(m, axis=a, mode="nearest") ** 2 for a in range(m.ndim))) > 1e-9
    for mode in ("inner", "both"):
        edge = LabelToEdge(mode=mode)(lab[None])[0] > 0
        assert chessboard_dist_to(edge)[sob].max() <= 1
        assert chessboard_dist_to(sob)[edge].max() <= 1
    # 'both' contains the whole Sobel support
    both = LabelToEdge(mode="both")(lab[None])[0] > 0
    assert not (sob & ~both).any()


def test_thin_line_keeps_edges_where_sobel_cancels():
    lab = np.zeros((20, 20, 20), np.uint8)
    lab[10, 10, 3:17] = 1  # a one-voxel-wide vessel
    plain_sobel = np.sqrt(sum(ndimage.sobel(lab.astype(float), axis=a) ** 2 for a in range(3)))
    assert plain_sobel[10, 10, 5:15].max() == 0  # the plain Sobel magnitude cancels on the line itself
    edge = LabelToEdge()(lab[None])[0] > 0
    np.testing.assert_array_equal(edge, lab > 0)  # inner edge = the whole line
    both = LabelToEdge(mode="both")(lab[None])[0] > 0
    assert both[lab > 0].all() and both.sum() > lab.sum()


def test_thin_sheet_2d():
    lab = np.zeros((16, 16), np.uint8)
    lab[4:12, 7:9] = 1  # two voxels wide
    edge = LabelToEdge()(lab[None])[0] > 0
    np.testing.assert_array_equal(edge, lab > 0)


def test_empty_label_gives_no_edges():
    out = LabelToEdge(labels=[1, 2])(np.zeros((1, 12, 12, 12), np.uint8))
    assert out.shape == (2, 12, 12, 12) and out.sum() == 0


def test_border_behaviour():
    lab = np.zeros((1, 16, 16), np.uint8)
    lab[0, :6, 4:12] = 1  # touches the top border
    default = LabelToEdge()(lab)[0] > 0
    assert not default[0, 5:11].any()  # the border is not a boundary
    np.testing.assert_array_equal(default, ref_edges(lab[0] > 0))
    with_border = LabelToEdge(border_as_edge=True)(lab)[0] > 0
    assert with_border[0, 4:12].all()
    st = np.ones((3, 3), bool)
    np.testing.assert_array_equal(with_border, (lab[0] > 0) & ~ndimage.binary_erosion(lab[0] > 0, st, border_value=0))


def test_thickness():
    lab = random_blobs((48, 48), seed=3)
    out = LabelToEdge(mode="both", thickness=2)(lab[None])[0] > 0
    np.testing.assert_array_equal(out, ref_edges(lab > 0, "both", iterations=2))


def test_label_map_classes_merge_and_one_hot():
    lab = random_blobs((32, 32, 24), seed=5, n_classes=2)
    per_class = LabelToEdge(labels=[1, 2])(lab[None]) > 0
    assert per_class.shape == (2, 32, 32, 24)
    for i, v in enumerate((1, 2)):
        np.testing.assert_array_equal(per_class[i], ref_edges(lab == v))
    merged = LabelToEdge(labels=[1, 2], merge=True)(lab[None]) > 0
    np.testing.assert_array_equal(merged[0], per_class.any(0))
    one_hot = np.stack([lab == v for v in (0, 1, 2)]).astype(np.float32)
    from_one_hot = LabelToEdge(include_background=False)(one_hot) > 0
    np.testing.assert_array_equal(from_one_hot, per_class)


def test_labels_rejected_for_multichannel():
    with pytest.raises(ValueError, match="single-channel"):
        LabelToEdge(labels=[1])(np.zeros((3, 8, 8), np.float32))
    with pytest.raises(ValueError, match="mode"):
        LabelToEdge(mode="thick")


def test_metatensor_meta_and_affine_kept():
    lab = random_blobs((24, 24, 16), seed=2)
    affine = torch.diag(torch.tensor([2.0, 2.0, 3.0, 1.0]))
    affine[:3, 3] = torch.tensor([10.0, -5.0, 7.0])
    mt = MetaTensor(torch.from_numpy(lab[None]), affine=affine, meta={"filename_or_obj": "case.nii.gz"})
    out = LabelToEdge()(mt)
    assert isinstance(out, MetaTensor) and out.dtype == torch.float32
    assert torch.equal(out.affine, affine) and out.meta["filename_or_obj"] == "case.nii.gz"
    np.testing.assert_array_equal(out[0].numpy() > 0, ref_edges(lab > 0))


def test_batch_equals_per_sample():
    batch = np.stack([np.stack([random_blobs((20, 20, 16), seed=s + c) for c in range(3)]) for s in (0, 10)])
    t = torch.from_numpy(batch > 0)
    out = LabelToEdge(spatial_dims=3)(t)
    assert out.shape == (2, 3, 20, 20, 16) and isinstance(out, torch.Tensor)
    for b in range(2):
        np.testing.assert_array_equal(out[b].numpy(), LabelToEdge()(batch[b]))
    fn = label_to_edge(t, spatial_dims=3)
    assert fn.dtype == torch.bool and torch.equal(fn.float(), out)


def test_dict_version_in_compose_keeps_geometry(tmp_path):
    import nibabel as nib

    lab = random_blobs((24, 20, 16), seed=4, n_classes=2).astype(np.uint8)
    affine = np.array([[0, 0, -0.8, 5], [0, -0.8, 0, 3], [-3.0, 0, 0, 1], [0, 0, 0, 1]])
    nib.save(nib.Nifti1Image(lab, affine), str(tmp_path / "seg.nii.gz"))
    pipeline = Compose(
        [
            LoadImaged("label", image_only=True),
            EnsureChannelFirstd("label"),
            LabelToEdged("label", labels=[1, 2], mode="both"),
        ]
    )
    d = pipeline({"label": str(tmp_path / "seg.nii.gz")})
    assert d["label"].shape == (1, 24, 20, 16) and d["label_edge"].shape == (2, 24, 20, 16)
    np.testing.assert_allclose(d["label_edge"].affine.numpy(), affine, atol=1e-6)
    np.testing.assert_array_equal(d["label_edge"][1].numpy() > 0, ref_edges(lab == 2, "both"))
    with pytest.raises(ValueError, match="edge_keys"):
        LabelToEdged(["a", "b"], edge_keys=["x"])


def test_sobel_magnitude_matches_scipy_and_is_differentiable():
    rng = np.random.default_rng(0)
    img = ndimage.gaussian_filter(rng.standard_normal((18, 16, 14)), 1.5)
    ref = np.sqrt(sum(ndimage.sobel(img, axis=a, mode="nearest") ** 2 for a in range(3)))
    x = torch.tensor(img[None, None], dtype=torch.float64, requires_grad=True)
    mag = sobel_gradient_magnitude(x, 3)
    np.testing.assert_allclose(mag[0, 0].detach().numpy(), ref, rtol=1e-5, atol=1e-5)
    mag.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_soft_edges():
    lab = np.zeros((1, 32, 32), np.uint8)
    lab[0, 8:24, 8:24] = 1
    soft = LabelToEdge(soft=True)(lab)[0]
    assert soft.min() >= 0 and soft.max() <= 1
    # a flat step gives 1 on either side of the boundary, 0 away from it
    assert soft[16, 7] == pytest.approx(1.0) and soft[16, 8] == pytest.approx(1.0)
    assert soft[16, 16] == 0 and soft[2, 2] == 0 and soft[16, 10] == 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    lab = torch.from_numpy(random_blobs((2, 3, 24, 24, 24), seed=9) > 0)
    cpu = label_to_edge(lab, 3, mode="both")
    gpu = label_to_edge(lab.cuda(), 3, mode="both")
    assert gpu.is_cuda and torch.equal(gpu.cpu(), cpu)


def test_sobel_cancels_only_one_voxel_lines_and_gaps():
    """What the module docstring says: Sobel's support misses one-voxel lines and gaps, nothing two voxels wide;
    ``mode="both"`` restores them."""
    row = torch.tensor([0, 0, 1, 0, 0, 1, 1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 1], dtype=torch.float32)
    img = row.repeat(5, 1)[None, None]  # vertical stripes: 1 wide, 2 wide, 3 wide, a 1-voxel gap
    support = (sobel_gradient_magnitude(img, 2) > 0)[0, 0, 2]
    both = label_to_edge(img.bool(), 2, mode="both")[0, 0, 2]
    missed = (both & ~support).nonzero().flatten().tolist()
    assert missed == [2, 12], "only the one-voxel line (x=2) and the one-voxel gap (x=12) cancel"
    assert not (support & ~both).any()


def test_soft_single_channel_label_thresholded_at_half():
    soft = torch.tensor([[[0.2, 0.4, 0.6, 0.9]]])
    assert masks_from_labels(soft[None], None).tolist() == [[[[False, False, True, True]]]]
    two = torch.cat([soft, soft])[None]
    assert masks_from_labels(two, None)[0, 0].tolist() == masks_from_labels(soft[None], None)[0, 0].tolist()


def test_spatial_dims_mismatch_raises():
    volume = MetaTensor(torch.zeros(1, 6, 6, 6), affine=torch.eye(4))
    with pytest.raises(ValueError, match="is a 3D image"):
        LabelToEdge(spatial_dims=2)(volume)
    with pytest.raises(ValueError, match="spatial_dims=3"):
        LabelToEdge(spatial_dims=3)(torch.zeros(6, 6))
    assert LabelToEdge(spatial_dims=3)(volume).shape == (1, 6, 6, 6)  # one image of spatial_dims + 1 dims
