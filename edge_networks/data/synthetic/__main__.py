"""Command line: write synthetic BraTS or KiTS datasets, or 2D datasets in their real releases' layouts.

Examples::

    python -m edge_networks.data.synthetic brats --out data/brats --cases 10 --shape 96 96 64 --seed 0
    python -m edge_networks.data.synthetic brats --out data/brats_real --cases 2 \\
        --background ../shared/data/brain_mri/ch2bet.nii.gz
    python -m edge_networks.data.synthetic kits --out data/kits --cases 10 --shape 48 128 128
    python -m edge_networks.data.synthetic kits --out data/kits_real --cases 2 \\
        --background ../shared/data/abdomen_ct/example_ct_sm.nii.gz \\
        --background-labels ../shared/data/abdomen_ct/example_seg.nii.gz --kidney-labels 2 3
    python -m edge_networks.data.synthetic fundus --layout drive --out data/DRIVE            # the release's 20/20
    python -m edge_networks.data.synthetic dermoscopy --layout isic2018 --out data/isic --cases 40 \
        --difficulty hard --size 192 256
    python -m edge_networks.data.synthetic endoscopy --layout cvc_colondb --variant bmp300 --out data/cvc

2D kinds and the layouts they write: fundus (drive, refuge, drishti_gs, rim_one_r3, rim_one_r1, origa, messidor),
cxr (montgomery, shenzhen), dermoscopy (isic2017, isic2018), endoscopy (kvasir_seg, cvc_colondb), em
(isbi2012_em), oct, ct_slice (luna2d); every kind also writes images_masks.

Every written case is checked with the dataset integrity check unless ``--no-check``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..integrity import DatasetIntegrityError, verify_datalist
from ..layouts import build_datalist
from . import BRATS_SHAPE, KITS_SHAPE, write_brats_dataset, write_kits_dataset
from .layouts2d import KIND_LAYOUTS, write_2d_dataset


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edge_networks.data.synthetic", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="task", required=True)
    b = sub.add_parser("brats", help="BraTS 2021 layout: four MRI contrasts and labels 0/1/2/4")
    b.add_argument("--shape", type=int, nargs=3, default=list(BRATS_SHAPE), help="voxels (default 240 240 155)")
    b.add_argument("--background", help="skull-stripped T1 NIfTI to use as anatomy (e.g. ch2bet.nii.gz)")
    b.add_argument("--background-mask", help="brain mask for --background (default: background > 0)")

    k = sub.add_parser("kits", help="KiTS19 layout: CT in HU (slice axis first) and labels 0/1/2")
    k.add_argument("--shape", type=int, nargs=3, default=list(KITS_SHAPE), help="Z Y X voxels (default 96 512 512)")
    k.add_argument("--background", help="real CT NIfTI to use as anatomy")
    k.add_argument("--background-labels", help="organ label map of --background")
    k.add_argument("--kidney-labels", type=int, nargs="+", default=[2, 3], help="kidney values in the label map")
    for p in (b, k):
        p.add_argument("--difficulty", choices=("easy", "hard"), default="easy",
                       help="hard: overlapping sub-region intensities, wide partial-volume rims, more noise")
        p.add_argument("--out", required=True, help="dataset folder to write into")
        p.add_argument("--cases", type=int, default=4)
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--first-index", type=int, default=0, help="number of the first case")
        p.add_argument("--no-check", action="store_true", help="skip the integrity check of the written cases")
        p.add_argument("--quiet", action="store_true", help="no progress bar")
    for kind, layouts in KIND_LAYOUTS.items():
        p2 = sub.add_parser(kind, help=f"2D {kind} images in the layout of: {', '.join(layouts)}")
        p2.add_argument("--layout", required=True, choices=layouts)
        p2.add_argument("--out", required=True, help="dataset root to write into")
        p2.add_argument("--cases", type=int, default=None, help="about N images in all (default: the release's)")
        p2.add_argument("--seed", type=int, default=0)
        p2.add_argument("--difficulty", choices=("easy", "hard"), default="easy")
        p2.add_argument("--size", type=int, nargs=2, metavar=("H", "W"), help="default: the release's image size")
        p2.add_argument("--variant", choices=("png380", "bmp300"), help="cvc_colondb: which release")
        p2.add_argument("--no-check", action="store_true", help="skip the integrity check of the written dataset")
    args = parser.parse_args(argv)
    if args.task in KIND_LAYOUTS:
        written = write_2d_dataset(args.task, args.layout, args.out, args.cases, args.seed, args.difficulty,
                                   args.size, args.variant)
        layout, what = args.layout, f"{args.task} image file(s) in the {args.layout} layout"
        items = build_datalist(layout, args.out)  # the whole release: its stacks and lists hold every image
    else:
        common = dict(cases=args.cases, shape=args.shape, seed=args.seed, first_index=args.first_index,
                      progress=not args.quiet)
        if args.task == "brats":
            written = write_brats_dataset(args.out, background=args.background,
                                          background_mask=args.background_mask, difficulty=args.difficulty,
                                          **common)
            layout = "brats2021"
        else:
            written = write_kits_dataset(args.out, background=args.background,
                                         background_labels=args.background_labels, kidney_labels=args.kidney_labels,
                                         difficulty=args.difficulty, **common)
            layout = "kits19"
        what = f"{layout} case(s)"
        names = {p.name for p in written}
        items = [it for it in build_datalist(layout, args.out) if it["case_id"] in names]
    if not args.no_check:
        try:
            verify_datalist(items, layout, require_label=args.task in ("brats", "kits"))
        except DatasetIntegrityError as e:
            print(e, file=sys.stderr)
            return 1
    checked = "" if args.no_check else " (integrity check passed)"
    print(f"wrote {len(written)} {what} to {args.out}{checked}")
    return 0

if __name__ == "__main__":
    sys.exit(main())
