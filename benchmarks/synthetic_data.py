"""Generate synthetic BraTS/KiTS datasets (phantom and real backgrounds), check them, time them, draw montages.

    python benchmarks/synthetic_data.py [--out benchmarks/results] [--full]

Writes ``synthetic_data.json`` (generation time per case, integrity results, label statistics, the best
single-threshold Dice per BraTS region in easy and hard mode) and PNG montages
(axial slices through the tumour of every modality, label overlay) under ``--out``. ``--full`` uses the default
full-size grids (240x240x155, 96x512x512); otherwise half-size grids.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from edge_networks.data import BRATS_MODALITIES, build_datalist, verify_datalist
from edge_networks.data.synthetic import make_brats_case, write_brats_dataset, write_kits_dataset
from edge_networks.data.synthetic.images2d import threshold_baseline
from edge_networks.visualize import overlay, save_montage, to_uint8

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def _ras(path: str) -> np.ndarray:
    return np.asarray(nib.as_closest_canonical(nib.load(path)).dataobj)


def _axial(vol: np.ndarray, z: int) -> np.ndarray:
    """Axial slice of a RAS volume, displayed radiologically (patient's right on the left, anterior up)."""
    return np.ascontiguousarray(np.rot90(vol[:, :, z])[:, ::-1])


def _rows_for_case(item: dict, task: str) -> list[tuple[str, list[np.ndarray]]]:
    seg = _ras(item["label"])
    zs = np.nonzero((seg == 2 if task == "kits" else seg > 0).any(axis=(0, 1)))[0]
    if len(zs) == 0:
        zs = np.nonzero((seg > 0).any(axis=(0, 1)))[0]
    z = int(zs[len(zs) // 2]) if len(zs) else seg.shape[2] // 2
    images = item["image"] if isinstance(item["image"], list) else [item["image"]]
    tiles = []
    for path in images:
        vol = _ras(path).astype(np.float32)
        win = (-160.0, 240.0) if task == "kits" else (None, None)
        tiles.append(overlay(to_uint8(_axial(vol, z), *win)))
    first = _ras(images[-1 if task == "brats" else 0]).astype(np.float32)
    win = (-160.0, 240.0) if task == "kits" else (None, None)
    tiles.append(overlay(to_uint8(_axial(first, z), *win), _axial(seg, z)))
    tiles.append(overlay(to_uint8(_axial(first, z), *win), _axial(seg, z), outline=True))
    return [(f"{item['case_id']} z={z}", tiles)]


def _stats(item: dict, task: str) -> dict:
    seg = np.asarray(nib.load(item["label"]).dataobj)
    img = nib.load(item["image"][0] if isinstance(item["image"], list) else item["image"])
    vals, counts = np.unique(seg, return_counts=True)
    out = {"case_id": item["case_id"], "shape": list(seg.shape),
           "spacing": [round(float(s), 4) for s in img.header.get_zooms()[:3]],
           "label_voxels": {int(v): int(c) for v, c in zip(vals, counts)}}
    if task == "brats":
        # spatial nesting: the tumour core (1, 4) is enclosed by the whole tumour, never touching label 0
        core = np.isin(seg, [1, 4])
        out["core_enclosed_by_whole_tumour"] = bool((ndimage.binary_dilation(core) <= (seg > 0)).all())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    parser.add_argument("--full", action="store_true", help="full-size default grids")
    parser.add_argument("--cases", type=int, default=3)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    brats_shape = (240, 240, 155) if args.full else (120, 120, 78)
    kits_shape = (96, 512, 512) if args.full else (64, 256, 256)
    report: dict = {"brats_shape": brats_shape, "kits_shape": kits_shape, "runs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        runs = {
            "brats_phantom": ("brats", "brats2021", lambda d: write_brats_dataset(d, args.cases, brats_shape, seed=0)),
            "kits_phantom": ("kits", "kits19", lambda d: write_kits_dataset(d, args.cases, kits_shape, seed=0)),
        }
        if (SHARED / "brain_mri" / "ch2bet.nii.gz").exists():
            runs["brats_real_background"] = ("brats", "brats2021", lambda d: write_brats_dataset(
                d, 2, seed=1, background=str(SHARED / "brain_mri" / "ch2bet.nii.gz")))
            runs["kits_real_background"] = ("kits", "kits19", lambda d: write_kits_dataset(
                d, 2, seed=1, background=str(SHARED / "abdomen_ct" / "example_ct_sm.nii.gz"),
                background_labels=str(SHARED / "abdomen_ct" / "example_seg.nii.gz")))
        for name, (task, layout, write) in runs.items():
            folder = Path(tmp) / name
            t0 = time.perf_counter()
            written = write(folder)
            seconds = time.perf_counter() - t0
            items = build_datalist(layout, folder)
            good, bad = verify_datalist(items, layout, skip_bad=True)
            rows = [r for it in items for r in _rows_for_case(it, task)]
            png = save_montage(rows, out / f"montage_{name}.png")
            report["runs"][name] = {
                "cases": len(written),
                "seconds_per_case": round(seconds / len(written), 2),
                "integrity_passed": len(good),
                "integrity_failed": [{"case": r.case_id, "problems": r.problems} for r in bad],
                "cases_stats": [_stats(it, task) for it in items],
                "montage": png.name,
            }
            print(f"{name}: {len(written)} cases, {seconds / len(written):.1f} s/case, {len(good)} passed -> {png}")
    report["threshold_baseline"] = _threshold_baselines(brats_shape, args.cases)
    with open(out / "synthetic_data.json", "w") as f:
        json.dump(report, f, indent=2)


def _threshold_baselines(shape, cases: int) -> dict:
    """Best single-threshold Dice per BraTS region (one global threshold, polarity and modality for all cases;
    cases without the region skipped), easy and hard (``--difficulty hard`` must keep TC and ET below 0.6)."""
    out = {}
    for difficulty in ("easy", "hard"):
        made = [make_brats_case(shape, seed=[0, i], difficulty=difficulty) for i in range(cases)]
        feats = [[c.images[m] for m in BRATS_MODALITIES] for c in made]
        out[difficulty] = {}
        for region, values in (("WT", (1, 2, 4)), ("TC", (1, 4)), ("ET", (4,))):
            best = threshold_baseline(feats, [np.isin(c.seg, values).astype(np.uint8) for c in made])
            out[difficulty][region] = round(best["dice"], 3)
        print(f"BraTS {difficulty}: best single-threshold Dice {out[difficulty]}")
    out["hard_tc_et_below_0.6"] = out["hard"]["TC"] < 0.6 and out["hard"]["ET"] < 0.6
    return out


if __name__ == "__main__":
    main()
