"""Reading 2D medical images (PNG, JPEG, BMP, GIF, single- and multi-page TIFF, DICOM radiographs) the MONAI way,
and writing NIfTI label maps whatever the orientation of their affine.

**Axis order.** MONAI's readers put the image's *x* (width, file column) axis first: MONAI's own ``PILReader``
returns a ``(W, H)`` array for a ``H x W`` file (``reverse_indexing=True``) and MONAI's ``PILWriter`` transposes
back when it writes. :class:`Image2DReader` follows the same convention for every format, DICOM included, so a
mask predicted on an image read here and written by ``SaveImage(d)`` to PNG overlays its input pixel for pixel.
The trap it avoids: reading with one convention (``numpy.asarray(PIL.Image.open(f))``: rows first) and writing
with the other transposes the mask.

**Intensity polarity.** DICOM ``MONOCHROME1`` (high values dark, as in many computed radiographs) is inverted to
``MONOCHROME2`` so that all chest X-rays look like the PNG datasets (lungs dark, bone bright); the modality LUT
(rescale slope and intercept) is applied first.

**Channels.** Colour files are 3 channels, grey ones 1: palette GIFs are expanded (grey palettes to 1 channel),
RGBA loses its alpha, 1-bit images become 0/255. ``channels=1`` or ``3`` converts to what a bundle expects and logs
the conversion (ITU-R 601 luma for colour to grey, replication for grey to colour).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from monai.data import ImageReader
from monai.data.image_writer import NibabelWriter
from monai.utils import MetaKeys, ensure_tuple

from .image2d import IMAGE_2D_SUFFIXES, Image2D, count_pages, read_image_2d
from .writers import AtomicWriterMixin

__all__ = [
    "IMAGE_2D_SUFFIXES",
    "Image2D",
    "Image2DReader",
    "read_image_2d",
    "count_pages",
    "NibabelWriterKeepGeometry",
]

logger = logging.getLogger(__name__)

def _convert_channels(arr: np.ndarray, channels: int | None, path: str, notes: list[str]) -> np.ndarray:
    if channels is None:
        return arr
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1, 3 or None, got {channels}")
    have = 1 if arr.ndim == 2 else arr.shape[-1]
    if have == channels:
        return arr
    if channels == 1:
        grey = arr[..., 0] * 0.299 + arr[..., 1] * 0.587 + arr[..., 2] * 0.114
        grey = np.round(grey).astype(arr.dtype) if np.issubdtype(arr.dtype, np.integer) else grey.astype(arr.dtype)
        msg = "colour image converted to grey (ITU-R 601 luma) for a 1-channel input"
        out = grey
    else:
        msg = "grey image replicated to 3 channels for an RGB input"
        out = np.repeat(arr[..., None], 3, axis=-1)
    notes.append(msg)
    logger.warning("%s: %s", path, msg)
    return out


class Image2DReader(ImageReader):
    """MONAI image reader for 2D files: PNG, JPEG, BMP, GIF, TIFF (one page) and DICOM radiographs.

    Use it wherever MONAI takes a reader: ``LoadImage(d)(reader=Image2DReader())``. The array it returns has
    MONAI's 2D axis order, x (width) first, like MONAI's ``PILReader``: ``(W, H)`` for grey files and
    ``(W, H, 3)`` (``original_channel_dim=-1``) for colour ones, so ``EnsureChannelFirst`` gives ``(C, W, H)``
    and MONAI's ``PILWriter`` writes masks that overlay the input. The affine is ``diag(col_spacing,
    row_spacing, 1)`` (mm where the file says, DICOM; 1 otherwise). Multi-page TIFF pages are read with
    ``page=`` (see ``transforms.LoadImage2D``).

    Args:
        channels: ``1`` or ``3`` to convert to that many channels (logged), ``None`` to keep the file's.
            Defaults to ``None``.
        page: the page of multi-page files. Defaults to ``None`` (single-page files).

    >>> from monai.transforms import LoadImage
    >>> img = LoadImage(reader=Image2DReader(channels=3), ensure_channel_first=True)("fundus.jpg")  # doctest: +SKIP
    >>> img.shape  # (3, W, H)  # doctest: +SKIP
    """

    def __init__(self, channels: int | None = None, page: int | None = None, **kwargs):
        super().__init__()
        if channels not in (None, 1, 3):
            raise ValueError(f"channels must be 1, 3 or None, got {channels}")
        self.channels = channels
        self.page = page
        self.kwargs = kwargs

    def verify_suffix(self, filename: Sequence[str | os.PathLike] | str | os.PathLike) -> bool:
        return all(str(f).lower().endswith(IMAGE_2D_SUFFIXES) for f in ensure_tuple(filename))

    def read(self, data: Sequence[str | os.PathLike] | str | os.PathLike, **kwargs) -> Sequence[Image2D] | Image2D:
        page = kwargs.get("page", self.page)
        imgs = [read_image_2d(f, page) for f in ensure_tuple(data)]
        return imgs if len(imgs) > 1 else imgs[0]

    def get_data(self, img) -> tuple[np.ndarray, dict]:
        """``(array, meta)`` of one image or several (stacked on a new first axis, ``original_channel_dim=0``)."""
        imgs = list(img) if isinstance(img, list | tuple) else [img]
        arrays, metas = [], []
        for im in imgs:
            arr = _convert_channels(im.array, self.channels, im.path, im.notes)
            arr = np.swapaxes(arr, 0, 1)  # rows-first file order -> MONAI's x-first order
            row_sp, col_sp = im.spacing
            affine = np.diag([col_sp, row_sp, 1.0])
            meta: dict[str, Any] = {
                MetaKeys.AFFINE: affine,
                MetaKeys.ORIGINAL_AFFINE: affine.copy(),
                MetaKeys.SPATIAL_SHAPE: np.asarray(arr.shape[:2]),
                MetaKeys.ORIGINAL_CHANNEL_DIM: -1 if arr.ndim == 3 else "no_channel",
                "spacing_known": im.spacing_known,
                "page": -1 if im.page is None else im.page,
                "reader_notes": "; ".join(im.notes),
            }
            arrays.append(arr)
            metas.append(meta)
        if len(arrays) == 1:
            return arrays[0], metas[0]
        shapes = {a.shape for a in arrays}
        if len(shapes) > 1:
            raise ValueError(f"{[im.path for im in imgs]}: files of one item differ in shape {sorted(shapes)}")
        meta = dict(metas[0])
        if arrays[0].ndim == 2:
            meta[MetaKeys.ORIGINAL_CHANNEL_DIM] = 0
            return np.stack(arrays, axis=0), meta
        meta[MetaKeys.ORIGINAL_CHANNEL_DIM] = -1
        return np.concatenate(arrays, axis=-1), meta


class NibabelWriterKeepGeometry(AtomicWriterMixin, NibabelWriter):
    """MONAI's ``NibabelWriter`` that, with ``resample=False``, writes the array on its own affine untouched, and
    writes atomically (:class:`~transforms.writers.AtomicWriterMixin`: no truncated file after a kill).

    MONAI 1.6.1's ``NibabelWriter.set_metadata`` always passes the channel-last array through
    ``SpatialResample``, which takes a channel-less 3D array for a 2D image with a channel: it keeps the top-left
    2x2 block of the affine, which is singular for a scan whose first two voxel axes are not both in-plane (LSA,
    PSR and other permuted orientations), and ``SaveImaged`` fails with "Affine ... is not invertible". Nothing
    needs resampling when ``resample=False``, so this writer keeps ``affine`` as given. Use it as
    ``SaveImaged(..., writer="transforms.readers.NibabelWriterKeepGeometry")``.
    """

    def set_metadata(self, meta_dict: dict | None, resample: bool = True, **options):
        if resample:
            return super().set_metadata(meta_dict, resample=True, **options)
        _, affine, _ = self.get_meta_info(meta_dict)
        if self.output_dtype is None and self.data_obj is not None and hasattr(self.data_obj, "dtype"):
            self.output_dtype = self.data_obj.dtype
        self.affine = None if affine is None else np.asarray(affine, dtype=np.float64)
        data = self.data_obj
        self.data_obj = data.detach().cpu().numpy() if hasattr(data, "detach") else np.asarray(data)
