"""EG-CNN network: shapes for every backbone in 2D/3D, train/eval outputs, edge stream switch, scripting."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from edge_networks.nets.blocks import EdgeGatedLayer, replace_batchnorm_with_groupnorm
from edge_networks.nets.egcnn import EGCNN

SMALL = {"segresnet": {"init_filters": 8}, "unet": {"features": (8, 8, 16, 16, 32, 8)}, "vnet": {}}


@pytest.mark.parametrize("backbone", ["segresnet", "unet", "vnet"])
@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_shapes_train_and_eval(backbone, spatial_dims):
    net = EGCNN(spatial_dims, 4, 3, backbone=backbone, backbone_kwargs=SMALL[backbone], edge_channels=8)
    x = torch.randn(2, 4, *([32] * spatial_dims))
    net.train()
    assert net(x).shape == (2, 6, *x.shape[2:])  # seg + edge logits
    net.eval()
    with torch.no_grad():
        assert net(x).shape == (2, 3, *x.shape[2:])
    sizes = []
    hooks = [g.register_forward_hook(lambda mod, inp, out: sizes.append(tuple(out.shape[2:]))) for g in net.gates]
    net.train()(x)
    for h in hooks:
        h.remove()
    assert len(set(sizes)) == len(sizes) and sizes == sorted(sizes), "one gate per decoder resolution, coarse to fine"
    assert sizes[-1] == tuple(x.shape[2:]) and sizes[0] < tuple(x.shape[2:])


def test_edge_stream_off_is_the_backbone():
    torch.manual_seed(0)
    net = EGCNN(3, 4, 3, edge_stream=False, backbone_kwargs={"init_filters": 8})
    x = torch.randn(1, 4, 16, 16, 16)
    net.train()
    out = net(x)
    assert out.shape == (1, 3, 16, 16, 16)
    assert torch.equal(out, net.main.net(x))  # exactly MONAI's SegResNet
    from monai.networks.nets import SegResNet

    plain = SegResNet(spatial_dims=3, in_channels=4, out_channels=3, init_filters=8)
    plain.load_state_dict({k.removeprefix("main.net."): v for k, v in net.state_dict().items()})  # strict


def test_edges_in_eval_and_scripting_match_eager():
    net = EGCNN(3, 1, 3, backbone_kwargs={"init_filters": 8}, edges_in_eval=True).eval()
    x = torch.randn(1, 1, 16, 16, 16)
    scripted = torch.jit.script(net)
    traced = torch.jit.trace(net, x)
    with torch.no_grad():
        eager = net(x)
        assert eager.shape == (1, 6, 16, 16, 16)
        torch.testing.assert_close(scripted(x), eager)
        torch.testing.assert_close(traced(x), eager)


def test_gradients_reach_edge_stream_gates_and_backbone():
    net = EGCNN(3, 4, 3, backbone_kwargs={"init_filters": 8}).train()
    out = net(torch.randn(1, 4, 16, 16, 16))
    out[:, 3:].sum().backward()  # edge logits only
    assert net.edge_head.weight.grad.abs().sum() > 0
    assert all(g.conv_in.weight.grad.abs().sum() > 0 for g in net.gates)
    assert all(g.reduce.weight.grad.abs().sum() > 0 for g in net.gates)
    assert net.main.net.convInit.conv.weight.grad.abs().sum() > 0  # through the gates into the encoder


class GatedSpatialConvReference(torch.nn.Module):
    """Test-only transcription of Gated-SCNN's ``GatedSpatialConv2d`` forward pass (nv-tlabs/GSCNN,
    ``my_functionals/GatedSpatialConv.py``) with a 1x1 kernel, as Gated-SCNN's shape stream uses it: the gate is
    ``sigmoid(BN(conv(relu(conv(BN(x || g))))))`` over the edge features ``x`` and the one-channel gating features
    ``g``, the output the bias-free convolution of ``x * (gate + 1)``. Written from the released code's structure,
    independently of :class:`EdgeGatedLayer`; ``norm`` swaps its BatchNorm (3D: instance norm, the project's
    choice)."""

    def __init__(self, channels: int, norm=torch.nn.BatchNorm2d, conv=torch.nn.Conv2d):
        super().__init__()
        self.gate_conv = torch.nn.Sequential(norm(channels + 1), conv(channels + 1, channels + 1, 1), torch.nn.ReLU(),
                                             conv(channels + 1, 1, 1), norm(1), torch.nn.Sigmoid())
        kernel = (1,) * (3 if conv is torch.nn.Conv3d else 2)
        self.weight = torch.nn.Parameter(torch.randn(channels, channels, *kernel))

    def forward(self, input_features, gating_features):
        alphas = self.gate_conv(torch.cat([input_features, gating_features], dim=1))
        x = input_features * (alphas + 1)
        return (F.conv3d if self.weight.ndim == 5 else F.conv2d)(x, self.weight)


def _load_reference_weights(layer, ref):
    """The reference's weights into the layer, by role (norm, 1x1 convolutions, output kernel)."""
    seq = ref.gate_conv
    with torch.no_grad():
        for mine, theirs in ((layer.norm_in, seq[0]), (layer.conv_in, seq[1]), (layer.conv_gate, seq[3]),
                             (layer.norm_gate, seq[4])):
            mine.load_state_dict(theirs.state_dict())
        layer.w.weight.copy_(ref.weight)


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_edge_gated_layer_is_gated_scnns_released_gate(spatial_dims):
    """EG-CNN's edge-gated layer against the transcription of Gated-SCNN's gate, loaded with the same weights: the
    same output in training mode (batch statistics) and in evaluation mode (running statistics, made non-trivial),
    given the gating channel the layer's own 1x1 reduction makes from the main stream. 2D with Gated-SCNN's
    BatchNorm; 3D with instance norm (affine), the layer's default."""
    torch.manual_seed(0)
    if spatial_dims == 2:
        layer = EdgeGatedLayer(2, 4, 6, gate="egcnn", norm="batch")
        ref = GatedSpatialConvReference(4)
        e, m = torch.randn(3, 4, 7, 5), torch.randn(3, 6, 7, 5)
    else:
        layer = EdgeGatedLayer(3, 4, 6, gate="egcnn")
        ref = GatedSpatialConvReference(4, norm=lambda c: torch.nn.InstanceNorm3d(c, affine=True),
                                        conv=torch.nn.Conv3d)
        e, m = torch.randn(2, 4, 5, 6, 4), torch.randn(2, 6, 5, 6, 4)
    for mod in ref.modules():  # non-trivial norm parameters and statistics
        if isinstance(mod, (torch.nn.BatchNorm2d, torch.nn.InstanceNorm3d)):
            torch.nn.init.uniform_(mod.weight, 0.5, 2.0)
            torch.nn.init.uniform_(mod.bias, -0.5, 0.5)
            if mod.running_mean is not None:
                mod.running_mean.uniform_(-0.5, 0.5)
                mod.running_var.uniform_(0.5, 2.0)
    _load_reference_weights(layer, ref)
    g = layer.reduce(m)
    for train in (True, False):
        layer.train(train), ref.train(train)
        torch.testing.assert_close(layer(e, m), ref(e, g))
    assert layer.w.bias is None and layer.attention(e, m).shape == (e.shape[0], 1, *e.shape[2:])


