"""Edge- and boundary-aware segmentation networks, losses and data tools for MONAI bundles.

Layout (by kind, as MONAI separates ``networks/nets``, ``networks/blocks`` and ``losses``):

- :mod:`edge_networks.nets`: one network per paper, the backbones and the shared blocks;
- :mod:`edge_networks.losses`: shared edge losses and each paper's total loss;
- :mod:`edge_networks.data`: dataset layouts, integrity check, splits, synthetic data;
- :mod:`edge_networks.bundle`: what the bundle configs call, and the generator of the bundle configs;
- :mod:`edge_networks.serving`: export and sharing, the MONAI Label app.

The networks and losses are importable from here (``edge_networks.EGCNN`` in configs and user code).
"""

from .losses import (
    BalancedBCEWithLogitsLoss,
    BANetLoss,
    BoundaryAwareLoss,
    DualTaskConsistencyLoss,
    EdgeLoss,
    EGCNNLoss,
    ETNetLoss,
    LovaszHingeLoss,
    LovaszSoftmaxLoss,
)
from .nets import EGCNN, BANet, BoundaryAwareNet, CENet, ETNet

__version__ = "0.1.0"

__all__ = [
    "EGCNN",
    "BoundaryAwareNet",
    "CENet",
    "ETNet",
    "BANet",
    "BalancedBCEWithLogitsLoss",
    "BoundaryAwareLoss",
    "DualTaskConsistencyLoss",
    "EdgeLoss",
    "EGCNNLoss",
    "ETNetLoss",
    "BANetLoss",
    "LovaszSoftmaxLoss",
    "LovaszHingeLoss",
]
