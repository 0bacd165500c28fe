"""BA-Net: boundary-aware context neural network (Wang et al., Medical Image Analysis 78:102395, 2022), in 2D and 3D.

Boundary-aware context neural network for medical image segmentation (arXiv:2005.00966). The authors released
code (github.com/mathwrx/BA-Net, ``encoding/models/BANet.py``); where the paper and the code differ, the default
follows the paper and the code's choice is an argument:

- **Encoder** (section III-A): ResNet (paper: ResNet-101; code: ResNet-50, the default here) with its last two
  stages dilated, output stride 8 (stage outputs at 1/4, 1/8, 1/8, 1/8): MONAI's ResNet-50 dilated as
  torchvision's ``replace_stride_with_dilation=[False, True, True]`` (:func:`.blocks.resnet50_encoder`); a
  torchvision ``resnet50`` state dict loads into it (``pretrained_path``).
- **ASPP** on the last stage: 1x1 and three 3x3 atrous convolutions (rates 6, 12, 18) and image-level pooling, each
  Conv-BN-ReLU, concatenated and projected by a 1x1 Conv-BN-ReLU to 256 channels (DeepLab v3, as the code).
  MONAI's :class:`~monai.networks.blocks.SimpleASPP` does not match: its atrous convolutions have no norm or
  activation of their own (the branches and its 1x1 convolution compose into one linear map before its single
  norm and activation) and it has no image-pooling branch, so :class:`BANetASPP` builds the branches from MONAI's
  ``Convolution``.
- **PEE** (eq. 1-3) per stage: a 1x1 convolution to 128 channels, then average pooling at stride 1 with two kernel
  sizes (5 and 7 on stages 1-2, 3 and 5 on stages 3-4); the paper subtracts each pooled map from the features
  (``F - avg_k(F)``, ``pee_mode="subtract"``), the code concatenates the pooled maps themselves
  (``pee_mode="concat"``); a 1x1 convolution fuses ``[F, ...]`` to 128 channels. The two are one linear map
  apart (the fusing convolution can learn either), so they differ only in initialisation.
- **mini-MTL** (eq. 4-6, Fig. 4-5): an edge and a segmentation branch of two 3x3 convolutions each, the
  interactive attention after the first, ``e = e + (1 - sigmoid(e)) * s``, ``s = s + (1 - sigmoid(s)) * e``
  (the paper: the gate is the sigmoid of the features themselves, no parameters; the code computes it through a
  convolution, ``attention_convs=True``), each branch's prediction head (a 3x3 convolution, as the code) upsampled
  to the input, and a 1x1 convolution fusing the two branches (eq. 6). ``interactive_attention=False`` is the
  paper's "w/o IA" ablation.
- **CFF** (eq. 10): ``x_i + (1 - sigmoid(x_i)) * sum_{j != i} sigmoid(x_j) * x_j``, the other stages resized to
  stage ``i`` (the code's gates go through 3x3 convolutions: ``attention_convs=True``).
- **Decoder** (eq. 11): ``D4 = conv1x1([ASPP, F4])``, ``Di = conv1x1([D(i+1), Fi])`` for ``i = 3, 2, 1``, then a 3x3
  Conv-BN-ReLU and a 1x1 convolution to the classes (as the code), upsampled to the input size.

Ablations (Table IV): ``pee=False`` (the reduced features go straight to the mini-MTL), ``mtl=False`` (no branches,
no stage supervision: the PEE output goes to the CFF), ``cff=False`` (each stage alone), ``interactive_attention=
False``; with all three modules off it is the paper's "baseline" (encoder, ASPP and the decoder on the reduced
stage features).

Assumptions (not fixed by paper or code): every convolution but the prediction heads is followed by the norm and
ReLU (the code's depth-wise separable convolutions are plain 3x3 here); the stage-1 features are at 1/4 and the
deeper ones at 1/8, so ``D(i+1)`` is resized to stage ``i``.

Output convention as the other edge networks: in training ``cat([seg, seg_1..seg_4, edge_1..edge_4], 1)`` -- the
decoder's ``out_channels`` segmentation logits, then the four stages' segmentation logits (``out_channels`` each)
and edge logits (one channel each), all at the input's size; :class:`~edge_networks.losses.BANetLoss` splits them.
In evaluation the segmentation alone, or with ``edges_in_eval`` ``cat([seg, edge_1])`` (the finest stage's edge).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from monai.networks.blocks import Convolution
from monai.networks.layers.factories import Conv, Pool

from .blocks import conv_norm_act as _conv
from .blocks import interpolate_to, resnet50_encoder, segmentation_and_edges

__all__ = ["BANet", "BANetASPP", "PyramidEdgeExtraction", "MiniMultiTask", "CrossFeatureFusion"]

STAGE_CHANNELS = (256, 512, 1024, 2048)


class BANetASPP(nn.Module):
    """DeepLab v3's ASPP as BA-Net uses it: a 1x1 and three 3x3 atrous convolutions and an image-level pooling
    branch, each Conv-norm-ReLU, concatenated and projected by a 1x1 Conv-norm-ReLU (not MONAI's ``SimpleASPP``: see
    the module docstring).

    Args:
        spatial_dims: 2 or 3.
        in_channels: input channels (2048: ResNet-50's last stage).
        out_channels: channels of every branch and of the output. Defaults to 256.
        rates: the three atrous rates. Defaults to ``(6, 12, 18)``.
        norm: normalisation. Defaults to ``"batch"``.

    Shapes: ``(B, in_channels, *S)`` -> ``(B, out_channels, *S)``.
    """

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int = 256,
                 rates: Sequence[int] = (6, 12, 18), norm: str | tuple = "batch") -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            [_conv(spatial_dims, in_channels, out_channels, 1, norm)]
            + [Convolution(spatial_dims, in_channels, out_channels, kernel_size=3, dilation=r, act="relu", norm=norm,
                           bias=False) for r in rates])
        self.pool = Pool["adaptiveavg", spatial_dims](1)
        self.image = _conv(spatial_dims, in_channels, out_channels, 1, norm)
        self.project = _conv(spatial_dims, (len(rates) + 2) * out_channels, out_channels, 1, norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = [branch(x) for branch in self.branches]
        parts.append(interpolate_to(self.image(self.pool(x)), x))  # the pooled 1x1 map, broadcast
        return self.project(torch.cat(parts, dim=1))


class PyramidEdgeExtraction(nn.Module):
    """PEE (eq. 2-3): ``conv1x1([F, F - avg_k1(F), F - avg_k2(F)])`` (``mode="subtract"``, the paper) or
    ``conv1x1([F, avg_k1(F), avg_k2(F)])`` (``"concat"``, the authors' code). Average pooling at stride 1 over a
    zero-padded border that counts in the mean (the code's ``nn.AvgPool2d(k, 1, (k - 1) // 2)``); the padding is
    explicit, so 3D maps smaller than the kernel (a 32^3 crop at output stride 8) work as 2D ones do.

    Shapes: ``(B, channels, *S)`` -> ``(B, channels, *S)``.
    """

    def __init__(self, spatial_dims: int, channels: int, kernels: Sequence[int], norm: str | tuple = "batch",
                 mode: str = "subtract") -> None:
        super().__init__()
        if mode not in ("subtract", "concat"):
            raise ValueError(f"PEE mode must be 'subtract' (the paper) or 'concat' (the code), got {mode!r}")
        if any(k % 2 == 0 for k in kernels):
            raise ValueError(f"PEE pooling kernels must be odd (the map keeps its size), got {list(kernels)}")
        self.mode, self.kernels = mode, [int(k) for k in kernels]
        self.pools = nn.ModuleList(Pool["avg", spatial_dims](k, stride=1) for k in kernels)
        self.fuse = _conv(spatial_dims, channels * (len(kernels) + 1), channels, 1, norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = [x]
        for i, pool in enumerate(self.pools):
            r = self.kernels[i] // 2
            pooled = pool(F.pad(x, [r, r] * (x.ndim - 2)))
            parts.append(x - pooled if self.mode == "subtract" else pooled)
        return self.fuse(torch.cat(parts, dim=1))


class MiniMultiTask(nn.Module):
    """mini-MTL (eq. 4-6): edge and segmentation branches (two 3x3 convolutions each) with the interactive
    attention after the first, a prediction head per branch, and a 1x1 fusion of the two branches.

    Returns ``(fused features, segmentation logits, edge logits)``, the logits at the input's resolution (the
    caller upsamples them).
    """

    def __init__(self, spatial_dims: int, channels: int, out_channels: int, norm: str | tuple = "batch",
                 interactive_attention: bool = True, attention_convs: bool = False) -> None:
        super().__init__()
        self.interactive_attention = interactive_attention
        self.edge1, self.edge2 = (_conv(spatial_dims, channels, channels, 3, norm) for _ in range(2))
        self.seg1, self.seg2 = (_conv(spatial_dims, channels, channels, 3, norm) for _ in range(2))
        self.att_edge = _conv(spatial_dims, channels, channels, 3, norm, plain=True) if attention_convs else None
        self.att_seg = _conv(spatial_dims, channels, channels, 3, norm, plain=True) if attention_convs else None
        self.edge_head = _conv(spatial_dims, channels, 1, 3, norm, plain=True)
        self.seg_head = _conv(spatial_dims, channels, out_channels, 3, norm, plain=True)
        self.fuse = _conv(spatial_dims, 2 * channels, channels, 1, norm)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        e, s = self.edge1(x), self.seg1(x)
        if self.interactive_attention:
            ae, as_ = e, s
            if self.att_edge is not None:
                ae = self.att_edge(e)
            if self.att_seg is not None:
                as_ = self.att_seg(s)
            e, s = e + (1 - torch.sigmoid(ae)) * s, s + (1 - torch.sigmoid(as_)) * e
        e, s = self.edge2(e), self.seg2(s)
        return self.fuse(torch.cat([e, s], dim=1)), self.seg_head(s), self.edge_head(e)


class CrossFeatureFusion(nn.Module):
    """CFF (eq. 10): stage ``i`` gains the other stages' features, gated: ``x_i + (1 - g(x_i)) * sum_{j != i} g(x_j)
    * x_j`` with ``g = sigmoid`` (the paper) or ``sigmoid(conv3x3(.))`` (``attention_convs``: the authors' code's
    gate, a 3x3 convolution without bias), the other stages resized (bi/trilinear) to stage ``i``. On stages of one
    size this is the code's ``FeatureCrossFusion`` (tested against a transcription); where sizes differ the code
    resizes a stage before its gate (corners aligned) and gives each fusion its own four gate convolutions, while
    here each stage has one gate, computed at its own size.

    Shapes: a list of ``(B, channels, *S_j)`` -> the same list, fused.
    """

    def __init__(self, spatial_dims: int, channels: int, stages: int = 4, attention_convs: bool = False) -> None:
        super().__init__()
        conv = Conv[Conv.CONV, spatial_dims]  # the code's gate: a 3x3 convolution without bias
        self.gates = nn.ModuleList(conv(channels, channels, 3, padding=1, bias=False) if attention_convs
                                   else nn.Identity() for _ in range(stages))

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        gates: list[torch.Tensor] = []
        for i, gate in enumerate(self.gates):  # at each stage's own size
            gates.append(torch.sigmoid(gate(feats[i])))
        out = []
        for i, x in enumerate(feats):
            others = torch.zeros_like(x)
            for j, y in enumerate(feats):
                if j != i:
                    others = others + interpolate_to(gates[j] * y, x)
            out.append(x + (1 - interpolate_to(gates[i], x)) * others)
        return out


class BANet(nn.Module):
    """BA-Net (Wang et al., MedIA 2022): dilated ResNet-50 (output stride 8), ASPP, and per encoder stage the
    Pyramid Edge Extraction, the mini multi-task module (edge and segmentation branches with interactive
    attention, both supervised) and the Cross Feature Fusion, aggregated by the decoder. See the module docstring
    for what is the paper's, what is the code's and what is assumed.

    Args:
        spatial_dims: 2 (the paper) or 3 (the same structure with 3D operators).
        in_channels: input channels (3: RGB dermoscopy, endoscopy, fundus; 1: X-ray).
        out_channels: segmentation logits (1 sigmoid channel for the paper's binary tasks).
        reduce_channels: every stage's channels after the first 1x1 convolution. Defaults to 128.
        aspp_channels: ASPP channels. Defaults to 256.
        aspp_rates: ASPP's atrous rates. Defaults to ``(6, 12, 18)``.
        pool_kernels: PEE's two average-pooling kernels per stage. Defaults to ``((5, 7), (5, 7), (3, 5), (3, 5))``.
        pee_mode: ``"subtract"`` (the paper) or ``"concat"`` (the code). Defaults to ``"subtract"``.
        pee, mtl, cff, interactive_attention: build each module (the paper's ablations). Default True.
        attention_convs: compute the IA and CFF gates through 3x3 convolutions, as the authors' code. Defaults to
            False (the paper's parameter-free gates).
        norm: normalisation everywhere. Defaults to ``"batch"``.
        pretrained_path: a local torchvision ``resnet50`` state dict for the encoder (2D only). Defaults to None.
        edges_in_eval: also return the finest stage's edge logits in evaluation mode. Defaults to False.

    Shapes:
        input ``(B, in_channels, *S)``, every ``S`` divisible by 8 for exact alignment (other sizes are resized
        between scales); output in training ``(B, 5 * out_channels + 4, *S)`` with the mini-MTL (``seg``, the four
        stage segmentations, the four stage edges), ``(B, out_channels, *S)`` without it; in evaluation ``(B,
        out_channels, *S)`` (``+ 1`` edge channel with ``edges_in_eval``). The paper trains on 256x256 images.

    >>> net = BANet(2, 3, 1).eval()
    >>> net(torch.zeros(1, 3, 64, 96)).shape
    torch.Size([1, 1, 64, 96])
    """

    divisor = 8

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 3,
        out_channels: int = 1,
        reduce_channels: int = 128,
        aspp_channels: int = 256,
        aspp_rates: Sequence[int] = (6, 12, 18),
        pool_kernels: Sequence[Sequence[int]] = ((5, 7), (5, 7), (3, 5), (3, 5)),
        pee_mode: str = "subtract",
        pee: bool = True,
        mtl: bool = True,
        cff: bool = True,
        interactive_attention: bool = True,
        attention_convs: bool = False,
        norm: str | tuple = "batch",
        pretrained_path: str | None = None,
        edges_in_eval: bool = False,
    ) -> None:
        super().__init__()
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
        if len(pool_kernels) != 4:
            raise ValueError(f"pool_kernels needs the 4 stages' kernels, got {list(pool_kernels)}")
        self.spatial_dims, self.out_channels, self.edges_in_eval, self.mtl = spatial_dims, out_channels, \
            edges_in_eval, mtl
        c = reduce_channels
        self.encoder = resnet50_encoder(spatial_dims, in_channels, norm, (False, True, True), pretrained_path)
        self.aspp = BANetASPP(spatial_dims, STAGE_CHANNELS[3], aspp_channels, aspp_rates, norm)
        self.reduce = nn.ModuleList(_conv(spatial_dims, ch, c, 1, norm) for ch in STAGE_CHANNELS)
        self.pee = (nn.ModuleList(PyramidEdgeExtraction(spatial_dims, c, k, norm, pee_mode) for k in pool_kernels)
                    if pee else None)
        self.mini_mtl = (nn.ModuleList(MiniMultiTask(spatial_dims, c, out_channels, norm, interactive_attention,
                                                     attention_convs) for _ in range(4)) if mtl else None)
        self.cff = CrossFeatureFusion(spatial_dims, c, 4, attention_convs) if cff else None
        self.decode4 = _conv(spatial_dims, aspp_channels + c, c, 1, norm)
        self.decode = nn.ModuleList(_conv(spatial_dims, 2 * c, c, 1, norm) for _ in range(3))  # stages 3, 2, 1
        self.head = nn.Sequential(_conv(spatial_dims, c, c, 3, norm), _conv(spatial_dims, c, out_channels, 1, norm,
                                                                            plain=True))

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        """``(segmentation logits, stage segmentation logits, stage edge logits)`` at the input's size (the stage
        lists are empty without the mini-MTL)."""
        stages = self.encoder(x)
        aspp = self.aspp(stages[3])
        feats: list[torch.Tensor] = []
        for i, reduce in enumerate(self.reduce):
            feats.append(reduce(stages[i]))
        if self.pee is not None:
            feats = [pee(feats[i]) for i, pee in enumerate(self.pee)]
        segs: list[torch.Tensor] = []
        edges: list[torch.Tensor] = []
        if self.mini_mtl is not None:
            fused: list[torch.Tensor] = []
            for i, m in enumerate(self.mini_mtl):
                h, seg_i, edge_i = m(feats[i])
                fused.append(h)
                segs.append(interpolate_to(seg_i, x))
                edges.append(interpolate_to(edge_i, x))
            feats = fused
        if self.cff is not None:
            feats = self.cff(feats)
        d = self.decode4(torch.cat([interpolate_to(aspp, feats[3]), feats[3]], dim=1))
        for i, dec in enumerate(self.decode):  # stages 3, 2, 1
            f = feats[2 - i]
            d = dec(torch.cat([interpolate_to(d, f), f], dim=1))
        return interpolate_to(self.head(d), x), segs, edges

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seg, segs, edges = self.features(x)
        if not self.mtl:
            return seg
        return segmentation_and_edges(seg, segs + edges, [edges[0]], self.training, self.edges_in_eval)
