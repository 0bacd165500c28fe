"""Blocks shared between the papers' networks: edge-gated / attention gates, norm swapping, resizing."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from monai.networks.blocks import Convolution
from monai.networks.layers.factories import Conv
from monai.networks.layers.utils import get_norm_layer
from monai.networks.nets import ResNet

__all__ = ["EdgeGatedLayer", "interpolate_to", "segmentation_and_edges",
           "norm_layer", "replace_batchnorm", "replace_batchnorm_with_groupnorm",
           "load_torchvision_resnet", "dilate_stages", "ResNetEncoder", "conv_norm_act",
           "resnet50_encoder"]


def segmentation_and_edges(seg: torch.Tensor, training_extra: list[torch.Tensor], eval_extra: list[torch.Tensor],
                           training: bool, edges_in_eval: bool) -> torch.Tensor:
    """The one output contract of this project's edge networks: a single tensor, segmentation channels first.

    In training ``cat([seg, *training_extra], 1)`` (the edge logits, and any deep-supervision outputs, that the
    network's loss splits off by channel); in evaluation ``seg`` alone, or ``cat([seg, *eval_extra], 1)`` with
    ``edges_in_eval`` (the edge map a bundle saves). One tensor either way, so the networks script and export, and
    MONAI's inferers and post-transforms see a plain segmentation in evaluation.

    Args:
        seg: ``(B, C_seg, *S)`` segmentation logits.
        training_extra: ``(B, C_i, *S)`` tensors appended in training (empty: ``seg`` alone).
        eval_extra: ``(B, C_i, *S)`` tensors appended in evaluation with ``edges_in_eval``.
        training: the module's ``self.training``.
        edges_in_eval: the network's ``edges_in_eval``.

    >>> s, e = torch.zeros(1, 3, 4, 4), torch.ones(1, 1, 4, 4)
    >>> [segmentation_and_edges(s, [e], [e], t, x).shape[1] for t, x in ((True, False), (False, False), (False, True))]
    [4, 3, 4]
    """
    extra = training_extra if training else (eval_extra if edges_in_eval else [])
    if len(extra) == 0:
        return seg
    return torch.cat([seg] + extra, dim=1)


def conv_norm_act(spatial_dims: int, cin: int, cout: int, kernel: int, norm, groups: int = 1,
                  plain: bool = False) -> nn.Module:
    """MONAI ``Convolution`` with "same" padding followed by ``norm`` and ReLU (no bias), or ``plain``: the bare
    convolution with a bias (prediction heads). The convolution unit of ET-Net and BA-Net."""
    return Convolution(spatial_dims, cin, cout, kernel_size=kernel, act=None if plain else "relu",
                       norm=None if plain else norm, groups=groups, bias=plain, conv_only=plain)


def interpolate_to(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(Bi/tri)linear resize of ``x`` to the spatial size of ``like`` (no-op when equal).

    On the CPU a 3D input is made channels-last first: PyTorch's channels-last trilinear kernel is vectorised over
    channels, so it is faster than the default layout, with the same values up to float rounding
    (``benchmarks/interpolate_layout.py`` measures it). The output keeps the channels-last layout; values and shape
    are unchanged.
    """
    if x.shape[2:] == like.shape[2:]:
        return x
    if x.ndim == 5:
        if x.device.type == "cpu":
            x = x.contiguous(memory_format=torch.channels_last_3d)
        return F.interpolate(x, size=like.shape[2:], mode="trilinear", align_corners=False)
    return F.interpolate(x, size=like.shape[2:], mode="bilinear", align_corners=False)


class EdgeGatedLayer(nn.Module):
    """Gate edge-stream features with main-stream features: Gated-SCNN's gated convolution as released (EG-CNN's
    edge-gated layer), or the boundary-aware network's attention layer.

    ``gate="egcnn"`` (EG-CNN, whose own equations were lost: it names Gated-SCNN's gate) -- Gated-SCNN's
    ``GatedSpatialConv2d`` (nv-tlabs/GSCNN, ``my_functionals/GatedSpatialConv.py``) with the 1x1 convolution
    (``dsn``) that reduces the main stream to the one gating channel it takes::

        g = R(m)    alpha = sigmoid(N_a(C_2(relu(C_1(N_x(e || g))))))    out = w^T (e * (alpha + 1))

    ``R``: 1x1 convolution ``main_channels -> 1``; ``N_x``: a norm over the ``edge_channels + 1`` concatenated
    channels; ``C_1``: 1x1 convolution to ``edge_channels + 1``; ``C_2``: 1x1 convolution to one channel; ``N_a``: a
    norm of that one channel; ``w``: a 1x1 convolution without bias (initialised to the identity, so the layer starts
    as ``e * (alpha + 1)``). ``alpha`` spans (0, 1): the gate closes to ``w^T e`` and opens to ``2 w^T e``.

    ``norm``: Gated-SCNN uses BatchNorm (batches of 16 images on 8 GPUs). With one or two 3D crops per batch, batch
    statistics are those of one image, so the default is instance norm with learnable affine parameters: the
    statistics BatchNorm would see at batch size one, without its train/eval mismatch (running statistics estimated
    from single crops). GroupNorm is not offered: over ``e || g`` its groups would mix edge and gating channels,
    which Gated-SCNN's per-channel norm keeps apart. Checkpoints of the earlier gate without the norms (before
    2026-12-06) do not load into this one: loading one raises an error that says so.

    ``gate="attention"``: the boundary-aware paper's attention layer, ``alpha = sigmoid(C(e || m))``,
    ``out = e * alpha`` (no norm, ``gate_channels`` attention channels).

    Args:
        spatial_dims: 2 or 3.
        edge_channels: channels of the edge-stream input ``e`` (and of the output).
        main_channels: channels of the main-stream input ``m`` (same spatial size as ``e``).
        gate_channels: ``gate="attention"`` only: channels of the attention map (1: one spatial map broadcast over
            ``e``'s channels, or ``edge_channels``). Gated-SCNN's gate has one. Defaults to 1.
        gate: ``"egcnn"`` or ``"attention"``. Defaults to ``"egcnn"``.
        norm: ``gate="egcnn"`` only: ``"instance"`` or ``"batch"`` (Gated-SCNN's, for 2D batches). Defaults to
            ``"instance"``.

    Raises:
        ValueError: an unknown ``gate`` (``"gscnn"``, this layer's former name for the attention, is named as
            such), ``norm``, or ``gate_channels``.

    Shapes:
        ``e``: ``(B, edge_channels, *S)``, ``m``: ``(B, main_channels, *S)`` -> ``(B, edge_channels, *S)``.

    >>> layer = EdgeGatedLayer(2, edge_channels=4, main_channels=6)
    >>> layer(torch.rand(2, 4, 8, 8), torch.rand(2, 6, 8, 8)).shape
    torch.Size([2, 4, 8, 8])
    """

    def __init__(
        self,
        spatial_dims: int,
        edge_channels: int,
        main_channels: int,
        gate_channels: int = 1,
        gate: str = "egcnn",
        norm: str = "instance",
    ) -> None:
        super().__init__()
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
        if gate == "gscnn":
            raise ValueError("gate 'gscnn' was renamed 'attention' (the boundary-aware network's attention layer); "
                             "Gated-SCNN's released gate is gate='egcnn'")
        if gate not in ("egcnn", "attention"):
            raise ValueError(f"gate must be 'egcnn' or 'attention', got {gate!r}")
        conv = Conv[Conv.CONV, spatial_dims]
        self.gate = gate
        # the other variant's modules are parameter-free placeholders, so that the layer scripts
        self.conv_e: nn.Module = nn.Identity()
        self.reduce, self.norm_in, self.conv_in, self.conv_gate, self.norm_gate, self.w = (
            nn.Identity(), nn.Identity(), nn.Identity(), nn.Identity(), nn.Identity(), nn.Identity())
        if gate == "attention":
            if gate_channels not in (1, edge_channels):
                raise ValueError(f"gate_channels must be 1 or edge_channels ({edge_channels}), got {gate_channels}")
            self.conv_e = conv(edge_channels + main_channels, gate_channels, kernel_size=1)
            return
        if gate_channels != 1:
            raise ValueError(f"Gated-SCNN's gate (gate='egcnn') has one channel, got gate_channels={gate_channels}")
        if norm not in ("instance", "batch"):
            raise ValueError(f"norm must be 'instance' or 'batch', got {norm!r}")
        norm_args = ("instance", {"affine": True}) if norm == "instance" else "batch"
        self.reduce = conv(main_channels, 1, kernel_size=1)
        self.norm_in = get_norm_layer(norm_args, spatial_dims, edge_channels + 1)
        self.conv_in = conv(edge_channels + 1, edge_channels + 1, kernel_size=1)
        self.conv_gate = conv(edge_channels + 1, 1, kernel_size=1)
        self.norm_gate = get_norm_layer(norm_args, spatial_dims, 1)
        self.w = conv(edge_channels, edge_channels, kernel_size=1, bias=False)
        with torch.no_grad():  # w starts as the identity: out = e * (alpha + 1)
            self.w.weight.zero_()
            for c in range(edge_channels):
                self.w.weight[(c, c) + (0,) * spatial_dims] = 1.0

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        if f"{prefix}conv_psi.weight" in state_dict:  # the gate before 2026-12-06: conv_e/conv_m/conv_psi, no norms
            raise RuntimeError(
                f"{prefix.rstrip('.') or 'EdgeGatedLayer'}: this checkpoint holds EG-CNN's earlier edge-gated layer "
                "(conv_e, conv_m, conv_psi, w; without Gated-SCNN's two norms), replaced on 2026-12-06 (egcnn_brats "
                "0.5.0, egcnn_kits 0.4.0) by Gated-SCNN's released gate; it cannot be loaded into the new one: "
                "retrain the model")
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def attention(self, e: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        """The gate ``alpha`` in (0, 1), ``(B, 1 or gate_channels, *S)``."""
        if self.gate == "attention":
            return torch.sigmoid(self.conv_e(torch.cat([e, m], dim=1)))
        x = self.norm_in(torch.cat([e, self.reduce(m)], dim=1))
        return torch.sigmoid(self.norm_gate(self.conv_gate(torch.relu(self.conv_in(x)))))

    def forward(self, e: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        alpha = self.attention(e, m)
        if self.gate == "attention":
            return e * alpha
        return self.w(e * (alpha + 1))


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

    Logs (``edge_networks.nets`` logger, INFO) how many tensors were loaded.

    Raises:
        FileNotFoundError: no file at ``path`` (the message names the torchvision weights it should hold).
        ValueError: the file is not a 2D ResNet state dict of ``encoder``'s depth (``arch`` names it).
    """
    if not Path(path).is_file():
        raise FileNotFoundError(f"pretrained_path {path}: no such file; expected the state dict of torchvision's "
                                f"{arch} ImageNet weights (torch.save(torchvision.models.{arch}(weights='DEFAULT')"
                                ".state_dict(), path))")
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
    logging.getLogger("edge_networks.nets").info(
        "%s: loaded %d tensors of torchvision %s into the encoder%s", path, len(state), arch,
        f" (stem filters summed over RGB for {in_channels} input channel(s))" if in_channels != 3 else "")


def dilate_stages(encoder: nn.Module, replace_stride_with_dilation: tuple[bool, bool, bool]) -> nn.Module:
    """Turn stages 2-4 (``layer2``-``layer4``) of MONAI's bottleneck :class:`~monai.networks.nets.ResNet` from
    stride 2 into dilation, exactly as torchvision's ``resnet50(replace_stride_with_dilation=...)`` builds them:
    for each flagged stage the running dilation doubles, the stage's first block keeps the previous dilation with
    stride 1 (its 3x3 convolution and its shortcut) and the following blocks' 3x3 convolutions get the new one.
    ``(False, False, True)`` gives output stride 16 (ET-Net: layer4 at dilation 2), ``(False, True, True)`` output
    stride 8 (BA-Net, DeepLab: layer3 at 2, layer4 at 2 then 4). Weights and their shapes are unchanged, so
    ImageNet weights load as before. MONAI's ResNet has no dilation option; this changes the built modules in
    place and returns ``encoder``.

    Raises:
        ValueError: ``encoder`` is not a bottleneck ResNet (ResNet-50 and deeper), or the flags are not three.
    """
    if len(replace_stride_with_dilation) != 3:
        raise ValueError(f"replace_stride_with_dilation needs 3 flags (layer2-4), got {replace_stride_with_dilation}")
    dilation = 1
    for name, flag in zip(("layer2", "layer3", "layer4"), replace_stride_with_dilation):
        blocks = list(getattr(encoder, name))
        if not all(hasattr(b, "conv3") for b in blocks):
            raise ValueError("dilating a ResNet stage needs a bottleneck ResNet (ResNet-50 and deeper)")
        if not flag:
            continue
        previous, dilation = dilation, dilation * 2
        first = blocks[0]
        first.conv2.stride = (1,) * len(first.conv2.stride)
        first.conv2.dilation = (previous,) * len(first.conv2.dilation)
        first.conv2.padding = (previous,) * len(first.conv2.padding)
        if first.downsample is not None:
            shortcut = first.downsample[0] if isinstance(first.downsample, nn.Sequential) else first.downsample
            shortcut.stride = (1,) * len(shortcut.stride)
        for block in blocks[1:]:
            block.conv2.dilation = (dilation,) * len(block.conv2.dilation)
            block.conv2.padding = (dilation,) * len(block.conv2.padding)
    return encoder


class ResNetEncoder(ResNet):
    """MONAI's :class:`~monai.networks.nets.ResNet` as an encoder: ``forward`` returns the four stage outputs
    ``(layer1, layer2, layer3, layer4)`` (stem, then each stage; no pooling head, no classifier). Parameter names are
    MONAI's ResNet's, so torchvision state dicts load as into ResNet."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        e1 = self.layer1(self.maxpool(self.act(self.bn1(self.conv1(x)))))
        e2 = self.layer2(e1)
        e3 = self.layer3(e2)
        return e1, e2, e3, self.layer4(e3)


def resnet50_encoder(spatial_dims: int, in_channels: int, norm: str | tuple = "batch",
                     replace_stride_with_dilation: tuple[bool, bool, bool] = (False, False, False),
                     pretrained_path: str | Path | None = None) -> ResNetEncoder:
    """MONAI's ResNet-50 (bottleneck ``[3, 4, 6, 3]``, 7x7 stem, shortcut B without bias, no classifier) as a 2D or
    3D :class:`ResNetEncoder`: ``norm`` everywhere (BatchNorm replaced otherwise), stages dilated as torchvision's
    ``replace_stride_with_dilation`` (:func:`dilate_stages`), a local torchvision ``resnet50`` state dict loaded
    (2D only). The encoder of ET-Net (output stride 16) and BA-Net (output stride 8).

    Raises:
        ValueError: ``pretrained_path`` with ``spatial_dims != 2`` (there is no 3D ImageNet ResNet), or a file that is
            not a torchvision ResNet-50 state dict.
    """
    if pretrained_path and spatial_dims != 2:
        raise ValueError("pretrained_path loads a 2D torchvision resnet50; there is no 3D ImageNet encoder")
    encoder = ResNetEncoder("bottleneck", [3, 4, 6, 3], [64, 128, 256, 512], spatial_dims=spatial_dims,
                            n_input_channels=in_channels, conv1_t_size=7, conv1_t_stride=2, shortcut_type="B",
                            bias_downsample=False, feed_forward=False, norm=norm)
    if not (isinstance(norm, str) and norm.lower() == "batch"):
        replace_batchnorm(encoder, norm, spatial_dims)
    if any(replace_stride_with_dilation):
        dilate_stages(encoder, replace_stride_with_dilation)
    if pretrained_path:
        load_torchvision_resnet(encoder, pretrained_path, in_channels, "resnet50")
    return encoder
