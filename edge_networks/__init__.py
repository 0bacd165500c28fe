"""Edge- and boundary-aware segmentation networks, losses and data tools for MONAI bundles."""

from .egcnn import EGCNN
from .losses import BalancedBCEWithLogitsLoss, DualTaskConsistencyLoss, EdgeLoss, EGCNNLoss

__version__ = "0.1.0"

__all__ = ["EGCNN", "BalancedBCEWithLogitsLoss", "DualTaskConsistencyLoss", "EdgeLoss", "EGCNNLoss"]
