"""Edge- and boundary-aware segmentation networks, losses and data tools for MONAI bundles."""

from .boundary_aware import BoundaryAwareNet
from .egcnn import EGCNN
from .losses import BalancedBCEWithLogitsLoss, BoundaryAwareLoss, DualTaskConsistencyLoss, EdgeLoss, EGCNNLoss

__version__ = "0.1.0"

__all__ = [
    "EGCNN",
    "BoundaryAwareNet",
    "BalancedBCEWithLogitsLoss",
    "BoundaryAwareLoss",
    "DualTaskConsistencyLoss",
    "EdgeLoss",
    "EGCNNLoss",
]
