"""Small helpers of the bundle configs: boolean switches from JSON or the command line, the poly learning-rate
schedule, the foreground selection of ``CropForeground``, ``--set KEY=JSON`` overrides of the command lines."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import torch
from monai.utils import str2bool

__all__ = ["flag", "foreground_select", "poly_lr", "parse_overrides"]



def flag(value: Any) -> bool:
    """A config switch as a bool, whether it came from JSON (``false``) or the command line.

    ``python -m monai.bundle run ... --save_edges false`` hands the config the *string* ``"false"`` (fire parses
    only Python literals), which is truthy; every boolean switch of the bundles goes through this. Strings go
    through MONAI's ``str2bool`` (yes/true/t/y/1, no/false/f/n/0); other values (bool, 0/1, a 0-d tensor) through
    ``bool``.

    Raises:
        ValueError: for a string that is not a recognisable boolean, naming it.
    """
    if isinstance(value, str):
        return str2bool(value.strip())
    return bool(value)


def foreground_select(enabled: Any = True) -> Callable[[torch.Tensor], torch.Tensor]:
    """``select_fn`` of MONAI's ``CropForegroundd`` in the 3D inference configs: switch ``--crop_foreground``.

    Enabled, the crop keeps the bounding box of the voxels above 0 in any channel -- nnU-Net's crop to the nonzero
    region of skull-stripped BraTS volumes, which holds every brain voxel; the inference config's ``Invertd`` pads
    the prediction back with background, so the written mask has the input's shape and affine. Disabled, every
    voxel is selected and the crop keeps the whole image.

    Args:
        enabled: a config switch (``true``/``false``, also as a CLI string; see :func:`flag`). Defaults to True.

    Returns:
        a function of a ``(C, *spatial)`` tensor giving a boolean tensor of the same shape.

    >>> select = foreground_select("false")
    >>> bool(select(torch.zeros(1, 2, 2)).all())
    True
    """
    if flag(enabled):
        return _nonzero
    return _everything


def _nonzero(x: torch.Tensor) -> torch.Tensor:
    return x > 0


def _everything(x: torch.Tensor) -> torch.Tensor:
    return torch.ones_like(x, dtype=torch.bool)


def poly_lr(max_epochs: int, power: float = 0.9) -> Callable[[int], float]:
    """``LambdaLR`` factor of the paper's schedule ``lr = lr0 * (1 - e / N) ** power``."""

    def factor(epoch: int) -> float:
        return max(0.0, 1.0 - epoch / max(1, max_epochs)) ** power

    return factor


def parse_overrides(items: Sequence[str]) -> dict:
    """Command-line bundle overrides ``KEY=JSON`` (``spacing=[3,3,4.5]``, ``num_samples=1``) as a dict; a value that
    is not JSON stays a string (``cache=none``).

    Raises:
        ValueError: an item without ``=``.

    >>> parse_overrides(["spacing=[3,3,4.5]", "cache=none"])
    {'spacing': [3, 3, 4.5], 'cache': 'none'}
    """
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--set {item!r}: expected KEY=JSON")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value  # a plain string
    return out
