"""The datalists the bundles train, evaluate and infer on: a dataset folder in a known layout, a datalist JSON,
or the ``--datalist`` of inference, checked before any long work starts."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from transforms.writers import atomic_path, remove_partial_outputs

from ..data.dataset_json import resolve_layout
from ..data.integrity import verify_datalist
from ..data.layouts import build_datalist
from ..data.prepare import prepare_datalist
from ..data.split import split_datalist
from .flags import flag
from .outputs import case_name_formatter

__all__ = ["REPO_BUNDLES", "BUNDLES_ENV", "bundles_dir", "bundle_root", "load_datalist", "inference_datalist"]

logger = logging.getLogger(__name__)


REPO_BUNDLES = Path(__file__).resolve().parents[2] / "bundles"


BUNDLES_ENV = "EDGE_SEG_BUNDLES"


def bundles_dir(explicit: str | os.PathLike | None = None, option: str = "--bundles") -> Path:
    """The folder that holds the bundles (``<name>/configs`` and ``_parts``): ``explicit`` (a script's ``--bundles``
    option), else the ``EDGE_SEG_BUNDLES`` environment variable, else the ``bundles/`` of the source checkout this
    package runs from. A plain install (a wheel in site-packages) has no checkout: point it at a clone's
    ``bundles/`` or at your own bundles folder.

    Raises:
        FileNotFoundError: none of them is a folder; the message names ``option`` and the variable.
    """
    for candidate, source in ((explicit, option), (os.environ.get(BUNDLES_ENV), BUNDLES_ENV)):
        if candidate:
            path = Path(candidate).expanduser().resolve()
            if not path.is_dir():
                raise FileNotFoundError(f"{source} {path}: no such folder (it should hold the bundle folders)")
            return path
    if REPO_BUNDLES.is_dir():
        return REPO_BUNDLES
    raise FileNotFoundError(f"no bundles folder: this installation of edge-seg is not a source checkout; pass "
                            f"{option} DIR or set {BUNDLES_ENV}=DIR (the bundles/ folder of a clone of the repository)")


def bundle_root(name: str) -> str:
    """The folder of bundle ``name`` in this repository (``bundles/<name>``); the working directory otherwise.

    Bundle configs default their ``bundle_root`` to this so they run from any directory; ``--bundle_root``
    overrides it (MONAI Label and exported bundles do).
    """
    try:
        path = bundles_dir() / name
    except FileNotFoundError:
        return str(Path.cwd())
    return str(path if path.is_dir() else Path.cwd())


def load_datalist(
    layout: str | dict,
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
    layout = resolve_layout(layout, dataset_dir)
    if data_list_file_path:
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
    layout: str | dict,
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
    layout = resolve_layout(layout, dataset_dir)
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
                tmp.write_text(json.dumps({"layout": layout.name, "to_segment": len(items),
                                           "skipped": [{"case": r.case_id, "faults": r.problems} for r in bad]},
                                          indent=2, default=str))
            for r in bad:
                logger.warning("--on_error skip: %s left out: %s", r.case_id, "; ".join(r.problems))
    return items


def _absolute(item: dict, base: Path) -> dict:
    out = dict(item)
    for key in ("image", "label"):
        if key in out:
            v = out[key]
            out[key] = [str(base / p) for p in v] if isinstance(v, list) else str(base / v)
    return out
