"""Dataset layouts, integrity checks, splits, 2D readers and synthetic data: BraTS, KiTS and the 2D papers' datasets."""

from transforms.image2d import read_image_2d

from .integrity import CaseReport, DatasetIntegrityError, check_case, verify_datalist
from .layouts import BRATS_MODALITIES, LAYOUTS, Layout, build_datalist, get_layout
from .prepare import prepare_datalist
from .split import assign_folds, save_datalist, split_datalist

__all__ = [
    "BRATS_MODALITIES",
    "LAYOUTS",
    "Layout",
    "build_datalist",
    "get_layout",
    "CaseReport",
    "DatasetIntegrityError",
    "check_case",
    "verify_datalist",
    "prepare_datalist",
    "read_image_2d",
    "assign_folds",
    "save_datalist",
    "split_datalist",
]
