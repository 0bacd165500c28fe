"""The 2D image decoding, now :mod:`transforms.image2d` (``transforms`` depends on MONAI, NumPy and PyTorch only; the
data package builds on it). This name stays so that configs and code that import it keep working."""

from transforms.image2d import *  # noqa: F403
from transforms.image2d import __all__  # noqa: F401
