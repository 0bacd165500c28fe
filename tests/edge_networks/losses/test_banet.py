"""BA-Net's loss: the edge target equals the authors' ``|y - avgpool3(y)| > 0`` exactly (and which transform mode
that is), the total against its terms computed by hand, the code's Dice option, the softmax form, shape errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from monai.losses import DiceLoss
from scipy import ndimage

from edge_networks.losses import BANetLoss
from transforms.edges import label_to_edge


def _blobs(seed: int, shape, spatial_dims: int) -> torch.Tensor:
    """Random binary blobs touching the border, plus one-pixel lines and holes (the cases where edge definitions
    differ)."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.rand((1, 1, *shape), generator=g).numpy()
    m = ndimage.gaussian_filter(noise[0, 0], 1.5) > 0.5
    m[..., 3] = True  # a one-pixel line through the image
    m[(slice(2, 3),) * spatial_dims] = False  # a one-pixel hole
    return torch.from_numpy(m)[None, None].float()


def _authors_edges(y: torch.Tensor) -> torch.Tensor:
    """The authors' criterion.py: ``boundary = |y - avg_pool(y, 3, 1, 1)|; boundary[boundary > 0] = 1``."""
    pool = F.avg_pool2d if y.ndim == 4 else F.avg_pool3d
    return (torch.abs(y - pool(y, 3, 1, 1)) > 0).float()


@pytest.mark.parametrize(("spatial_dims", "shape"), [(2, (40, 50)), (2, (17, 23)), (3, (12, 14, 16))])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_edge_target_is_exactly_the_authors_formula(spatial_dims, shape, seed):
    """``label_to_edge(mode="both", border_as_edge=True)`` reproduces the code's edges voxel for voxel: both sides
    of every boundary, 8 (26) neighbours, and objects touching the image border edged there (zero padding). The
    project's default border handling (replicate) differs exactly at the border."""
    y = _blobs(seed, shape, spatial_dims)
    ref = _authors_edges(y)
    assert 0 < ref.mean() < 1
    ours = BANetLoss(1).edge_target(y)
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(label_to_edge(y, spatial_dims, mode="both", border_as_edge=True).float(), ref)
    replicate = label_to_edge(y, spatial_dims, mode="both").float()
    inner = tuple(slice(1, -1) for _ in range(spatial_dims))
    torch.testing.assert_close(replicate[(..., *inner)], ref[(..., *inner)])
    assert not torch.equal(replicate, ref), "the border is where the two definitions differ"
    assert not torch.equal(label_to_edge(y, spatial_dims, mode="inner", border_as_edge=True).float(), ref)


def test_total_is_the_decoder_loss_plus_each_stages_segmentation_and_edge_bce():
    torch.manual_seed(0)
    y = _blobs(3, (32, 32), 2)
    pred = torch.randn(1, 5 + 4, 32, 32)
    loss = BANetLoss(1, stage_weights=(1.0, 0.5, 0.25, 2.0), edge_weight=0.3)
    edges = _authors_edges(y)
    ref = F.binary_cross_entropy_with_logits(pred[:, :1], y)
    for i, w in enumerate((1.0, 0.5, 0.25, 2.0)):
        ref = ref + w * (F.binary_cross_entropy_with_logits(pred[:, 1 + i : 2 + i], y)
                         + 0.3 * F.binary_cross_entropy_with_logits(pred[:, 5 + i : 6 + i], edges))
    torch.testing.assert_close(loss(pred, y), ref)
    assert set(loss.last) == {"decoder", *(f"{k}{i}" for i in range(1, 5) for k in ("seg", "edge"))}
    # the authors' code adds Dice on the decoder output
    coded = BANetLoss(1, decoder_dice_weight=1.0)
    plain = BANetLoss(1)
    dice = DiceLoss(sigmoid=True)(pred[:, :1], y)
    torch.testing.assert_close(coded(pred, y), plain(pred, y) + dice)
    # without the mini-MTL: the decoder term alone
    torch.testing.assert_close(plain(pred[:, :1], y), F.binary_cross_entropy_with_logits(pred[:, :1], y))


def test_softmax_classes_use_cross_entropy_and_the_union_of_class_edges():
    torch.manual_seed(0)
    lab = torch.zeros(1, 1, 24, 24)
    lab[..., 4:16, 4:16] = 1
    lab[..., 8:12, 8:12] = 2  # nested: kidney with a tumour
    pred = torch.randn(1, 5 * 3 + 4, 24, 24)
    loss = BANetLoss(3, sigmoid=False)
    edges = _authors_edges(lab)  # the label map's own edges: every class boundary
    torch.testing.assert_close(loss.edge_target(lab), edges)
    ref = F.cross_entropy(pred[:, :3], lab[:, 0].long())
    for i in range(4):
        ref = ref + F.cross_entropy(pred[:, 3 * (i + 1) : 3 * (i + 2)], lab[:, 0].long()) \
            + F.binary_cross_entropy_with_logits(pred[:, 15 + i : 16 + i], edges)
    torch.testing.assert_close(loss(pred, lab), ref)


def test_wrong_channels_are_refused():
    loss = BANetLoss(2)
    with pytest.raises(ValueError, match=r"expects 2 decoder channels.*\(14\), got 5"):
        loss(torch.randn(1, 5, 8, 8), torch.zeros(1, 2, 8, 8))
    with pytest.raises(ValueError, match="needs 2 target channel"):
        loss(torch.randn(1, 14, 8, 8), torch.zeros(1, 1, 8, 8))
    with pytest.raises(ValueError, match="4 values"):
        BANetLoss(1, stage_weights=(1.0, 1.0))
