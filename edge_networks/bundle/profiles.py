"""A bundle's ``cpu_small`` profile (``configs/cpu_small.json``) as data: the one place the small CPU settings live.
The leaderboard's ``--small`` and the tests' small settings start from it and name what they change."""

from __future__ import annotations

import json
from pathlib import Path

from .datalists import bundles_dir

__all__ = ["RUN_LENGTH_KEYS", "SMALL_WINDOWS", "cpu_small"]

# the profile's keys that set how long a run takes rather than what it trains
RUN_LENGTH_KEYS = ("epochs", "val_interval", "num_workers")
# windows smaller than any profile's, on which every bundle trains in seconds (the tests, ``edge-seg-reproduce
# --smoke``): by spatial dimensions; divisible by every network's downsampling factor (CE-Net's 32 in 2D)
SMALL_WINDOWS: dict[int, dict] = {2: {"roi_size": [64, 64]}, 3: {"roi_size": [32, 32, 32]}}


def cpu_small(bundle: str, bundles: str | Path | None = None, run_length: bool = False) -> dict:
    """Bundle ``bundle``'s ``cpu_small`` overrides (narrow networks, small crops, the CPU optimiser), without the run
    length (:data:`RUN_LENGTH_KEYS`) unless ``run_length``.

    Args:
        bundle: the bundle's folder name.
        bundles: the bundles folder (default: :func:`bundles_dir`).
        run_length: keep ``epochs``, ``val_interval`` and ``num_workers``. Defaults to False.

    Raises:
        FileNotFoundError: the bundle has no ``configs/cpu_small.json``.

    >>> cpu_small("egcnn_brats")["edge_channels"]
    8
    """
    path = bundles_dir(bundles) / bundle / "configs" / "cpu_small.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no cpu_small profile for bundle {bundle!r}")
    profile = json.loads(path.read_text())
    return profile if run_length else {k: v for k, v in profile.items() if k not in RUN_LENGTH_KEYS}
