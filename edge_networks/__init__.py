"""Edge- and boundary-aware segmentation networks, losses and data tools for MONAI bundles."""

__version__ = "0.1.0"
