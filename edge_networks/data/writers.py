"""The atomic image writers, now :mod:`transforms.writers` (``transforms`` depends on MONAI, NumPy and PyTorch only; the
data package builds on it). This name stays so that configs and code that import it keep working."""

from transforms.writers import *  # noqa: F403
from transforms.writers import __all__  # noqa: F401
