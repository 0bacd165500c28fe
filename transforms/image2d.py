"""Decoding 2D image files (PNG, JPEG, BMP, GIF, single- and multi-page TIFF, DICOM radiographs) into numpy arrays
in file order, with pixel spacing. No MONAI import here: the integrity check and the dataset scripts use it and
stay fast to start; :mod:`.readers` builds MONAI's reader on it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

__all__ = ["IMAGE_2D_SUFFIXES", "Image2D", "read_image_2d", "count_pages", "output_stem"]

IMAGE_2D_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".dcm", ".dicom")
_DICOM_SUFFIXES = (".dcm", ".dicom")


class Image2D:
    """One decoded 2D image in file order (``rows x cols [x 3]``) with its pixel spacing and source.

    Attributes:
        array: ``(H, W)`` or ``(H, W, 3)`` numpy array, rows first as stored in the file.
        spacing: ``(row_spacing, col_spacing)`` in mm, or ``(1.0, 1.0)`` when the file does not say.
        spacing_known: whether the file gave a physical pixel spacing (DICOM).
        path: the file.
        page: page of a multi-page TIFF (``None`` for single-page files).
        notes: what was done to the pixels (palette expanded, MONOCHROME1 inverted, channels converted, ...).
    """

    def __init__(self, array: np.ndarray, spacing=(1.0, 1.0), spacing_known=False, path="", page=None, notes=()):
        self.array = array
        self.spacing = tuple(float(s) for s in spacing)
        self.spacing_known = bool(spacing_known)
        self.path = str(path)
        self.page = page
        self.notes = list(notes)


def _is_dicom(path: str) -> bool:
    if path.lower().endswith(_DICOM_SUFFIXES):
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(132)
        return head[128:132] == b"DICM"
    except OSError:
        return False


def _pil_to_array(im, notes: list[str]) -> np.ndarray:
    """PIL image -> ``(H, W)`` or ``(H, W, 3)`` array; palette, 1-bit, RGBA and CMYK made plain."""
    mode = im.mode
    if mode == "P":
        rgb = np.asarray(im.convert("RGB"))
        if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]):
            notes.append("grey palette expanded to grey values")
            return np.ascontiguousarray(rgb[..., 0])
        notes.append("palette expanded to RGB")
        return rgb
    if mode == "1":
        notes.append("1-bit image as 0/255")
        return np.asarray(im.convert("L"))
    if mode in ("RGBA", "LA", "PA"):
        notes.append(f"{mode}: alpha channel dropped")
        return np.asarray(im.convert("RGB" if mode == "RGBA" else "L"))
    if mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        notes.append(f"{mode} converted to RGB")
        return np.asarray(im.convert("RGB"))
    if mode.startswith("I;16"):
        return np.asarray(im).astype(np.uint16)
    return np.asarray(im)


def count_pages(path: str | os.PathLike) -> int:
    """Number of pages (frames) of an image file: 1 for single-page files and DICOM."""
    path = str(path)
    if _is_dicom(path):
        return 1
    from PIL import Image

    with Image.open(path) as im:
        return int(getattr(im, "n_frames", 1))


def _read_dicom(path: str) -> Image2D:
    import pydicom

    notes: list[str] = []
    ds = pydicom.dcmread(path)
    arr = ds.pixel_array
    if getattr(ds, "NumberOfFrames", 1) not in (None, 1) and int(ds.NumberOfFrames) > 1:
        raise ValueError(f"{path}: multi-frame DICOM ({ds.NumberOfFrames} frames) is not a 2D radiograph")
    photometric = str(getattr(ds, "PhotometricInterpretation", "MONOCHROME2")).upper()
    if photometric.startswith("MONOCHROME"):
        slope, intercept = float(getattr(ds, "RescaleSlope", 1) or 1), float(getattr(ds, "RescaleIntercept", 0) or 0)
        if slope != 1 or intercept != 0:
            arr = arr.astype(np.float32) * slope + intercept
            notes.append("modality LUT (rescale slope/intercept) applied")
        if photometric == "MONOCHROME1":
            lo, hi = arr.min(), arr.max()
            arr = (hi - arr) + lo  # same range, polarity of MONOCHROME2
            notes.append("MONOCHROME1 inverted to MONOCHROME2")
    elif photometric != "RGB":
        raise ValueError(f"{path}: DICOM photometric interpretation {photometric} is not supported (grey or RGB)")
    spacing, known = (1.0, 1.0), False
    for tag in ("PixelSpacing", "ImagerPixelSpacing"):  # a radiograph often has only the detector's spacing
        value = getattr(ds, tag, None)
        if value is not None and len(value) == 2 and float(value[0]) > 0 and float(value[1]) > 0:
            spacing, known = (float(value[0]), float(value[1])), True
            break
        if value is not None:
            notes.append(f"{tag} {list(value)} is not a spacing; 1 mm assumed")
    return Image2D(np.asarray(arr), spacing, known, path, None, notes)


def read_image_2d(path: str | os.PathLike, page: int | None = None) -> Image2D:
    """Decode one 2D image file, rows first as stored (see :class:`Image2D`).

    Args:
        path: PNG, JPEG, BMP, GIF, TIFF (``page`` selects a page of a multi-page TIFF) or DICOM file.
        page: 0-based page of a multi-page file; ``None`` for a single-page file (a multi-page file then fails).

    Raises:
        FileNotFoundError: no such file.
        ValueError: unreadable or truncated file, a page out of range, or a multi-page file without ``page``;
            the message names the file.
    """
    path = str(path)
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: file is missing")
    if _is_dicom(path):
        try:
            return _read_dicom(path)
        except Exception as e:  # pydicom raises many types on truncated files
            if isinstance(e, ValueError) and str(e).startswith(path):
                raise
            raise ValueError(f"{path}: unreadable or truncated DICOM file ({type(e).__name__}: {e})") from e
    from PIL import Image, UnidentifiedImageError

    notes: list[str] = []
    try:
        with Image.open(path) as im:
            n_pages = int(getattr(im, "n_frames", 1))
            if page is None and n_pages > 1 and path.lower().endswith((".tif", ".tiff")):
                raise ValueError(f"{path}: multi-page TIFF of {n_pages} pages; give the page to read")
            if page is not None:
                if not 0 <= page < n_pages:
                    raise ValueError(f"{path}: page {page} out of range (the file has {n_pages} page(s))")
                im.seek(page)
            im.load()
            arr = _pil_to_array(im, notes)
    except (UnidentifiedImageError, OSError, SyntaxError, EOFError) as e:
        raise ValueError(f"{path}: unreadable or truncated image file ({type(e).__name__}: {e})") from e
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    return Image2D(np.array(arr), (1.0, 1.0), False, path, page, notes)


def output_stem(filename: str | os.PathLike, page: int | None = None) -> str:
    """Name stem of the outputs of one 2D input: the file's stem, plus ``_<page>`` for a page of a multi-page TIFF
    (ISBI 2012's ``train-volume.tif`` page 3 -> ``train-volume_03``).

    >>> output_stem("/data/DRIVE/test/images/01_test.tif"), output_stem("train-volume.tif", 3)
    ('01_test', 'train-volume_03')
    """
    stem = Path(str(filename)).stem
    return f"{stem}_{int(page):02d}" if page is not None and int(page) >= 0 else stem