def test_attention_gate_and_the_renamed_variant():
    """The boundary-aware network's attention layer, ``e * sigmoid(C(e || m))``; its former name ``gscnn`` (which
    was not Gated-SCNN's gate) is refused with the new name."""
    torch.manual_seed(0)
    e, m = torch.randn(1, 4, 5, 5), torch.randn(1, 6, 5, 5)
    att = EdgeGatedLayer(2, 4, 6, gate="attention")
    expected = e * torch.sigmoid(F.conv2d(torch.cat([e, m], 1), att.conv_e.weight, att.conv_e.bias))
    torch.testing.assert_close(att(e, m), expected)
    with pytest.raises(ValueError, match="renamed 'attention'"):
        EdgeGatedLayer(2, 4, 6, gate="gscnn")
    with pytest.raises(ValueError, match="gate"):
        EdgeGatedLayer(2, 4, 6, gate="other")
    with pytest.raises(ValueError, match="norm"):
        EdgeGatedLayer(2, 4, 6, norm="group")


def test_a_checkpoint_of_the_earlier_gate_names_the_change():
    """A state dict of the gate before 2026-12-06 (conv_e, conv_m, conv_psi, w; no norms) is refused with a message
    naming the replacement, instead of a list of missing and unexpected keys."""
    old = {"gates.0.conv_e.weight": torch.zeros(8, 8, 1, 1, 1), "gates.0.conv_m.weight": torch.zeros(8, 16, 1, 1, 1),
           "gates.0.conv_psi.weight": torch.zeros(1, 8, 1, 1, 1), "gates.0.w.weight": torch.zeros(8, 8, 1, 1, 1)}
    net = EGCNN(3, 4, 3, backbone_kwargs={"init_filters": 8}, edge_channels=8)
    state = {**net.state_dict(), **old}
    with pytest.raises(RuntimeError, match="earlier edge-gated layer.*2026-12-06"):
        net.load_state_dict(state)


