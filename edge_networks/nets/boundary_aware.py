"""Boundary aware networks (Hatamizadeh, Terzopoulos, Myronenko; MICCAI MLMI workshop 2019).

End-to-End Boundary Aware Networks for Medical Image Segmentation: an encoder-decoder main stream and a shape
stream supervised by edge-aware losses.

- Main stream encoder: one resolution per level, two residual blocks each (strided convolution between levels).
- Shape stream (full input resolution, as in Gated-SCNN which it follows): a 1x1 convolution on the first
  level's features starts it; at every deeper level the main-stream features go through a 1x1 convolution, are
  resized to the shape stream and meet it in an attention layer ``alpha = sigmoid(C1x1(s || m))``,
  ``o = s * alpha`` (:class:`~edge_networks.nets.blocks.EdgeGatedLayer` with ``gate="attention"``); the outputs of
  all but the last attention layer go through connection residual blocks.
- The last attention output, resized to the bottleneck, is concatenated with the encoder output and fed to
  dilated spatial pyramid pooling (MONAI's ``SimpleASPP``); a decoder with skip connections upsamples to the
  segmentation.
- The shape stream's 1x1 head gives the boundary prediction at input size.

``spatial_dims`` 2 is the paper's setting (axial BraTS slices); 3 runs the same design on volumes. Outputs follow
:class:`~edge_networks.nets.egcnn.EGCNN`: ``cat([seg, boundary], 1)`` in training, ``seg`` in evaluation (unless
``edges_in_eval``), one tensor either way so the network scripts.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
from monai.networks.blocks import SimpleASPP, UpSample
from monai.networks.blocks.segresnet_block import ResBlock
from monai.networks.layers.factories import Conv

from .blocks import EdgeGatedLayer, interpolate_to, segmentation_and_edges

__all__ = ["BoundaryAwareNet"]


class BoundaryAwareNet(nn.Module):
    """Encoder-decoder with a gated shape stream and dilated spatial pyramid pooling.

    Args:
        spatial_dims: 2 (the paper) or 3.
        in_channels: input channels (1: T1c in the paper).
        out_channels: segmentation channels (1: tumour core in the paper, sigmoid).
        features: channels per resolution level (the number of levels is its length; 4 gives three attention
            layers, the first two followed by connection residual blocks, as in the paper's figure).
        shape_channels: width of the shape stream.
        aspp_channels: channels of each DSPP branch (four branches, dilations 1, 2, 4, 6).
        num_groups: GroupNorm groups.
        edges_in_eval: also return the boundary logits in evaluation mode.

    Shapes:
        input ``(B, in_channels, *S)``, ``S`` divisible by ``2 ** (len(features) - 1)``; output
        ``(B, out_channels [+ out_channels], *S)``.
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 1,
        out_channels: int = 1,
        features: Sequence[int] = (16, 32, 64, 128),
        shape_channels: int = 16,
        aspp_channels: int = 32,
        num_groups: int = 8,
        edges_in_eval: bool = False,
    ) -> None:
        super().__init__()
        conv = Conv[Conv.CONV, spatial_dims]
        feats = list(features)
        if len(feats) < 2:
            raise ValueError("features needs at least two levels")
        self.out_channels = out_channels
        self.edges_in_eval = edges_in_eval
        self.divisor = 2 ** (len(feats) - 1)

        def norm(ch: int) -> tuple:
            return ("group", {"num_groups": min(num_groups, ch)})

        self.conv_init = conv(in_channels, feats[0], kernel_size=3, padding=1)
        self.down = nn.ModuleList(
            [nn.Identity()]
            + [conv(feats[i - 1], feats[i], kernel_size=3, stride=2, padding=1) for i in range(1, len(feats))]
        )
        self.encoder = nn.ModuleList(
            [
                nn.Sequential(ResBlock(spatial_dims, f, norm=norm(f)), ResBlock(spatial_dims, f, norm=norm(f)))
                for f in feats
            ]
        )
        # shape stream
        self.shape_start = conv(feats[0], shape_channels, kernel_size=1)
        self.shape_in = nn.ModuleList([conv(f, shape_channels, kernel_size=1) for f in feats[1:]])
        n_att = len(feats) - 1
        self.attention = nn.ModuleList(
            [EdgeGatedLayer(spatial_dims, shape_channels, shape_channels, gate="attention") for _ in range(n_att)]
        )
        # connection residual blocks after every attention layer but the last (Identity keeps the lists aligned)
        self.connection = nn.ModuleList(
            [ResBlock(spatial_dims, shape_channels, norm=norm(shape_channels)) for _ in range(n_att - 1)]
            + [nn.Identity()]
        )
        self.shape_head = conv(shape_channels, out_channels, kernel_size=1)
        # dilated spatial pyramid pooling on [encoder output, shape stream]
        self.dspp = SimpleASPP(
            spatial_dims,
            feats[-1] + shape_channels,
            aspp_channels,
            kernel_sizes=(1, 3, 3, 3),
            dilations=(1, 2, 4, 6),
            norm_type=("group", {"num_groups": min(num_groups, aspp_channels)}),
        )
        # decoder: upsample, add the encoder's skip, residual block
        dec_in = [4 * aspp_channels] + feats[::-1][1:-1]
        dec_out = feats[::-1][1:]
        interp = "bilinear" if spatial_dims == 2 else "trilinear"
        self.up = nn.ModuleList(
            [
                UpSample(spatial_dims, ci, co, scale_factor=2, mode="nontrainable", interp_mode=interp)
                for ci, co in zip(dec_in, dec_out)
            ]
        )
        self.decoder = nn.ModuleList([ResBlock(spatial_dims, co, norm=norm(co)) for co in dec_out])
        self.seg_head = conv(feats[0], out_channels, kernel_size=1)

    def forward_streams(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(seg_logits, boundary_logits)``, both at input size."""
        h = self.conv_init(x)
        skips: list[torch.Tensor] = []
        for down, enc in zip(self.down, self.encoder):
            h = enc(down(h))
            skips.append(h)
        s = self.shape_start(skips[0])
        for i, (shape_in, att, connection) in enumerate(zip(self.shape_in, self.attention, self.connection)):
            s = connection(att(s, interpolate_to(shape_in(skips[i + 1]), s)))
        boundary = self.shape_head(s)
        d = self.dspp(torch.cat([skips[-1], interpolate_to(s, skips[-1])], dim=1))
        n = len(skips)
        for i, (up, dec) in enumerate(zip(self.up, self.decoder)):
            d = dec(up(d) + skips[n - 2 - i])
        return self.seg_head(d), boundary

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seg, boundary = self.forward_streams(x)
        return segmentation_and_edges(seg, [boundary], [boundary], self.training, self.edges_in_eval)
