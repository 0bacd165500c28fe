"""Training checkpoints that survive a kill: atomic files, and ``--resume true`` from the newest complete one.

MONAI's :class:`~monai.handlers.CheckpointSaver` writes in place (``atomic=False``) and, with ``n_saved=1``, deletes
the previous checkpoint *before* writing the next one, so a job killed at that moment (a pre-empted GPU node, an
out-of-memory kill) is left with no checkpoint or a truncated one. What the bundles use instead:

- :class:`AtomicCheckpointSaver`: MONAI's saver whose files are written to a temporary name in the same folder and
  renamed over the target (``os.replace``), so a file named ``*.pt`` is always complete. A fixed file name
  (``model.pt``) is replaced, never deleted first.
- :class:`ResumableCheckpointSaver`: after every epoch (after validation and the LR step), the whole training state
  as ``last_checkpoint_epoch=N.pt``, keeping the newest two, plus ``model_last.pt`` at the end, as before. It
  writes no checkpoint whose weights hold a NaN or an infinity: training stops instead
  (:class:`~edge_networks.bundle.handlers.NonFiniteLossError`), and the last finite checkpoint stays the newest.
- :class:`TrainingState`: what else a continued run needs to match an uninterrupted one: the evaluator's best metric
  and its epoch, the best-model saver's record (so ``model.pt`` is only replaced by a better model), and the random
  states (torch, CUDA, NumPy, Python, and every random transform of the training dataset).
- :func:`find_resume_checkpoint` and :func:`attach_resume`: ``--resume true`` loads the newest checkpoint that
  loads, its epoch, optimiser, scheduler, best metric and random states; a run killed mid-epoch loses only the epoch
  in progress.
"""

from __future__ import annotations

import logging
import pickle
import random
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ignite.engine import Engine, Events
from ignite.handlers import Checkpoint, DiskSaver
from monai.handlers import CheckpointSaver
from monai.transforms import Randomizable

from .flags import flag
from .handlers import LR_HINT, PRECISION_HINT, NonFiniteLossError, advice

__all__ = [
    "AtomicCheckpointSaver",
    "AtomicDiskSaver",
    "ResumableCheckpointSaver",
    "TrainingState",
    "attach_resume",
    "find_resume_checkpoint",
    "random_transforms",
    "resume_path",
    "load_checkpoint",
    "numpy_state_to_plain",
    "numpy_state_from_plain",
]

logger = logging.getLogger(__name__)

EPOCH_CHECKPOINT = re.compile(r"^last_checkpoint_epoch=(\d+)\.pt$")
# what an atomic save leaves behind when the process is killed mid-write (tempfile.NamedTemporaryFile's names)
PARTIAL_CHECKPOINT = re.compile(r"^tmp[a-z0-9_]{8}$")


class AtomicDiskSaver(DiskSaver):
    """Ignite's :class:`~ignite.handlers.DiskSaver` with ``atomic=True`` and an optional fixed file name.

    The checkpoint is serialised to a temporary file in ``dirname`` (no ``.pt`` suffix, so nothing that looks for
    checkpoints picks it up), then renamed over the target; ignite adds group and other read permission after the
    rename (the reason MONAI turned ``atomic`` off).

    Args:
        dirname: folder of the checkpoints.
        filename: a fixed file name (``model.pt``) instead of ignite's generated one. Defaults to None.
    """

    def __init__(self, dirname: str | Path, filename: str | None = None) -> None:
        super().__init__(dirname=dirname, atomic=True, require_empty=False, create_dir=True)
        self.filename = filename

    def __call__(self, checkpoint: Mapping, filename: str, metadata: Mapping | None = None) -> None:
        super().__call__(checkpoint, self.filename or filename, metadata)

    def remove(self, filename: str) -> None:
        # a fixed name is replaced atomically by the next save; deleting it first would leave no file until then
        if self.filename is None:
            super().remove(filename)


