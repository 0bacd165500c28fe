"""What the bundle configs call (:mod:`.helpers`: ``edge_networks.bundle.flag``, ``AutocastInferer``, ...;
:mod:`.checkpoints`: atomic, resumable training checkpoints) and the generator that writes every bundle's configs
from shared parts (:mod:`.generate`)."""

from . import checkpoints, helpers
from .checkpoints import *  # noqa: F403 - the configs' `$edge_networks.bundle.<name>` expressions
from .helpers import *  # noqa: F403

__all__ = helpers.__all__ + checkpoints.__all__
