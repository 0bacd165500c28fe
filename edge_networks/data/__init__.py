"""Dataset layouts, integrity checks, splits and synthetic data for BraTS and KiTS."""

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
    "assign_folds",
    "save_datalist",
    "split_datalist",
]
