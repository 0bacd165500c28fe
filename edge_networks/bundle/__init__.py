"""What the bundle configs call (their ``_target_``/``$`` expressions name ``edge_networks.bundle.<name>``):

- :mod:`.helpers`: switches, datalists, schedules, inferers (``flag``, ``FlipTTAInferer``, ...);
- :mod:`.precision`: CPU bfloat16 autocast that trains correctly (``AutocastInferer``, ``cpu_supports_bf16``);
- :mod:`.handlers`: training stops at the first non-finite loss (``StopOnNonFiniteLoss``);
- :mod:`.checkpoints`: atomic, resumable training checkpoints;

and the generator that writes every bundle's configs from shared parts (:mod:`.generate`).
"""

from . import checkpoints, handlers, helpers, precision
from .checkpoints import *  # noqa: F403
from .handlers import *  # noqa: F403
from .helpers import *  # noqa: F403
from .precision import *  # noqa: F403

__all__ = helpers.__all__ + precision.__all__ + handlers.__all__ + checkpoints.__all__