def test_edge_gated_layer_learns_to_close_and_to_open():
    """A toy problem: the edge features must pass where the main stream's first channel is positive (``out = 2e``)
    and be suppressed elsewhere (``out = e``, the residual alone). After a few optimiser steps the gate is open
    (alpha > 0.9) on the first region and closed (alpha < 0.1) on the second: a sigmoid of a ReLU could never go
    below 0.5; the gate's norm does not pin it at 0.5 either."""
    torch.manual_seed(0)
    layer = EdgeGatedLayer(2, 4, 3, gate="egcnn")
    e, m = torch.randn(8, 4, 6, 6), torch.randn(8, 3, 6, 6)
    open_ = (m[:, :1] > 0).float()
    target = e * (1 + open_)
    opt = torch.optim.Adam([p for n, p in layer.named_parameters() if not n.startswith("w.")], lr=0.05)
    for _ in range(150):
        opt.zero_grad()
        torch.nn.functional.mse_loss(layer(e, m), target).backward()
        opt.step()
    with torch.no_grad():
        alpha = layer.attention(e, m)
    assert alpha[open_.bool()].median() > 0.9 and alpha[open_.bool()].mean() > 0.85
    assert alpha[~open_.bool()].mean() < 0.1
    assert (alpha < 0.1).float().mean() > 0.4, "closed on most of the suppressed half"


def test_vnet_uses_groupnorm():
    net = EGCNN(3, 4, 3, backbone="vnet")
    kinds = {type(m).__name__ for m in net.modules()}
    assert "GroupNorm" in kinds and not any("BatchNorm" in k for k in kinds)
    bn = torch.nn.Sequential(torch.nn.BatchNorm3d(12))
    assert isinstance(replace_batchnorm_with_groupnorm(bn, 3, 8)[0], torch.nn.GroupNorm)
    assert bn[0].num_groups == 6  # largest divisor of 12 not above 8


def test_unknown_backbone():
    with pytest.raises(ValueError, match="unknown backbone"):
        EGCNN(backbone="resnet")


@pytest.mark.parametrize("refine", [False, True])
def test_refine_edges_gives_the_edge_head_an_input_size_neighbourhood(refine):
    """After the last gate the paper's stream has only 1x1 convolutions (a change of the gated features at one voxel
    changes the edge logits at that voxel only); ``refine_edges`` adds a residual block at input size (two 3x3x3
    convolutions), so the voxels up to 2 away see it too."""
    torch.manual_seed(0)
    net = EGCNN(3, 1, 3, backbone_kwargs={"init_filters": 8}, edge_channels=8, refine_edges=refine).eval()
    assert any(k.startswith("edge_refine.") for k in net.state_dict()) == refine
    x = torch.randn(1, 1, 16, 16, 16)
    bump = {}

    def perturb(module, inputs, output):
        if bump:
            output = output.clone()
            output[..., 8, 8, 8] += 0.01  # small: the block's GroupNorm statistics hardly move
        return output

    net.gates[-1].register_forward_hook(perturb)
    with torch.no_grad():
        _, before = net.forward_streams(x)
        bump[0] = True
        _, after = net.forward_streams(x)
    diff = (after - before).abs().amax(dim=(0, 1))
    near = torch.zeros_like(diff, dtype=torch.bool)
    near[6:11, 6:11, 6:11] = True
    assert diff[8, 8, 8] > 1e-3
    assert diff[~near].max() < 1e-2 * diff[8, 8, 8]  # nothing beyond the block's reach (GroupNorm aside)
    neighbours = torch.stack([diff[7, 8, 8], diff[9, 8, 8], diff[8, 7, 8], diff[8, 9, 8], diff[8, 8, 7], diff[8, 8, 9]])
    if refine:
        assert (neighbours > 1e-2 * diff[8, 8, 8]).all()
    else:
        assert (neighbours == 0).all() and (diff[near].count_nonzero() == 1)


def test_refine_edges_off_keeps_the_papers_parameters():
    kw = {"backbone_kwargs": {"init_filters": 8}, "edge_channels": 8}
    plain, refined = EGCNN(3, 4, 3, **kw), EGCNN(3, 4, 3, refine_edges=True, **kw)
    extra = set(refined.state_dict()) - set(plain.state_dict())
    assert extra and all(k.startswith("edge_refine.") for k in extra)
    assert set(plain.state_dict()) <= set(refined.state_dict())
