"""Loading 2D images into MONAI's channel-first ``(C, W, H)`` order, pages of multi-page TIFF stacks included.

MONAI's ``LoadImage(d)`` takes a file name only; the ISBI 2012 EM stacks hold 30 slices per file, one datalist
item per slice (``{"image": "train-volume.tif", "label": "train-labels.tif", "page": 3}``), so these transforms
read the item's page. Everything else is :class:`edge_networks.data.readers.Image2DReader`'s: MONAI's x-first
axis order, DICOM MONOCHROME1 inverted, pixel spacing in the affine, channel conversion logged.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import torch
from monai.config import DtypeLike, KeysCollection
from monai.data import MetaTensor
from monai.transforms import EnsureChannelFirst, MapTransform, Transform
from monai.utils import ImageMetaKey

from edge_networks.data.readers import Image2DReader

__all__ = ["LoadImage2D", "LoadImage2Dd"]


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
