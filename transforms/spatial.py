"""Spatial transforms the 2D papers' pre-processing needs and MONAI lacks.

CE-Net segments the optic disc "based on the original resolution" inside an 800x800 crop "around the brightest
point" of the fundus photograph (Gu et al., TMI 2019, section III-B, after Zhang et al.'s disc localisation):
:class:`BrightestRegionCrop` finds that point -- the maximum of the luminance after a wide Gaussian blur, so single
bright pixels and reflections do not win -- and crops a fixed-size window there. It is a MONAI ``Crop``: the crop is
recorded in the ``MetaTensor``'s applied operations and MONAI's ``Invertd`` pads the prediction back to the full
photograph, so the written mask has the input's size.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import Crop, Cropd
from monai.utils import ensure_tuple_rep
from scipy import ndimage

__all__ = ["brightest_point", "BrightestRegionCrop", "BrightestRegionCropd"]


def brightest_point(img: torch.Tensor | np.ndarray, sigma_fraction: float = 0.03, max_side: int = 256) -> list[int]:
    """Index of the brightest point of ``img`` ``(C, *spatial)`` after a Gaussian blur, in ``img``'s grid.

    The channel mean is blurred with a standard deviation of ``sigma_fraction`` times the shorter side (on a copy
    reduced to at most ``max_side`` pixels per side by block averaging, for speed), then its maximum is taken.

    >>> img = torch.zeros(3, 40, 30); img[:, 28:34, 5:11] = 1.0; img[:, 2, 2] = 5.0  # a blob and one hot pixel
    >>> brightest_point(img)
    [30, 7]
    """
    arr = np.asarray(img.detach().cpu() if isinstance(img, torch.Tensor) else img, dtype=np.float32)
    grey = arr.mean(0)
    step = max(1, int(np.ceil(max(grey.shape) / max_side)))
    if step > 1:  # block average: crop to a multiple of the step first
        shape = [s // step * step for s in grey.shape]
        small = grey[tuple(slice(0, s) for s in shape)]
        blocks = [v for s in shape for v in (s // step, step)]
        small = small.reshape(blocks).mean(axis=tuple(range(1, 2 * len(shape), 2)))
    else:
        small = grey
    blurred = ndimage.gaussian_filter(small, max(1.0, sigma_fraction * min(small.shape)), mode="nearest")
    idx = np.unravel_index(int(np.argmax(blurred)), blurred.shape)
    return [min(int(i * step + step // 2), s - 1) for i, s in zip(idx, grey.shape)]


class BrightestRegionCrop(Crop):
    """Crop a ``roi_size`` window centred on the brightest point of the image (CE-Net's disc-centred crop).

    The window is moved inside the image when the point is near a border; an image smaller than ``roi_size`` along
    an axis keeps that whole axis (no padding). Invertible with MONAI's ``Invertd`` / ``inverse``.

    Args:
        roi_size: window size in pixels, per spatial axis or one number. CE-Net: 800 on ORIGA (3072x2048) and
            Messidor (1440x960 to 2340x1536). Defaults to ``800``.
        sigma_fraction: blur standard deviation as a fraction of the shorter side. Defaults to ``0.03``.
        lazy: MONAI's lazy resampling flag. Defaults to ``False``.

    >>> img = torch.zeros(1, 100, 80); img[:, 70:80, 10:20] = 1.0
    >>> out = BrightestRegionCrop(40)(img)
    >>> tuple(out.shape), out.sum().item()  # the bright patch is inside the window
    ((1, 40, 40), 100.0)
    """

    def __init__(self, roi_size: Sequence[int] | int = 800, sigma_fraction: float = 0.03, lazy: bool = False) -> None:
        super().__init__(lazy)
        self.roi_size = roi_size
        self.sigma_fraction = sigma_fraction

    def compute_slices_for(self, img: torch.Tensor) -> tuple[slice, ...]:
        """The window's slices for ``img`` ``(C, *spatial)``."""
        shape = list(img.peek_pending_shape() if hasattr(img, "peek_pending_shape") else img.shape[1:])
        size = ensure_tuple_rep(self.roi_size, len(shape))
        centre = brightest_point(img, self.sigma_fraction)
        starts = [int(np.clip(c - s // 2, 0, max(0, n - s))) for c, s, n in zip(centre, size, shape)]
        return tuple(slice(b, min(n, b + s)) for b, s, n in zip(starts, size, shape))

    def __call__(self, img: torch.Tensor, lazy: bool | None = None) -> torch.Tensor:  # type: ignore[override]
        return super().__call__(img, self.compute_slices_for(img), lazy=self.lazy if lazy is None else lazy)


class BrightestRegionCropd(Cropd):
    """Dictionary version of :class:`BrightestRegionCrop`: the window is found on ``source_key`` and applied to
    every key (image, label, FOV), so they stay aligned.

    Args:
        keys: keys to crop.
        source_key: the image to find the brightest point on. Defaults to ``"image"``.
        roi_size: see :class:`BrightestRegionCrop`. Defaults to ``800``.
        sigma_fraction: see :class:`BrightestRegionCrop`. Defaults to ``0.03``.
        allow_missing_keys: skip absent keys. Defaults to ``False``.
        lazy: MONAI's lazy resampling flag. Defaults to ``False``.

    >>> d = {"image": torch.zeros(1, 100, 80), "label": torch.zeros(1, 100, 80)}
    >>> d["image"][:, 70:80, 10:20] = 1.0; d["label"][:, 72:78, 12:18] = 1.0
    >>> out = BrightestRegionCropd(["image", "label"], roi_size=40)(d)
    >>> out["label"].shape, out["label"].sum().item()
    (torch.Size([1, 40, 40]), 36.0)
    """

    def __init__(
        self,
        keys: KeysCollection,
        source_key: str = "image",
        roi_size: Sequence[int] | int = 800,
        sigma_fraction: float = 0.03,
        allow_missing_keys: bool = False,
        lazy: bool = False,
    ) -> None:
        super().__init__(keys, BrightestRegionCrop(roi_size, sigma_fraction, lazy), allow_missing_keys, lazy)
        self.source_key = source_key

    def __call__(self, data: Mapping[Hashable, torch.Tensor], lazy: bool | None = None) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        slices = self.cropper.compute_slices_for(d[self.source_key])
        lazy_ = self.lazy if lazy is None else lazy
        for key in self.key_iterator(d):
            d[key] = Crop.__call__(self.cropper, d[key], slices, lazy=lazy_)
        return d
