"""Label conventions of BraTS, the Medical Segmentation Decathlon and KiTS, as channel masks and back.

BraTS regions (channel order TC, WT, ET, as MONAI's ``ConvertToMultiChannelBasedOnBratsClasses``):

=============  =====================  ==================  ============  =============
convention     labels                 TC (tumour core)    WT (whole)    ET (enhancing)
=============  =====================  ==================  ============  =============
``brats``      0, 1 NCR/NET, 2 ED,    1, 4                1, 2, 4       4
               4 ET (2018-2021)
``brats2023``  0, 1 NCR, 2 ED, 3 ET   1, 3                1, 2, 3       3
``decathlon``  0, 1 oedema,           2, 3                1, 2, 3       3
               2 non-enhancing,
               3 enhancing (Task01)
=============  =====================  ==================  ============  =============

KiTS19 labels 0 background, 1 kidney, 2 tumour; channels (kidneys, tumour) with kidneys = 1 or 2 (the
challenge's "Kidneys Dice" counts tumour as kidney) and tumour = 2.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import torch
from monai.config import KeysCollection, NdarrayOrTensor
from monai.transforms import MapTransform, Transform
from monai.utils import TransformBackends
from monai.utils.type_conversion import convert_to_dst_type, convert_to_tensor

__all__ = [
    "BRATS_CONVENTIONS",
    "BRATS_REGIONS",
    "KITS_LABELS",
    "KITS_REGIONS",
    "ConvertToBratsRegions",
    "ConvertToBratsRegionsd",
    "BratsRegionsToLabels",
    "BratsRegionsToLabelsd",
    "ConvertToKitsRegions",
    "ConvertToKitsRegionsd",
    "KitsRegionsToLabels",
    "KitsRegionsToLabelsd",
]

BRATS_REGIONS = ("TC", "WT", "ET")
# label values of each region, per convention; "labels" are all values a label file may hold
BRATS_CONVENTIONS: dict[str, dict[str, tuple[int, ...]]] = {
    "brats": {"labels": (0, 1, 2, 4), "TC": (1, 4), "WT": (1, 2, 4), "ET": (4,), "write": (2, 1, 4)},
    "brats2023": {"labels": (0, 1, 2, 3), "TC": (1, 3), "WT": (1, 2, 3), "ET": (3,), "write": (2, 1, 3)},
    "decathlon": {"labels": (0, 1, 2, 3), "TC": (2, 3), "WT": (1, 2, 3), "ET": (3,), "write": (1, 2, 3)},
}
KITS_LABELS = (0, 1, 2)
KITS_REGIONS = ("kidneys", "tumour")


def _convention(name: str) -> dict[str, tuple[int, ...]]:
    if name not in BRATS_CONVENTIONS:
        raise ValueError(f"unknown BraTS label convention {name!r}; choose one of {sorted(BRATS_CONVENTIONS)}")
    return BRATS_CONVENTIONS[name]


def _label_map(img: NdarrayOrTensor) -> torch.Tensor:
    t = convert_to_tensor(img, track_meta=False)
    if t.ndim >= 3 and t.shape[0] == 1:
        t = t[0]
    return t.round().long() if torch.is_floating_point(t) else t.long()


def _isin(t: torch.Tensor, values: tuple[int, ...]) -> torch.Tensor:
    return torch.isin(t, torch.as_tensor(values, device=t.device))


class ConvertToBratsRegions(Transform):
    """Label map ``(1, *spatial)`` or ``(*spatial)`` -> region masks ``(3, *spatial)`` in order TC, WT, ET.

    Args:
        convention: ``"brats"`` (labels 0/1/2/4), ``"brats2023"`` (0/1/2/3) or ``"decathlon"`` (Task01).
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(self, convention: str = "brats") -> None:
        self.convention = _convention(convention)

    def __call__(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        lab = _label_map(img)
        out = torch.stack([_isin(lab, self.convention[r]) for r in BRATS_REGIONS])
        return convert_to_dst_type(out, img, dtype=torch.float32)[0]


class BratsRegionsToLabels(Transform):
    """Region masks ``(3, *spatial)`` (TC, WT, ET; probabilities or binary) -> label map ``(1, *spatial)``.

    Nesting is enforced from the outside in: a voxel is oedema if in WT, necrosis/core if also in TC, enhancing
    if also in ET (ET outside TC or TC outside WT is dropped, as in the BraTS evaluation's nesting).

    Args:
        convention: label values to write (``"brats"`` writes 2/1/4).
        threshold: probability threshold for float inputs.
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(self, convention: str = "brats", threshold: float = 0.5) -> None:
        self.convention = _convention(convention)
        self.threshold = threshold

    def __call__(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        t = convert_to_tensor(img, track_meta=False)
        if t.shape[0] != 3:
            raise ValueError(f"expected 3 region channels (TC, WT, ET), got shape {tuple(t.shape)}")
        masks = t > self.threshold if torch.is_floating_point(t) else t != 0
        tc, wt, et = masks[0], masks[1], masks[2]
        wt_label, tc_label, et_label = self.convention["write"]
        lab = torch.zeros(t.shape[1:], dtype=torch.uint8, device=t.device)
        lab[wt] = wt_label
        lab[wt & tc] = tc_label
        lab[wt & tc & et] = et_label
        return convert_to_dst_type(lab[None], img, dtype=torch.uint8)[0]


class ConvertToKitsRegions(Transform):
    """KiTS label map (0/1/2) -> masks ``(2, *spatial)``: kidneys (1 or 2), tumour (2)."""

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __call__(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        lab = _label_map(img)
        out = torch.stack([lab > 0, lab == 2])
        return convert_to_dst_type(out, img, dtype=torch.float32)[0]


class KitsRegionsToLabels(Transform):
    """Masks ``(2, *spatial)`` (kidneys, tumour) -> KiTS label map ``(1, *spatial)``: 1 kidney, 2 tumour.

    Tumour outside the predicted kidneys is kept as tumour (a tumour is part of the kidney region).
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(self, threshold: float = 0.5) -> None:
        self.threshold = threshold

    def __call__(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        t = convert_to_tensor(img, track_meta=False)
        if t.shape[0] != 2:
            raise ValueError(f"expected 2 channels (kidneys, tumour), got shape {tuple(t.shape)}")
        masks = t > self.threshold if torch.is_floating_point(t) else t != 0
        lab = torch.zeros(t.shape[1:], dtype=torch.uint8, device=t.device)
        lab[masks[0]] = 1
        lab[masks[1]] = 2
        return convert_to_dst_type(lab[None], img, dtype=torch.uint8)[0]


class _Dict(MapTransform):
    """Applies one array transform to every key."""

    array_transform: Transform

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.array_transform(d[key])
        return d


class ConvertToBratsRegionsd(_Dict):
    """Dictionary version of :class:`ConvertToBratsRegions`."""

    backend = ConvertToBratsRegions.backend

    def __init__(self, keys: KeysCollection, convention: str = "brats", allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.array_transform = ConvertToBratsRegions(convention)


class BratsRegionsToLabelsd(_Dict):
    """Dictionary version of :class:`BratsRegionsToLabels`."""

    backend = BratsRegionsToLabels.backend

    def __init__(
        self, keys: KeysCollection, convention: str = "brats", threshold: float = 0.5, allow_missing_keys: bool = False
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.array_transform = BratsRegionsToLabels(convention, threshold)


class ConvertToKitsRegionsd(_Dict):
    """Dictionary version of :class:`ConvertToKitsRegions`."""

    backend = ConvertToKitsRegions.backend

    def __init__(self, keys: KeysCollection, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.array_transform = ConvertToKitsRegions()


class KitsRegionsToLabelsd(_Dict):
    """Dictionary version of :class:`KitsRegionsToLabels`."""

    backend = KitsRegionsToLabels.backend

    def __init__(self, keys: KeysCollection, threshold: float = 0.5, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.array_transform = KitsRegionsToLabels(threshold)
