"""Losses: the edge losses shared by the papers (:mod:`.edge`), the Lovász losses (:mod:`.lovasz`) and each paper's
total loss."""

from .banet import BANetLoss
from .boundary_aware import BoundaryAwareLoss
from .cenet import CENET_LOSSES, cenet_loss
from .edge import BalancedBCEWithLogitsLoss, DualTaskConsistencyLoss, EdgeLoss
from .egcnn import EGCNNLoss
from .etnet import ETNetLoss
from .lovasz import LovaszHingeLoss, LovaszSoftmaxLoss

__all__ = ["BalancedBCEWithLogitsLoss", "EdgeLoss", "DualTaskConsistencyLoss", "EGCNNLoss", "BoundaryAwareLoss",
           "LovaszSoftmaxLoss", "LovaszHingeLoss", "ETNetLoss", "BANetLoss", "CENET_LOSSES", "cenet_loss"]
