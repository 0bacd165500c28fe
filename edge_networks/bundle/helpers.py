"""Helpers the bundle configs call (bundles hold no Python code; their ``_target_``/``$`` expressions land here)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from monai.handlers import MetricsSaver, from_engine
from monai.inferers import Inferer
from monai.utils import str2bool

from transforms.image2d import output_stem
from transforms.writers import atomic_path, remove_partial_outputs

from ..data.integrity import verify_datalist
from ..data.layouts import build_datalist
from ..data.prepare import prepare_datalist
from ..data.split import split_datalist

__all__ = [
    "REPO_BUNDLES",
    "flag",
    "foreground_select",
    "bundle_root",
    "load_datalist",
    "inference_datalist",
    "check_output_dirs",
    "AtomicMetricsSaver",
    "poly_lr",
    "FlipTTAInferer",
    "select_channel",
    "with_roi",
    "case_name_formatter",
    "image_subject",
    "foreground_slices",
]

logger = logging.getLogger(__name__)
REPO_BUNDLES = Path(__file__).resolve().parents[2] / "bundles"


def flag(value: Any) -> bool:
    """A config switch as a bool, whether it came from JSON (``false``) or the command line.

    ``python -m monai.bundle run ... --save_edges false`` hands the config the *string* ``"false"`` (fire parses
    only Python literals), which is truthy; every boolean switch of the bundles goes through this. Strings go
    through MONAI's ``str2bool`` (yes/true/t/y/1, no/false/f/n/0); other values (bool, 0/1, a 0-d tensor) through
    ``bool``.

    Raises:
        ValueError: for a string that is not a recognisable boolean, naming it.
    """
    if isinstance(value, str):
        return str2bool(value.strip())
    return bool(value)


def foreground_select(enabled: Any = True) -> Callable[[torch.Tensor], torch.Tensor]:
    """``select_fn`` of MONAI's ``CropForegroundd`` in the 3D inference configs: switch ``--crop_foreground``.

    Enabled, the crop keeps the bounding box of the voxels above 0 in any channel -- nnU-Net's crop to the nonzero
    region of skull-stripped BraTS volumes, which holds every brain voxel; the inference config's ``Invertd`` pads
    the prediction back with background, so the written mask has the input's shape and affine. Disabled, every
    voxel is selected and the crop keeps the whole image.

    Args:
        enabled: a config switch (``true``/``false``, also as a CLI string; see :func:`flag`). Defaults to True.

    Returns:
        a function of a ``(C, *spatial)`` tensor giving a boolean tensor of the same shape.

    >>> select = foreground_select("false")
    >>> bool(select(torch.zeros(1, 2, 2)).all())
    True
    """
    if flag(enabled):
        return _nonzero
    return _everything


def _nonzero(x: torch.Tensor) -> torch.Tensor:
    return x > 0


def _everything(x: torch.Tensor) -> torch.Tensor:
    return torch.ones_like(x, dtype=torch.bool)


def bundle_root(name: str) -> str:
    """The folder of bundle ``name`` in this repository (``bundles/<name>``); the working directory otherwise.

    Bundle configs default their ``bundle_root`` to this so they run from any directory; ``--bundle_root``
    overrides it (MONAI Label and exported bundles do).
    """
    path = REPO_BUNDLES / name
    return str(path if path.is_dir() else Path.cwd())


def load_datalist(
    layout: str,
    dataset_dir: str | None = None,
    data_list_file_path: str | None = None,
    seed: int = 0,
    val_fraction: float | None = None,
    check: bool = True,
    num_workers: int = 1,
) -> dict[str, list[dict]]:
    """Training and validation items for a bundle, integrity-checked before any training starts.

    Reads ``data_list_file_path`` (a datalist JSON with ``training``/``validation``, e.g. from
    ``edge_networks.data.prepare``) when given, else scans ``dataset_dir`` in ``layout`` and splits it as
    :func:`~edge_networks.data.prepare_datalist` does: the release's own split where it has one (test images are
    never trained on; an official validation set is the validation side), else ``val_fraction`` of the labelled
    cases by ``seed`` (default: the paper's split of the layout, else 20%).
    Raises :class:`~edge_networks.data.DatasetIntegrityError` naming every bad file.
    """
    if data_list_file_path:
        with open(data_list_file_path) as f:
            spec = json.load(f)
        layout = spec.get("layout", layout)
        base = Path(data_list_file_path).parent
        train, val = ([_absolute(it, base) for it in spec.get(k, [])] for k in ("training", "validation"))
        if not val:
            train, val = split_datalist(train, val_fraction or 0.2, seed)
    else:
        if dataset_dir is None:
            raise ValueError("set dataset_dir (a dataset folder) or data_list_file_path (a datalist JSON)")
        # the release's own split where it has one (DRIVE's test images are never trained on), else seeded
        content = prepare_datalist(layout, dataset_dir, val_fraction=val_fraction, seed=seed, check=False)
        train, val = content["training"], content["validation"]
    if check:
        train, _ = verify_datalist(train, layout, num_workers=num_workers)
        val, _ = verify_datalist(val, layout, num_workers=num_workers)
        logger.info(f"integrity check passed: {len(train)} training, {len(val)} validation case(s)")
    return {"training": train, "validation": val}


SKIPPED_REPORT = "skipped_cases.json"


def inference_datalist(
    layout: str,
    dataset_dir: str | None = None,
    datalist: Sequence[dict] | None = None,
    check: bool = True,
    output_dir: str | os.PathLike | None = None,
    skip_existing: bool | str = False,
    on_error: str = "raise",
    output_ext: str = ".nii.gz",
    output_postfix: str = "seg",
) -> list[dict]:
    """Cases to segment: ``datalist`` (dicts with ``image``) or every case of ``dataset_dir``; checked first.

    Args:
        layout: the dataset layout.
        dataset_dir: the dataset folder (when no ``datalist``).
        datalist: items with ``image``. Defaults to None (every case of ``dataset_dir``).
        check: run the integrity check on every case before any inference. Defaults to True.
        output_dir: where the bundle writes; needed by ``skip_existing`` and ``on_error="skip"``.
        skip_existing: leave out the cases whose segmentation (``<case>_<output_postfix><output_ext>``) is in
            ``output_dir`` already, so a rerun after a kill finishes the rest; files a killed run cut short are
            removed first. Outputs are written atomically and the segmentation last, so an existing segmentation
            means the case is complete. Defaults to False.
        on_error: ``"raise"``: any bad case stops the run before inference, every fault listed. ``"skip"``: the
            bad cases are left out and listed, with their faults, in ``<output_dir>/skipped_cases.json``.
            Defaults to ``"raise"``.
        output_ext: the segmentation's extension. Defaults to ``".nii.gz"``.
        output_postfix: the segmentation's postfix. Defaults to ``"seg"``.

    Raises:
        DatasetIntegrityError: a case is bad and ``on_error`` is ``"raise"``.
        ValueError: an unknown ``on_error``, or ``output_dir`` missing where needed.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}.")
    skip_existing = flag(skip_existing)
    if (skip_existing or on_error == "skip") and output_dir is None:
        raise ValueError("skip_existing and on_error='skip' need output_dir.")
    items = list(datalist) if datalist else build_datalist(layout, dataset_dir)
    if skip_existing:
        remove_partial_outputs(output_dir)
        formatter = case_name_formatter(layout)
        todo = []
        for item in items:
            image = item["image"][0] if isinstance(item["image"], (list, tuple)) else item["image"]
            meta = {"filename_or_obj": image, "page": item.get("page", -1)}
            target = Path(output_dir) / f"{formatter(meta, None)['subject']}_{output_postfix}{output_ext}"
            if not target.exists():
                todo.append(item)
        logger.info("--skip_existing: %d of %d case(s) already written, %d to do", len(items) - len(todo),
                    len(items), len(todo))
        items = todo
    if check and items:
        items, bad = verify_datalist(items, layout, skip_bad=on_error == "skip", require_label=False)
        if on_error == "skip":
            Path(output_dir).mkdir(parents=True, exist_ok=True)
            with atomic_path(Path(output_dir) / SKIPPED_REPORT) as tmp:
                tmp.write_text(json.dumps({"layout": layout, "to_segment": len(items),
                                           "skipped": [{"case": r.case_id, "faults": r.problems} for r in bad]},
                                          indent=2, default=str))
            for r in bad:
                logger.warning("--on_error skip: %s left out: %s", r.case_id, "; ".join(r.problems))
    return items


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


