"""Synthetic 2D generators: generation time per image, the best single-threshold Dice per task and difficulty, montages.

    python benchmarks/synthetic_2d.py [--out benchmarks/results] [--images 8] [--full]

For each kind (fundus, cxr, dermoscopy, endoscopy, em, oct, ct_slice) and difficulty (easy, hard): ``--images``
images at the size of the kind's first release (capped at 1024 px on the long side unless ``--full``), timed one
by one (median seconds per image), and the threshold baseline of ``threshold_baseline``: one global threshold,
polarity and channel (or grey value) chosen to maximise the mean per-image Dice of the task's mask (vessels,
lungs, lesion, polyp, membranes, each OCT layer, lungs). Hard mode must keep it below 0.7. Writes
``synthetic_2d.json`` and ``synthetic_2d_<kind>.png`` montages (image, mask outline; easy row, hard row).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from edge_networks.data.synthetic.images2d import GENERATORS_2D, TARGETS_2D, threshold_baseline
from edge_networks.data.synthetic.layouts2d import DEFAULT_SIZES, KIND_LAYOUTS

HARD_BAR = 0.7


def _display(image: np.ndarray) -> np.ndarray:
    if image.dtype == np.int16:  # CT: lung window
        image = np.clip((image.astype(np.float32) + 1000.0) / 1400.0 * 255.0, 0, 255).astype(np.uint8)
    return np.repeat(image[..., None], 3, -1) if image.ndim == 2 else image


def _outline(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    out = _display(image).copy()
    edge = mask != ndimage.grey_erosion(mask, size=3)
    out[edge] = (0, 255, 0)
    return out


def _size(kind: str, full: bool) -> tuple[int, int]:
    h, w = DEFAULT_SIZES[KIND_LAYOUTS[kind][0]]
    if not full and max(h, w) > 1024:
        f = 1024 / max(h, w)
        h, w = int(round(h * f)), int(round(w * f))
    return h, w


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--full", action="store_true", help="the releases' full image sizes")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = {"machine": platform.processor() or platform.machine(), "images_per_setting": args.images,
               "hard_bar": HARD_BAR, "kinds": {}}
    for kind, gen in GENERATORS_2D.items():
        h, w = _size(kind, args.full)
        row = {"size_hw": [h, w], "target": TARGETS_2D[kind]}
        tiles = []
        for difficulty in ("easy", "hard"):
            images, masks, times = [], [], []
            for i in range(args.images):
                t0 = time.perf_counter()
                case = gen(h, w, np.random.default_rng([0, i, difficulty == "hard"]), difficulty == "hard")
                times.append(time.perf_counter() - t0)
                images.append(case.image)
                masks.append(case.masks[TARGETS_2D[kind]])
            best = threshold_baseline(images, masks)
            row[difficulty] = {"seconds_per_image_median": float(np.median(times)),
                               "threshold_dice": best["dice"],
                               "threshold": {k: v for k, v in best.items() if k != "dice" and k != "per_label"}}
            tiles.append(np.concatenate([_outline(im, m) for im, m in zip(images[:3], masks[:3])], axis=1))
            print(f"{kind:10s} {difficulty}: {np.median(times):6.3f} s/image at {h}x{w}, best threshold Dice "
                  f"{best['dice']:.3f}", flush=True)
        row["hard_below_bar"] = row["hard"]["threshold_dice"] < HARD_BAR
        results["kinds"][kind] = row
        montage = np.concatenate(tiles, axis=0)
        scale = 900 / montage.shape[1]
        Image.fromarray(montage).resize((900, int(montage.shape[0] * scale)), Image.BILINEAR).save(
            out / f"synthetic_2d_{kind}.png")
    results["all_hard_below_bar"] = all(r["hard_below_bar"] for r in results["kinds"].values())
    (out / "synthetic_2d.json").write_text(json.dumps(results, indent=2))
    print(f"hard mode below {HARD_BAR} for every task: {results['all_hard_below_bar']}; written to {out}")


if __name__ == "__main__":
    main()
