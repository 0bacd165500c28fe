"""Loading 2D images into MONAI's channel-first ``(C, W, H)`` order, pages of multi-page TIFF stacks included.

MONAI's ``LoadImage(d)`` takes a file name only; the ISBI 2012 EM stacks hold 30 slices per file, one datalist
item per slice (``{"image": "train-volume.tif", "label": "train-labels.tif", "page": 3}``), so these transforms
read the item's page. Everything else is :class:`transforms.readers.Image2DReader`'s: MONAI's x-first
axis order, DICOM MONOCHROME1 inverted, pixel spacing in the affine, channel conversion logged.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from monai.config import DtypeLike, KeysCollection
from monai.data import MetaTensor
from monai.transforms import EnsureChannelFirst, MapTransform, Transform
from monai.utils import ImageMetaKey
from PIL import Image

from .image2d import output_stem, read_image_2d
from .readers import Image2DReader
from .writers import atomic_path

__all__ = ["LoadImage2D", "LoadImage2Dd", "overlay_image", "SaveOverlayd"]


class LoadImage2D(Transform):
    """Read a 2D image file (or several, stacked as channels) as a channel-first ``MetaTensor`` ``(C, W, H)``.

    Args:
        channels: ``1`` or ``3`` to convert to that many channels (logged), ``None`` to keep the file's.
            Defaults to ``None``.
        dtype: output dtype. Defaults to ``numpy.float32``.

    >>> img = LoadImage2D(channels=3)("ISIC_0000000.jpg")  # doctest: +SKIP
    >>> img.shape, img.affine.shape  # (3, W, H), (3, 3)  # doctest: +SKIP
    >>> stack_slice = LoadImage2D()("train-volume.tif", page=3)  # (1, 512, 512)  # doctest: +SKIP
    """

    def __init__(self, channels: int | None = None, dtype: DtypeLike = np.float32) -> None:
        self.reader = Image2DReader(channels=channels)
        self.dtype = dtype
        self.channel_first = EnsureChannelFirst()

    def __call__(self, filename: str | os.PathLike | Sequence[str | os.PathLike], page: int | None = None):
        """``filename``: a file, or a list of files of one size (stacked on the channel axis); ``page``: the 0-based
        page of multi-page files."""
        files = [filename] if isinstance(filename, str | os.PathLike) else list(filename)
        img = self.reader.read(files, page=page)
        arr, meta = self.reader.get_data(img)
        meta[ImageMetaKey.FILENAME_OR_OBJ] = str(files[0])
        out = MetaTensor(torch.as_tensor(np.ascontiguousarray(arr).astype(self.dtype)), meta=meta)  # affine: meta's
        return self.channel_first(out)


class LoadImage2Dd(MapTransform):
    """Dictionary version of :class:`LoadImage2D`; ``page_key`` names the item's page of multi-page files.

    Args:
        keys: keys of the file names to load (``image``, ``label``, ``mask``, ...).
        page_key: item key holding the 0-based page; absent or ``None``: single-page files. Defaults to ``"page"``.
        channels: converts the first key (the image) to 1 or 3 channels; labels keep theirs. Defaults to ``None``.
        dtype: output dtype. Defaults to ``numpy.float32``.
        allow_missing_keys: skip absent keys. Defaults to ``False``.

    >>> loader = LoadImage2Dd(["image", "label", "mask"], channels=3)  # DRIVE: image, vessels, FOV
    >>> item = {"image": "21_training.tif", "label": "21_manual1.gif", "mask": "21_training_mask.gif"}
    >>> d = loader(item)  # doctest: +SKIP
    >>> d["image"].shape, d["label"].shape  # (3, 565, 584), (1, 565, 584)  # doctest: +SKIP
    """

    def __init__(
        self,
        keys: KeysCollection,
        page_key: str | None = "page",
        channels: int | None = None,
        dtype: DtypeLike = np.float32,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.page_key = page_key
        self.image_loader = LoadImage2D(channels=channels, dtype=dtype)
        self.label_loader = LoadImage2D(channels=None, dtype=dtype)

    def __call__(self, data: Mapping[Hashable, object]) -> dict[Hashable, object]:
        d = dict(data)
        page = d.get(self.page_key) if self.page_key else None
        page = None if page is None or (isinstance(page, int | np.integer) and page < 0) else int(page)
        for i, key in enumerate(self.key_iterator(d)):
            loader = self.image_loader if i == 0 else self.label_loader
            d[key] = loader(d[key], page=page)
        return d


# class colours of overlays: red for a binary mask, then a qualitative palette for class-index maps (OCT layers)
_PALETTE = np.array([[230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48], [145, 30, 180],
                     [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212], [0, 128, 128]], np.uint8)


def _as_rgb8(arr: np.ndarray) -> np.ndarray:
    """A decoded image (rows first, grey or RGB, any dtype) as RGB uint8, min-max scaled unless already uint8."""
    a = arr if arr.ndim == 3 else np.repeat(arr[..., None], 3, axis=-1)
    if a.dtype != np.uint8:
        a = a.astype(np.float32)
        lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
        a = np.zeros_like(a, dtype=np.uint8) if hi <= lo else ((a - lo) / (hi - lo) * 255).round().astype(np.uint8)
    return a[..., :3]


def overlay_image(image: np.ndarray, mask: np.ndarray, alpha: float = 0.35) -> np.ndarray:
    """Colour ``mask`` over ``image``: each nonzero value (class) a translucent fill and an opaque outline.

    Args:
        image: ``(H, W)`` or ``(H, W, 3)`` rows first, any dtype.
        mask: ``(H, W)`` class values (binary 0/255 masks: one class).
        alpha: fill opacity. Defaults to ``0.35``.

    Returns:
        ``(H, W, 3)`` uint8.
    """
    from scipy import ndimage

    rgb = _as_rgb8(image).astype(np.float32)
    if rgb.shape[:2] != mask.shape:
        raise ValueError(f"mask of shape {mask.shape} does not match the image's {rgb.shape[:2]}")
    for i, value in enumerate(v for v in np.unique(mask) if v != 0):
        region = mask == value
        colour = _PALETTE[i % len(_PALETTE)].astype(np.float32)
        rgb[region] = (1 - alpha) * rgb[region] + alpha * colour
        rgb[region & ~ndimage.binary_erosion(region)] = colour
    return rgb.round().astype(np.uint8)


class SaveOverlayd(MapTransform):
    """Write a PNG of each prediction drawn over the input photograph it came from: ``<stem>_<postfix>.png``.

    The input file is read again from the prediction's meta data (``filename_or_obj`` and ``page``), so the
    overlay shows the original pixels at their size; the prediction must already be inverted to that size
    (``Invertd``). The file is written to a temporary name and renamed, so no half-written PNG is left.

    Args:
        keys: prediction keys, ``(1, W, H)`` in MONAI's x-first order (as ``LoadImage2D`` reads).
        output_dir: folder of the overlays (created).
        output_postfix: file name postfix. Defaults to ``"overlay"``.
        alpha: fill opacity. Defaults to ``0.35``.
        allow_missing_keys: skip absent keys. Defaults to ``False``.

    >>> SaveOverlayd("pred", output_dir="out")(item)  # out/21_training_overlay.png  # doctest: +SKIP
    """

    def __init__(self, keys: KeysCollection, output_dir: str | os.PathLike, output_postfix: str = "overlay",
                 alpha: float = 0.35, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.output_dir = Path(output_dir)
        self.output_postfix = output_postfix
        self.alpha = alpha

    def __call__(self, data: Mapping[Hashable, object]) -> dict[Hashable, object]:
        d = dict(data)
        for key in self.key_iterator(d):
            pred = d[key]
            meta = getattr(pred, "meta", {})
            source = meta.get(ImageMetaKey.FILENAME_OR_OBJ)
            if not source:
                raise ValueError(f"SaveOverlayd: {key!r} has no source file name in its meta data")
            page = meta.get("page", -1)
            page = int(page.item() if hasattr(page, "item") else page) if page is not None else -1
            image = read_image_2d(str(source), page if page >= 0 else None).array
            arr = np.asarray(torch.as_tensor(pred).detach().cpu())
            if arr.ndim != 3 or arr.shape[0] != 1:
                raise ValueError(f"SaveOverlayd: {key!r} must be (1, W, H), got {arr.shape} ({source})")
            mask = np.round(arr[0].T).astype(np.int64)  # x-first -> rows first
            out = overlay_image(image, mask, self.alpha)
            self.output_dir.mkdir(parents=True, exist_ok=True)
            path = self.output_dir / f"{output_stem(source, page)}_{self.output_postfix}.png"
            with atomic_path(path) as tmp:
                Image.fromarray(out).save(tmp, format="PNG")
        return d
