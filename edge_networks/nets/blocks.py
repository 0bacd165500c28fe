"""Blocks shared between the papers' networks: edge-gated / attention gates, norm swapping, resizing."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from monai.networks.layers.factories import Conv
from monai.networks.layers.utils import get_norm_layer

__all__ = ["EdgeGatedLayer", "interpolate_to", "norm_layer", "replace_batchnorm", "replace_batchnorm_with_groupnorm",
           "load_torchvision_resnet", "dilate_last_stage"]


def interpolate_to(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(Bi/tri)linear resize of ``x`` to the spatial size of ``like`` (no-op when equal)."""
    if x.shape[2:] == like.shape[2:]:
        return x
    mode = "trilinear" if x.ndim == 5 else "bilinear"
    return F.interpolate(x, size=like.shape[2:], mode=mode, align_corners=False)


class EdgeGatedLayer(nn.Module):
    """Gate edge-stream features with main-stream features (EG-CNN's edge-gated layer; Gated-SCNN's gate).

    ``gate="egcnn"``: EG-CNN's section 2.2 (its equations were lost; this is our reading, an assumption) -- each
    input through a convolution, fused by addition, through a ReLU, the result an attention map that multiplies
    ``e``, then "a residual layer with kernel w". Gated-SCNN, which EG-CNN builds on, releases exactly that::

        alpha = sigmoid(C_psi(relu(C_e(e) + C_m(m))))      out = w^T (e * alpha + e)

    with ``C_e``, ``C_m`` 1x1 convolutions to ``edge_channels`` (additive fusion equals Gated-SCNN's 1x1
    convolution of the concatenation), ``C_psi`` a 1x1 convolution to ``gate_channels`` and ``w`` a learned 1x1
    convolution (initialised to the identity). Unlike a sigmoid of a ReLU (never below 0.5), ``alpha`` spans
    (0, 1): the gate can close (``out -> w^T e``: the residual keeps the edge stream alive) and open
    (``out -> 2 w^T e``). ``gate="gscnn"`` is the boundary-aware paper's attention:
    ``alpha = sigmoid(C(e || m))``, ``out = e * alpha``.

    Args:
        spatial_dims: 2 or 3.
        edge_channels: channels of the edge-stream input ``e`` (and of the output).
        main_channels: channels of the main-stream input ``m`` (same spatial size as ``e``).
        gate_channels: channels of the attention map (1: one spatial map broadcast over ``e``'s channels).
        gate: ``"egcnn"`` or ``"gscnn"``.

    Shapes:
        ``e``: ``(B, edge_channels, *S)``, ``m``: ``(B, main_channels, *S)`` -> ``(B, edge_channels, *S)``.
    """

    def __init__(
        self, spatial_dims: int, edge_channels: int, main_channels: int, gate_channels: int = 1, gate: str = "egcnn"
    ) -> None:
        super().__init__()
        if gate not in ("egcnn", "gscnn"):
            raise ValueError(f"gate must be 'egcnn' or 'gscnn', got {gate!r}")
        if gate_channels not in (1, edge_channels):
            raise ValueError(f"gate_channels must be 1 or edge_channels ({edge_channels}), got {gate_channels}")
        conv = Conv[Conv.CONV, spatial_dims]
        self.residual = gate == "egcnn"
        if self.residual:
            self.conv_e = conv(edge_channels, edge_channels, kernel_size=1)
            self.conv_m = conv(main_channels, edge_channels, kernel_size=1)
            self.conv_psi = conv(edge_channels, gate_channels, kernel_size=1)
            self.w = conv(edge_channels, edge_channels, kernel_size=1)
            with torch.no_grad():  # w starts as the identity: out = e * alpha + e
                self.w.weight.zero_()
                self.w.bias.zero_()
                for c in range(edge_channels):
                    self.w.weight[(c, c) + (0,) * spatial_dims] = 1.0
        else:
            self.conv_e = conv(edge_channels + main_channels, gate_channels, kernel_size=1)
            self.conv_m = nn.Identity()
            self.conv_psi = nn.Identity()
            self.w = nn.Identity()

    def attention(self, e: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        """The gate ``alpha`` in (0, 1), ``(B, gate_channels, *S)``."""
        if self.residual:
            return torch.sigmoid(self.conv_psi(torch.relu(self.conv_e(e) + self.conv_m(m))))
        return torch.sigmoid(self.conv_e(torch.cat([e, m], dim=1)))

    def forward(self, e: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        alpha = self.attention(e, m)
        return self.w(e * alpha + e) if self.residual else e * alpha


def norm_layer(norm: str | tuple, spatial_dims: int, channels: int) -> nn.Module:
    """MONAI's ``get_norm_layer``, with a GroupNorm's ``num_groups`` reduced to the largest divisor of ``channels``
    not above it (CE-Net's first decoder block has 516 // 4 = 129 channels)."""
    if isinstance(norm, (tuple, list)) and str(norm[0]).lower() == "group":
        args = dict(norm[1]) if len(norm) > 1 else {}
        wanted = int(args.get("num_groups", 8))
        args["num_groups"] = max(g for g in range(1, min(wanted, channels) + 1) if channels % g == 0)
        norm = ("group", args)
    return get_norm_layer(norm, spatial_dims, channels)


def replace_batchnorm(module: nn.Module, norm: str | tuple, spatial_dims: int) -> nn.Module:
    """Swap every BatchNorm of ``module`` for ``norm`` (:func:`norm_layer`) in place. Returns ``module``.

    MONAI's U-Net/V-Net have no norm option for EG-CNN's GroupNorm, and MONAI 1.6's ``ResNet`` applies its ``norm``
    argument to the stem only (its stages keep BatchNorm)."""
    for name, child in list(module.named_children()):
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            setattr(module, name, norm_layer(norm, spatial_dims, child.num_features))
        else:
            replace_batchnorm(child, norm, spatial_dims)
    return module


def replace_batchnorm_with_groupnorm(module: nn.Module, spatial_dims: int, num_groups: int = 8) -> nn.Module:
    """Swap every BatchNorm of ``module`` for GroupNorm in place (EG-CNN's U-Net/V-Net use GroupNorm).

    ``num_groups`` is reduced to a divisor of the channel count where needed. Returns ``module``.
    """
    return replace_batchnorm(module, ("group", {"num_groups": num_groups}), spatial_dims)


def load_torchvision_resnet(encoder: nn.Module, path: str | Path, in_channels: int, arch: str = "resnet") -> None:
    """Load a torchvision ResNet state dict (a file saved with ``torch.save(model.state_dict(), path)``, or a
    checkpoint holding it under ``"state_dict"``) into ``encoder``, MONAI's 2D :class:`~monai.networks.nets.ResNet`
    of the same depth (the same parameter names: CE-Net's ResNet-34, ET-Net's ResNet-50), strictly except the
    classifier. For ``in_channels != 3`` the stem's RGB filters are summed and divided over the input channels.

    Raises:
        ValueError: the file is not a 2D ResNet state dict of ``encoder``'s depth (``arch`` names it).
    """
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    state = {k.removeprefix("module."): v for k, v in state.items() if not k.removeprefix("module.").startswith("fc.")}
    w = state.get("conv1.weight")
    if w is None:
        raise ValueError(f"{path}: not a ResNet state dict (no 'conv1.weight')")
    if w.ndim != 4:
        raise ValueError(f"{path}: conv1.weight has shape {tuple(w.shape)}; a 2D torchvision {arch} is expected")
    if in_channels != w.shape[1]:
        state["conv1.weight"] = w.sum(dim=1, keepdim=True).repeat(1, in_channels, 1, 1) / in_channels
    own = {k for k in encoder.state_dict() if not k.startswith("fc.")}
    missing, unexpected = own - set(state), set(state) - own
    if missing or unexpected:
        raise ValueError(f"{path}: not a torchvision {arch} state dict; missing {sorted(missing)[:5]}, "
                         f"unexpected {sorted(unexpected)[:5]}")
    shapes = [k for k, v in encoder.state_dict().items() if k in state and tuple(state[k].shape) != tuple(v.shape)]
    if shapes:
        raise ValueError(f"{path}: not a torchvision {arch} state dict; shapes differ for {shapes[:5]}")
    encoder.load_state_dict(state, strict=False)


def dilate_last_stage(encoder: nn.Module, dilation: int = 2) -> nn.Module:
    """Turn the last stage (``layer4``) of MONAI's bottleneck :class:`~monai.networks.nets.ResNet` from stride 2
    into dilation (output stride 16 instead of 32), as torchvision's ``replace_stride_with_dilation=[False, False,
    True]`` does: the stage's first block keeps dilation 1 with stride 1 (its 3x3 convolution and its shortcut), the
    following blocks' 3x3 convolutions get ``dilation`` (and padding ``dilation``). Weights and their shapes are
    unchanged, so ImageNet weights load as before. MONAI's ResNet has no dilation option; this changes the built
    modules in place and returns ``encoder``.

    Raises:
        ValueError: ``encoder`` is not a bottleneck ResNet (ResNet-50 and deeper).
    """
    blocks = list(encoder.layer4)
    if not all(hasattr(b, "conv3") for b in blocks):
        raise ValueError("dilate_last_stage needs a bottleneck ResNet (ResNet-50 and deeper)")
    first = blocks[0]
    first.conv2.stride = (1,) * len(first.conv2.stride)
    if first.downsample is not None:
        shortcut = first.downsample[0] if isinstance(first.downsample, nn.Sequential) else first.downsample
        shortcut.stride = (1,) * len(shortcut.stride)
    for block in blocks[1:]:
        block.conv2.dilation = (dilation,) * len(block.conv2.dilation)
        block.conv2.padding = (dilation,) * len(block.conv2.padding)
    return encoder
