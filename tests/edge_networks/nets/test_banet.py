"""BA-Net: the encoder is torchvision's ResNet-50 at output stride 8 (weights load), PEE, interactive attention,
CFF and ASPP against their formulas, the paper's and the code's PEE one linear map apart, the ablations, 2D/3D shapes
and the output convention, scripting and ONNX."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from edge_networks.nets.banet import BANet, BANetASPP, CrossFeatureFusion, MiniMultiTask, PyramidEdgeExtraction
from tests.helpers import assert_scripts_and_exports, torchvision_resnet50


def test_encoder_is_torchvisions_resnet50_at_output_stride_8_and_loads_its_weights(tmp_path):
    tv, path = torchvision_resnet50(tmp_path, [False, True, True])
    net = BANet(2, 3, 1, pretrained_path=str(path)).eval()
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        e1 = tv.layer1(tv.maxpool(tv.relu(tv.bn1(tv.conv1(x)))))
        ref = [e1, tv.layer2(e1)]
        ref += [tv.layer3(ref[1])]
        ref += [tv.layer4(ref[2])]
        ours = net.encoder(x)
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b)
    assert [tuple(e.shape[1:]) for e in ours] == [(256, 16, 24), (512, 8, 12), (1024, 8, 12), (2048, 8, 12)]
    with pytest.raises(ValueError, match="3D"):
        BANet(3, 1, 1, pretrained_path=str(path))


@pytest.mark.parametrize(("spatial_dims", "shape"), [(2, (64, 96)), (2, (68, 90)), (3, (32, 32, 40))])
def test_output_convention_and_shapes(spatial_dims, shape):
    """Training: decoder, 4 stage segmentations (``out_channels`` each), 4 stage edges, at the input's size;
    evaluation: the segmentation, or with the finest stage's edge."""
    norm = "batch" if spatial_dims == 2 else ("group", {"num_groups": 8})
    net = BANet(spatial_dims, 2, 3, reduce_channels=16, aspp_channels=16, norm=norm)
    x = torch.randn(2, 2, *shape)
    assert net.train()(x).shape == (2, 3 + 4 * 3 + 4, *shape)
    with torch.no_grad():
        seg = net.eval()(x)
        assert seg.shape == (2, 3, *shape)
        net.edges_in_eval = True
        both = net(x)
        assert both.shape == (2, 4, *shape)
        torch.testing.assert_close(both[:, :3], seg)
        torch.testing.assert_close(both[:, 3:], net.features(x)[2][0])


