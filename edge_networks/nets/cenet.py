"""CE-Net: context encoder network (Gu et al., IEEE TMI 2019), in 2D and 3D.

CE-Net: Context Encoder Network for 2D Medical Image Segmentation. A pretrained ResNet-34 encoder, a context
extractor (the dense atrous convolution block, DAC, and the residual multi-kernel pooling block, RMP) and a
decoder of transposed-convolution blocks with additive skips. Built layer for layer as the authors' released
``networks/cenet.py`` (``CE_Net_``) has it:

- Encoder: ResNet-34's stem (7x7 convolution stride 2, BatchNorm, ReLU, 3x3 max-pool stride 2) and its four
  stages (64, 128, 256, 512 channels at 1/4 .. 1/32 of the input); no pooling head. This is MONAI's
  :class:`~monai.networks.nets.ResNet` (basic blocks ``[3, 4, 6, 3]``, shortcut B without bias), chosen over
  torchvision's because it has the same parameter names and values in 2D (a torchvision ``resnet34`` state dict
  loads into it strictly, tested) and the same design in 3D, and it keeps torchvision out of the core install.
- DAC (512 channels): 3x3 convolutions with dilation 1, 3 and 5 and one 1x1 convolution, all with bias (zero
  at initialisation), their weights shared between the cascaded branches:
  ``x + relu(d1(x)) + relu(c(d3(x))) + relu(c(d3(d1(x)))) + relu(c(d5(d3(d1(x)))))``.
- RMP: max-pooling with kernel = stride = 2, 3, 5 and 6, ONE shared 1x1 convolution to one channel, each
  resized back (bilinear / trilinear) and concatenated before the input: 512 + 4 = 516 channels.
- Decoder blocks ``(in, n)``: 1x1 convolution to ``in / 4``, BN, ReLU; 3x3 transposed convolution stride 2
  (padding 1, output padding 1), BN, ReLU; 1x1 convolution to ``n``, BN, ReLU. 516 -> 256, 256 -> 128,
  128 -> 64, 64 -> 64, with additive skips ``d4 + e3, d3 + e2, d2 + e1``.
- Head: 4x4 transposed convolution stride 2 (64 -> 32), ReLU, 3x3 convolution (32 -> 32), ReLU, 3x3
  convolution (32 -> classes).

In 2D with 3 input and 1 output channels the network has exactly the authors' parameter count, **29,003,093**
(21,284,672 in the encoder; tested against a count built from torchvision's ResNet-34 and the authors' layer
list). Checked once against the released ``CE_Net_`` itself (commit 5ca9bcc, torchvision's ``resnet34`` without
weights): the same 29,003,093 parameters, the same 316 state-dict tensors in the same order and shapes, and with
these weights copied over, the same output (``sigmoid`` of ours) on 2x3x448x448 inputs, maximum difference 0.0.
Differences from the released code, each deliberate:

- The output is logits; the authors apply a sigmoid inside ``forward``. MONAI's losses and post-transforms take
  logits (``DiceLoss(sigmoid=True)``, ``Activations(sigmoid=True)``).
- ``in_channels`` is honoured (the released code ignores ``num_channels`` and always builds 3 input channels).
  With ``pretrained_path`` and ``in_channels != 3`` the stem's ImageNet filters are summed over RGB and spread
  evenly over the input channels (the usual grey-scale adaptation).
- A feature map smaller than a pool size (2D inputs under 6 x 32 = 192 pixels along an axis, common for 3D
  crops) is pooled over its whole extent along that axis instead of failing as the released code does; inputs
  of 192 and more behave exactly as the authors'.
- ``norm`` may replace BatchNorm (for example ``("group", {"num_groups": 16})`` for 3D batches of 1-2; in the
  decoder a GroupNorm's groups drop to a divisor of the channels: 516 // 4 = 129 takes 3); the default is the paper's
  BatchNorm.

The paper starts from ImageNet weights (``pretrained_path``: a local torchvision ``resnet34`` state dict, 2D
only; no download happens here). From scratch the paper's 100 epochs are not enough: expect to need several
times more epochs, and lower scores on the small fundus and vessel sets (CE-Net's Table II reports its
ablations only with pretraining; the backbone-only ablation is its nearest from-scratch reference).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from monai.networks.layers.factories import Conv
from monai.networks.nets import ResNet

from .blocks import load_torchvision_resnet, norm_layer, replace_batchnorm

__all__ = ["CENet", "DACBlock", "RMPBlock", "CENetDecoderBlock", "load_torchvision_resnet34"]


class DACBlock(nn.Module):
    """Dense atrous convolution block: four cascaded branches of 3x3 convolutions (dilation 1, 3, 5) sharing
    their weights, each closed by the one shared 1x1 convolution except the first, summed with the input.

    Args:
        spatial_dims: 2 or 3.
        channels: input and output channels (512 in CE-Net).

    Shapes:
        ``(B, C, *S) -> (B, C, *S)``.

    >>> DACBlock(2, 8)(torch.zeros(1, 8, 5, 5)).shape
    torch.Size([1, 8, 5, 5])
    """

    def __init__(self, spatial_dims: int, channels: int) -> None:
        super().__init__()
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
        conv = Conv[Conv.CONV, spatial_dims]
        self.dilate1 = conv(channels, channels, kernel_size=3, dilation=1, padding=1)
        self.dilate3 = conv(channels, channels, kernel_size=3, dilation=3, padding=3)
        self.dilate5 = conv(channels, channels, kernel_size=3, dilation=5, padding=5)
        self.conv1x1 = conv(channels, channels, kernel_size=1)
        for m in (self.dilate1, self.dilate3, self.dilate5, self.conv1x1):
            nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d1 = self.dilate1(x)
        d3 = self.dilate3(x)
        d31 = self.dilate3(d1)
        return (x + F.relu(d1) + F.relu(self.conv1x1(d3)) + F.relu(self.conv1x1(d31))
                + F.relu(self.conv1x1(self.dilate5(d31))))


class RMPBlock(nn.Module):
    """Residual multi-kernel pooling: max-pooling at several kernel sizes (kernel = stride), one shared 1x1
    convolution to a single channel, resized back to the input and concatenated before it.

    Args:
        spatial_dims: 2 or 3.
        channels: input channels.
        pool_sizes: the pooling kernels. Defaults to ``(2, 3, 5, 6)`` (the paper).

    Shapes:
        ``(B, C, *S) -> (B, len(pool_sizes) + C, *S)``. Along an axis shorter than a pool size, that pool covers
        the whole axis.

    >>> RMPBlock(2, 8)(torch.zeros(1, 8, 12, 4)).shape
    torch.Size([1, 12, 12, 4])
    """

    def __init__(self, spatial_dims: int, channels: int, pool_sizes: Sequence[int] = (2, 3, 5, 6)) -> None:
        super().__init__()
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
        self.spatial_dims = spatial_dims
        self.pool_sizes = [int(p) for p in pool_sizes]
        self.conv = Conv[Conv.CONV, spatial_dims](channels, 1, kernel_size=1)
        self.mode = "bilinear" if spatial_dims == 2 else "trilinear"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[2:]
        outs: list[torch.Tensor] = []
        for p in self.pool_sizes:
            kernel = [min(p, int(s)) for s in size]
            pooled = F.max_pool2d(x, kernel, kernel) if self.spatial_dims == 2 else F.max_pool3d(x, kernel, kernel)
            outs.append(F.interpolate(self.conv(pooled), size=size, mode=self.mode, align_corners=False))
        outs.append(x)
        return torch.cat(outs, dim=1)


class CENetDecoderBlock(nn.Module):
    """CE-Net's decoder block: 1x1 to ``in_channels // 4``, 3x3 transposed convolution stride 2, 1x1 to
    ``out_channels``; each followed by the norm and ReLU.

    Shapes:
        ``(B, in_channels, *S) -> (B, out_channels, *2S)``.

    >>> CENetDecoderBlock(2, 16, 8)(torch.zeros(1, 16, 3, 5)).shape
    torch.Size([1, 8, 6, 10])
    """

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int,
                 norm: str | tuple = "batch") -> None:
        super().__init__()
        conv = Conv[Conv.CONV, spatial_dims]
        mid = in_channels // 4
        self.conv1 = conv(in_channels, mid, kernel_size=1)
        self.norm1 = norm_layer(norm, spatial_dims, mid)
        self.deconv2 = Conv[Conv.CONVTRANS, spatial_dims](mid, mid, kernel_size=3, stride=2, padding=1,
                                                          output_padding=1)
        self.norm2 = norm_layer(norm, spatial_dims, mid)
        self.conv3 = conv(mid, out_channels, kernel_size=1)
        self.norm3 = norm_layer(norm, spatial_dims, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.norm1(self.conv1(x)))
        x = F.relu(self.norm2(self.deconv2(x)))
        return F.relu(self.norm3(self.conv3(x)))


def load_torchvision_resnet34(encoder: ResNet, path: str | Path, in_channels: int) -> None:
    """Load a torchvision ``resnet34`` state dict into ``encoder`` (MONAI's 2D ResNet-34); see
    :func:`.blocks.load_torchvision_resnet`."""
    load_torchvision_resnet(encoder, path, in_channels, "resnet34")


class CENet(nn.Module):
    """CE-Net (Gu et al., TMI 2019): ResNet-34 encoder, DAC and RMP context extractor, decoder with additive skips.

    Args:
        spatial_dims: 2 (the paper) or 3 (the same structure with 3D operators).
        in_channels: input channels (3: RGB fundus, as the paper).
        out_channels: output channels (logits; 1 for the paper's binary tasks with a sigmoid, more for OCT).
        norm: normalisation of the encoder and the decoder blocks. Defaults to ``"batch"`` (the paper).
        pool_sizes: RMP kernels. Defaults to ``(2, 3, 5, 6)``.
        pretrained_path: a local torchvision ``resnet34`` state dict for the encoder (2D only; ImageNet weights in
            the paper). Defaults to ``None`` (random initialisation).

    Shapes:
        input ``(B, in_channels, *S)`` with every ``S`` divisible by 32 (``divisor``); output
        ``(B, out_channels, *S)``. The paper uses 448x448 (fundus, vessels, lung) inputs.

    >>> CENet(2, 3, 1)(torch.zeros(1, 3, 64, 96)).shape
    torch.Size([1, 1, 64, 96])
    """

    divisor = 32

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 3,
        out_channels: int = 1,
        norm: str | tuple = "batch",
        pool_sizes: Sequence[int] = (2, 3, 5, 6),
        pretrained_path: str | None = None,
    ) -> None:
        super().__init__()
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
        if pretrained_path and spatial_dims != 2:
            raise ValueError("pretrained_path loads a 2D torchvision resnet34; there is no 3D ImageNet encoder")
        self.spatial_dims = spatial_dims
        filters = [64, 128, 256, 512]
        self.encoder = ResNet("basic", [3, 4, 6, 3], filters, spatial_dims=spatial_dims, n_input_channels=in_channels,
                              conv1_t_size=7, conv1_t_stride=2, shortcut_type="B", bias_downsample=False,
                              feed_forward=False, norm=norm)
        if not (isinstance(norm, str) and norm.lower() == "batch"):
            replace_batchnorm(self.encoder, norm, spatial_dims)
        if pretrained_path:
            load_torchvision_resnet34(self.encoder, pretrained_path, in_channels)
        self.dac = DACBlock(spatial_dims, filters[3])
        self.rmp = RMPBlock(spatial_dims, filters[3], pool_sizes)
        center = filters[3] + len(self.rmp.pool_sizes)
        self.decoder4 = CENetDecoderBlock(spatial_dims, center, filters[2], norm)
        self.decoder3 = CENetDecoderBlock(spatial_dims, filters[2], filters[1], norm)
        self.decoder2 = CENetDecoderBlock(spatial_dims, filters[1], filters[0], norm)
        self.decoder1 = CENetDecoderBlock(spatial_dims, filters[0], filters[0], norm)
        conv = Conv[Conv.CONV, spatial_dims]
        self.final_deconv = Conv[Conv.CONVTRANS, spatial_dims](filters[0], 32, kernel_size=4, stride=2, padding=1)
        self.final_conv2 = conv(32, 32, kernel_size=3, padding=1)
        self.final_conv3 = conv(32, out_channels, kernel_size=3, padding=1)
        self.skip_channels = [32, 64, *filters[:3], center]
        self.first_up_channels = filters[2]

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor]:
        """``(logits, skips, first_up)`` as :mod:`.backbones` defines them: ``skips`` finest first -- the head's
        32-channel map at input size, the stem (1/2), the stages at 1/4, 1/8 and 1/16, and the context
        extractor's output at 1/32 (516 channels); ``first_up`` is ``decoder4``'s output (1/16, 256 channels)."""
        for size in x.shape[2:]:
            if size % 32 != 0:
                raise ValueError(f"CENet needs spatial sizes divisible by 32, got {list(x.shape[2:])}")
        enc = self.encoder
        x0 = enc.act(enc.bn1(enc.conv1(x)))
        e1 = enc.layer1(enc.maxpool(x0))
        e2 = enc.layer2(e1)
        e3 = enc.layer3(e2)
        e4 = self.rmp(self.dac(enc.layer4(e3)))
        d4 = self.decoder4(e4) + e3
        d3 = self.decoder3(d4) + e2
        d2 = self.decoder2(d3) + e1
        d1 = self.decoder1(d2)
        h = F.relu(self.final_conv2(F.relu(self.final_deconv(d1))))
        return self.final_conv3(h), [h, x0, e1, e2, e3, e4], d4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)[0]
