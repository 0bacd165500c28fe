"""What the bundle configs call (their ``_target_``/``$`` expressions name ``edge_networks.bundle.<name>``), one
module a job:

- :mod:`.flags`: switches, the poly schedule, foreground selection (``flag``, ``poly_lr``, ``foreground_select``);
- :mod:`.datalists`: the datasets a bundle trains, evaluates and infers on (``load_datalist``, ``inference_datalist``);
- :mod:`.inferers`: flip test-time augmentation (``FlipTTAInferer``);
- :mod:`.precision`: CPU bfloat16 autocast that trains correctly (``AutocastInferer``, ``cpu_supports_bf16``);
- :mod:`.outputs`: output folders, metric files, metric output transforms and file naming;
- :mod:`.handlers`: training stops at the first non-finite loss (``StopOnNonFiniteLoss``);
- :mod:`.checkpoints`: atomic, resumable training checkpoints;
- :mod:`.profiles`: a bundle's ``cpu_small`` profile as data (``cpu_small``);

and the generator that writes every bundle's configs from shared parts (:mod:`.generate`).
"""

from . import checkpoints, datalists, flags, handlers, inferers, outputs, precision, profiles
from .checkpoints import *  # noqa: F403
from .datalists import *  # noqa: F403
from .flags import *  # noqa: F403
from .handlers import *  # noqa: F403
from .inferers import *  # noqa: F403
from .outputs import *  # noqa: F403
from .precision import *  # noqa: F403
from .profiles import *  # noqa: F403

__all__ = (flags.__all__ + datalists.__all__ + inferers.__all__ + precision.__all__ + outputs.__all__
           + handlers.__all__ + checkpoints.__all__ + profiles.__all__)
