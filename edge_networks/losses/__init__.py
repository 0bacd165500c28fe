"""Losses: the edge losses shared by the papers (:mod:`.edge`) and each paper's total loss."""

from .boundary_aware import BoundaryAwareLoss
from .edge import BalancedBCEWithLogitsLoss, DualTaskConsistencyLoss, EdgeLoss
from .egcnn import EGCNNLoss

__all__ = ["BalancedBCEWithLogitsLoss", "EdgeLoss", "DualTaskConsistencyLoss", "EGCNNLoss", "BoundaryAwareLoss"]
