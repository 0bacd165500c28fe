"""CPU bfloat16 autocast that trains correctly: the bundles' ``cpu_bf16`` switch.

MONAI's engines autocast only on CUDA (``amp=True``). On CPUs with native bfloat16 (AVX512-BF16, AMX) the bundles
run their network calls under ``torch.autocast("cpu", dtype=torch.bfloat16)`` instead (:class:`AutocastInferer`).

One oneDNN kernel makes plain autocast unsafe for training. With torch 2.14.1 on a CPU with AVX512-BF16, the
bfloat16 weight gradient of a convolution (``jit_bf16:avx512_core_bf16``, ``backward_weights``) is wrong -- off by
a factor up to 1e36, often inf or NaN -- when an input axis is shorter than the kernel's extent: a 3x3x3
convolution over a 2x2x2 bottleneck (CE-Net 3D's ResNet-34 stage 3 on 32^3 crops), a 5x5x5 one over 3x3x3 to
4x4x4, a stride-2 3x3 convolution over a one-voxel axis. The forward pass and the input gradient are right, so the
loss stays finite for one step and the weights turn NaN at the optimiser step. ``tests/edge_networks/bundle/
test_precision.py`` reproduces it against a float64 reference. :func:`cpu_autocast` computes exactly those
convolutions in float32 (they are the smallest tensors of a network, so the cost is negligible) and leaves every
other operation to autocast.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from monai.inferers import Inferer
from torch.overrides import TorchFunctionMode

__all__ = ["cpu_supports_bf16", "conv_needs_float32", "Float32SmallConvMode", "cpu_autocast", "AutocastInferer"]

logger = logging.getLogger(__name__)

_CONVS = (torch.conv1d, torch.conv2d, torch.conv3d)


def cpu_supports_bf16() -> bool:
    """Whether this CPU runs bfloat16 matrix kernels natively (oneDNN AVX512-BF16 / AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _per_axis(value: int | Sequence[int], n: int) -> list[int]:
    return [int(value)] * n if isinstance(value, int) else [int(v) for v in value]


def conv_needs_float32(input: torch.Tensor, weight: torch.Tensor, dilation: int | Sequence[int] = 1) -> bool:
    """Whether a convolution of ``input`` by ``weight`` must run in float32 under CPU bfloat16 autocast.

    True when an input axis is shorter than the dilated kernel along it (``size < dilation * (k - 1) + 1``): the
    case in which oneDNN's bfloat16 weight gradient is wrong (see the module docstring). Padding does not enter:
    the failures were seen with and without it.

    Args:
        input: ``(B, C, *S)`` or unbatched ``(C, *S)``.
        weight: ``(C_out, C_in / groups, *K)``.
        dilation: the convolution's dilation, one value or one per axis. Defaults to 1.

    >>> conv_needs_float32(torch.zeros(1, 8, 2, 2, 2), torch.zeros(8, 8, 3, 3, 3))
    True
    >>> conv_needs_float32(torch.zeros(1, 8, 4, 4, 4), torch.zeros(8, 8, 3, 3, 3))
    False
    """
    kernel = weight.shape[2:]
    spatial = input.shape[-len(kernel):] if len(kernel) else ()
    dil = _per_axis(dilation, len(kernel))
    return any(int(s) < d * (int(k) - 1) + 1 for s, k, d in zip(spatial, kernel, dil))


class Float32SmallConvMode(TorchFunctionMode):
    """A torch function mode that runs the convolutions :func:`conv_needs_float32` names in float32, autocast off,
    and returns their output in the autocast dtype; every other call passes through unchanged.

    Only meaningful inside ``torch.autocast("cpu", ...)``; :func:`cpu_autocast` enters both. ``count`` says how many
    convolutions it moved to float32.
    """

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_function__(self, func: Callable, types: Any, args: Sequence = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        if func in _CONVS and torch.is_autocast_enabled("cpu"):
            x = args[0] if args else kwargs["input"]
            w = args[1] if len(args) > 1 else kwargs["weight"]
            dilation = args[5] if len(args) > 5 else kwargs.get("dilation", 1)
            if x.device.type == "cpu" and conv_needs_float32(x, w, dilation):
                self.count += 1
                rest = [a.float() if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args]
                kw = {k: v.float() if isinstance(v, torch.Tensor) and v.is_floating_point() else v
                      for k, v in kwargs.items()}
                with torch.autocast("cpu", enabled=False):
                    out = func(*rest, **kw)
                return out.to(torch.get_autocast_dtype("cpu"))
        return func(*args, **kwargs)


@contextlib.contextmanager
def cpu_autocast(dtype: torch.dtype = torch.bfloat16, enabled: bool = True) -> Iterator[Float32SmallConvMode | None]:
    """``torch.autocast("cpu", dtype)`` with :class:`Float32SmallConvMode`: bfloat16 speed where it is safe, float32
    for the convolutions whose bfloat16 weight gradient oneDNN gets wrong. Yields the mode (None when disabled).

    >>> conv = torch.nn.Conv3d(4, 4, 3, padding=1)
    >>> with cpu_autocast() as mode:
    ...     y = conv(torch.randn(1, 4, 2, 2, 2))
    >>> mode.count, y.dtype
    (1, torch.bfloat16)
    """
    if not enabled:
        yield None
        return
    mode = Float32SmallConvMode()
    with torch.autocast("cpu", dtype=dtype), mode:
        yield mode


class AutocastInferer(Inferer):
    """Run an inferer's network calls under CPU bfloat16 autocast (:func:`cpu_autocast`), returning float32 outputs.

    MONAI's engines autocast only on CUDA (``amp=True``); this gives CPU users the bf16 speed-up. Each network
    call is autocast and cast back to float32, so sliding-window stitching and the loss stay in float32. On
    other devices, or with ``enabled=False``, the wrapped inferer runs unchanged.

    Args:
        inferer: the inferer to wrap (SimpleInferer, SlidingWindowInferer, SliceInferer, ...).
        enabled: switch (``False``: float32 everywhere). Defaults to True.
        dtype: autocast dtype. Defaults to ``torch.bfloat16``.
    """

    def __init__(self, inferer: Inferer, enabled: bool = True, dtype: torch.dtype = torch.bfloat16) -> None:
        super().__init__()
        self.inferer = inferer
        self.enabled = enabled
        self.dtype = dtype

    def __call__(self, inputs: torch.Tensor, network: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self.enabled or inputs.device.type != "cpu":
            return self.inferer(inputs, network, *args, **kwargs)

        def autocast_network(x: torch.Tensor, *a: Any, **k: Any) -> Any:
            with cpu_autocast(self.dtype):
                out = network(x, *a, **k)
            return out.float() if isinstance(out, torch.Tensor) else out

        return self.inferer(inputs, autocast_network, *args, **kwargs)
