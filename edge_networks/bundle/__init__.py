"""What the bundle configs call (:mod:`.helpers`: ``edge_networks.bundle.flag``, ``AutocastInferer``, ...) and the
generator that writes every bundle's configs from shared parts (:mod:`.generate`)."""

from . import helpers
from .helpers import *  # noqa: F403 - the configs' `$edge_networks.bundle.<name>` expressions

__all__ = helpers.__all__