def _absolute(item: dict, base: Path) -> dict:
    out = dict(item)
    for key in ("image", "label"):
        if key in out:
            v = out[key]
            out[key] = [str(base / p) for p in v] if isinstance(v, list) else str(base / v)
    return out


def poly_lr(max_epochs: int, power: float = 0.9) -> Callable[[int], float]:
    """``LambdaLR`` factor of the paper's schedule ``lr = lr0 * (1 - e / N) ** power``."""

    def factor(epoch: int) -> float:
        return max(0.0, 1.0 - epoch / max(1, max_epochs)) ** power

    return factor


def _flip_variants(spatial_dims: int, rot90: bool) -> list[tuple[int, tuple[int, ...]]]:
    """``(quarter turns in the first two spatial axes, flipped spatial axes)`` of each test-time variant."""
    axes = list(range(spatial_dims))
    flips = [tuple(a for a in axes if mask >> a & 1) for mask in range(2**spatial_dims)]
    turns = (0, 1) if rot90 and spatial_dims == 2 else (0,)
    return [(k, f) for k in turns for f in flips]


class FlipTTAInferer(Inferer):
    """Flip test-time augmentation: average the predictions of every flip (and, in 2D, every transposition).

    CE-Net's test phase (Gu et al., TMI 2019, section III-A; ``TTAFrame`` in the authors' ``test_cenet.py``) predicts
    each image 8 times -- the identity and its horizontal, vertical and both flips, of the image and of its 90-degree
    rotation (the dihedral group of the square) -- and averages the 8 probability maps. In 3D the 8 variants are the
    flips over the subsets of the three axes (no rotation). MONAI's ``TestTimeAugmentation`` draws random transforms
    over a dataset; this is the deterministic, per-batch form the paper describes.

    Each variant is run through the wrapped inferer, mapped back, turned into probabilities (``activation``) and
    averaged; the result is returned as logits of the mean (``logit`` for sigmoid, ``log`` for softmax), so the
    bundle's usual ``Activationsd`` + ``AsDiscreted`` post-processing applies unchanged.

    Args:
        inferer: the inferer to wrap (SimpleInferer, SlidingWindowInferer, AutocastInferer, ...).
        activation: ``"sigmoid"`` (multi-label / binary outputs), ``"softmax"`` (one-hot classes) or ``None``
            (average the raw outputs). Defaults to ``"sigmoid"``.
        rot90: in 2D, also the 90-degree rotation (8 variants instead of 4). The input's two spatial sizes must
            then be equal, or the network must accept both orders. Defaults to ``True``.
        enabled: ``False`` runs the wrapped inferer once. Defaults to ``True``.

    >>> import torch
    >>> from monai.inferers import SimpleInferer
    >>> tta = FlipTTAInferer(SimpleInferer(), activation=None)
    >>> x = torch.arange(16.0).reshape(1, 1, 4, 4)
    >>> torch.allclose(tta(x, lambda t: t), x)  # every variant mapped back: an equivariant network is unchanged
    True
    """

    def __init__(self, inferer: Inferer, activation: str | None = "sigmoid", rot90: bool = True,
                 enabled: bool = True) -> None:
        super().__init__()
        if activation not in ("sigmoid", "softmax", None):
            raise ValueError(f"activation must be 'sigmoid', 'softmax' or None, got {activation!r}")
        self.inferer = inferer
        self.activation = activation
        self.rot90 = rot90
        self.enabled = enabled

    def __call__(self, inputs: torch.Tensor, network: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self.enabled:
            return self.inferer(inputs, network, *args, **kwargs)
        spatial_dims = inputs.ndim - 2
        if spatial_dims not in (2, 3):
            raise ValueError(f"FlipTTAInferer takes (B, C, H, W[, D]) inputs, got shape {tuple(inputs.shape)}")
        total: torch.Tensor | None = None
        variants = _flip_variants(spatial_dims, self.rot90)
        for turns, flips in variants:
            x = inputs
            if turns:
                x = torch.rot90(x, turns, dims=(2, 3))
            if flips:
                x = torch.flip(x, dims=[a + 2 for a in flips])
            y = self.inferer(x, network, *args, **kwargs)
            if not isinstance(y, torch.Tensor):
                raise TypeError(f"FlipTTAInferer averages tensor outputs; the network returned {type(y).__name__}")
            if flips:
                y = torch.flip(y, dims=[a + 2 for a in flips])
            if turns:
                y = torch.rot90(y, -turns, dims=(2, 3))
            y = y.float()
            if self.activation == "sigmoid":
                y = torch.sigmoid(y)
            elif self.activation == "softmax":
                y = torch.softmax(y, dim=1)
            total = y if total is None else total + y
        assert total is not None
        mean = total / len(variants)
        if self.activation == "sigmoid":
            return torch.logit(mean.clamp(1e-6, 1 - 1e-6))
        if self.activation == "softmax":
            return torch.log(mean.clamp_min(1e-12))
        return mean


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


def case_name_formatter(layout: str) -> Callable[[dict, Any], dict]:
    """``SaveImaged(output_name_formatter=...)``: name outputs after the case, not after its first file.

    Folder-per-case layouts (BraTS, KiTS19) take the case folder's name (``case_00003`` rather than
    ``imaging``); single-file layouts (Decathlon, plain datalists) take the file name without extension.
    """
    from ..data.layouts import LAYOUTS

    if layout in LAYOUTS and LAYOUTS[layout].spatial_dims == 2:
        return lambda metadict, saver: {"subject": image_subject(metadict), "idx": metadict.get("patch_index")}
    per_folder = layout not in ("decathlon", "datalist")

    def formatter(metadict: dict, saver: Any) -> dict:
        path = Path(str(metadict.get("filename_or_obj", "case")))
        subject = path.parent.name if per_folder else path.name.split(".nii")[0].split(".")[0]
        return {"subject": subject, "idx": metadict.get("patch_index")}

    return formatter


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
