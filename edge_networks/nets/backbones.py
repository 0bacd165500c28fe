"""MONAI encoder-decoders exposed as main streams for plug-in edge streams.

Each adapter's ``forward(x)`` returns ``(logits, skips, first_up)``:

- ``logits``: the backbone's own segmentation logits ``(B, out_channels, *S)``;
- ``skips``: encoder feature maps, finest first, one per resolution (``skips[0]`` at input size, the last one the
  bottleneck); their channels are ``skip_channels``;
- ``first_up``: the decoder's first upsampled feature map (at the resolution of ``skips[-2]``), with
  ``first_up_channels`` channels.

The adapters own the MONAI network as ``self.net``, so checkpoints keep MONAI's parameter names beneath it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
from monai.networks.nets import BasicUNet, SegResNet, VNet

from .blocks import replace_batchnorm_with_groupnorm
from .cenet import CENet

__all__ = ["SegResNetBackbone", "UNetBackbone", "VNetBackbone", "CENetBackbone", "BACKBONES", "build_backbone"]


class SegResNetBackbone(nn.Module):
    """MONAI's SegResNet (Myronenko 2018, EG-CNN's "Seg-Net"), GroupNorm, no VAE branch."""

    def __init__(
        self,
        spatial_dims: int = 3,
        in_channels: int = 4,
        out_channels: int = 3,
        init_filters: int = 16,
        blocks_down: Sequence[int] = (1, 2, 2, 4),
        blocks_up: Sequence[int] = (1, 1, 1),
        num_groups: int = 8,
        dropout_prob: float | None = None,
    ) -> None:
        super().__init__()
        self.net = SegResNet(
            spatial_dims=spatial_dims,
            init_filters=init_filters,
            in_channels=in_channels,
            out_channels=out_channels,
            dropout_prob=dropout_prob,
            norm=("group", {"num_groups": num_groups}),
            blocks_down=tuple(blocks_down),
            blocks_up=tuple(blocks_up),
        )
        self.skip_channels = [init_filters * 2**i for i in range(len(blocks_down))]
        self.first_up_channels = self.skip_channels[-2]
        self.divisor = 2 ** (len(blocks_down) - 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor]:
        x, skips = self.net.encode(x)
        n = len(skips)
        first_up = x
        for i, (up, upl) in enumerate(zip(self.net.up_samples, self.net.up_layers)):
            x = upl(up(x) + skips[n - 2 - i])
            if i == 0:
                first_up = x
        return self.net.conv_final(x), skips, first_up


class UNetBackbone(nn.Module):
    """MONAI's BasicUNet (a 2D/3D U-Net, five resolutions) with GroupNorm, as EG-CNN's U-Net."""

    def __init__(
        self,
        spatial_dims: int = 3,
        in_channels: int = 4,
        out_channels: int = 3,
        features: Sequence[int] = (16, 32, 64, 128, 256, 16),
        num_groups: int = 8,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.net = BasicUNet(
            spatial_dims=spatial_dims,
            in_channels=in_channels,
            out_channels=out_channels,
            features=tuple(features),
            norm=("group", {"num_groups": num_groups}),
            dropout=dropout,
        )
        f = list(features)
        self.skip_channels = f[:5]
        self.first_up_channels = f[3]
        self.divisor = 16

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor]:
        n = self.net
        x0 = n.conv_0(x)
        x1 = n.down_1(x0)
        x2 = n.down_2(x1)
        x3 = n.down_3(x2)
        x4 = n.down_4(x3)
        u4 = n.upcat_4(x4, x3)
        u3 = n.upcat_3(u4, x2)
        u2 = n.upcat_2(u3, x1)
        u1 = n.upcat_1(u2, x0)
        return n.final_conv(u1), [x0, x1, x2, x3, x4], u4


class VNetBackbone(nn.Module):
    """MONAI's VNet (Milletari 2016) with its BatchNorm replaced by GroupNorm, as in EG-CNN.

    ``in_channels`` must divide 16 (VNet's first layer repeats the input to 16 channels).
    """

    def __init__(
        self,
        spatial_dims: int = 3,
        in_channels: int = 4,
        out_channels: int = 3,
        num_groups: int = 8,
        dropout_prob: float | None = 0.0,
    ) -> None:
        super().__init__()
        if 16 % in_channels:
            raise ValueError(f"VNet needs in_channels dividing 16, got {in_channels}")
        self.net = VNet(
            spatial_dims=spatial_dims,
            in_channels=in_channels,
            out_channels=out_channels,
            dropout_prob_down=dropout_prob,
            dropout_prob_up=(dropout_prob, dropout_prob),
        )
        replace_batchnorm_with_groupnorm(self.net, spatial_dims, num_groups)
        self.skip_channels = [16, 32, 64, 128, 256]
        self.first_up_channels = 256
        self.divisor = 16

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor]:
        n = self.net
        out16 = n.in_tr(x)
        out32 = n.down_tr32(out16)
        out64 = n.down_tr64(out32)
        out128 = n.down_tr128(out64)
        out256 = n.down_tr256(out128)
        u = n.up_tr256(out256, out128)
        first_up = u
        u = n.up_tr128(u, out64)
        u = n.up_tr64(u, out32)
        u = n.up_tr32(u, out16)
        return n.out_tr(u), [out16, out32, out64, out128, out256], first_up


class CENetBackbone(nn.Module):
    """CE-Net (Gu et al. 2019, :class:`~edge_networks.nets.cenet.CENet`) as a main stream: the first encoder EG-CNN's
    authors did not try. Its finest "skip" is the head's 32-channel map at input size (the ResNet encoder has no
    feature map at full resolution); the others are the stem (1/2), the stages (1/4 .. 1/16) and the context
    extractor (1/32). Inputs divisible by 32. ``kwargs``: :class:`CENet`'s (``norm``, ``pool_sizes``,
    ``pretrained_path``)."""

    def __init__(self, spatial_dims: int = 2, in_channels: int = 3, out_channels: int = 1, **kwargs) -> None:
        super().__init__()
        self.net = CENet(spatial_dims, in_channels, out_channels, **kwargs)
        self.skip_channels = list(self.net.skip_channels)
        self.first_up_channels = self.net.first_up_channels
        self.divisor = self.net.divisor

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor]:
        return self.net.features(x)


BACKBONES = {"segresnet": SegResNetBackbone, "unet": UNetBackbone, "vnet": VNetBackbone, "cenet": CENetBackbone}


def build_backbone(name: str, spatial_dims: int, in_channels: int, out_channels: int, **kwargs) -> nn.Module:
    """Instantiate a backbone adapter by name (``segresnet``, ``unet``, ``vnet``)."""
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of {sorted(BACKBONES)}")
    return BACKBONES[name](spatial_dims=spatial_dims, in_channels=in_channels, out_channels=out_channels, **kwargs)
