"""Integrity check of one 2D datalist item (see :func:`edge_networks.data.integrity.check_case`, which calls it).

Faults, each reported as ``<file>: <what is wrong>``: a missing image, mask or FOV file; an unreadable or
truncated file (every pixel is decoded, so a cut JPEG or PNG is caught); an empty (all-zero) image; NaN or inf
pixels; a mask whose size differs from its image's; mask values outside the dataset's convention (exact values
for ``values`` layouts, 0..255 for JPEG and soft masks); a multi-page TIFF whose image and label stacks differ in
length, or a page beyond the stack.
"""

from __future__ import annotations

import numpy as np

from transforms.image2d import count_pages, read_image_2d

from .layouts import Layout

__all__ = ["check_case_2d"]


def _load(path: str, page, problems: list[str]):
    try:
        return read_image_2d(path, page).array
    except FileNotFoundError:
        problems.append(f"{path}: file is missing")
    except ValueError as e:
        msg = str(e)
        problems.append(msg if msg.startswith(str(path)) else f"{path}: {msg}")
    return None


def _mask_values(path: str, arr: np.ndarray, lay: Layout) -> list[str]:
    if arr.ndim == 3:  # colour-saved masks (Kvasir's JPEGs): every channel must agree up to JPEG noise
        if lay.mask_kind == "values" and not (arr == arr[..., :1]).all():
            return [f"{path}: colour mask whose channels differ (a mask holds one value per pixel)"]
        arr = arr[..., 0]
    if np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            return [f"{path}: NaN/inf in the mask"]
        if not np.array_equal(arr, np.round(arr)):
            return [f"{path}: non-integer mask values"]
    values = set(np.unique(arr).astype(np.int64).tolist())
    if lay.label_convention == "indices":
        bad = sorted(v for v in values if v < 0)
        return [f"{path}: negative mask value(s) {bad}"] if bad else []
    bad = sorted(values - set(lay.label_values))
    if bad:
        allowed = list(lay.label_values) if lay.mask_kind == "values" else "0..255"
        shown = bad if len(bad) <= 8 else [*bad[:8], "..."]
        return [f"{path}: unexpected mask value(s) {shown}, allowed {allowed} ({lay.name})"]
    return []


def check_case_2d(item: dict, lay: Layout, require_label: bool = True) -> list[str]:
    """Every fault of one 2D item (empty list: the item is good)."""
    problems: list[str] = []
    image = item.get("image")
    if image is None:
        return ["datalist item has no 'image'"]
    if isinstance(image, list | tuple):
        if len(image) != 1:
            return [f"{len(image)} image files listed, a 2D item has one"]
        image = image[0]
    page = item.get("page")
    labels = item.get("label")
    label_files = [] if labels is None else (list(labels) if isinstance(labels, list | tuple) else [labels])
    if labels is None and require_label:
        problems.append("datalist item has no 'label'")
    if page is not None:
        stacks = [str(image), *label_files]
        counts = {}
        for f in stacks:
            try:
                counts[f] = count_pages(f)
            except FileNotFoundError:
                pass
            except Exception as e:
                problems.append(f"{f}: unreadable or truncated image file ({type(e).__name__}: {e})")
        if len(set(counts.values())) > 1:
            ref = counts.get(str(image))
            problems.extend(f"{f}: stack of {n} page(s), its image stack {image} has {ref}"
                            for f, n in counts.items() if f != str(image) and n != ref)
            return problems
    img = _load(str(image), page, problems)
    if img is not None:
        if np.issubdtype(img.dtype, np.floating) and not np.isfinite(img).all():
            problems.append(f"{image}: {int((~np.isfinite(img)).sum())} NaN/inf pixel(s)")
        elif not img.any():
            problems.append(f"{image}: empty image (every pixel is 0)")
    masks = label_files + [item[k] for k in ("mask", "cup", "second_observer") if item.get(k) is not None]
    for f in masks:  # labels, DRIVE's FOV and second observer, RIM-ONE's cup: same size, the release's values
        arr = _load(str(f), page, problems)
        if arr is None:
            continue
        if img is not None and arr.shape[:2] != img.shape[:2]:
            h, w = img.shape[:2]
            problems.append(f"{f}: size {arr.shape[1]}x{arr.shape[0]} (WxH) differs from its image {image} {w}x{h}")
            continue
        problems.extend(_mask_values(str(f), arr, lay))
    return problems
