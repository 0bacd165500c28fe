"""The MONAI image readers, now :mod:`transforms.readers` (``transforms`` depends on MONAI, NumPy and PyTorch only; the
data package builds on it). This name stays so that configs and code that import it keep working."""

from transforms.readers import *  # noqa: F403
from transforms.readers import __all__  # noqa: F401
