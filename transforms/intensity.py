"""Per-channel intensity normalisation from a dataset's plan (:mod:`edge_networks.data.plan`), nnU-Net's schemes.

A scheme per image channel:

==========  ==========================================================================================
``ct``      clip to fixed bounds (the foreground's 0.5 and 99.5 percentiles over the training set), then
            subtract a fixed mean and divide by a fixed standard deviation (the foreground's): nnU-Net's
            ``CTNormalization``
``zscore``  per image: subtract the channel's mean, divide by its standard deviation: nnU-Net's
            ``ZScoreNormalization`` (over the whole image)
``rgb``     divide by 255 (8-bit photographs): nnU-Net's ``RGBTo0_1Normalization``
``none``    unchanged
==========  ==========================================================================================

Reference: Isensee F et al. nnU-Net. Nature Methods 18:203-211, 2021 (the dataset fingerprint and its rules).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from monai.config import KeysCollection, NdarrayOrTensor
from monai.transforms import Transform
from monai.utils import TransformBackends
from monai.utils.type_conversion import convert_to_dst_type, convert_to_tensor

from .mapping import ArrayTransformd

__all__ = ["SCHEMES", "NormalizeChannels", "NormalizeChannelsd"]

SCHEMES = ("ct", "zscore", "rgb", "none")


class NormalizeChannels(Transform):
    """Normalise each channel of ``(C, *spatial)`` by its scheme.

    Args:
        schemes: one per channel: ``{"scheme": "ct", "lower": l, "upper": u, "mean": m, "std": s}``,
            ``{"scheme": "zscore"}``, ``{"scheme": "rgb"}`` or ``{"scheme": "none"}``. One scheme for a
            multi-channel image applies to every channel (an RGB photograph).
        eps: added to standard deviations. Defaults to 1e-8.

    Raises:
        ValueError: an unknown scheme, a ``ct`` scheme without its four numbers, or a channel count that differs
            from the number of schemes.

    >>> NormalizeChannels([{"scheme": "ct", "lower": -100, "upper": 100, "mean": 0, "std": 50}])(
    ...     torch.tensor([[-500.0, 0.0, 50.0, 900.0]]))
    tensor([[-2.,  0.,  1.,  2.]])
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(self, schemes: Sequence[Mapping], eps: float = 1e-8) -> None:
        self.schemes = [dict(s) for s in schemes]
        for s in self.schemes:
            if s.get("scheme") not in SCHEMES:
                raise ValueError(f"unknown intensity scheme {s.get('scheme')!r}; choose one of {list(SCHEMES)}")
            if s["scheme"] == "ct" and not {"lower", "upper", "mean", "std"} <= set(s):
                raise ValueError(f"the ct scheme needs lower, upper, mean and std; got {sorted(s)}")
        self.eps = eps

    def __call__(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        t = convert_to_tensor(img, track_meta=False).float()
        schemes = self.schemes * t.shape[0] if len(self.schemes) == 1 else self.schemes
        if len(schemes) != t.shape[0]:
            raise ValueError(f"{len(self.schemes)} intensity schemes for an image of {t.shape[0]} channels")
        out = []
        for channel, s in zip(t, schemes):
            if s["scheme"] == "ct":
                channel = (channel.clamp(s["lower"], s["upper"]) - s["mean"]) / (s["std"] + self.eps)
            elif s["scheme"] == "zscore":
                channel = (channel - channel.mean()) / (channel.std(unbiased=False) + self.eps)
            elif s["scheme"] == "rgb":
                channel = channel / 255.0
            out.append(channel)
        return convert_to_dst_type(torch.stack(out), img, dtype=torch.float32)[0]


class NormalizeChannelsd(ArrayTransformd):
    """Dictionary version of :class:`NormalizeChannels`."""

    backend = NormalizeChannels.backend

    def __init__(self, keys: KeysCollection, schemes: Sequence[Mapping], eps: float = 1e-8,
                 allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.array_transform = NormalizeChannels(schemes, eps)
