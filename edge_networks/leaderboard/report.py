"""The leaderboard's report: the tables (``per_case.csv``, ``leaderboard.csv``, ``paired.csv``, ``leaderboard.md``,
``leaderboard.json``), the bar chart (``leaderboard.png``) and the montage of one held-out case (``montage.png``)."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path

import nibabel as nib
import numpy as np

from ..metrics import read_2d
from .registry import METHOD_HAS_EDGES, METHODS, TASKS, Task
from .scoring import case_outputs, paired_bootstrap

__all__ = ["write_tables", "plot_leaderboard", "write_montage"]


def write_tables(task: str, out: Path, methods: Sequence[str], rows: list[dict], info: dict, epochs: int, seeds: int,
                 difficulty: str, minutes: float | None = None) -> dict:
    """Write the tables from the per-case ``rows`` and per-method costs ``info`` and the plot; return the summary:
    per method and region the means over (case, seed), and each edge method's paired Dice difference to its
    baseline with a bootstrap 95 % interval."""
    unit = TASKS[task].unit
    keys = sorted({k for r in rows for k in r} - {"method", "seed", "case"})
    with open(out / "per_case.csv", "w", newline="") as f:
        w = csv.DictWriter(f, ["method", "seed", "case", *keys])
        w.writeheader()
        w.writerows(rows)
    table = []
    for name in methods:
        mine = [r for r in rows if r["method"] == name]
        for region in TASKS[task].regions:
            vals = {m: [r.get(f"{region}/{m}", np.nan) for r in mine]
                    for m in ("dice", f"hd95_{unit}", "bf1", "bf2")}
            vals["edge_bf2"] = [r.get("edges/edge_bf2", np.nan) for r in mine]  # one edge map for all regions
            if all(np.isnan(v) for v in vals["dice"]):
                continue
            table.append({"method": name, "region": region,
                          **{m: float(np.nanmean(v)) if not all(np.isnan(v)) else float("nan")
                             for m, v in vals.items()},
                          "dice_std": float(np.nanstd(vals["dice"])), **info[name]})
    with open(out / "leaderboard.csv", "w", newline="") as f:
        w = csv.DictWriter(f, list(table[0]))
        w.writeheader()
        w.writerows(table)
    paired = []
    for name in methods:
        base = METHODS[task][name].baseline
        if base is None or base not in methods:
            continue
        for region in TASKS[task].regions:
            key = f"{region}/dice"
            ref = {(r["seed"], r["case"]): r.get(key, np.nan) for r in rows if r["method"] == base}
            diffs = [r.get(key, np.nan) - ref.get((r["seed"], r["case"]), np.nan) for r in rows
                     if r["method"] == name]
            mean, lo, hi = paired_bootstrap(diffs)
            if np.isfinite(mean):
                paired.append({"method": name, "baseline": base, "region": region, "dice_diff": mean,
                               "ci_low": lo, "ci_high": hi, "pairs": int(np.isfinite(diffs).sum())})
    if paired:
        with open(out / "paired.csv", "w", newline="") as f:
            w = csv.DictWriter(f, list(paired[0]))
            w.writeheader()
            w.writerows(paired)
    budget = f"up to {epochs} epochs in {minutes:g} min per run" if minutes else f"{epochs} epochs"
    lines = [f"# Leaderboard: {task}, {difficulty}, {budget}, {seeds} seed(s)", "",
             f"| method | region | Dice | HD95 ({unit}) | BF@1 | BF@2 | edge head BF@2 | params | epochs | s/iter "
             "| s/volume | train peak MiB | inference peak MiB |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for t in table:
        lines.append(f"| {t['method']} | {t['region']} | {t['dice']:.3f} ± {t['dice_std']:.3f} "
                     f"| {t[f'hd95_{unit}']:.2f} "
                     f"| {t['bf1']:.3f} | {t['bf2']:.3f} | {t['edge_bf2']:.3f} | {t['params']:,} | {t['epochs']:g} | "
                     f"{t['s_per_iteration']:.2f} | {t['s_per_volume']:.2f} | {t['train_peak_mib']:.0f} | "
                     f"{t['infer_peak_mib']:.0f} |")
    if paired:
        lines += ["", "| edge method | vs | region | Dice difference | 95 % bootstrap interval | pairs |",
                  "| --- | --- | --- | --- | --- | --- |"]
        lines += [f"| {p['method']} | {p['baseline']} | {p['region']} | {p['dice_diff']:+.3f} | "
                  f"[{p['ci_low']:+.3f}, {p['ci_high']:+.3f}] | {p['pairs']} |" for p in paired]
    (out / "leaderboard.md").write_text("\n".join(lines) + "\n")
    summary = {"task": task, "difficulty": difficulty, "epochs": epochs, "minutes": minutes, "seeds": seeds,
               "table": table, "paired": paired}
    (out / "leaderboard.json").write_text(json.dumps(summary, indent=2))
    print("\n".join(lines))
    plot_leaderboard(summary, out / "leaderboard.png")
    return summary


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size)
    except TypeError:  # Pillow < 10.1: one bitmap size
        return ImageFont.load_default()


def _has_edges(task: str | None, name: str) -> bool:
    if task in METHODS and name in METHODS[task]:
        return METHODS[task][name].has_edges
    return name in METHOD_HAS_EDGES


def plot_leaderboard(summary: dict, path: str | Path) -> Path:
    """Bar chart of the leaderboard: per region, each method's mean Dice (bar, grey for methods without an edge
    loss or stream, blue with), its standard deviation over (case, seed) (whisker) and boundary F at 2 voxels
    (orange dot). Drawn with Pillow, which the project already uses, rather than a plotting library."""
    from PIL import Image, ImageDraw

    table = summary["table"]
    regions = list(dict.fromkeys(t["region"] for t in table))
    per_region = {r: [t for t in table if t["region"] == r] for r in regions}
    bar, gap, left, top, plot_h = 22, 36, 50, 48, 260
    label_h = int(6.5 * max(len(t["method"]) for t in table)) + 8
    width = max(left + sum(len(rows) * bar + gap for rows in per_region.values()) + 20, 560)
    img = Image.new("RGB", (width, top + plot_h + label_h + 30), "white")
    d = ImageDraw.Draw(img)
    small, big = _font(11), _font(13)
    budget = (f"<= {summary['epochs']} epochs in {summary['minutes']:g} min" if summary.get("minutes")
              else f"{summary['epochs']} epochs")
    d.text((8, 6), f"{summary['task']} ({summary['difficulty']}), {budget}, {summary['seeds']} seed(s)",
           fill="black", font=big)
    d.text((8, 24), "Dice: bars (blue: edge supervision, grey: none), whisker +-1 sd; orange dot: boundary F@2",
           fill=(60, 60, 60), font=small)
    y = lambda v: top + plot_h * (1 - v)  # noqa: E731
    for tick in np.linspace(0, 1, 6):
        d.line([(left - 4, y(tick)), (width - 10, y(tick))], fill=(225, 225, 225))
        d.text((14, y(tick) - 6), f"{tick:.1f}", fill="black", font=small)
    x = left + gap // 2
    for region, rows in per_region.items():
        d.text((x, top + plot_h + 4), region, fill="black", font=big)
        for row in rows:
            colour = (70, 120, 200) if _has_edges(summary.get("task"), row["method"]) else (160, 160, 160)
            dice_v = float(row["dice"]) if np.isfinite(row["dice"]) else 0.0
            d.rectangle([x + 2, y(dice_v), x + bar - 3, y(0)], fill=colour)
            if np.isfinite(row["dice_std"]):
                lo, hi = max(dice_v - row["dice_std"], 0), min(dice_v + row["dice_std"], 1)
                d.line([(x + bar // 2, y(lo)), (x + bar // 2, y(hi))], fill="black", width=1)
            if np.isfinite(row["bf2"]):
                cy = y(row["bf2"])
                d.ellipse([x + bar // 2 - 3, cy - 3, x + bar // 2 + 3, cy + 3], fill=(240, 140, 20))
            label = Image.new("RGB", (label_h, bar - 4), "white")
            ld = ImageDraw.Draw(label)  # right-aligned, so that the rotated name ends under its bar
            ld.text((label_h - ld.textlength(row["method"], font=small) - 2, 2), row["method"], fill="black",
                    font=small)
            img.paste(label.rotate(90, expand=True), (x + 2, top + plot_h + 22))
            x += bar
        x += gap
    path = Path(path)
    img.save(path)
    return path


def write_montage(task: str, out: Path, methods: Sequence[str], item: dict, seed: int = 0) -> Path | None:
    """``montage.png``: one held-out case, the axial slice with the most foreground; the image and the ground
    truth, then per method its label map and (where it has an edge head) its edge probability map."""
    from ..visualize import overlay, save_montage, to_uint8

    t = TASKS[task]
    if t.generator:
        return _montage_2d(t, out, methods, item, seed)
    gt = np.asarray(nib.load(item["label"]).dataobj)
    images = item["image"] if isinstance(item["image"], (list, tuple)) else [item["image"]]
    image = np.asarray(nib.load(images[0]).dataobj, dtype=np.float32)  # FLAIR (BraTS layouts list it first), CT
    if image.ndim == 4:
        image = image[..., -1]
    axis = t.slice_axis  # KiTS 2019 stores the slices first
    z = int(np.argmax((gt > 0).sum(axis=tuple(a for a in range(3) if a != axis))))
    take = lambda v: np.rot90(np.take(v, z, axis=axis))  # noqa: E731
    gray = to_uint8(take(image))
    rows = [("image | ground truth", [gray, overlay(gray, take(gt))])]
    for name in methods:
        pred_dir = out / "runs" / f"{name}_seed{seed}" / "pred"
        preds = sorted(pred_dir.glob(f"{item['case_id']}*.nii.gz"))
        seg = next((p for p in preds if p.name.endswith("_seg.nii.gz")), None)
        if seg is None:
            continue
        tiles = [overlay(gray, take(np.asarray(nib.load(seg).dataobj)))]
        for p in preds:
            if p != seg:
                edge = np.asarray(nib.load(p).dataobj, dtype=np.float32).reshape(gt.shape)
                tiles.append(to_uint8(take(edge), 0.0, 1.0))
        rows.append((name + (" | edge head" if len(tiles) > 1 else ""), tiles))
    return save_montage(rows, out / "montage.png", scale=2)


def _montage_2d(task: Task, out: Path, methods: Sequence[str], item: dict, seed: int) -> Path:
    """The 2D montage: the photograph (its green channel, where the disc and vessels show best) with the ground
    truth, then each method's mask and, where it has an edge head, that head's probability map, all cropped to the
    ground truth's bounding box with a margin of its size."""
    from ..visualize import overlay, save_montage, to_uint8

    image = read_2d(item["image"])
    gray_full = image[1] if image.ndim == 3 and image.shape[0] >= 3 else image.reshape(image.shape[-2:])
    gt = read_2d(item["label"], task.layout) > 0
    box = np.argwhere(gt)
    if box.size:  # the structure and a margin as large as itself
        lo, hi = box.min(0), box.max(0) + 1
        lo, hi = np.maximum(lo - (hi - lo), 0), np.minimum(hi + (hi - lo), gt.shape)
    else:
        lo, hi = np.zeros(2, int), np.array(gt.shape)
    crop = lambda v: v[lo[0]:hi[0], lo[1]:hi[1]].T  # (W, H) -> (H, W), as the photograph  # noqa: E731
    gray = to_uint8(crop(gray_full))
    tiles = [("image", gray), ("ground truth", overlay(gray, crop(gt.astype(np.uint8))))]
    for name in methods:
        try:
            pred, edge = case_outputs(out / "runs" / f"{name}_seed{seed}" / "pred", item, task)
        except FileNotFoundError:
            continue
        tiles.append((name, overlay(gray, crop((read_2d(pred) > 0).astype(np.uint8)))))
        if edge is not None:  # the edge head's probability map
            tiles.append((f"{name} edge head", crop(read_2d(edge)).astype(np.uint8)))
    per_row = 4  # a grid, each row titled by its tiles' names
    rows = [(" | ".join(n for n, _ in tiles[i:i + per_row]), [t for _, t in tiles[i:i + per_row]])
            for i in range(0, len(tiles), per_row)]
    return save_montage(rows, out / "montage.png", scale=2)
