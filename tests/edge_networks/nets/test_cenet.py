"""CE-Net: the authors' parameter count, torchvision ResNet-34 weights, DAC/RMP against explicit formulas, 2D/3D
shapes, scripting and ONNX, and CE-Net as EG-CNN's backbone."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

torchvision = pytest.importorskip("torchvision", reason="torchvision is the independent reference of this test: "
                                  "pip install -e '.[label,dev]'")

from edge_networks.nets.cenet import CENet, DACBlock, RMPBlock  # noqa: E402
from edge_networks.nets.egcnn import EGCNN  # noqa: E402
from tests.helpers import assert_scripts_and_exports  # noqa: E402

AUTHORS_PARAMS = 29_003_093  # CE_Net_(num_classes=1) of the authors' networks/cenet.py (commit 5ca9bcc)


def _count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_parameter_count_equals_the_authors_model():
    # independent count: torchvision's ResNet-34 without its classifier + the released layer list
    tv = torchvision.models.resnet34(weights=None)
    encoder = sum(p.numel() for n, p in tv.named_parameters() if not n.startswith("fc."))

    def conv(i, o, k):
        return i * o * k * k + o  # every non-encoder convolution has a bias

    def decoder(i, n):
        return conv(i, i // 4, 1) + conv(i // 4, i // 4, 3) + conv(i // 4, n, 1) + 2 * (i // 4 + i // 4 + n)

    released = (encoder + 3 * conv(512, 512, 3) + conv(512, 512, 1) + conv(512, 1, 1)
                + decoder(516, 256) + decoder(256, 128) + decoder(128, 64) + decoder(64, 64)
                + conv(64, 32, 4) + conv(32, 32, 3) + conv(32, 1, 3))
    assert released == AUTHORS_PARAMS
    net = CENet(2, 3, 1)
    assert _count(net) == AUTHORS_PARAMS
    assert _count(net.encoder) == encoder == 21_284_672


def test_torchvision_resnet34_weights_load_into_the_encoder(tmp_path, caplog):
    torch.manual_seed(0)
    tv = torchvision.models.resnet34(weights=None).eval()
    path = tmp_path / "resnet34.pth"
    torch.save(tv.state_dict(), path)
    with caplog.at_level("INFO", logger="edge_networks.nets"):
        net = CENet(2, 3, 1, pretrained_path=str(path)).eval()
    loaded = len([k for k in tv.state_dict() if not k.startswith("fc.")])
    assert f"loaded {loaded} tensors of torchvision resnet34" in caplog.text
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ref = tv.layer4(tv.layer3(tv.layer2(tv.layer1(tv.maxpool(tv.relu(tv.bn1(tv.conv1(x))))))))
        enc = net.encoder
        ours = enc.layer4(enc.layer3(enc.layer2(enc.layer1(enc.maxpool(enc.act(enc.bn1(enc.conv1(x))))))))
    torch.testing.assert_close(ours, ref)
    # one grey channel: the RGB filters summed
    grey = CENet(2, 1, 1, pretrained_path=str(path))
    torch.testing.assert_close(grey.encoder.conv1.weight, tv.conv1.weight.sum(1, keepdim=True))
    torch.save({"state_dict": {"module." + k: v for k, v in tv.state_dict().items()}}, tmp_path / "ckpt.pt")
    wrapped = CENet(2, 3, 1, pretrained_path=str(tmp_path / "ckpt.pt"))
    torch.testing.assert_close(wrapped.encoder.layer3[0].conv1.weight, tv.layer3[0].conv1.weight)


def test_bad_pretrained_weights_are_refused(tmp_path):
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), tmp_path / "r18.pth")
    with pytest.raises(ValueError, match="r18.pth.*resnet34"):
        CENet(2, 3, 1, pretrained_path=str(tmp_path / "r18.pth"))
    torch.save({"weight": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="other.pth"):
        CENet(2, 3, 1, pretrained_path=str(tmp_path / "other.pth"))
    with pytest.raises(ValueError, match="3D"):
        CENet(3, 3, 1, pretrained_path=str(tmp_path / "r18.pth"))
    with pytest.raises(FileNotFoundError, match="missing.pth: no such file.*resnet34"):
        CENet(2, 3, 1, pretrained_path=str(tmp_path / "missing.pth"))


def test_dac_block_shares_weights_as_written():
    torch.manual_seed(0)
    block = DACBlock(2, 4)
    for p in block.parameters():
        torch.nn.init.normal_(p, std=0.3)
    assert _count(block) == 3 * (4 * 4 * 9 + 4) + 4 * 4 + 4
    x = torch.randn(1, 4, 9, 9)

    def c(m, t, d):  # d = 0: the 1x1 convolution
        return F.conv2d(t, m.weight, m.bias, padding=d, dilation=max(d, 1))

    d1 = c(block.dilate1, x, 1)
    c1 = block.conv1x1
    expected = (x + F.relu(d1) + F.relu(c(c1, c(block.dilate3, x, 3), 0))
                + F.relu(c(c1, c(block.dilate3, d1, 3), 0))
                + F.relu(c(c1, c(block.dilate5, c(block.dilate3, d1, 3), 5), 0)))
    torch.testing.assert_close(block(x), expected)
    assert all(float(m.bias.abs().sum()) == 0 for m in DACBlock(3, 4).modules() if isinstance(m, torch.nn.Conv3d))


def test_rmp_block_matches_the_paper_and_pools_small_maps_whole():
    torch.manual_seed(0)
    block = RMPBlock(2, 8)
    x = torch.randn(2, 8, 14, 14)  # CE-Net's 448x448 input at 1/32
    out = block(x)
    assert out.shape == (2, 12, 14, 14)
    torch.testing.assert_close(out[:, 4:], x)
    for i, k in enumerate((2, 3, 5, 6)):
        ref = F.interpolate(block.conv(F.max_pool2d(x, k, k)), size=(14, 14), mode="bilinear", align_corners=False)
        torch.testing.assert_close(out[:, i : i + 1], ref)
    small = torch.randn(1, 8, 4, 3, 2)  # 3D: every pool larger than some axis
    block3 = RMPBlock(3, 8)
    out3 = block3(small)
    assert out3.shape == (1, 12, 4, 3, 2)
    for i, kernel in ((1, (3, 3, 2)), (2, (4, 3, 2)), (3, (4, 3, 2))):  # pools 3, 5, 6: clipped to each axis
        ref = F.interpolate(block3.conv(F.max_pool3d(small, kernel, kernel)), size=(4, 3, 2), mode="trilinear",
                            align_corners=False)
        torch.testing.assert_close(out3[:, i : i + 1], ref)


@pytest.mark.parametrize("spatial_dims,shape", [(2, (64, 96)), (3, (32, 32, 64))])
def test_shapes_and_divisibility(spatial_dims, shape):
    net = CENet(spatial_dims, 2, 3, norm=("group", {"num_groups": 8})).eval()
    norms = {type(m).__name__ for m in net.modules() if "Norm" in type(m).__name__}
    assert norms == {"GroupNorm"}, f"the encoder's stages must follow norm= too: {norms}"
    with torch.no_grad():
        assert net(torch.randn(1, 2, *shape)).shape == (1, 3, *shape)
    with pytest.raises(ValueError, match="divisible by 32"):
        net(torch.randn(1, 2, *([48] * spatial_dims)))


def test_scripts_and_exports_to_onnx_with_equal_outputs(tmp_path):
    torch.manual_seed(0)
    assert_scripts_and_exports(CENet(2, 3, 1).eval(), torch.randn(1, 3, 64, 64), tmp_path / "cenet.onnx")


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_cenet_as_egcnn_backbone(spatial_dims):
    shape = (64, 64) if spatial_dims == 2 else (32, 32, 32)
    net = EGCNN(spatial_dims, 1, 2, backbone="cenet", backbone_kwargs={"norm": ("group", {"num_groups": 8})},
                edge_channels=8).train()
    sizes = []
    hooks = [g.register_forward_hook(lambda mod, inp, out: sizes.append(tuple(out.shape[2:]))) for g in net.gates]
    out = net(torch.randn(2, 1, *shape))
    for h in hooks:
        h.remove()
    assert out.shape == (2, 4, *shape)  # seg + edge logits
    # one gate per resolution from 1/16 to the input: 1/16, 1/8, 1/4, 1/2, 1
    assert sizes == [tuple(s // f for s in shape) for f in (16, 8, 4, 2, 1)]
    out.sum().backward()
    assert net.gates[0].conv_gate.weight.grad.abs().sum() > 0 and net.main.net.dac.dilate1.weight.grad.abs().sum() > 0


class CENetReference(torch.nn.Module):
    """Test-only transcription of the authors' ``CE_Net_`` (Guzaiwang/CE-Net, ``networks/cenet.py``), written from
    the released forward pass and independent of :class:`CENet`: torchvision's ResNet-34 stem and stages; the DAC
    block (``dilate1``, ``dilate2``, ``dilate3`` at dilation 1, 3, 5 and one ``conv1x1``, shared by the branches
    ``x + r(d1 x) + r(c d2 x) + r(c d2 d1 x) + r(c d3 d2 d1 x)``); the SPP block (max pools 2, 3, 5, 6 with
    stride = kernel, one shared 1x1 convolution to a single channel, bilinear upsampling, concatenated before the
    input); four decoder blocks (1x1, BN, ReLU, 3x3 transposed stride 2, BN, ReLU, 1x1, BN, ReLU) with the skips
    ``d4 + e3``, ``d3 + e2``, ``d2 + e1``; the head (4x4 transposed stride 2, ReLU, 3x3, ReLU, 3x3) and a sigmoid."""

    def __init__(self, num_classes: int = 1):
        super().__init__()
        nn = torch.nn
        self.resnet = torchvision.models.resnet34(weights=None)
        self.dblock = nn.ModuleDict({"dilate1": nn.Conv2d(512, 512, 3, dilation=1, padding=1),
                                     "dilate2": nn.Conv2d(512, 512, 3, dilation=3, padding=3),
                                     "dilate3": nn.Conv2d(512, 512, 3, dilation=5, padding=5),
                                     "conv1x1": nn.Conv2d(512, 512, 1)})
        self.spp_conv = nn.Conv2d(512, 1, 1)

        def decoder(i, n):
            return nn.Sequential(nn.Conv2d(i, i // 4, 1), nn.BatchNorm2d(i // 4), nn.ReLU(),
                                 nn.ConvTranspose2d(i // 4, i // 4, 3, stride=2, padding=1, output_padding=1),
                                 nn.BatchNorm2d(i // 4), nn.ReLU(), nn.Conv2d(i // 4, n, 1), nn.BatchNorm2d(n),
                                 nn.ReLU())

        self.decoders = nn.ModuleList([decoder(516, 256), decoder(256, 128), decoder(128, 64), decoder(64, 64)])
        self.finaldeconv1 = nn.ConvTranspose2d(64, 32, 4, 2, 1)
        self.finalconv2 = nn.Conv2d(32, 32, 3, padding=1)
        self.finalconv3 = nn.Conv2d(32, num_classes, 3, padding=1)

    def forward(self, x, intermediates: dict | None = None):
        r, d = self.resnet, self.dblock
        x = r.maxpool(r.relu(r.bn1(r.conv1(x))))
        e1 = r.layer1(x)
        e2 = r.layer2(e1)
        e3 = r.layer3(e2)
        e4 = r.layer4(e3)
        c, relu = d["conv1x1"], F.relu
        e4 = (e4 + relu(d["dilate1"](e4)) + relu(c(d["dilate2"](e4))) + relu(c(d["dilate2"](d["dilate1"](e4))))
              + relu(c(d["dilate3"](d["dilate2"](d["dilate1"](e4))))))
        h, w = e4.shape[2:]
        pools = [F.interpolate(self.spp_conv(F.max_pool2d(e4, k, k)), size=(h, w), mode="bilinear")
                 for k in (2, 3, 5, 6)]
        e4 = torch.cat([*pools, e4], 1)
        if intermediates is not None:
            intermediates["center"] = e4
        d4 = self.decoders[0](e4) + e3
        d3 = self.decoders[1](d4) + e2
        d2 = self.decoders[2](d3) + e1
        d1 = self.decoders[3](d2)
        out = self.finalconv3(relu(self.finalconv2(relu(self.finaldeconv1(d1)))))
        if intermediates is not None:
            intermediates.update(d1=d1, logits=out)
        return torch.sigmoid(out)


def _reference_state(net: CENet) -> dict:
    """:class:`CENet`'s weights under the transcription's names, by role."""
    out = {f"resnet.{k}": v for k, v in net.encoder.state_dict().items()}
    dac = (("dilate1", "dilate1"), ("dilate3", "dilate2"), ("dilate5", "dilate3"), ("conv1x1", "conv1x1"))
    for mine, theirs in dac:
        out.update({f"dblock.{theirs}.{k}": v for k, v in getattr(net.dac, mine).state_dict().items()})
    out.update({f"spp_conv.{k}": v for k, v in net.rmp.conv.state_dict().items()})
    roles = {"conv1": 0, "norm1": 1, "deconv2": 3, "norm2": 4, "conv3": 6, "norm3": 7}
    for i, name in enumerate(("decoder4", "decoder3", "decoder2", "decoder1")):
        for k, v in getattr(net, name).state_dict().items():
            module, param = k.split(".", 1)
            out[f"decoders.{i}.{roles[module]}.{param}"] = v
    head = (("final_deconv", "finaldeconv1"), ("final_conv2", "finalconv2"), ("final_conv3", "finalconv3"))
    for mine, theirs in head:
        out.update({f"{theirs}.{k}": v for k, v in getattr(net, mine).state_dict().items()})
    return out


def test_cenet_equals_a_transcription_of_the_released_ce_net():
    """CE-Net 2D against the authors' ``CE_Net_`` transcribed (test-only), loaded with the same weights: the same
    context extractor output (DAC then SPP), last decoder map, logits and sigmoid output, in evaluation mode with
    non-trivial BatchNorm statistics, on a 192x192 input (the released SPP needs a 1/32 map of at least 6x6).
    At random initialisation the logits barely vary, so the intermediate maps carry the comparison."""
    torch.manual_seed(0)
    net = CENet(2, 3, 1).eval()
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
            torch.nn.init.uniform_(m.weight, 0.5, 1.5)
    ref = CENetReference(1).eval()
    missing, unexpected = ref.load_state_dict(_reference_state(net), strict=False)
    assert not unexpected and all(k.startswith("resnet.fc.") for k in missing), (missing, unexpected)
    x = torch.randn(1, 3, 192, 192)
    mine, theirs = {}, {}
    hooks = [net.rmp.register_forward_hook(lambda m, i, o: mine.update(center=o)),
             net.decoder1.register_forward_hook(lambda m, i, o: mine.update(d1=o))]
    with torch.no_grad():
        logits = net(x)
        probs = ref(x, theirs)
    for h in hooks:
        h.remove()
    for key in ("center", "d1"):
        torch.testing.assert_close(mine[key], theirs[key], rtol=1e-4, atol=1e-4 * float(theirs[key].abs().max()))
    torch.testing.assert_close(logits, theirs["logits"], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(torch.sigmoid(logits), probs, rtol=1e-4, atol=1e-6)
