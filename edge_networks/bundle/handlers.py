"""Training handlers the bundles attach: stop at the first non-finite loss, before it reaches the weights.

Ignite's :class:`~ignite.handlers.TerminateOnNan` ends the run quietly after the iteration, once the optimiser has
taken the step: the run then completes "normally" and its end-of-training checkpoint holds NaN weights.
:class:`StopOnNonFiniteLoss` checks the loss as soon as MONAI's trainer has computed it
(:attr:`~monai.engines.utils.IterationEvents.LOSS_COMPLETED`, before the backward pass and the step) and raises
:class:`NonFiniteLossError` with the epoch, the iteration, the batch's files, the checkpoint to resume from and what
to try. The bundles' :class:`~edge_networks.bundle.checkpoints.ResumableCheckpointSaver` writes no checkpoint whose
weights are not finite, so ``--resume true`` continues from the last finite one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from ignite.engine import Engine
from ignite.handlers import TerminateOnNan
from monai.engines.utils import IterationEvents
from monai.utils import CommonKeys

__all__ = ["NonFiniteLossError", "StopOnNonFiniteLoss", "batch_files", "advice"]


class NonFiniteLossError(FloatingPointError):
    """Training met a NaN or infinite loss (or weights); the message says where and what to try."""


def batch_files(batch: Any, key: str = CommonKeys.IMAGE, limit: int = 4) -> list[str]:
    """The file names of a collated batch's ``key`` (from its MetaTensor's ``filename_or_obj``), at most ``limit``;
    an empty list when the batch carries none."""
    names: Any = None
    if isinstance(batch, dict) and key in batch:
        meta = getattr(batch[key], "meta", None)
        names = meta.get("filename_or_obj") if isinstance(meta, dict) else None
    elif isinstance(batch, Sequence) and not isinstance(batch, str):
        found = [f for b in batch for f in batch_files(b, key, limit)]
        return found[:limit]
    if names is None:
        return []
    names = [names] if isinstance(names, str) else list(names)
    return [Path(str(n[0] if isinstance(n, (list, tuple)) else n)).name for n in names[:limit]]


PRECISION_HINT = "--cpu_bf16 false (CPU bfloat16 autocast) or --amp false (CUDA mixed precision) to train in float32"
LR_HINT = "a lower --learning_rate"


def advice(ckpt_dir: str | Path | None, hints: Sequence[str]) -> str:
    """The end of a non-finite training error: the checkpoint ``--resume true`` continues from (the newest in
    ``ckpt_dir``, which holds finite weights), then ``hints``."""
    resume = ""
    if ckpt_dir is not None:
        from .checkpoints import find_resume_checkpoint  # checkpoints imports this module

        last = find_resume_checkpoint(ckpt_dir)
        resume = (f" The last finite checkpoint is {last}: `--resume true` continues from it." if last else
                  f" No epoch checkpoint in {ckpt_dir} yet: the run must start again.")
    return resume + " Try: " + "; ".join(hints) + "."


class StopOnNonFiniteLoss(TerminateOnNan):
    """Raise :class:`NonFiniteLossError` at the first NaN or infinite training loss, before the backward pass.

    Args:
        output_transform: picks the loss out of ``engine.state.output`` (the trainer's dict at
            ``LOSS_COMPLETED``). Defaults to ``output["loss"]``.
        ckpt_dir: the bundle's checkpoint folder: the message names the checkpoint ``--resume true`` would load.
            Defaults to None.
        hints: what to try, one phrase each, appended to the message. Defaults to the precision switches, the
            learning rate and the batch's inputs.

    Example (a bundle's ``train#handlers``)::

        {"_target_": "edge_networks.bundle.StopOnNonFiniteLoss", "ckpt_dir": "@ckpt_dir"}
    """

    DEFAULT_HINTS = (PRECISION_HINT, LR_HINT,
                     "a look at this batch's images and labels (an empty or constant image, a corrupt file)")

    def __init__(self, output_transform: Callable[[Any], Any] | None = None, ckpt_dir: str | Path | None = None,
                 hints: Sequence[str] | None = None) -> None:
        super().__init__(output_transform=output_transform or (lambda output: output[CommonKeys.LOSS]))
        self.ckpt_dir = ckpt_dir
        self.hints = tuple(self.DEFAULT_HINTS if hints is None else hints)

    def attach(self, engine: Engine) -> None:
        """Check the loss of every iteration of ``engine`` (MONAI's trainer) as soon as it is computed."""
        engine.add_event_handler(IterationEvents.LOSS_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        loss = self._output_transform(engine.state.output)
        value = float(loss.detach().float().mean()) if isinstance(loss, torch.Tensor) else float(loss)
        if math.isfinite(value):
            return
        raise NonFiniteLossError(self.message(engine, value))

    def message(self, engine: Engine, value: float) -> str:
        """The error's text: where the loss went non-finite, which checkpoint is the last finite one, what to try."""
        state = engine.state
        length = state.epoch_length or 0
        in_epoch = (state.iteration - 1) % length + 1 if length else state.iteration
        files = batch_files(state.batch)
        where = (f"training stopped: the loss is {value} at epoch {state.epoch}, iteration {in_epoch} of "
                 f"{length or '?'} (iteration {state.iteration} overall)")
        if files:
            where += f", batch {', '.join(files)}"
        return where + "; no optimiser step was taken with it." + advice(self.ckpt_dir, self.hints)
