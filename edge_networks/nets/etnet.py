"""ET-Net: edge-attention guidance network (Zhang et al., MICCAI 2019), in 2D and 3D.

ET-Net: A Generic Edge-aTtention Guidance Network for Medical Image Segmentation (arXiv:1907.10936). The authors'
repository is empty, so this follows the paper's text and figures; every value the paper leaves open is listed
below as an assumption.

- **Encoder** (section 2): ResNet-50's four E-Blocks (256, 512, 1024, 2048 channels at 1/4, 1/8, 1/16, 1/16 of
  the input), with "a dilation strategy in E-Block 4, with an output stride of 1/16" (section 2.3). This is MONAI's
  :class:`~monai.networks.nets.ResNet` (bottleneck blocks ``[3, 4, 6, 3]``, shortcut B without bias) with its last
  stage dilated by :func:`.blocks.dilate_stages` as torchvision's ``replace_stride_with_dilation`` does; a
  torchvision ``resnet50`` state dict loads into it (``pretrained_path``; ImageNet weights in the paper).
- **D-Blocks** (Fig. 2a): the upsampled high-level input added to the low-level E-Block output, a depth-wise 3x3
  convolution, then a 1x1 convolution that "unifies the number of channels". Three cascaded: E4 with E3, then
  with E2, then with E1.
- **EGM** (section 2.1) on E-Blocks 1 and 2: E2 upsampled to E1's size; each through 1x1 then 3x3 convolutions;
  concatenated; one 1x1 branch gives the edge-attention features, another 1x1 branch the edge prediction.
- **WAM** (section 2.2): a Weighted Block on each D-Block output -- global average pooling, a 1x1 convolution with
  ReLU, a 1x1 convolution with sigmoid, the channel weights multiplying the input (MONAI's
  :class:`~monai.networks.blocks.ChannelSELayer`, whose linear layers are those 1x1 convolutions) -- aggregated
  over the scales, concatenated with the edge-attention features, and a 1x1 convolution gives the segmentation.

Assumptions (not in the paper):

- Every convolution except the output ones is followed by BatchNorm and ReLU (``norm``).
- D-Block channels: out 512, 256 and 128 (``decoder_channels``): the first two equal the next E-Block's (512 for
  E2, 256 for E1), so the addition needs no projection; E4's 2048 channels are first projected to E3's 1024 by a
  1x1 convolution, the only such projection.
- EGM: 64 channels in each 1x1-3x3 branch and in the edge-attention features (``egm_channels``); the edge
  prediction has 2 channels (non-edge, edge), for the Lovász-Softmax edge loss the paper uses.
- Weighted Blocks reduce the channels by 2 in the first 1x1 convolution (``se_reduction``, MONAI's default).
- WAM aggregation: from the deepest scale up, the running sum is upsampled, projected by a 1x1 convolution to
  the next scale's channels and added to that scale's weighted features; at 1/4 it is concatenated with the
  edge-attention features (also at 1/4). Segmentation and edge logits are upsampled (bi/trilinear) from 1/4 to
  the input size.

Output convention as the other edge networks: in training ``cat([seg, edge], 1)`` (``out_channels + 2``
channels, the loss splits them); in evaluation the segmentation logits only, unless ``edges_in_eval``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
from monai.networks.blocks import ChannelSELayer

from .blocks import conv_norm_act as _conv
from .blocks import interpolate_to, resnet50_encoder, segmentation_and_edges

__all__ = ["ETNet", "ETNetDecoderBlock", "EdgeGuidanceModule", "WeightedAggregationModule"]


class ETNetDecoderBlock(nn.Module):
    """ET-Net's D-Block (Fig. 2a): ``low + up(high)``, a depth-wise 3x3 convolution, a 1x1 convolution to
    ``out_channels``.

    Args:
        spatial_dims: 2 or 3.
        low_channels: channels of the low-level (E-Block) input; the sum has this many.
        high_channels: channels of the high-level input (projected by a 1x1 convolution when they differ).
        out_channels: output channels.
        norm: normalisation after each convolution. Defaults to ``"batch"``.

    Shapes: ``low`` ``(B, low_channels, *S)``, ``high`` ``(B, high_channels, *S')`` with ``S' <= S`` ->
    ``(B, out_channels, *S)``.
    """

    def __init__(self, spatial_dims: int, low_channels: int, high_channels: int, out_channels: int,
                 norm: str | tuple = "batch") -> None:
        super().__init__()
        self.project = (nn.Identity() if high_channels == low_channels
                        else _conv(spatial_dims, high_channels, low_channels, 1, norm))
        self.depthwise = _conv(spatial_dims, low_channels, low_channels, 3, norm, groups=low_channels)
        self.pointwise = _conv(spatial_dims, low_channels, out_channels, 1, norm)

    def forward(self, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        x = low + interpolate_to(self.project(high), low)
        return self.pointwise(self.depthwise(x))


class EdgeGuidanceModule(nn.Module):
    """ET-Net's EGM (section 2.1): ``e2`` upsampled to ``e1``'s size, each through 1x1 -> 3x3 convolutions,
    concatenated; a 1x1 branch gives the edge-attention features, another the edge logits.

    Args:
        spatial_dims: 2 or 3.
        channels1, channels2: channels of E-Block 1 and 2.
        mid_channels: channels of each branch and of the edge-attention features. Defaults to 64.
        edge_channels: edge logits (2: non-edge and edge, for a softmax). Defaults to 2.
        norm: normalisation. Defaults to ``"batch"``.

    Shapes: ``e1`` ``(B, channels1, *S)``, ``e2`` ``(B, channels2, *S/2)`` -> ``(features (B, mid_channels, *S),
    edge logits (B, edge_channels, *S))``.
    """

    def __init__(self, spatial_dims: int, channels1: int, channels2: int, mid_channels: int = 64,
                 edge_channels: int = 2, norm: str | tuple = "batch") -> None:
        super().__init__()
        self.branch1 = nn.Sequential(_conv(spatial_dims, channels1, mid_channels, 1, norm),
                                     _conv(spatial_dims, mid_channels, mid_channels, 3, norm))
        self.branch2 = nn.Sequential(_conv(spatial_dims, channels2, mid_channels, 1, norm),
                                     _conv(spatial_dims, mid_channels, mid_channels, 3, norm))
        self.features = _conv(spatial_dims, 2 * mid_channels, mid_channels, 1, norm)
        self.edge = _conv(spatial_dims, 2 * mid_channels, edge_channels, 1, norm, plain=True)

    def forward(self, e1: torch.Tensor, e2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([self.branch1(e1), self.branch2(interpolate_to(e2, e1))], dim=1)
        return self.features(x), self.edge(x)


class _AggregationStep(nn.Module):
    """One WAM step: the next scale's Weighted Block output plus the running sum, upsampled and projected."""

    def __init__(self, spatial_dims: int, cin: int, cout: int, se_reduction: int, norm) -> None:
        super().__init__()
        self.weighted = ChannelSELayer(spatial_dims, cout, r=se_reduction)
        self.project = _conv(spatial_dims, cin, cout, 1, norm)

    def forward(self, x: torch.Tensor, nxt: torch.Tensor) -> torch.Tensor:
        return self.weighted(nxt) + interpolate_to(self.project(x), nxt)


class WeightedAggregationModule(nn.Module):
    """ET-Net's WAM (section 2.2): a Weighted Block (channel attention) on each decoder output, aggregated from the
    deepest scale up (upsample, 1x1 projection, add), concatenated with the edge-attention features, and a 1x1
    convolution to the segmentation logits.

    Args:
        spatial_dims: 2 or 3.
        channels: the decoder outputs' channels, deepest first.
        edge_feature_channels: channels of the EGM's edge-attention features.
        out_channels: segmentation logits.
        se_reduction: the Weighted Blocks' channel reduction. Defaults to 2.
        norm: normalisation of the projections. Defaults to ``"batch"``.

    Shapes: decoder outputs deepest first, each twice the previous one's size (or equal), the last the size of the
    edge features ``(B, edge_feature_channels, *S)`` -> ``(B, out_channels, *S)``.
    """

    def __init__(self, spatial_dims: int, channels: Sequence[int], edge_feature_channels: int, out_channels: int,
                 se_reduction: int = 2, norm: str | tuple = "batch") -> None:
        super().__init__()
        self.first = ChannelSELayer(spatial_dims, channels[0], r=se_reduction)
        self.steps = nn.ModuleList([_AggregationStep(spatial_dims, channels[i], channels[i + 1], se_reduction, norm)
                                    for i in range(len(channels) - 1)])
        self.head = _conv(spatial_dims, channels[-1] + edge_feature_channels, out_channels, 1, norm, plain=True)

    def forward(self, decoded: list[torch.Tensor], edge_features: torch.Tensor | None) -> torch.Tensor:
        x = self.first(decoded[0])
        for i, step in enumerate(self.steps):
            x = step(x, decoded[i + 1])
        if edge_features is None:  # ET-Net without its EGM (edge_feature_channels 0)
            return self.head(x)
        return self.head(torch.cat([x, interpolate_to(edge_features, x)], dim=1))


class ETNet(nn.Module):
    """ET-Net (Zhang et al., MICCAI 2019): ResNet-50 encoder (dilated last stage), three D-Blocks, the Edge Guidance
    Module on E-Blocks 1-2 and the Weighted Aggregation Module. See the module docstring for what is the paper's
    and what is assumed.

    Args:
        spatial_dims: 2 (the paper) or 3 (the same structure with 3D operators).
        in_channels: input channels (3: RGB fundus photographs; 1: X-ray, CT).
        out_channels: segmentation logits (classes including the background, for the softmax Lovász loss).
        decoder_channels: the three D-Blocks' outputs. Defaults to ``(512, 256, 128)``.
        egm_channels: the EGM's branch and edge-attention channels. Defaults to 64.
        edge_channels: edge logits (2: non-edge, edge). Defaults to 2.
        se_reduction: the Weighted Blocks' reduction. Defaults to 2.
        norm: normalisation everywhere (BatchNorm in the paper, synchronised over GPUs). Defaults to ``"batch"``.
        pretrained_path: a local torchvision ``resnet50`` state dict for the encoder (2D only). Defaults to None.
        edges_in_eval: also return the edge logits in evaluation mode. Defaults to False.
        edge_module: build the EGM. ``False`` is the paper's ablation without it (Table 4, "w/o EGM"): the WAM's
            head sees the aggregated decoder features alone and the output is the segmentation only, in training
            too. Defaults to True.

    Shapes:
        input ``(B, in_channels, *S)``, every ``S`` divisible by 16 for exact alignment (other sizes are resized
        between scales); output ``(B, out_channels + edge_channels, *S)`` in training (segmentation first),
        ``(B, out_channels, *S)`` in evaluation. The paper trains on 512x512 crops.

    >>> net = ETNet(2, 3, 3).eval()
    >>> net(torch.zeros(1, 3, 64, 96)).shape
    torch.Size([1, 3, 64, 96])
    """

    divisor = 16

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 3,
        out_channels: int = 2,
        decoder_channels: Sequence[int] = (512, 256, 128),
        egm_channels: int = 64,
        edge_channels: int = 2,
        se_reduction: int = 2,
        norm: str | tuple = "batch",
        pretrained_path: str | None = None,
        edges_in_eval: bool = False,
        edge_module: bool = True,
    ) -> None:
        super().__init__()
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
        if len(decoder_channels) != 3:
            raise ValueError(f"decoder_channels needs the three D-Blocks' channels, got {list(decoder_channels)}")
        self.spatial_dims, self.out_channels, self.edge_channels = spatial_dims, out_channels, edge_channels
        self.edges_in_eval, self.edge_module = edges_in_eval, edge_module
        self.encoder = resnet50_encoder(spatial_dims, in_channels, norm, (False, False, True), pretrained_path)
        e = [256, 512, 1024, 2048]
        d = list(decoder_channels)
        self.decoder1 = ETNetDecoderBlock(spatial_dims, e[2], e[3], d[0], norm)
        self.decoder2 = ETNetDecoderBlock(spatial_dims, e[1], d[0], d[1], norm)
        self.decoder3 = ETNetDecoderBlock(spatial_dims, e[0], d[1], d[2], norm)
        self.egm = (EdgeGuidanceModule(spatial_dims, e[0], e[1], egm_channels, edge_channels, norm) if edge_module
                    else None)
        self.wam = WeightedAggregationModule(spatial_dims, d, egm_channels if edge_module else 0, out_channels,
                                             se_reduction, norm)

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(segmentation logits, edge logits)``, both at the input's size (edge logits ``None`` without the
        EGM)."""
        e1, e2, e3, e4 = self.encoder(x)
        d1 = self.decoder1(e3, e4)
        d2 = self.decoder2(e2, d1)
        d3 = self.decoder3(e1, d2)
        if self.egm is None:
            return interpolate_to(self.wam([d1, d2, d3], None), x), None
        edge_features, edge = self.egm(e1, e2)
        seg = self.wam([d1, d2, d3], edge_features)
        return interpolate_to(seg, x), interpolate_to(edge, x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seg, edge = self.features(x)
        edges = [edge] if edge is not None else []
        return segmentation_and_edges(seg, edges, edges, self.training, self.edges_in_eval)
