"""MONAI-style transforms of this project: edge ground truth and dataset label conventions."""

from .edges import LabelToEdge, LabelToEdged, label_to_edge, masks_from_labels, sobel_gradient_magnitude
from .labels import (
    BRATS_CONVENTIONS,
    BRATS_REGIONS,
    KITS_LABELS,
    KITS_REGIONS,
    BratsRegionsToLabels,
    BratsRegionsToLabelsd,
    ConvertToBratsRegions,
    ConvertToBratsRegionsd,
    ConvertToKitsRegions,
    ConvertToKitsRegionsd,
    KitsRegionsToLabels,
    KitsRegionsToLabelsd,
)

__all__ = [
    "LabelToEdge",
    "LabelToEdged",
    "label_to_edge",
    "masks_from_labels",
    "sobel_gradient_magnitude",
    "BRATS_CONVENTIONS",
    "BRATS_REGIONS",
    "KITS_LABELS",
    "KITS_REGIONS",
    "BratsRegionsToLabels",
    "BratsRegionsToLabelsd",
    "ConvertToBratsRegions",
    "ConvertToBratsRegionsd",
    "ConvertToKitsRegions",
    "ConvertToKitsRegionsd",
    "KitsRegionsToLabels",
    "KitsRegionsToLabelsd",
]
