"""Fault injection for the kill tests: Python run at the start of a bundle subprocess (``bundle_cli_chain``'s
``prelude``) that SIGKILLs that process at a chosen point of a real ``monai.bundle run training``.

``install(point, n)`` with point:

- ``"train_iteration"``: before the n-th training iteration (counted over the run): mid-epoch.
- ``"validation"``: at the first iteration of the n-th validation run.
- ``"checkpoint_write"``: while the n-th epoch checkpoint is being written, with half of its bytes on disk.
- ``"image_write"``: while the n-th NIfTI or PNG output is being written (MONAI's ``NibabelWriter.write`` /
  ``PILWriter.write``, which the project's atomic writers call with their temporary name), half of it on disk.
- ``"nan_loss"``: from the n-th training iteration on, the bundle's loss returns NaN.
- ``"nan_grad"``: from the n-th training iteration on, the loss stays finite but its gradient is NaN (what a wrong
  bfloat16 weight gradient does): the weights turn NaN at that step.

Nothing is cleaned up or flushed: ``SIGKILL`` is what a pre-empted node or the out-of-memory killer sends. The two
NaN points kill nothing: the process must stop by itself.
"""

from __future__ import annotations

import io
import os
import signal
from pathlib import Path

import torch
from monai.engines import SupervisedEvaluator, SupervisedTrainer


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _write_half_and_die(f, data: bytes) -> None:
    """Put the first half of ``data`` on disk through the open file ``f``, then SIGKILL this process."""
    f.write(data[: len(data) // 2])
    f.flush()
    os.fsync(f.fileno())
    _die()


def install(point: str, n: int) -> None:
    count = {"n": 0}

    def hit() -> bool:
        count["n"] += 1
        return count["n"] == n

    if point == "train_iteration":
        original = SupervisedTrainer._iteration

        def _iteration(self, engine, batchdata):
            if hit():
                _die()
            return original(self, engine, batchdata)

        SupervisedTrainer._iteration = _iteration
    elif point == "validation":
        original_eval = SupervisedEvaluator._iteration

        def _eval_iteration(self, engine, batchdata):
            if engine.state.iteration == 1 and hit():
                _die()
            return original_eval(self, engine, batchdata)

        SupervisedEvaluator._iteration = _eval_iteration
    elif point == "checkpoint_write":
        original_save = torch.save

        def _save(obj, f, *args, **kwargs):
            if isinstance(obj, dict) and "training_state" in obj and not isinstance(f, (str, os.PathLike)) \
                    and hit():
                buffer = io.BytesIO()
                original_save(obj, buffer, *args, **kwargs)
                _write_half_and_die(f, buffer.getvalue())
            return original_save(obj, f, *args, **kwargs)

        torch.save = _save
    elif point == "image_write":
        from monai.data import NibabelWriter, PILWriter

        for writer in (NibabelWriter, PILWriter):
            def _write(self, filename, *args, _original=writer.write, **kwargs):
                if hit():
                    _original(self, filename, *args, **kwargs)
                    data = Path(filename).read_bytes()
                    with open(filename, "wb") as f:
                        _write_half_and_die(f, data)
                return _original(self, filename, *args, **kwargs)

            writer.write = _write
    elif point in ("nan_loss", "nan_grad"):
        original_iteration = SupervisedTrainer._iteration

        def _poisoned(self, engine, batchdata):
            if not getattr(engine, "_poisoned", False):
                real = engine.loss_function

                def loss_function(pred, target):
                    loss = real(pred, target)
                    if engine.state.iteration < n:
                        return loss
                    if point == "nan_loss":
                        return loss * float("nan")
                    return loss + torch.sqrt(pred.float().sum() * 0.0)  # 0 forward, inf * 0 = NaN backward

                engine.loss_function = loss_function
                engine._poisoned = True
            return original_iteration(self, engine, batchdata)

        SupervisedTrainer._iteration = _poisoned
    else:
        raise ValueError(f"unknown fault point {point!r}")


def prelude(point: str, n: int) -> str:
    """Python source for ``bundle_cli_chain(prelude=...)``."""
    return f"import tests.bundles.faults as _f; _f.install({point!r}, {n})\n"
