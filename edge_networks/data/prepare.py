"""Build a MONAI datalist from a dataset folder, check it, split it, and save it as JSON.

Example::

    python -m edge_networks.data.prepare --layout brats2021 --root /data/BraTS2021 --out datalist.json

The JSON holds ``layout``, ``label_convention``, ``modalities``, ``label_values``, ``seed``, ``training`` and
``validation`` (an 80/20 split by default), and a ``fold`` key on every labelled item (``--folds`` k-fold
assignment), so that a run can be repeated exactly. Unlabelled cases go to ``testing``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .dataset_json import resolve_layout
from .integrity import DatasetIntegrityError, verify_datalist
from .layouts import DATASET_FORMATS, LAYOUTS, build_datalist
from .split import assign_folds, save_datalist, split_datalist

__all__ = ["prepare_datalist", "main"]


def prepare_datalist(
    layout: str | dict,
    root: str | Path,
    out: str | Path | None = None,
    val_fraction: float | None = None,
    num_folds: int = 5,
    seed: int = 0,
    check: bool = True,
    skip_bad: bool = False,
    num_workers: int = 1,
) -> dict:
    """Scan, verify, split and (when ``out`` is given) save a datalist. Returns the datalist dict.

    ``layout``: a layout name (``nnunet`` and ``msd`` are read from ``root``'s ``dataset.json``) or a layout's fields.
    A release's own split wins (``split`` key of the items, :mod:`.layouts2d`, nnU-Net's ``splits_final.json``):
    its test images go to ``testing``
    (with their labels where released), its validation set to ``validation``; otherwise a seeded split of the
    labelled items, ``val_fraction`` of them (default: the papers' counts, ``Layout.paper_split``, else 0.2).
    Items with a ``group`` (slices of one scan) are split by group.

    Raises:
        DatasetIntegrityError: a case is bad and ``skip_bad`` is False (nothing is written then).
    """
    lay = resolve_layout(layout, root)
    layout = lay.to_dict() if lay.name in DATASET_FORMATS else lay.name
    items = build_datalist(layout, root)
    skipped: list[dict] = []
    if check:
        labelled = [it for it in items if "label" in it]
        unlabelled = [it for it in items if "label" not in it]
        good_l, bad_l = verify_datalist(labelled, layout, skip_bad=True, num_workers=num_workers)
        good_u, bad_u = verify_datalist(unlabelled, layout, skip_bad=True, num_workers=num_workers,
                                        require_label=False)
        if (bad_l or bad_u) and not skip_bad:  # one error lists every bad case, labelled or not
            raise DatasetIntegrityError(bad_l + bad_u)
        items = good_l + good_u
        skipped = [{"case_id": r.case_id, "problems": r.problems} for r in bad_l + bad_u]
    labelled = [it for it in items if "label" in it and it.get("split") != "test"]
    if val_fraction is None:
        val_fraction = lay.paper_split[1] / sum(lay.paper_split) if lay.paper_split else 0.2
    official_val = [it for it in labelled if it.get("split") == "val"]
    pool = [it for it in labelled if it.get("split") != "val"]
    if len(pool) >= 2:
        pool = assign_folds(pool, min(num_folds, len(pool)), seed)
    if official_val:  # the release's own validation set (REFUGE, ISIC)
        train, val = pool, sorted(official_val, key=lambda it: it["case_id"])
    else:
        train, val = split_datalist(pool, val_fraction, seed)
    testing = [it for it in items if "label" not in it or it.get("split") == "test"]
    content = {
        "layout": layout,
        "label_convention": lay.label_convention,
        "modalities": list(lay.modalities),
        "label_values": list(lay.label_values) if lay.mask_kind == "values" else f"0..255 ({lay.mask_kind} masks)",
        "spatial_dims": lay.spatial_dims,
        "root": str(Path(root).resolve()),
        "seed": seed,
        "val_fraction": val_fraction,
        "num_folds": num_folds,
        "training": train,
        "validation": val,
        "testing": testing,
        "skipped": skipped,
    }
    if out is not None:
        save_datalist(out, content)
    return content


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edge_networks.data.prepare", description=__doc__.split("\n")[0])
    parser.add_argument("--layout", required=True, choices=sorted([*LAYOUTS, *DATASET_FORMATS]),
                        help="a dataset layout; nnunet, msd: any dataset with an nnU-Net v2 or Decathlon dataset.json")
    parser.add_argument("--root", required=True, help="dataset folder in that layout")
    parser.add_argument("--out", required=True, help="datalist JSON to write")
    parser.add_argument("--val-fraction", type=float, default=None,
                        help="default: the papers' split for layouts without an official one, else 0.2")
    parser.add_argument("--folds", type=int, default=5, help="number of folds for the 'fold' key")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-check", action="store_true", help="skip the integrity check (not recommended)")
    parser.add_argument("--skip-bad", action="store_true", help="leave bad cases out and list them instead of failing")
    parser.add_argument("--num-workers", type=int, default=1, help="processes for the integrity check")
    args = parser.parse_args(argv)
    try:
        content = prepare_datalist(
            args.layout, args.root, args.out, args.val_fraction, args.folds, args.seed,
            check=not args.no_check, skip_bad=args.skip_bad, num_workers=args.num_workers,
        )
    except (DatasetIntegrityError, FileNotFoundError, ValueError) as e:  # DatasetJsonError is a ValueError
        print(f"error: {e}", file=sys.stderr)
        return 1
    for s in content["skipped"]:
        print(f"skipped [{s['case_id']}]: " + "; ".join(s["problems"]), file=sys.stderr)
    print(
        f"{args.out}: {len(content['training'])} training, {len(content['validation'])} validation, "
        f"{len(content['testing'])} unlabelled case(s); {len(content['skipped'])} skipped"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