def test_pee_against_its_formula_and_the_codes_variant_is_one_linear_map_away():
    """Paper: ``W [x, x - avg5(x), x - avg7(x)]``; code: ``W' [x, avg5(x), avg7(x)]``. With ``W' = [Wx + W1 + W2,
    -W1, -W2]`` the two are equal: the fusing convolution can learn either."""
    torch.manual_seed(0)
    paper = PyramidEdgeExtraction(2, 4, (5, 7), norm=None, mode="subtract").eval()
    code = PyramidEdgeExtraction(2, 4, (5, 7), norm=None, mode="concat").eval()
    x = torch.randn(1, 4, 12, 10)
    w, b = paper.fuse.conv.weight, paper.fuse.conv.bias

    def avg(k):  # the authors' nn.AvgPool2d(k, 1, (k - 1) // 2): zero padding counted in the mean
        return F.avg_pool2d(x, k, stride=1, padding=k // 2, count_include_pad=True)

    torch.testing.assert_close(paper(x), F.relu(F.conv2d(torch.cat([x, x - avg(5), x - avg(7)], 1), w, b)))
    wx, w1, w2 = w.split(4, dim=1)
    with torch.no_grad():
        code.fuse.conv.weight.copy_(torch.cat([wx + w1 + w2, -w1, -w2], 1))
    torch.testing.assert_close(code(x), paper(x))
    with pytest.raises(ValueError, match="subtract"):
        PyramidEdgeExtraction(2, 4, (3, 5), mode="add")
    with pytest.raises(ValueError, match="odd"):
        PyramidEdgeExtraction(2, 4, (3, 4))


def test_interactive_attention_against_its_formula():
    """Eq. 5: ``e' = e + (1 - sigmoid(e)) * s`` and ``s' = s + (1 - sigmoid(s)) * e`` after each branch's first
    convolution, then the second convolutions, the heads and the 1x1 fusion (eq. 6)."""
    torch.manual_seed(0)
    mtl = MiniMultiTask(2, 4, 2, norm=None).eval()
    x = torch.randn(1, 4, 8, 8)

    def conv(block, t):
        c = block.conv
        return F.relu(F.conv2d(t, c.weight, c.bias, padding=c.padding))

    e, s = conv(mtl.edge1, x), conv(mtl.seg1, x)
    e, s = e + (1 - torch.sigmoid(e)) * s, s + (1 - torch.sigmoid(s)) * e
    e, s = conv(mtl.edge2, e), conv(mtl.seg2, s)
    fused, seg, edge = mtl(x)
    torch.testing.assert_close(fused, conv(mtl.fuse, torch.cat([e, s], 1)))
    torch.testing.assert_close(seg, F.conv2d(s, mtl.seg_head.conv.weight, mtl.seg_head.conv.bias, padding=1))
    torch.testing.assert_close(edge, F.conv2d(e, mtl.edge_head.conv.weight, mtl.edge_head.conv.bias, padding=1))
    assert seg.shape == (1, 2, 8, 8) and edge.shape == (1, 1, 8, 8)
    plain = MiniMultiTask(2, 4, 2, norm=None, interactive_attention=False).eval()
    plain.load_state_dict(mtl.state_dict())
    assert not torch.allclose(plain(x)[0], fused), "without IA the branches do not exchange anything"


def test_cross_feature_fusion_against_its_formula():
    """Eq. 10 with stages of two sizes: ``x_i + (1 - sigmoid(x_i)) * sum_{j != i} sigmoid(x_j) * x_j``, the other
    stages resized to stage ``i``."""
    torch.manual_seed(0)
    feats = [torch.randn(1, 3, 8, 8), torch.randn(1, 3, 4, 4), torch.randn(1, 3, 4, 4)]
    out = CrossFeatureFusion(2, 3, stages=3)(feats)

    def to(t, like):
        return F.interpolate(t, size=like.shape[2:], mode="bilinear", align_corners=False) if t.shape != like.shape \
            else t

    for i, x in enumerate(feats):
        others = sum(to(torch.sigmoid(y) * y, x) for j, y in enumerate(feats) if j != i)
        torch.testing.assert_close(out[i], x + (1 - torch.sigmoid(x)) * others)
        assert out[i].shape == x.shape


def test_aspp_against_deeplabs_formula():
    """Conv-ReLU per branch (1x1, 3x3 at each rate), the image-pooling branch broadcast, a 1x1 projection."""
    torch.manual_seed(0)
    aspp = BANetASPP(2, 8, 4, rates=(2, 3, 4), norm=None).eval()
    x = torch.randn(1, 8, 10, 12)

    def conv(block, t):
        c = block.conv
        return F.relu(F.conv2d(t, c.weight, c.bias, padding=c.padding, dilation=c.dilation))

    assert [b.conv.dilation for b in aspp.branches] == [(1, 1), (2, 2), (3, 3), (4, 4)]
    parts = [conv(b, x) for b in aspp.branches]
    parts.append(conv(aspp.image, x.mean(dim=(2, 3), keepdim=True)).expand(-1, -1, 10, 12))
    torch.testing.assert_close(aspp(x), conv(aspp.project, torch.cat(parts, 1)))


def test_ablations_remove_their_modules():
    """Table IV: w/o PEE, w/o MTL (no stage outputs), w/o CFF, w/o IA, and the baseline without all three."""
    x = torch.randn(2, 3, 32, 32)  # BatchNorm in training needs two images for the 1x1 image-pooling branch
    small = {"reduce_channels": 8, "aspp_channels": 8}
    full = BANet(2, 3, 1, **small)
    names = {n.split(".")[0] for n, _ in full.named_parameters()}
    assert {"pee", "mini_mtl", "aspp", "encoder", "reduce", "decode4", "decode", "head"} <= names
    assert not any(n.startswith("pee") for n, _ in BANet(2, 3, 1, pee=False, **small).named_parameters())
    no_mtl = BANet(2, 3, 1, mtl=False, **small)
    assert not any(n.startswith("mini_mtl") for n, _ in no_mtl.named_parameters())
    assert no_mtl.train()(x).shape == (2, 1, 32, 32)  # no stage supervision
    base = BANet(2, 3, 1, pee=False, mtl=False, cff=False, **small)
    assert {n.split(".")[0] for n, _ in base.named_parameters()} == {"encoder", "aspp", "reduce", "decode4", "decode",
                                                                     "head"}
    coded = BANet(2, 3, 1, attention_convs=True, pee_mode="concat", **small)
    assert any(n.startswith("cff.gates") for n, _ in coded.named_parameters())
    assert not any(n.startswith("cff") for n, _ in full.named_parameters())  # the paper's gates: no parameters


def test_scripts_and_exports_to_onnx_with_equal_outputs(tmp_path):
    torch.manual_seed(0)
    assert_scripts_and_exports(BANet(2, 3, 1).eval(), torch.randn(1, 3, 64, 64), tmp_path / "banet.onnx")


class FeatureCrossFusionReference(torch.nn.Module):
    """Test-only transcription of the authors' ``FeatureCrossFusion`` (mathwrx/BA-Net, ``encoding/models/BANet.py``):
    the other stages resized to ``x1`` (bilinear, corners aligned), a 3x3 gate convolution without bias per input
    position, ``x1 + (1 - sigmoid(a1(x1))) * (sigmoid(a2(x2)) x2 + sigmoid(a3(x3)) x3 + sigmoid(a4(x4)) x4)``."""

    def __init__(self, channels: int):
        super().__init__()
        self.att = torch.nn.ModuleList(torch.nn.Conv2d(channels, channels, 3, padding=1, bias=False) for _ in range(4))

    def forward(self, x1, x2, x3, x4):
        size = x1.shape[2:]
        xs = [x1] + [F.interpolate(x, size, mode="bilinear", align_corners=True) if x.shape[2:] != size else x
                     for x in (x2, x3, x4)]
        gates = [torch.sigmoid(a(x)) for a, x in zip(self.att, xs)]
        return x1 + (1 - gates[0]) * (gates[1] * xs[1] + gates[2] * xs[2] + gates[3] * xs[3])


def test_cross_feature_fusion_with_gate_convolutions_is_the_codes_on_stages_of_one_size():
    """``attention_convs=True`` against the transcription of the code's CFF, on stages of one size (BA-Net's stages
    2-4 at output stride 8), the code's four gate convolutions of fusion ``i`` loaded with the stages' shared gates
    in the code's call order (``cf4(m4, m1, m2, m3)``, ``cf1(m1, m2, m3, m4)``, ...). Where the stages differ in size
    the two differ: the code resizes a stage before its gate (corners aligned) and gives each fusion its own four
    gates; here each stage has one gate at its own size (module docstring)."""
    torch.manual_seed(0)
    feats = [torch.randn(2, 3, 6, 5) for _ in range(4)]
    ours = CrossFeatureFusion(2, 3, stages=4, attention_convs=True)
    fused = ours(feats)
    order = {0: (0, 1, 2, 3), 1: (1, 0, 2, 3), 2: (2, 0, 1, 3), 3: (3, 0, 1, 2)}  # cf1, cf2, cf3, cf4 as called
    for i, call in order.items():
        ref = FeatureCrossFusionReference(3)
        with torch.no_grad():
            for slot, stage in enumerate(call):
                ref.att[slot].weight.copy_(ours.gates[stage].weight)
        torch.testing.assert_close(fused[i], ref(*[feats[s] for s in call]))


def test_interactive_attention_with_gate_convolutions_is_the_codes():
    """``attention_convs=True``: the code's ``e + (1 - sigmoid(att_edge(e))) * s`` and ``s + (1 -
    sigmoid(att_seg(s))) * e`` (``MultiTaskNet.forward``), both from the branches' features before the exchange,
    transcribed on the features the first convolutions give."""
    torch.manual_seed(0)
    mtl = MiniMultiTask(2, 4, 1, norm=None, attention_convs=True).eval()
    x = torch.randn(1, 4, 8, 8)
    seen = {}
    mtl.edge2.register_forward_hook(lambda m, i, o: seen.update(edge_in=i[0]))
    mtl.seg2.register_forward_hook(lambda m, i, o: seen.update(seg_in=i[0]))
    mtl(x)
    edge_x, seg_x = mtl.edge1(x), mtl.seg1(x)
    edge_feats = edge_x + (1 - torch.sigmoid(mtl.att_edge(edge_x))) * seg_x
    seg_feats = seg_x + (1 - torch.sigmoid(mtl.att_seg(seg_x))) * edge_x
    torch.testing.assert_close(seen["edge_in"], edge_feats)
    torch.testing.assert_close(seen["seg_in"], seg_feats)
