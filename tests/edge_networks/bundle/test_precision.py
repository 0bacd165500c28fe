"""CPU bfloat16 autocast (:mod:`edge_networks.bundle.precision`): the convolutions whose bf16 weight gradient oneDNN
gets wrong run in float32, everything else in bf16, and the inferer returns float32.

On a CPU with AVX-512 (with or without native bf16) oneDNN's ``jit_bf16`` kernels run and plain autocast gives
the wrong gradients these tests compare against; on other CPUs the reference kernels are right either way and the
tests check that the guard changes nothing else."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from monai.inferers import SimpleInferer, SlidingWindowInferer

from edge_networks import EGCNN
from edge_networks.bundle import AutocastInferer, conv_needs_float32, cpu_autocast


@pytest.mark.parametrize(("shape", "kernel", "dilation", "expected"), [
    ((1, 8, 2, 2, 2), (8, 8, 3, 3, 3), 1, True),  # CE-Net 3D's stage 3 on 32^3 crops
    ((1, 8, 2, 8, 8), (8, 8, 3, 3, 3), 1, True),  # one short axis is enough
    ((1, 8, 4, 4, 4), (8, 8, 5, 5, 5), 1, True),
    ((1, 8, 4, 4, 4), (8, 8, 3, 3, 3), 2, True),  # dilated extent 5
    ((1, 8, 3, 3, 3), (8, 8, 3, 3, 3), 1, False),
    ((1, 8, 5, 5, 5), (8, 8, 3, 3, 3), 2, False),
    ((1, 8, 1, 1, 1), (8, 8, 1, 1, 1), 1, False),  # 1x1x1 convolutions never
    ((2, 8, 1, 16), (8, 8, 3, 3), 1, True),  # 2D: a one-pixel axis
    ((8, 2, 2, 2), (8, 8, 3, 3, 3), 1, True),  # unbatched input
])
def test_conv_needs_float32(shape, kernel, dilation, expected):
    assert conv_needs_float32(torch.zeros(shape), torch.zeros(kernel), dilation) is expected


# (input spatial shape, kernel, stride, dilation): each gave a weight gradient off by 1e18-1e36 or inf under plain
# bf16 autocast on an AVX512-BF16 CPU (torch 2.14.1), against a float64 reference
WRONG_UNDER_PLAIN_AUTOCAST = [((2, 2, 2), 3, 1, 1), ((2, 8, 8), 3, 1, 1), ((4, 4, 4), 5, 1, 1),
                              ((8, 8, 1), 3, 2, 1), ((3, 3, 3), 5, 2, 1)]


@pytest.mark.parametrize(("spatial", "k", "stride", "dilation"), WRONG_UNDER_PLAIN_AUTOCAST)
def test_small_convolution_weight_gradient_matches_float64(spatial, k, stride, dilation):
    torch.manual_seed(0)
    conv = torch.nn.Conv3d(64, 64, k, stride=stride, padding=dilation * (k // 2), dilation=dilation)
    x = torch.randn(1, 64, *spatial)
    for _ in range(3):  # the kernel's error was intermittent at some shapes: a few draws
        conv.zero_grad()
        with cpu_autocast() as mode:
            y = conv(x)
        assert mode.count == 1 and y.dtype == torch.bfloat16
        g = torch.randn(y.shape)
        y.float().backward(g)
        ref_w = conv.weight.detach().double().requires_grad_(True)
        F.conv3d(x.double(), ref_w, conv.bias.detach().double(), stride, dilation * (k // 2), dilation).backward(
            g.double())
        err = (conv.weight.grad.double() - ref_w.grad).norm() / ref_w.grad.norm()
        assert torch.isfinite(conv.weight.grad).all() and err < 1e-2, float(err)


def test_cpu_autocast_leaves_larger_convolutions_to_bf16():
    conv = torch.nn.Conv3d(8, 8, 3, padding=1)
    with cpu_autocast() as mode:
        y = conv(torch.randn(1, 8, 8, 8, 8))
        z = conv(torch.randn(1, 8, 2, 8, 8))
    assert (y.dtype, z.dtype, mode.count) == (torch.bfloat16, torch.bfloat16, 1)
    with cpu_autocast(enabled=False) as mode:
        assert mode is None and conv(torch.randn(1, 8, 8, 8, 8)).dtype == torch.float32
    assert not torch.is_autocast_enabled("cpu")


def test_autocast_inferer_bf16_close_to_float32_and_switchable():
    net = EGCNN(3, 4, 3, backbone_kwargs={"init_filters": 8}).eval()
    x = torch.randn(1, 4, 32, 32, 32)
    with torch.no_grad():
        ref = SimpleInferer()(x, net)
        off = AutocastInferer(SimpleInferer(), enabled=False)(x, net)
        bf16 = AutocastInferer(SlidingWindowInferer((16, 16, 16), overlap=0.0), enabled=True)(x, net)
        window = SlidingWindowInferer((16, 16, 16), overlap=0.0)
        plain_window = window(x, net)
    assert torch.equal(off, ref)
    assert bf16.dtype == torch.float32  # stitched and returned in float32
    assert not torch.equal(bf16, plain_window)  # autocast really ran: the same windows differ from float32
    assert (bf16 - plain_window).abs().max() < 0.1 * ref.abs().max()
    seen = []

    class Probe(torch.nn.Module):  # what the network sees: autocast on, and its convolutions computed in bf16
        def forward(self, t):
            seen.append((torch.is_autocast_enabled("cpu"), torch.nn.functional.conv3d(t, torch.ones(1, 4, 1, 1, 1))
                         .dtype))
            return t

    with torch.no_grad():
        AutocastInferer(SimpleInferer(), enabled=True)(x, Probe())
        AutocastInferer(SimpleInferer(), enabled=False)(x, Probe())
    assert seen == [(True, torch.bfloat16), (False, torch.float32)]