class AtomicCheckpointSaver(CheckpointSaver):
    """MONAI's :class:`~monai.handlers.CheckpointSaver` (same arguments) writing every file atomically.

    Example:
        >>> saver = AtomicCheckpointSaver(save_dir="models", save_dict={"model": net}, save_key_metric=True,
        ...                               key_metric_filename="model.pt")  # doctest: +SKIP
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for checkpoint in (self._final_checkpoint, self._key_metric_checkpoint, self._interval_checkpoint):
            if checkpoint is not None:
                checkpoint.save_handler = AtomicDiskSaver(self.save_dir, checkpoint.save_handler.filename)


def random_transforms(root: Any) -> list[Randomizable]:
    """Every :class:`~monai.transforms.Randomizable` reachable from ``root`` (a dataset, a Compose, a transform).

    Walks attributes, lists, tuples and dicts in a fixed order, so two pipelines built from the same config give the
    same list, and each transform's ``R`` (its ``numpy.random.RandomState``) can be saved and restored.
    """
    found: list[Randomizable] = []
    seen: set[int] = set()

    def walk(obj: Any, depth: int) -> None:
        if depth > 12 or id(obj) in seen or isinstance(obj, (str, bytes, int, float, torch.Tensor, np.ndarray)):
            return
        seen.add(id(obj))
        if isinstance(obj, Randomizable):
            found.append(obj)
        if isinstance(obj, Mapping):
            children = list(obj.values())
        elif isinstance(obj, (list, tuple)):
            children = list(obj)
        elif hasattr(obj, "__dict__") and type(obj).__module__.split(".")[0] in ("monai", "transforms",
                                                                                  "edge_networks"):
            children = [v for k, v in sorted(vars(obj).items()) if k not in ("data", "_cache", "R")]
        else:
            return
        for child in children:
            walk(child, depth + 1)

    walk(root, 0)
    return found


def numpy_state_to_plain(state: tuple) -> tuple:
    """A ``numpy.random.RandomState.get_state()`` tuple with its key array as an int64 tensor: what
    ``torch.load(weights_only=True)`` accepts (it refuses NumPy arrays)."""
    name, keys, pos, has_gauss, cached = state
    return (str(name), torch.from_numpy(np.asarray(keys, dtype=np.int64)), int(pos), int(has_gauss), float(cached))


def numpy_state_from_plain(state: tuple) -> tuple:
    """The inverse of :func:`numpy_state_to_plain`; a NumPy state tuple (older checkpoints) passes unchanged."""
    name, keys, pos, has_gauss, cached = state
    keys = keys.numpy() if isinstance(keys, torch.Tensor) else keys
    return name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached


def _plain(item: Any) -> Any:
    """A best-model saver's record ``(priority, filename)`` with the priority as a Python number."""
    if isinstance(item, (tuple, list)) and len(item) == 2:
        priority = item[0]
        return [float(priority) if isinstance(priority, (np.floating, torch.Tensor, float)) else priority, item[1]]
    return item


