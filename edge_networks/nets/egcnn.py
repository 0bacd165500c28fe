"""EG-CNN: Edge-Gated CNNs for volumetric semantic segmentation (Hatamizadeh, Terzopoulos, Myronenko, MIDL 2020).

A plug-and-play edge stream on a MONAI encoder-decoder (SegResNet, U-Net or V-Net, see :mod:`.backbones`):

- the decoder's first upsampled feature map goes through a 1x1 projection and a residual block into the first
  edge-gated layer, which gates it with the encoder features of that resolution;
- every further resolution, finer and finer: residual block, (tri)linear upsampling, edge-gated layer with the
  encoder features of that resolution -- one edge-gated layer per decoder resolution;
- optionally (``refine_edges``, beyond the paper) a residual block at input size after the last edge-gated layer;
- an edge head (1x1 convolution) gives per-class edge logits at input size;
- the edge-stream features are concatenated with the main stream's logits and a 1x1 convolution gives the final
  segmentation.

The edge-gated layer is Gated-SCNN's released gate, which the paper builds on
(:class:`~edge_networks.nets.blocks.EdgeGatedLayer`, ``gate="egcnn"``), with instance instead of batch norm for
batches of one or two 3D crops (``gate_norm``). Assumptions where the paper is silent (its equations were lost; see
the bundle docs): the edge-stream width (``edge_channels``), the first gate sitting at the resolution of the first
upsampled decoder map (no upsampling before it), and fusion by a 1x1 convolution over ``[main logits,
GroupNorm(edge features)]``, initialised as the identity on the main logits so that training starts from the
backbone's output.

``refine_edges``: the paper gives every edge-gated layer "except for the last one" a residual block after it, so
the input-size edge map is the half-size edge features, upsampled, scaled by ``1 + alpha`` (one gate channel,
the only input-size information) and mixed by 1x1 convolutions. With ``refine_edges`` a residual block (3x3x3
convolutions) at input size follows the last gate, as Gated-SCNN's shape stream has at full resolution; ``False``
(the default) is the paper's stream. Why the option exists and what it did on the demo's data: the research notes
(docs/research_notes.md, "The edge head: a boundary or a blob?").

Outputs: in training mode ``cat([seg_logits, edge_logits], dim=1)`` (``out_channels + edge_out_channels``
channels, split by the loss); in evaluation mode the segmentation logits only, unless ``edges_in_eval`` (then
the concatenation, for writing edge maps). One tensor either way, so the network scripts and traces.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from monai.networks.blocks.segresnet_block import ResBlock
from monai.networks.layers.factories import Conv
from monai.networks.layers.utils import get_norm_layer

from .backbones import build_backbone
from .blocks import EdgeGatedLayer, interpolate_to, segmentation_and_edges

__all__ = ["EGCNN"]


class EGCNN(nn.Module):
    """Encoder-decoder main stream with EG-CNN's edge stream.

    Args:
        spatial_dims: 2 or 3.
        in_channels: input channels (4 for BraTS, 1 for KiTS CT).
        out_channels: segmentation channels (3 BraTS regions with sigmoid, 3 KiTS classes with softmax).
        backbone: ``"segresnet"``, ``"unet"`` or ``"vnet"``.
        backbone_kwargs: passed to the backbone adapter (e.g. ``init_filters``, ``features``, ``num_groups``).
        edge_stream: ``False`` gives the backbone alone (the paper's "None" rows).
        edge_channels: width of the edge stream.
        edge_out_channels: channels of the edge logits (default ``out_channels``; one edge map per class).
        gate: edge-gated layer, ``"egcnn"`` (Gated-SCNN's released gate) or ``"attention"`` (the boundary-aware
            network's attention layer). Defaults to ``"egcnn"``.
        gate_norm: the norm of Gated-SCNN's gate, ``"instance"`` or ``"batch"`` (Gated-SCNN's own, for large 2D
            batches). Defaults to ``"instance"``.
        num_groups: GroupNorm groups in the edge stream's residual blocks.
        edges_in_eval: also return the edge logits in evaluation mode.
        refine_edges: a residual block at input size between the last edge-gated layer and the edge head (beyond
            the paper, see the module docstring). Defaults to ``False``.

    Shapes:
        input ``(B, in_channels, *S)`` with ``S`` divisible by the backbone's ``divisor`` (8 for the default
        SegResNet, 16 for U-Net/V-Net); output ``(B, out_channels[+edge_out_channels], *S)``.
    """

    def __init__(
        self,
        spatial_dims: int = 3,
        in_channels: int = 4,
        out_channels: int = 3,
        backbone: str = "segresnet",
        backbone_kwargs: dict | None = None,
        edge_stream: bool = True,
        edge_channels: int = 16,
        edge_out_channels: int | None = None,
        gate: str = "egcnn",
        gate_norm: str = "instance",
        num_groups: int = 8,
        edges_in_eval: bool = False,
        refine_edges: bool = False,
    ) -> None:
        super().__init__()
        self.main = build_backbone(backbone, spatial_dims, in_channels, out_channels, **(backbone_kwargs or {}))
        self.divisor = int(self.main.divisor)
        self.out_channels = out_channels
        self.edge_out_channels = out_channels if edge_out_channels is None else edge_out_channels
        self.use_edge_stream = edge_stream
        self.edges_in_eval = edges_in_eval
        conv = Conv[Conv.CONV, spatial_dims]
        skip_channels = list(self.main.skip_channels)
        n_gates = len(skip_channels) - 1  # every resolution the decoder produces
        groups = min(num_groups, edge_channels)
        norm = ("group", {"num_groups": groups})
        if edge_stream:
            self.edge_in = conv(self.main.first_up_channels, edge_channels, kernel_size=1)
            # res_blocks[0] follows the projection; res_blocks[i > 0] precede the upsampling to gate i
            self.res_blocks = nn.ModuleList(
                [ResBlock(spatial_dims, edge_channels, norm=norm) for _ in range(n_gates)]
            )
            # gates[i] sits at resolution n_gates - 1 - i (coarse to fine)
            self.gates = nn.ModuleList(
                [
                    EdgeGatedLayer(spatial_dims, edge_channels, skip_channels[n_gates - 1 - i], gate=gate,
                                   norm=gate_norm)
                    for i in range(n_gates)
                ]
            )
            self.edge_refine = ResBlock(spatial_dims, edge_channels, norm=norm) if refine_edges else nn.Identity()
            self.edge_head = conv(edge_channels, self.edge_out_channels, kernel_size=1)
            # fusion sees normalised edge features and starts as the identity on the main logits (edge weights
            # zero), so training begins from the backbone and the gated features (e * alpha + e grows with
            # depth) cannot saturate the segmentation's sigmoid/softmax from the first step
            self.fuse_norm = get_norm_layer(norm, spatial_dims, edge_channels)
            self.fuse = conv(out_channels + edge_channels, out_channels, kernel_size=1)
            with torch.no_grad():
                self.fuse.weight.zero_()
                self.fuse.bias.zero_()
                for c in range(out_channels):
                    self.fuse.weight[c, c] = 1.0
        else:
            self.edge_in = nn.Identity()
            self.res_blocks = nn.ModuleList()
            self.gates = nn.ModuleList()
            self.edge_refine = nn.Identity()
            self.edge_head = nn.Identity()
            self.fuse_norm = nn.Identity()
            self.fuse = nn.Identity()

    def edge_stream(self, skips: list[torch.Tensor], first_up: torch.Tensor) -> torch.Tensor:
        """The edge stream's features at input size ``(B, edge_channels, *S)`` (what the edge head and the fusion
        read), from the backbone's ``skips`` and ``first_up`` (see :mod:`.backbones`)."""
        n = len(skips)
        e = self.edge_in(first_up)
        for i, (res, gate) in enumerate(zip(self.res_blocks, self.gates)):
            skip = skips[n - 2 - i]
            e = res(e)
            if i > 0:
                e = interpolate_to(e, skip)
            e = gate(e, skip)
        return self.edge_refine(e)

    def forward_streams(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(seg_logits, edge_logits)``; ``edge_logits`` is empty (0 channels) without the edge stream."""
        main_logits, skips, first_up = self.main(x)
        if not self.use_edge_stream:
            return main_logits, main_logits[:, :0]
        e = self.edge_stream(skips, first_up)
        seg = self.fuse(torch.cat([main_logits, self.fuse_norm(e)], dim=1))
        return seg, self.edge_head(e)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seg, edge = self.forward_streams(x)
        edges = [edge] if self.use_edge_stream else []
        return segmentation_and_edges(seg, edges, edges, self.training, self.edges_in_eval)
