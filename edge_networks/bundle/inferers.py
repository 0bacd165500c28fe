"""Inferers the bundles wrap around MONAI's: flip test-time augmentation (CE-Net's ``TTAFrame``). The CPU bfloat16
autocast inferer is in :mod:`.precision`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from monai.inferers import Inferer

__all__ = ["FlipTTAInferer"]



def _flip_variants(spatial_dims: int, rot90: bool) -> list[tuple[int, tuple[int, ...]]]:
    """``(quarter turns in the first two spatial axes, flipped spatial axes)`` of each test-time variant."""
    axes = list(range(spatial_dims))
    flips = [tuple(a for a in axes if mask >> a & 1) for mask in range(2**spatial_dims)]
    turns = (0, 1) if rot90 and spatial_dims == 2 else (0,)
    return [(k, f) for k in turns for f in flips]


class FlipTTAInferer(Inferer):
    """Flip test-time augmentation: average the predictions of every flip (and, in 2D, every transposition).

    CE-Net's test phase (Gu et al., TMI 2019, section III-A; ``TTAFrame`` in the authors' ``test_cenet.py``) predicts
    each image 8 times -- the identity and its horizontal, vertical and both flips, of the image and of its 90-degree
    rotation (the dihedral group of the square) -- and averages the 8 probability maps. In 3D the 8 variants are the
    flips over the subsets of the three axes (no rotation). MONAI's ``TestTimeAugmentation`` draws random transforms
    over a dataset; this is the deterministic, per-batch form the paper describes.

    Each variant is run through the wrapped inferer, mapped back, turned into probabilities (``activation``) and
    averaged; the result is returned as logits of the mean (``logit`` for sigmoid, ``log`` for softmax), so the
    bundle's usual ``Activationsd`` + ``AsDiscreted`` post-processing applies unchanged.

    Args:
        inferer: the inferer to wrap (SimpleInferer, SlidingWindowInferer, AutocastInferer, ...).
        activation: ``"sigmoid"`` (multi-label / binary outputs), ``"softmax"`` (one-hot classes) or ``None``
            (average the raw outputs). Defaults to ``"sigmoid"``.
        rot90: in 2D, also the 90-degree rotation (8 variants instead of 4). The input's two spatial sizes must
            then be equal, or the network must accept both orders. Defaults to ``True``.
        enabled: ``False`` runs the wrapped inferer once. Defaults to ``True``.

    >>> import torch
    >>> from monai.inferers import SimpleInferer
    >>> tta = FlipTTAInferer(SimpleInferer(), activation=None)
    >>> x = torch.arange(16.0).reshape(1, 1, 4, 4)
    >>> torch.allclose(tta(x, lambda t: t), x)  # every variant mapped back: an equivariant network is unchanged
    True
    """

    def __init__(self, inferer: Inferer, activation: str | None = "sigmoid", rot90: bool = True,
                 enabled: bool = True) -> None:
        super().__init__()
        if activation not in ("sigmoid", "softmax", None):
            raise ValueError(f"activation must be 'sigmoid', 'softmax' or None, got {activation!r}")
        self.inferer = inferer
        self.activation = activation
        self.rot90 = rot90
        self.enabled = enabled

    def __call__(self, inputs: torch.Tensor, network: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self.enabled:
            return self.inferer(inputs, network, *args, **kwargs)
        spatial_dims = inputs.ndim - 2
        if spatial_dims not in (2, 3):
            raise ValueError(f"FlipTTAInferer takes (B, C, H, W[, D]) inputs, got shape {tuple(inputs.shape)}")
        total: torch.Tensor | None = None
        variants = _flip_variants(spatial_dims, self.rot90)
        for turns, flips in variants:
            x = inputs
            if turns:
                x = torch.rot90(x, turns, dims=(2, 3))
            if flips:
                x = torch.flip(x, dims=[a + 2 for a in flips])
            y = self.inferer(x, network, *args, **kwargs)
            if not isinstance(y, torch.Tensor):
                raise TypeError(f"FlipTTAInferer averages tensor outputs; the network returned {type(y).__name__}")
            if flips:
                y = torch.flip(y, dims=[a + 2 for a in flips])
            if turns:
                y = torch.rot90(y, -turns, dims=(2, 3))
            y = y.float()
            if self.activation == "sigmoid":
                y = torch.sigmoid(y)
            elif self.activation == "softmax":
                y = torch.softmax(y, dim=1)
            total = y if total is None else total + y
        assert total is not None
        mean = total / len(variants)
        if self.activation == "sigmoid":
            return torch.logit(mean.clamp(1e-6, 1 - 1e-6))
        if self.activation == "softmax":
            return torch.log(mean.clamp_min(1e-12))
        return mean