class TrainingState:
    """The parts of a training run that are not the model, optimiser, scheduler or trainer counters.

    Saved in every training checkpoint as ``training_state``, so that a resumed run continues where the killed one
    stopped: the same best metric (``model.pt`` is only replaced by a better model), and the same random draws
    (shuffling, crops, augmentation) as an uninterrupted run.

    Args:
        evaluator: the validation engine; its ``state.best_metric`` and ``best_metric_epoch`` are kept.
            Defaults to None.
        best_saver: the validation's best-model :class:`~monai.handlers.CheckpointSaver`; its record of the best
            score is kept. Defaults to None.
        dataset: the training dataset (or its transform); the random states of its random transforms are kept.
            Defaults to None.
        restore_rng: load the random states on resume. Set it False on all but one rank of a multi-GPU run, so
            that the ranks keep different augmentations. Defaults to True.
    """

    def __init__(self, evaluator: Engine | None = None, best_saver: CheckpointSaver | None = None,
                 dataset: Any = None, restore_rng: bool | str = True) -> None:
        self.evaluator = evaluator
        self.best_saver = best_saver
        self.dataset = dataset
        self.restore_rng = flag(restore_rng)

    def _transforms(self) -> list[Randomizable]:
        return [] if self.dataset is None else random_transforms(self.dataset)

    def state_dict(self) -> dict:
        """Tensors and plain Python values only, so a checkpoint loads with ``torch.load``'s default
        ``weights_only=True`` (NumPy's random states are kept as tensors, see :func:`numpy_state_to_plain`)."""
        state: dict[str, Any] = {
            "rng": {
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
                "numpy": numpy_state_to_plain(np.random.get_state()),  # noqa: NPY002 - the stream MONAI seeds
                "python": random.getstate(),
                "transforms": [numpy_state_to_plain(t.R.get_state()) for t in self._transforms()],
            }
        }
        if self.evaluator is not None:
            state["best_metric"] = float(self.evaluator.state.best_metric)
            state["best_metric_epoch"] = int(self.evaluator.state.best_metric_epoch)
        key = getattr(self.best_saver, "_key_metric_checkpoint", None)
        if key is not None:
            state["best_saver"] = {k: [_plain(item) for item in v] if isinstance(v, list) else v
                                   for k, v in key.state_dict().items()}
        return state

    def load_state_dict(self, state: Mapping) -> None:
        if self.evaluator is not None and "best_metric" in state:
            self.evaluator.state.best_metric = state["best_metric"]
            self.evaluator.state.best_metric_epoch = state["best_metric_epoch"]
        key = getattr(self.best_saver, "_key_metric_checkpoint", None)
        if key is not None and "best_saver" in state:
            key.load_state_dict(state["best_saver"])
        if not self.restore_rng or "rng" not in state:
            return
        rng = state["rng"]
        torch.set_rng_state(rng["torch"])
        if torch.cuda.is_available() and len(rng["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(rng["cuda"])
        np.random.set_state(numpy_state_from_plain(rng["numpy"]))  # noqa: NPY002
        random.setstate(rng["python"])
        transforms = self._transforms()
        if len(transforms) != len(rng["transforms"]):
            warnings.warn(f"the checkpoint has random states for {len(rng['transforms'])} transforms, this "
                          f"pipeline has {len(transforms)}: augmentation continues from fresh random states",
                          stacklevel=2)
            return
        for transform, value in zip(transforms, rng["transforms"]):
            transform.R.set_state(numpy_state_from_plain(value))


class ResumableCheckpointSaver:
    """Saves the training state atomically after every epoch, and ``model_last.pt`` when training ends.

    Attach it to the trainer after the validation and LR-schedule handlers (the bundles attach it in ``run``), so a
    checkpoint holds the state after the epoch's validation. The newest ``n_saved`` epoch checkpoints are kept; a
    new one is written (to a temporary name, then renamed) before the oldest is deleted, so at any moment at least
    one complete checkpoint exists.

    Args:
        save_dir: the folder (the bundles' ``ckpt_dir``).
        save_dict: objects with ``state_dict``/``load_state_dict`` (model, optimizer, lr_scheduler, trainer,
            training_state).
        n_saved: epoch checkpoints kept. At least 2. Defaults to 2.
        final_filename: written at completion and when training raises. Defaults to ``"model_last.pt"``.
        resuming: True when this run continues from a checkpoint in ``save_dir``: its epoch checkpoints are kept and
            rotated. When False, epoch checkpoints of an earlier run in ``save_dir`` are deleted at the start, so
            that a later ``--resume`` never picks up a stale run. Defaults to False.
    """

    def __init__(self, save_dir: str | Path, save_dict: Mapping, n_saved: int = 2,
                 final_filename: str = "model_last.pt", resuming: bool = False) -> None:
        if n_saved < 2:
            raise ValueError(f"n_saved must be at least 2 so that a complete checkpoint always exists, got {n_saved}.")
        self.save_dir = Path(save_dir)
        self.save_dict = dict(save_dict)
        self.resuming = resuming
        self.epochs = Checkpoint(self.save_dict, AtomicDiskSaver(self.save_dir), filename_prefix="last",
                                 score_function=lambda engine: engine.state.epoch, score_name="epoch",
                                 n_saved=n_saved + 1)
        self.n_saved = n_saved
        self.final = Checkpoint(self.save_dict, AtomicDiskSaver(self.save_dir, final_filename),
                                filename_prefix="last", score_function=lambda engine: engine.state.iteration,
                                score_name="final_iteration")

    def _existing(self) -> list[tuple[int, str]]:
        if not self.save_dir.is_dir():
            return []
        found = [(int(m.group(1)), p.name) for p in self.save_dir.iterdir() if (m := EPOCH_CHECKPOINT.match(p.name))]
        return sorted(found)

    def attach(self, trainer: Engine) -> ResumableCheckpointSaver:
        """Registers the handlers on ``trainer``; returns ``self``."""
        trainer.add_event_handler(Events.STARTED, self._started)
        trainer.add_event_handler(Events.EPOCH_COMPLETED, self._epoch_completed)
        trainer.add_event_handler(Events.COMPLETED, self.final)
        trainer.add_event_handler(Events.EXCEPTION_RAISED, self._exception_raised)
        return self

    def _started(self, trainer: Engine) -> None:
        if self.save_dir.is_dir():
            for partial in self.save_dir.iterdir():
                if PARTIAL_CHECKPOINT.match(partial.name) and partial.is_file():
                    logger.warning("removing %s: a checkpoint cut short by a killed run", partial)
                    partial.unlink()
        existing = self._existing()
        if self.resuming:
            # the resumed epoch and the ones before it take part in the rotation; later ones (a --resume_from an
            # older file) are left alone
            self.epochs._saved = [Checkpoint.Item(e, name) for e, name in existing if e <= trainer.state.epoch]
        else:
            for _, name in existing:
                logger.warning("removing %s: an earlier run's checkpoint (pass --resume true to continue that run)",
                               self.save_dir / name)
                (self.save_dir / name).unlink()

    def _non_finite(self) -> list[str]:
        """The model's floating-point tensors that hold a NaN or an infinity (empty: safe to save)."""
        model = self.save_dict.get("model")
        if model is None or not hasattr(model, "state_dict"):
            return []
        return [k for k, v in model.state_dict().items()
                if isinstance(v, torch.Tensor) and v.is_floating_point() and not torch.isfinite(v).all()]

    def _epoch_completed(self, trainer: Engine) -> None:
        bad = self._non_finite()
        if bad:
            # the loss of the epoch's last step was finite but its gradient was not: a checkpoint now would be the
            # one --resume picks, so none is written
            raise NonFiniteLossError(
                f"training stopped: after epoch {trainer.state.epoch} (iteration {trainer.state.iteration}) the "
                f"weights are not finite ({len(bad)} tensors, e.g. {bad[0]}); no checkpoint was written."
                + advice(self.save_dir, (PRECISION_HINT, LR_HINT)))
        # ignite removes the worst checkpoint before writing when n_saved is reached; keeping one spare slot and
        # trimming after the write leaves the newest n_saved complete at every moment
        self.epochs(trainer)
        while len(self.epochs._saved) > self.n_saved:
            oldest = self.epochs._saved.pop(0)
            self.epochs.save_handler.remove(oldest.filename)

    def _exception_raised(self, trainer: Engine, e: Exception) -> None:
        bad = self._non_finite()
        if bad:
            logger.error("%s not written: %d of the model's tensors are not finite (e.g. %s)",
                         self.save_dir / self.final.save_handler.filename, len(bad), bad[0])
        else:
            self.final(trainer)
        raise e


def load_checkpoint(path: str | Path, map_location: Any = "cpu") -> Any:
    """``torch.load`` with its default ``weights_only=True``: every checkpoint this release writes holds tensors and
    plain Python values only. A checkpoint of an earlier release (NumPy random states) is loaded with
    ``weights_only=False`` after a warning: load only checkpoints you trust."""
    try:
        return torch.load(path, map_location=map_location)
    except pickle.UnpicklingError:
        warnings.warn(f"{path}: written by an earlier release (NumPy objects inside); loading it with "
                      "weights_only=False", stacklevel=2)
        return torch.load(path, map_location=map_location, weights_only=False)


def find_resume_checkpoint(ckpt_dir: str | Path) -> str | None:
    """The newest ``last_checkpoint_epoch=N.pt`` in ``ckpt_dir`` that loads, or None if there is none.

    Files are complete by construction (:class:`AtomicDiskSaver`); one that still fails to load (a disk error, a
    copy cut short) is reported and the next older one is tried.
    """
    folder = Path(ckpt_dir)
    if not folder.is_dir():
        return None
    found = sorted(((int(m.group(1)), p) for p in folder.iterdir() if (m := EPOCH_CHECKPOINT.match(p.name))),
                   reverse=True)
    for _, path in found:
        try:
            load_checkpoint(path)
        except Exception as e:  # noqa: BLE001 - any unreadable file is skipped, with its reason
            logger.warning("%s does not load (%s: %s); trying an older checkpoint", path, type(e).__name__, e)
            continue
        return str(path)
    return None


def attach_resume(trainer: Engine, load_dict: Mapping, path: str | Path | None,
                  map_location: Any = "cpu") -> str | None:
    """Loads ``path`` into ``load_dict``'s objects when ``trainer`` starts; the config's ``max_epochs`` is kept.

    Objects missing from the checkpoint (``training_state`` in a checkpoint of an older release) are skipped with a
    warning. Returns ``path`` (None: nothing to resume, training starts from scratch).

    Raises:
        FileNotFoundError: ``path`` is given and does not exist.
        ValueError: the checkpoint is past the configured number of epochs.
    """
    if path is None:
        return None
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint to resume from does not exist.")

    def _load(engine: Engine) -> None:
        checkpoint = load_checkpoint(path, map_location)
        present = {k: v for k, v in load_dict.items() if k in checkpoint}
        for k in sorted(set(load_dict) - set(present)):
            warnings.warn(f"{path}: no '{k}' in this checkpoint; it starts fresh", stacklevel=2)
        max_epochs = engine.state.max_epochs
        Checkpoint.load_objects(to_load=present, checkpoint=checkpoint)
        if max_epochs is not None:
            if engine.state.epoch > max_epochs:
                raise ValueError(f"{path}: the checkpoint is at epoch {engine.state.epoch}, past the configured "
                                 f"{max_epochs} epochs; raise --epochs to continue training.")
            engine.state.max_epochs = max_epochs
        logger.info("resumed from %s: epoch %d, iteration %d", path, engine.state.epoch, engine.state.iteration)

    trainer.add_event_handler(Events.STARTED, _load)
    return str(path)


def resume_path(ckpt_dir: str | Path, resume: bool, resume_from: str | Path | None) -> str | None:
    """What a bundle resumes from: ``resume_from`` if given, else with ``resume`` the newest checkpoint in
    ``ckpt_dir`` (None when there is none yet: the run starts from scratch, so the same command starts and restarts
    a job)."""
    if resume_from is not None:
        return str(resume_from)
    if not resume:
        return None
    path = find_resume_checkpoint(ckpt_dir)
    if path is None:
        logger.warning("--resume true: no checkpoint in %s yet; training starts from scratch", ckpt_dir)
    return path

