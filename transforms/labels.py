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

2D datasets (``DATASETS_2D.md``), from mask files as loaded (0..255) to binary channels: REFUGE's 0/128/255 to
disc (including cup) and cup (:class:`ConvertToDiscCup`), Drishti-GS soft maps at an agreement level
(:class:`BinariseSoftMap`), Montgomery's left + right lungs (:class:`CombineMasks`), JPEG and 0/255 masks
(:class:`ThresholdMask`; also DRIVE's field-of-view mask, carried along for the metrics), ISBI 2012 membranes as
the foreground (:class:`EMMembranes`).
"""

from __future__ import annotations

import torch
from monai.config import KeysCollection, NdarrayOrTensor
from monai.transforms import Transform
from monai.utils import TransformBackends
from monai.utils.type_conversion import convert_to_dst_type, convert_to_tensor

from .mapping import ArrayTransformd

__all__ = [
    "BRATS_CONVENTIONS",
    "BRATS_REGIONS",
    "KITS_LABELS",
    "KITS_REGIONS",
    "KITS_CONVENTION",
    "ConvertToBratsRegions",
    "ConvertToBratsRegionsd",
    "BratsRegionsToLabels",
    "BratsRegionsToLabelsd",
    "ConvertToKitsRegions",
    "ConvertToKitsRegionsd",
    "KitsRegionsToLabels",
    "KitsRegionsToLabelsd",
    "ThresholdMask",
    "ThresholdMaskd",
    "ConvertToDiscCup",
    "ConvertToDiscCupd",
    "BinariseSoftMap",
    "BinariseSoftMapd",
    "CombineMasks",
    "CombineMasksd",
    "EMMembranes",
    "EMMembranesd",
    "LAYOUT_LABEL_CONVENTIONS",
    "LAYOUT_MASK_TARGETS",
    "LayoutMask",
    "LayoutMaskd",
    "NestedRegions",
    "NestedRegionsd",
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
# label values of each KiTS region: the challenge's "Kidneys" counts tumour as kidney
KITS_CONVENTION: dict[str, tuple[int, ...]] = {"kidneys": (1, 2), "tumour": (2,)}


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


class NestedRegions(Transform):
    """Label map of nested classes ``(1, *spatial)`` -> region masks ``(num_classes - 1, *spatial)``, channel
    ``k - 1`` = ``label >= k``: each class lies inside the one below it.

    The regions that nested structures are scored on: REFUGE/Drishti-GS disc and cup from a softmax network's
    argmax (0 background, 1 disc rim, 2 cup: disc = 1 or 2, cup = 2; the challenge's disc Dice counts the cup as
    disc), or KiTS's kidneys and tumour (the same as :class:`ConvertToKitsRegions`). The inverse is the sum of
    the masks (``LayoutMask(..., target="disc_cup_indices")``).

    Args:
        num_classes: label values ``0 .. num_classes - 1``, background included. Defaults to 3.

    Raises:
        ValueError: ``num_classes < 2``.

    >>> NestedRegions(3)(torch.tensor([[[0, 1, 2]]]))
    tensor([[[0., 1., 1.]],
    <BLANKLINE>
            [[0., 0., 1.]]])
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(self, num_classes: int = 3) -> None:
        if num_classes < 2:
            raise ValueError(f"num_classes must be at least 2 (background and one class), got {num_classes}")
        self.num_classes = num_classes

    def __call__(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        lab = _label_map(img)
        out = torch.stack([lab >= k for k in range(1, self.num_classes)])
        return convert_to_dst_type(out, img, dtype=torch.float32)[0]


# ---------------------------------------------------------------------------------------------------------------
# 2D datasets (DATASETS_2D.md): mask files -> binary channels. Input ``(C, *spatial)`` as loaded (values 0..255).
# ---------------------------------------------------------------------------------------------------------------


def _grey(img: NdarrayOrTensor) -> torch.Tensor:
    """``(C, *spatial)`` -> float ``(1, *spatial)``: the mean over channels (a colour-saved mask's grey value)."""
    t = convert_to_tensor(img, track_meta=False).float()
    return t.mean(0, keepdim=True) if t.shape[0] > 1 else t


class ThresholdMask(Transform):
    """A 0/255 (or JPEG-compressed, or colour-saved) mask ``(C, *spatial)`` -> binary ``(1, *spatial)``.

    Kvasir-SEG's and ORIGA's masks are JPEG: their edges hold every value between 0 and 255, so they are
    thresholded rather than compared with 255. Also for DRIVE's vessel and field-of-view GIFs, ISIC's, the
    lung sets' and CVC-ColonDB's 0/255 masks.

    Args:
        threshold: foreground is ``value >= threshold`` (on the channel mean). Defaults to ``128``.

    >>> ThresholdMask()(torch.tensor([[[0.0, 127.0, 128.0, 255.0]]]))
    tensor([[[0., 0., 1., 1.]]])
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(self, threshold: float = 128) -> None:
        self.threshold = threshold

    def __call__(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        return convert_to_dst_type(_grey(img) >= self.threshold, img, dtype=torch.float32)[0]


class ConvertToDiscCup(Transform):
    """REFUGE mask (255 background, 128 disc rim, 0 cup) ``(1, *spatial)`` -> ``(2, *spatial)``: disc (including
    the cup), cup. Thresholds halfway between the values (disc < 192, cup < 64) tolerate resampled masks.

    >>> ConvertToDiscCup()(torch.tensor([[[255.0, 128.0, 0.0]]]))
    tensor([[[0., 1., 1.]],
    <BLANKLINE>
            [[0., 0., 1.]]])
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __call__(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        g = _grey(img)[0]
        return convert_to_dst_type(torch.stack([g < 192, g < 64]), img, dtype=torch.float32)[0]


_AGREEMENT = {"all": 254.0, "majority": 127.0, "any": 0.0}


class BinariseSoftMap(Transform):
    """Drishti-GS soft maps (expert agreement, 0..255) ``(C, *spatial)`` -> binary ``(C, *spatial)``, per channel.

    Args:
        agreement: ``"all"`` (value > 254: every expert marked the pixel), ``"majority"`` (> 127), ``"any"``
            (> 0), or a number: foreground is ``value > agreement``. Defaults to ``"all"``.

    >>> BinariseSoftMap("any")(torch.tensor([[[0.0, 1.0, 255.0]]]))
    tensor([[[0., 1., 1.]]])
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(self, agreement: str | float = "all") -> None:
        if isinstance(agreement, str) and agreement not in _AGREEMENT:
            raise ValueError(f"agreement must be one of {sorted(_AGREEMENT)} or a number, got {agreement!r}")
        self.level = _AGREEMENT[agreement] if isinstance(agreement, str) else float(agreement)

    def __call__(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        t = convert_to_tensor(img, track_meta=False).float()
        return convert_to_dst_type(t > self.level, img, dtype=torch.float32)[0]


class CombineMasks(Transform):
    """Union of mask channels ``(C, *spatial)`` -> ``(1, *spatial)`` (Montgomery's left and right lung masks).

    Args:
        threshold: a channel marks a pixel when its value is ``>= threshold``. Defaults to ``128`` (0/255 masks;
            use ``0.5`` for 0/1 masks).

    >>> CombineMasks()(torch.tensor([[[255.0, 0.0, 0.0]], [[0.0, 255.0, 0.0]]]))
    tensor([[[1., 1., 0.]]])
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(self, threshold: float = 128) -> None:
        self.threshold = threshold

    def __call__(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        t = convert_to_tensor(img, track_meta=False).float()
        return convert_to_dst_type((t >= self.threshold).any(0, keepdim=True), img, dtype=torch.float32)[0]


class EMMembranes(Transform):
    """ISBI 2012 label (255 cell interior, 0 membrane) ``(1, *spatial)`` -> membranes ``(1, *spatial)`` as the
    foreground, as CE-Net segments them (``255 - label``, thresholded at 128).

    >>> EMMembranes()(torch.tensor([[[255.0, 0.0]]]))
    tensor([[[0., 1.]]])
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __call__(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        return convert_to_dst_type(_grey(img) < 128, img, dtype=torch.float32)[0]


LAYOUT_MASK_TARGETS = ("foreground", "disc", "cup", "disc_cup", "disc_cup_indices", "indices")


# The label convention of each 2D dataset layout (the papers' releases, DATASETS_2D.md): how :class:`LayoutMask` reads
# its label files. ``edge_networks.data.layouts`` builds its layout table from this one, so it is kept once.
LAYOUT_LABEL_CONVENTIONS: dict[str, str] = {
    "drive": "binary255",
    "refuge": "refuge",
    "drishti_gs": "soft_map",
    "rim_one_r3": "binary255",
    "rim_one_r1": "binary255",
    "origa": "jpeg_mask",
    "messidor": "binary255",
    "montgomery": "binary255",
    "shenzhen": "binary255",
    "isic2017": "binary255",
    "isic2018": "binary255",
    "kvasir_seg": "jpeg_mask",
    "cvc_colondb": "binary255",
    "isbi2012_em": "em",
    "luna2d": "binary255",
    "images_masks": "indices",
}


class LayoutMask(Transform):
    """A 2D dataset's mask file(s) as loaded ``(C, *spatial)`` -> the training target, by the layout's convention.

    One transform for every 2D layout of :mod:`edge_networks.data.layouts`, so that one bundle config serves all
    the layouts of its task (``cenet_fundus_od``: ORIGA's JPEG masks, Messidor's and RIM-ONE's 0/255 PNGs, REFUGE's
    0/128/255 BMPs, Drishti-GS soft maps, your own ``images_masks``):

    ==================  =================================================================================
    convention          conversion
    ==================  =================================================================================
    ``binary255``,      any channel ``>= 128`` (:class:`CombineMasks`): 0/255 files, colour-saved and JPEG
    ``jpeg_mask``       masks, Montgomery's ``[left, right]`` pair (their union)
    ``em``              membranes (``< 128``) as the foreground (:class:`EMMembranes`)
    ``refuge``          disc (including cup) and cup channels (:class:`ConvertToDiscCup`)
    ``soft_map``        ``[disc, cup]`` soft maps binarised at ``agreement`` (:class:`BinariseSoftMap`)
    ``indices``         class indices kept (``target="indices"``) or ``> 0`` as the foreground
    ==================  =================================================================================

    Args:
        layout: a 2D layout name (``"origa"``, ``"drive"``, ...).
        target: ``"foreground"`` (one binary channel: the layout's only structure, or the disc of disc/cup
            layouts), ``"disc"``, ``"cup"``, ``"disc_cup"`` (two channels), ``"disc_cup_indices"`` (one channel of
            class indices for a softmax network: 0 background, 1 disc rim (disc without cup), 2 cup; the inverse
            of :class:`NestedRegions`) or ``"indices"`` (one channel of class indices; ``indices`` layouts only).
            Defaults to ``"foreground"``.
        agreement: Drishti-GS soft-map level (see :class:`BinariseSoftMap`). Defaults to ``"all"``.

    Raises:
        ValueError: an unknown or 3D layout, an unknown target, or a target the layout does not have (a cup from
            a disc-only layout, indices from a binary one).

    >>> LayoutMask("origa")(torch.tensor([[[0.0, 120.0, 140.0, 255.0]]]))  # JPEG mask: edges hold every value
    tensor([[[0., 0., 1., 1.]]])
    >>> LayoutMask("refuge", "cup")(torch.tensor([[[255.0, 128.0, 0.0]]]))
    tensor([[[0., 0., 1.]]])
    >>> LayoutMask("refuge", "disc_cup_indices")(torch.tensor([[[255.0, 128.0, 0.0]]]))
    tensor([[[0., 1., 2.]]])
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(self, layout: str, target: str = "foreground", agreement: str | float = "all") -> None:
        if layout not in LAYOUT_LABEL_CONVENTIONS:
            raise ValueError(f"LayoutMask is for the 2D layouts {sorted(LAYOUT_LABEL_CONVENTIONS)}; got {layout!r}")
        if target not in LAYOUT_MASK_TARGETS:
            raise ValueError(f"unknown target {target!r}; choose one of {list(LAYOUT_MASK_TARGETS)}")
        conv = LAYOUT_LABEL_CONVENTIONS[layout]
        disc_cup = conv in ("refuge", "soft_map")
        if target in ("cup", "disc_cup", "disc_cup_indices") and not disc_cup:
            raise ValueError(f"layout {layout!r} has no cup annotation in its label files (target {target!r})")
        if target == "indices" and conv != "indices":
            raise ValueError(f"target 'indices' needs a class-index layout (images_masks); {layout!r} is {conv}")
        self.layout, self.target = layout, target
        self.channels: slice | None = None
        if conv == "em":
            self.convert: Transform = EMMembranes()
        elif conv == "refuge":
            self.convert = ConvertToDiscCup()
        elif conv == "soft_map":
            self.convert = BinariseSoftMap(agreement)
        elif conv == "indices":
            self.convert = _Indices(binary=target != "indices")
        else:
            self.convert = CombineMasks(128)
        if disc_cup:
            self.channels = {"cup": slice(1, 2), "disc_cup": slice(0, 2),
                             "disc_cup_indices": slice(0, 2)}.get(target, slice(0, 1))

    def __call__(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        out = self.convert(img)
        out = out[self.channels] if self.channels is not None else out
        if self.target == "disc_cup_indices":  # nested regions: index = how many of (disc, cup) hold the pixel
            out = out.sum(0, keepdims=True)
        return out


class _Indices(Transform):
    """Class-index masks: the first channel's values (rounded), or ``> 0`` with ``binary``."""

    def __init__(self, binary: bool) -> None:
        self.binary = binary

    def __call__(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        t = convert_to_tensor(img, track_meta=False).float()[:1].round()
        return convert_to_dst_type(t > 0 if self.binary else t, img, dtype=torch.float32)[0]


class ConvertToBratsRegionsd(ArrayTransformd):
    """Dictionary version of :class:`ConvertToBratsRegions`."""

    backend = ConvertToBratsRegions.backend

    def __init__(self, keys: KeysCollection, convention: str = "brats", allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.array_transform = ConvertToBratsRegions(convention)


class BratsRegionsToLabelsd(ArrayTransformd):
    """Dictionary version of :class:`BratsRegionsToLabels`."""

    backend = BratsRegionsToLabels.backend

    def __init__(
        self, keys: KeysCollection, convention: str = "brats", threshold: float = 0.5, allow_missing_keys: bool = False
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.array_transform = BratsRegionsToLabels(convention, threshold)


class ConvertToKitsRegionsd(ArrayTransformd):
    """Dictionary version of :class:`ConvertToKitsRegions`."""

    backend = ConvertToKitsRegions.backend

    def __init__(self, keys: KeysCollection, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.array_transform = ConvertToKitsRegions()


class KitsRegionsToLabelsd(ArrayTransformd):
    """Dictionary version of :class:`KitsRegionsToLabels`."""

    backend = KitsRegionsToLabels.backend

    def __init__(self, keys: KeysCollection, threshold: float = 0.5, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.array_transform = KitsRegionsToLabels(threshold)


class ThresholdMaskd(ArrayTransformd):
    """Dictionary version of :class:`ThresholdMask` (e.g. ``keys=["label", "mask"]`` for DRIVE's vessels and FOV)."""

    backend = ThresholdMask.backend

    def __init__(self, keys: KeysCollection, threshold: float = 128, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.array_transform = ThresholdMask(threshold)


class ConvertToDiscCupd(ArrayTransformd):
    """Dictionary version of :class:`ConvertToDiscCup`."""

    backend = ConvertToDiscCup.backend

    def __init__(self, keys: KeysCollection, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.array_transform = ConvertToDiscCup()


class BinariseSoftMapd(ArrayTransformd):
    """Dictionary version of :class:`BinariseSoftMap`."""

    backend = BinariseSoftMap.backend

    def __init__(self, keys: KeysCollection, agreement: str | float = "all", allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.array_transform = BinariseSoftMap(agreement)


class CombineMasksd(ArrayTransformd):
    """Dictionary version of :class:`CombineMasks`."""

    backend = CombineMasks.backend

    def __init__(self, keys: KeysCollection, threshold: float = 128, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.array_transform = CombineMasks(threshold)


class EMMembranesd(ArrayTransformd):
    """Dictionary version of :class:`EMMembranes`."""

    backend = EMMembranes.backend

    def __init__(self, keys: KeysCollection, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.array_transform = EMMembranes()


class LayoutMaskd(ArrayTransformd):
    """Dictionary version of :class:`LayoutMask`.

    >>> LayoutMaskd("label", layout="drive")({"label": torch.tensor([[[0.0, 255.0]]])})["label"]
    tensor([[[0., 1.]]])
    """

    backend = LayoutMask.backend

    def __init__(self, keys: KeysCollection, layout: str, target: str = "foreground", agreement: str | float = "all",
                 allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.array_transform = LayoutMask(layout, target, agreement)


class NestedRegionsd(ArrayTransformd):
    """Dictionary version of :class:`NestedRegions`.

    >>> NestedRegionsd("pred", num_classes=3)({"pred": torch.tensor([[[2, 0]]])})["pred"]
    tensor([[[1., 0.]],
    <BLANKLINE>
            [[1., 0.]]])
    """

    backend = NestedRegions.backend

    def __init__(self, keys: KeysCollection, num_classes: int = 3, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.array_transform = NestedRegions(num_classes)
