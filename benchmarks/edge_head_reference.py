"""How far is a demo's edge map from a boundary, on the scale of its own tumours? (docs/research_notes.md,
"The edge head: a boundary or a blob?"; results: ``benchmarks/results/egcnn_edge_head_reference_demo*.json``.)

``core_fp`` (:func:`edge_networks.metrics.edge_map_scores`) is 0 for the training target and 1 for a filled blob,
but on tumours only 5-8 voxels deep a boundary that is merely blurred also scores high. This script scores a
demo's saved edge maps (``make run`` writes ``predictions/<case>_edge.nii.gz``) beside reference maps built from
each case's own ground truth -- the target itself and the target grown by one or two voxels (6- or
26-connected), that is, perfect boundaries as thick as a blurred one -- and, for each, the share of the tumour's
voxels more than ``t`` voxels from the target that the map calls edge (``far_core_fp@t``, t = 1, 1.5, 2): a
one-voxel blur of the target scores 0 at t >= 1, a blob 1. Everything is on the union of the regions (the map
the demo saves), per case and averaged over cases.

    python benchmarks/edge_head_reference.py --demo results/demo \
        --out benchmarks/results/egcnn_edge_head_reference_demo40.json
"""

import argparse
import json
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from edge_networks.metrics import edge_map_scores, edge_target, region_masks

REGIONS = ("WT", "TC", "ET")
TOLERANCES = (1.0, 1.5, 2.0)
SCORES = ("bf2", "thin_bf1", "thin_bf2", "interior", "thickness", "fill", "core_fp")


def reference_maps(target: np.ndarray) -> dict[str, np.ndarray]:
    """The target and the target grown by one and two voxels (face- and full-connected)."""
    full = np.ones((3,) * target.ndim, bool)
    return {"target": target,
            "target grown 1 voxel (6-connected)": ndimage.binary_dilation(target),
            "target grown 1 voxel (26-connected)": ndimage.binary_dilation(target, full),
            "target grown 2 voxels (6-connected)": ndimage.binary_dilation(target, iterations=2)}


def far_core_fp(pred: np.ndarray, union: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """Share of the regions' voxels more than ``t`` voxels from ``target`` that ``pred`` calls edge (NaN where no
    voxel is that far), and how many such voxels there are."""
    dist = ndimage.distance_transform_edt(~target)
    out = {}
    for t in TOLERANCES:
        far = union & (dist > t)
        out[f"far_core_fp@{t:g}"] = float(pred[far].mean()) if far.any() else float("nan")
        out[f"far_core_voxels@{t:g}"] = int(far.sum())
    return out


def score_case(edge_file: Path, label_file: Path) -> dict[str, dict[str, float]]:
    """Scores of the saved edge map and of every reference map of one case."""
    img = nib.load(str(label_file))
    gt = region_masks(np.asarray(img.dataobj), "brats")
    masks = [gt[r] for r in REGIONS]
    union = np.any(masks, 0)
    target = edge_target(masks)
    pred = np.asarray(nib.load(str(edge_file)).dataobj).reshape(img.shape[:3]) > 0.5
    out = {}
    for name, m in {"edge head": pred, **reference_maps(target)}.items():
        s = edge_map_scores(m, masks, target)
        out[name] = {**{k: s[k] for k in SCORES}, **far_core_fp(m, union, target)}
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--demo", required=True, help="a make-run results folder (datalist.json, data/, predictions/)")
    p.add_argument("--out", required=True)
    a = p.parse_args()
    demo = Path(a.demo)
    datalist = json.loads((demo / "datalist.json").read_text())
    cases = {}
    for it in datalist["validation"]:
        case = it["case_id"]
        label = Path(datalist.get("root", demo)) / it["label"]  # an absolute label path stays as it is
        cases[case] = score_case(demo / "predictions" / f"{case}_edge.nii.gz", label)
        print(case, {k: round(v["far_core_fp@1"], 3) for k, v in cases[case].items()}, flush=True)
    mean = {name: {k: float(np.nanmean([c[name][k] for c in cases.values()])) for k in next(iter(cases.values()))[name]}
            for name in next(iter(cases.values()))}
    for name, s in mean.items():
        print(f"{name:40s}", " ".join(f"{k}={v:.3f}" for k, v in s.items() if "voxels" not in k))
    Path(a.out).write_text(json.dumps({"demo": str(demo), "mean": mean, "cases": cases}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
