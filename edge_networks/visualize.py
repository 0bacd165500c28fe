"""PNG montages of volumes with label overlays (for looking at data, predictions and edges)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

__all__ = ["LABEL_COLOURS", "to_uint8", "overlay", "save_montage"]

# label value -> RGB (BraTS 1 NCR red, 2 oedema green, 4/3 ET yellow; KiTS 1 kidney red, 2 tumour green)
LABEL_COLOURS = {1: (230, 40, 40), 2: (40, 200, 60), 3: (250, 220, 30), 4: (250, 220, 30), 5: (60, 140, 255)}


def to_uint8(img: np.ndarray, lo: float | None = None, hi: float | None = None) -> np.ndarray:
    """Window ``img`` to [lo, hi] (default: 1st and 99.5th percentile of non-zero voxels) as uint8."""
    vals = img[img != 0] if np.any(img != 0) else img.ravel()
    lo = float(np.percentile(vals, 1)) if lo is None else lo
    hi = float(np.percentile(vals, 99.5)) if hi is None else hi
    return (np.clip((img - lo) / max(hi - lo, 1e-6), 0, 1) * 255).astype(np.uint8)


def overlay(gray: np.ndarray, label: np.ndarray | None = None, alpha: float = 0.45, outline: bool = False):
    """RGB image: ``gray`` (uint8, 2D) with ``label`` values coloured (filled, or outlines only)."""
    rgb = np.repeat(gray[..., None], 3, axis=-1).astype(np.float32)
    if label is not None:
        for value, colour in LABEL_COLOURS.items():
            m = label == value
            if outline:
                inner = m.copy()
                inner[1:, :] &= m[:-1, :]
                inner[:-1, :] &= m[1:, :]
                inner[:, 1:] &= m[:, :-1]
                inner[:, :-1] &= m[:, 1:]
                m = m & ~inner
                rgb[m] = colour
            else:
                rgb[m] = (1 - alpha) * rgb[m] + alpha * np.asarray(colour, np.float32)
    return rgb.astype(np.uint8)


def save_montage(
    rows: Sequence[tuple[str, Sequence[np.ndarray]]],
    path: str | Path,
    scale: int = 1,
) -> Path:
    """Save a grid of RGB/gray 2D tiles: one row per ``(title, tiles)``; tiles are padded to a common size."""
    tiles = [t for _, ts in rows for t in ts]
    h = max(t.shape[0] for t in tiles) * scale
    w = max(t.shape[1] for t in tiles) * scale
    ncol = max(len(ts) for _, ts in rows)
    title_h = 14
    canvas = Image.new("RGB", (ncol * (w + 2), len(rows) * (h + title_h + 2)), (0, 0, 0))
    draw = ImageDraw.Draw(canvas)
    for r, (title, ts) in enumerate(rows):
        y0 = r * (h + title_h + 2)
        draw.text((2, y0), title, fill=(255, 255, 255))
        for c, t in enumerate(ts):
            im = Image.fromarray(t if t.ndim == 3 else np.repeat(t[..., None], 3, -1))
            if scale != 1:
                im = im.resize((t.shape[1] * scale, t.shape[0] * scale), Image.NEAREST)
            canvas.paste(im, (c * (w + 2), y0 + title_h))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)
    return path
