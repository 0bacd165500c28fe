"""nnU-Net's region-based labels: a label map to overlapping region channels and back.

A region is a set of label values (nnU-Net v2's ``dataset.json``: ``"tumour core": [2, 3]``). A network trained on
regions has one sigmoid channel per region; its output becomes a label map as nnU-Net does it: every region, in
order, writes its value of ``regions_class_order`` where its probability exceeds the threshold, so later
(inner) regions overwrite earlier (outer) ones.

Reference: Isensee F et al. nnU-Net. Nature Methods 18:203-211, 2021 (region-based training, BraTS); nnU-Net v2
``documentation/region_based_training.md``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.config import KeysCollection, NdarrayOrTensor
from monai.transforms import Transform
from monai.utils import TransformBackends
from monai.utils.type_conversion import convert_to_dst_type, convert_to_tensor

from .mapping import ArrayTransformd

__all__ = ["LabelsToRegions", "LabelsToRegionsd", "RegionsToLabels", "RegionsToLabelsd"]


def _regions(regions: Sequence[Sequence[int] | int]) -> list[tuple[int, ...]]:
    out = [tuple(int(v) for v in r) if isinstance(r, Sequence) else (int(r),) for r in regions]
    if not out or any(not r for r in out):
        raise ValueError(f"regions must be a non-empty list of non-empty label value lists, got {regions!r}")
    return out


class LabelsToRegions(Transform):
    """Label map ``(1, *spatial)`` -> region masks ``(R, *spatial)``: channel ``r`` is 1 where the label is one
    of ``regions[r]``.

    Args:
        regions: the label values of each region, e.g. ``[[1, 2, 3], [2, 3], [3]]`` (BraTS whole tumour, tumour
            core, enhancing tumour in nnU-Net's Dataset137).

    Raises:
        ValueError: empty regions.

    >>> LabelsToRegions([[1, 2], [2]])(torch.tensor([[0, 1, 2]]))
    tensor([[0., 1., 1.],
            [0., 0., 1.]])
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(self, regions: Sequence[Sequence[int] | int]) -> None:
        self.regions = _regions(regions)

    def __call__(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        lab = convert_to_tensor(img, track_meta=False)
        if lab.shape[0] != 1:
            raise ValueError(f"expected a one-channel label map (1, *spatial), got shape {tuple(lab.shape)}")
        lab = lab[0].round().long()
        out = torch.stack([torch.isin(lab, torch.tensor(r, device=lab.device)) for r in self.regions])
        return convert_to_dst_type(out, img, dtype=torch.float32)[0]


class RegionsToLabels(Transform):
    """Region channels ``(R, *spatial)`` (probabilities, or binary masks) -> label map ``(1, *spatial)``, as
    nnU-Net converts region outputs: for each region ``r`` in order, voxels above ``threshold`` get
    ``regions_class_order[r]``.

    Args:
        regions_class_order: the label value each region writes, in channel order.
        threshold: probability threshold for float inputs. Defaults to 0.5.

    Raises:
        ValueError: the input's channel count differs from ``len(regions_class_order)``.

    >>> RegionsToLabels([1, 2])(torch.tensor([[0.9, 0.8, 0.1], [0.2, 0.7, 0.6]]))
    tensor([[1, 2, 2]], dtype=torch.uint8)
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(self, regions_class_order: Sequence[int], threshold: float = 0.5) -> None:
        self.order = [int(v) for v in regions_class_order]
        self.threshold = threshold

    def __call__(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        t = convert_to_tensor(img, track_meta=False)
        if t.shape[0] != len(self.order):
            raise ValueError(f"expected {len(self.order)} region channels, got shape {tuple(t.shape)}")
        masks = t > self.threshold if torch.is_floating_point(t) else t != 0
        lab = torch.zeros(t.shape[1:], dtype=torch.uint8, device=t.device)
        for mask, value in zip(masks, self.order):
            lab[mask] = value
        return convert_to_dst_type(lab[None], img, dtype=torch.uint8)[0]


class LabelsToRegionsd(ArrayTransformd):
    """Dictionary version of :class:`LabelsToRegions`."""

    backend = LabelsToRegions.backend

    def __init__(self, keys: KeysCollection, regions: Sequence[Sequence[int] | int],
                 allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.array_transform = LabelsToRegions(regions)


class RegionsToLabelsd(ArrayTransformd):
    """Dictionary version of :class:`RegionsToLabels`."""

    backend = RegionsToLabels.backend

    def __init__(self, keys: KeysCollection, regions_class_order: Sequence[int], threshold: float = 0.5,
                 allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.array_transform = RegionsToLabels(regions_class_order, threshold)
