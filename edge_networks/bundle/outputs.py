"""What the bundles write and score: output folders checked before the work, metric files written atomically, the
metric output transforms (a channel, a region of interest, the foreground slices) and file naming per case."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from monai.handlers import MetricsSaver, from_engine

from transforms.image2d import output_stem

__all__ = ["check_output_dirs", "AtomicMetricsSaver", "select_channel", "with_roi", "case_name_formatter",
           "image_subject", "foreground_slices"]



class AtomicMetricsSaver(MetricsSaver):
    """MONAI's :class:`~monai.handlers.MetricsSaver` (same arguments) whose reports appear whole or not at all.

    The reports (``metrics.csv``, ``<metric>_raw.csv``, ``<metric>_summary.csv``) are written into a hidden
    temporary folder inside ``save_dir`` and then each renamed into ``save_dir``, so a kill while they are written
    leaves the previous reports or none, never a truncated CSV.
    """

    def __call__(self, engine: Any) -> None:
        final = Path(self.save_dir)
        final.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".metrics.partial", dir=final))
        self.save_dir = str(tmp)
        try:
            super().__call__(engine)
            for f in sorted(tmp.iterdir()):
                os.replace(f, final / f.name)
        finally:
            self.save_dir = str(final)
            shutil.rmtree(tmp, ignore_errors=True)


def check_output_dirs(folders: Sequence[str | os.PathLike | None], min_free_mb: float = 1024) -> None:
    """Fail at the start, not after hours of work, when an output folder cannot take the run's files.

    Each folder is created if needed, a probe file is written and removed, and the free space of its file system
    must be at least ``min_free_mb``.

    Args:
        folders: output folders (``ckpt_dir``, ``output_dir``); None entries are ignored.
        min_free_mb: free space needed on each folder's file system, in MiB. Defaults to 1024.

    Raises:
        OSError: a folder is not writable or its file system has less free space than ``min_free_mb``; the
            message names the folder.
    """
    for folder in folders:
        if folder is None:
            continue
        folder = Path(folder)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            probe = folder / f".write_probe{os.getpid()}"
            probe.write_bytes(b"0")
            probe.unlink()
        except OSError as e:
            raise OSError(f"{folder}: output folder is not writable ({type(e).__name__}: {e}); choose another "
                          "with --output_dir / --ckpt_dir") from None
        free = shutil.disk_usage(folder).free / 2**20
        if free < float(min_free_mb):
            raise OSError(f"{folder}: only {free:.0f} MiB free on its file system, at least {float(min_free_mb):.0f} "
                          "MiB needed (--min_free_mb sets the limit)")


def with_roi(roi_key: str, keys: Sequence[str] = ("pred", "label")) -> Callable:
    """Metric ``output_transform``: ``(pred, label + roi channel)`` for ``PerImageMetric(roi_channel=True)`` -- the
    region of interest (DRIVE's field-of-view mask, item key ``roi_key``) appended as the label's last channel, so
    accuracy, sensitivity, specificity and AUC are computed inside it."""
    get = from_engine([*keys, roi_key])

    def transform(output: Any) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        pred, label, roi = get(output)
        return list(pred), [torch.cat([torch.as_tensor(y), (torch.as_tensor(r)[:1] > 0.5).to(torch.as_tensor(y).dtype)])
                            for y, r in zip(label, roi)]

    return transform


def select_channel(index: int, keys: Sequence[str] = ("pred", "label")) -> Callable:
    """Metric ``output_transform``: the ``(pred, label)`` lists of an engine output, channel ``index`` only."""
    get = from_engine(list(keys))

    def transform(output: Any) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        pred, label = get(output)
        return [p[index : index + 1] for p in pred], [y[index : index + 1] for y in label]

    return transform


def case_name_formatter(layout: str | dict | Any) -> Callable[[dict, Any], dict]:
    """``SaveImaged(output_name_formatter=...)``: name outputs after the case, not after its first file.

    Folder-per-case layouts (BraTS, KiTS19) take the case folder's name (``case_00003`` rather than
    ``imaging``) where the file is named as the layout names it (KiTS's ``imaging``, BraTS's ``<case>_<contrast>``);
    nnU-Net datasets take the case (``lung1_0000.nrrd`` -> ``lung1``); any other file -- single-file layouts
    (Decathlon, plain datalists), or a scan of one's own given with ``--datalist`` (``scans/lung1.nrrd``) -- takes
    its file name without extension.

    >>> f = case_name_formatter("kits19")
    >>> f({"filename_or_obj": "kits/case_00003/imaging.nii.gz"}, None)["subject"]
    'case_00003'
    >>> f({"filename_or_obj": "scans/lung1.nrrd"}, None)["subject"]
    'lung1'
    """
    from ..data.layouts import LAYOUTS, get_layout

    lay = get_layout(layout) if not isinstance(layout, str) or layout in LAYOUTS else None
    name = lay.name if lay is not None else layout
    if lay is not None and lay.spatial_dims == 2:
        strip = name == "nnunet"
        return lambda metadict, saver: {"subject": _channel_stripped(image_subject(metadict), strip),
                                        "idx": metadict.get("patch_index")}
    per_folder = name not in ("decathlon", "datalist", "nnunet", "msd")

    def formatter(metadict: dict, saver: Any) -> dict:
        path = Path(str(metadict.get("filename_or_obj", "case")))
        stem = path.name.split(".nii")[0].split(".")[0]
        in_case_folder = stem == "imaging" or (bool(path.parent.name) and stem.startswith(path.parent.name))
        subject = path.parent.name if per_folder and in_case_folder else _channel_stripped(stem, name == "nnunet")
        return {"subject": subject, "idx": metadict.get("patch_index")}

    return formatter


def _channel_stripped(stem: str, strip: bool) -> str:
    """An nnU-Net image stem without its channel suffix (``case_0000`` -> ``case``)."""
    return stem[:-5] if strip and len(stem) > 5 and stem[-5] == "_" and stem[-4:].isdigit() else stem


def image_subject(meta: dict) -> str:
    """Output name stem of a 2D image from its meta dict (:func:`transforms.image2d.output_stem`)."""
    page = meta.get("page", -1)
    page = int(page.item() if hasattr(page, "item") else page) if page is not None else -1
    return output_stem(str(meta.get("filename_or_obj", "image")), page)


def foreground_slices(axis: int = -1, keys: Sequence[str] = ("pred", "label")) -> Callable:
    """Metric ``output_transform`` for per-slice metrics on volumes: the 2D slices along ``axis`` whose label has
    foreground, as separate ``(C, H, W)`` items (the boundary-aware paper reports Dice, Jaccard and Hausdorff
    distance per axial slice)."""
    get = from_engine(list(keys))

    def transform(output: Any) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        preds, labels = get(output)
        out_p, out_l = [], []
        for p, y in zip(preds, labels):
            p, y = torch.movedim(torch.as_tensor(p), axis, 0), torch.movedim(torch.as_tensor(y), axis, 0)
            for i in torch.nonzero(y.flatten(1).any(dim=1)).flatten().tolist():
                out_p.append(p[i])
                out_l.append(y[i])
        return out_p, out_l

    return transform
