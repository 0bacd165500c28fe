"""ET-Net: the encoder is torchvision's dilated ResNet-50 (weights load, output stride 16), the EGM sees only the
early E-Blocks, the segmentation uses the edge-attention features, the D-Block and Weighted Block against their
formulas, 2D/3D shapes and the output convention, scripting and ONNX."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

torchvision = pytest.importorskip("torchvision", reason="torchvision is the independent reference of this test: "
                                  "pip install -e '.[label,dev]'")

from edge_networks.nets.etnet import ETNet, ETNetDecoderBlock  # noqa: E402
from tests.helpers import assert_scripts_and_exports, torchvision_resnet50  # noqa: E402


def test_encoder_is_torchvisions_dilated_resnet50_and_loads_its_weights(tmp_path):
    tv, path = torchvision_resnet50(tmp_path, [False, False, True])
    net = ETNet(2, 3, 2, pretrained_path=str(path)).eval()
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        ref = tv.layer4(tv.layer3(tv.layer2(tv.layer1(tv.maxpool(tv.relu(tv.bn1(tv.conv1(x))))))))
        ours = net.encoder(x)  # the four stage outputs
    torch.testing.assert_close(ours[3], ref)
    assert [tuple(e.shape[1:]) for e in ours] == [(256, 16, 24), (512, 8, 12), (1024, 4, 6), (2048, 4, 6)]
    assert sum(p.numel() for p in net.encoder.parameters()) == sum(
        p.numel() for n, p in tv.named_parameters() if not n.startswith("fc.")) == 23_508_032
    grey = ETNet(2, 1, 2, pretrained_path=str(path))
    torch.testing.assert_close(grey.encoder.conv1.weight, tv.conv1.weight.sum(1, keepdim=True))
    torch.save(torchvision.models.resnet34(weights=None).state_dict(), tmp_path / "resnet34.pth")
    with pytest.raises(ValueError, match="resnet34.pth.*not a torchvision resnet50"):
        ETNet(2, 3, 2, pretrained_path=str(tmp_path / "resnet34.pth"))
    with pytest.raises(ValueError, match="3D"):
        ETNet(3, 1, 2, pretrained_path=str(path))


@pytest.mark.parametrize(("spatial_dims", "shape"), [(2, (64, 96)), (2, (72, 88)), (3, (32, 32, 48))])
def test_output_convention_and_shapes(spatial_dims, shape):
    norm = "batch" if spatial_dims == 2 else ("group", {"num_groups": 8})
    net = ETNet(spatial_dims, 2, 3, norm=norm)
    x = torch.randn(2, 2, *shape)
    assert net.train()(x).shape == (2, 3 + 2, *shape)  # segmentation, then the 2 edge logits
    with torch.no_grad():
        assert net.eval()(x).shape == (2, 3, *shape)
        net.edges_in_eval = True
        both = net(x)
        assert both.shape == (2, 5, *shape)
        net.edges_in_eval = False
        torch.testing.assert_close(both[:, :3], net(x))


def test_edge_prediction_comes_from_the_early_blocks_and_guides_the_segmentation():
    """The EGM supervises E-Blocks 1-2 only (section 2.1): the edge logits' gradient reaches layer1-2 and not
    layer3-4 or the decoder; the segmentation's reaches the EGM's edge-attention branch (WAM's concatenation)."""
    torch.manual_seed(0)
    net = ETNet(2, 3, 2).train()
    out = net(torch.randn(2, 3, 64, 64))
    edge_grads = torch.autograd.grad(out[:, 2:].sum(), list(net.parameters()), allow_unused=True, retain_graph=True)
    named = dict(zip([n for n, _ in net.named_parameters()], edge_grads))

    def reached(prefix):
        return any(g is not None and g.abs().sum() > 0 for n, g in named.items() if n.startswith(prefix))

    assert reached("encoder.layer1") and reached("encoder.layer2") and reached("egm.edge")
    assert not reached("encoder.layer3") and not reached("encoder.layer4") and not reached("decoder")
    assert not reached("egm.features") and not reached("wam")
    seg_grad = torch.autograd.grad(out[:, :2].sum(), net.egm.features.conv.weight)[0]
    assert seg_grad.abs().sum() > 0


def test_decoder_block_against_its_formula():
    """D-Block: ``pointwise(depthwise(low + up(project(high))))``, the depth-wise convolution one filter per channel."""
    torch.manual_seed(0)
    block = ETNetDecoderBlock(2, 4, 8, 6, norm=None).eval()
    low, high = torch.randn(1, 4, 8, 8), torch.randn(1, 8, 4, 4)
    dw, pw, pj = block.depthwise.conv, block.pointwise.conv, block.project.conv
    assert dw.groups == 4 and tuple(dw.weight.shape) == (4, 1, 3, 3)
    up = F.interpolate(F.relu(F.conv2d(high, pj.weight, pj.bias)), size=(8, 8), mode="bilinear", align_corners=False)
    x = F.relu(F.conv2d(low + up, dw.weight, dw.bias, padding=1, groups=4))
    ref = F.relu(F.conv2d(x, pw.weight, pw.bias))
    torch.testing.assert_close(block(low, high), ref)


def test_weighted_aggregation_against_its_formula():
    """WAM: Weighted Blocks (``x * sigmoid(W2 relu(W1 mean(x)))``) on each scale, the running sum upsampled,
    projected and added from the deepest scale up, concatenated with the edge features, a 1x1 head."""
    from edge_networks.nets.etnet import WeightedAggregationModule

    torch.manual_seed(0)
    wam = WeightedAggregationModule(2, [6, 4], edge_feature_channels=3, out_channels=2, norm=None).eval()
    deep, shallow, edge = torch.randn(1, 6, 4, 4), torch.randn(1, 4, 8, 8), torch.randn(1, 3, 8, 8)

    def weighted(se, x):
        w = torch.sigmoid(se.fc[2](F.relu(se.fc[0](x.mean(dim=(2, 3))))))
        return x * w[:, :, None, None]

    step = wam.steps[0]
    pj = step.project.conv
    x = F.interpolate(F.relu(F.conv2d(weighted(wam.first, deep), pj.weight, pj.bias)), size=(8, 8), mode="bilinear",
                      align_corners=False) + weighted(step.weighted, shallow)
    ref = F.conv2d(torch.cat([x, edge], 1), wam.head.conv.weight, wam.head.conv.bias)
    torch.testing.assert_close(wam([deep, shallow], edge), ref)


def test_scripts_and_exports_to_onnx_with_equal_outputs(tmp_path):
    torch.manual_seed(0)
    assert_scripts_and_exports(ETNet(2, 3, 2).eval(), torch.randn(1, 3, 64, 64), tmp_path / "etnet.onnx")


def test_without_the_edge_module_is_the_papers_ablation():
    """``edge_module=False`` (Table 4, w/o EGM): no EGM parameters, segmentation only in training and evaluation,
    and it scripts."""
    net, full = ETNet(2, 3, 2, edge_module=False), ETNet(2, 3, 2)
    assert not any(n.startswith("egm") for n, _ in net.named_parameters())
    egm = sum(p.numel() for p in full.egm.parameters())
    head_diff = full.wam.head.conv.weight.numel() - net.wam.head.conv.weight.numel()
    assert sum(p.numel() for p in full.parameters()) - sum(p.numel() for p in net.parameters()) == egm + head_diff
    x = torch.randn(2, 3, 64, 64)
    assert net.train()(x).shape == (2, 2, 64, 64)
    net.eval()
    with torch.no_grad():
        torch.testing.assert_close(torch.jit.script(net)(x), net(x))
