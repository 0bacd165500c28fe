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
    assert all(g.conv_e.weight.grad.abs().sum() > 0 for g in net.gates)
    assert all(g.conv_m.weight.grad.abs().sum() > 0 for g in net.gates)
    assert net.main.net.convInit.conv.weight.grad.abs().sum() > 0  # through the gates into the encoder


def test_edge_gated_layer_formulas():
    """Gated-SCNN's gate, computed here with functional convolutions from the layer's weights."""
    torch.manual_seed(0)
    layer = EdgeGatedLayer(2, 4, 6, gate="egcnn")
    with torch.no_grad():
        layer.w.weight.normal_()  # not the identity, so that w is really applied
    e, m = torch.randn(1, 4, 5, 5), torch.randn(1, 6, 5, 5)

    def c(mod, x):
        return F.conv2d(x, mod.weight, mod.bias)

    alpha = torch.sigmoid(c(layer.conv_psi, torch.relu(c(layer.conv_e, e) + c(layer.conv_m, m))))
    torch.testing.assert_close(layer(e, m), c(layer.w, e * alpha + e))
    gs = EdgeGatedLayer(2, 4, 6, gate="gscnn")
    torch.testing.assert_close(gs(e, m), e * torch.sigmoid(c(gs.conv_e, torch.cat([e, m], 1))))
    with pytest.raises(ValueError, match="gate"):
        EdgeGatedLayer(2, 4, 6, gate="other")


def test_edge_gated_layer_learns_to_close_and_to_open():
    """A toy problem: the edge features must pass where the main stream's first channel is positive (``out = 2e``)
    and be suppressed elsewhere (``out = e``, the residual alone). After a few optimiser steps the gate is open
    (alpha > 0.9) on the first region and closed (alpha < 0.1) on the second: the old gate, a sigmoid of a ReLU,
    could never go below 0.5."""
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
    assert alpha[open_.bool()].min() > 0.9 or alpha[open_.bool()].mean() > 0.95
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
