"""Write synthetic 2D datasets exactly as the real releases look on disk (DATASETS_2D.md).

``write_2d_dataset("fundus", "drive", out)`` writes DRIVE's ``training/images/21_training.tif``,
``1st_manual/21_manual1.gif``, ``mask/21_training_mask.gif``, ... with the release's file formats, folder names,
value conventions and split sizes (``cases=None``); ``cases=N`` scales every part of the release to about ``N``
images in total (each part keeps at least one). Every file is written to a temporary name and renamed into place,
so an interrupted run leaves no half-written file.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from .images2d import GENERATORS_2D, Image2DCase

__all__ = ["KIND_LAYOUTS", "REAL_COUNTS", "DEFAULT_SIZES", "write_2d_dataset"]

# which generator writes which layout
KIND_LAYOUTS: dict[str, tuple[str, ...]] = {
    "fundus": ("drive", "refuge", "drishti_gs", "rim_one_r3", "rim_one_r1", "origa", "messidor", "images_masks"),
    "cxr": ("montgomery", "shenzhen", "images_masks"),
    "dermoscopy": ("isic2017", "isic2018", "images_masks"),
    "endoscopy": ("kvasir_seg", "cvc_colondb", "images_masks"),
    "em": ("isbi2012_em", "images_masks"),
    "oct": ("images_masks",),
    "ct_slice": ("luna2d", "images_masks"),
}

# images per part of each release (labelled unless said)
REAL_COUNTS: dict[str, dict[str, int]] = {
    "drive": {"train": 20, "test": 20},
    "refuge": {"glaucoma": 40, "non_glaucoma": 360, "val": 400, "test_unlabelled": 400},
    "drishti_gs": {"train": 50, "test": 51},
    "rim_one_r3": {"healthy": 85, "glaucoma": 74},
    "rim_one_r1": {"train": 135, "test": 34},
    "origa": {"train": 325, "test": 325},
    "messidor": {"train": 960, "test": 240},
    "montgomery": {"normal": 80, "tb": 58},
    "shenzhen": {"labelled": 566, "unlabelled": 96},
    "isic2017": {"train": 2000, "val": 150, "test": 600},
    "isic2018": {"train": 2594, "val": 100, "test": 1000},
    "kvasir_seg": {"all": 1000},
    "cvc_colondb": {"all": 380},
    "cvc_colondb_bmp": {"all": 300},
    "isbi2012_em": {"train": 30, "test": 30},
    "luna2d": {"all": 267},
    "images_masks": {"train": 80, "test": 20},
}

# (height, width) of the real images (variable-size releases: a typical size)
DEFAULT_SIZES: dict[str, tuple[int, int]] = {
    "drive": (584, 565), "refuge": (2056, 2124), "drishti_gs": (1944, 2896), "rim_one_r3": (1424, 2144),
    "rim_one_r1": (512, 512), "origa": (2048, 3072), "messidor": (960, 1440), "montgomery": (4892, 4020),
    "shenzhen": (2919, 3000), "isic2017": (767, 1022), "isic2018": (767, 1022), "kvasir_seg": (576, 720),
    "cvc_colondb": (500, 574), "isbi2012_em": (512, 512), "luna2d": (512, 512), "images_masks": (512, 512),
}
_IMAGES_MASKS_TARGET = {"fundus": "disc", "cxr": "lungs", "dermoscopy": "lesion", "endoscopy": "polyp",
                        "em": "membranes", "oct": "layers", "ct_slice": "lungs"}


def _save(arr: np.ndarray, path: Path, **kwargs) -> None:
    """PIL-save ``arr`` (rows first) atomically: a temporary file renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")
    try:
        img = Image.fromarray(np.ascontiguousarray(arr))
        img.save(tmp, format=_FORMATS[path.suffix.lower()], **kwargs)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".bmp": "BMP", ".gif": "GIF", ".tif": "TIFF"}


def _save_stack(pages: list[np.ndarray], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")
    try:
        ims = [Image.fromarray(p) for p in pages]
        ims[0].save(tmp, format="TIFF", save_all=True, append_images=ims[1:])
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _stored(image: np.ndarray) -> np.ndarray:
    """What a file holds: uint8 images as they are, CT in HU as 16-bit ``HU + 1024``."""
    if image.dtype == np.uint8:
        return image
    return (image.astype(np.int32) + 1024).clip(0, 65535).astype(np.uint16)


def _m255(mask: np.ndarray) -> np.ndarray:
    return (mask > 0).astype(np.uint8) * 255


def _soft_map(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Drishti-GS-like agreement map: the mean of four experts' masks (each the truth grown or shrunk a little)."""
    votes = []
    for _ in range(4):
        k = int(rng.integers(-2, 3))
        m = mask > 0
        m = ndimage.binary_dilation(m, iterations=k) if k > 0 else ndimage.binary_erosion(m, iterations=-k) if k < 0 \
            else m
        votes.append(m)
    votes[0] = mask > 0  # at least one expert marks the truth exactly
    return np.round(np.mean(votes, axis=0) * 255).astype(np.uint8)


def _scaled(layout: str, cases: int | None) -> dict[str, int]:
    counts = REAL_COUNTS[layout]
    if cases is None:
        return dict(counts)
    total = sum(counts.values())
    return {k: max(1, int(round(v * cases / total))) for k, v in counts.items()}


def write_2d_dataset(
    kind: str,
    layout: str,
    out: str | Path,
    cases: int | None = None,
    seed: int = 0,
    difficulty: str = "easy",
    size: int | Sequence[int] | None = None,
    variant: str | None = None,
) -> list[Path]:
    """Write a synthetic ``layout`` dataset of ``kind`` images into ``out``; returns the image files written.

    Args:
        kind: a generator of :data:`~.images2d.GENERATORS_2D` (``fundus``, ``cxr``, ...).
        layout: a layout that generator writes (:data:`KIND_LAYOUTS`).
        out: dataset root (what ``prepare --root`` takes).
        cases: about this many images in total, in the release's proportions; ``None``: the release's counts.
        seed: image ``i`` comes from the seed sequence ``(seed, i)``.
        difficulty: ``"easy"`` or ``"hard"`` (boundaries ambiguous to intensity alone).
        size: ``(height, width)`` or one number for both. Defaults to the release's size (:data:`DEFAULT_SIZES`).
        variant: ``cvc_colondb`` only: ``"png380"`` (default) or ``"bmp300"``.
    """
    if kind not in KIND_LAYOUTS:
        raise ValueError(f"unknown image kind {kind!r}; choose one of {sorted(KIND_LAYOUTS)}")
    if layout not in KIND_LAYOUTS[kind]:
        raise ValueError(f"the {kind} generator does not write {layout!r}; it writes {list(KIND_LAYOUTS[kind])}")
    if difficulty not in ("easy", "hard"):
        raise ValueError(f"difficulty must be 'easy' or 'hard', got {difficulty!r}")
    hw = DEFAULT_SIZES[layout] if size is None else ((size, size) if isinstance(size, int) else tuple(size))
    gen, hard = GENERATORS_2D[kind], difficulty == "hard"
    root = Path(out)
    key = "cvc_colondb_bmp" if layout == "cvc_colondb" and variant == "bmp300" else layout
    counts = _scaled(key, cases)
    index = [0]

    def case(**kwargs) -> Image2DCase:  # kwargs: what the release's folder says of the case (glaucoma)
        c = gen(hw[0], hw[1], np.random.default_rng([seed, index[0]]), hard, **kwargs)
        index[0] += 1
        return c

    return _WRITERS[layout](root, counts, case, kind, variant)


def _drive(root, counts, case, kind, variant):
    written = []
    for part, first, n in (("training", 21, counts["train"]), ("test", 1, counts["test"])):
        for i in range(first, first + n):
            c = case()
            stem = f"{i:02d}_{part}"
            _save(c.image, root / part / "images" / f"{stem}.tif")
            _save(_m255(c.masks["vessels"]), root / part / "1st_manual" / f"{i:02d}_manual1.gif")
            _save(_m255(c.masks["fov"]), root / part / "mask" / f"{stem}_mask.gif")
            if part == "test":  # a second observer: the first one's vessels, thinned a little
                second = ndimage.binary_erosion(c.masks["vessels"]) | (c.masks["vessels"] & (np.arange(
                    c.masks["vessels"].shape[1]) % 7 > 0)[None, :])
                _save(_m255(second), root / part / "2nd_manual" / f"{i:02d}_manual2.gif")
            written.append(root / part / "images" / f"{stem}.tif")
    return written


def _refuge_mask(c: Image2DCase) -> np.ndarray:
    m = np.full(c.masks["disc"].shape, 255, np.uint8)
    m[c.masks["disc"] > 0] = 128
    m[c.masks["cup"] > 0] = 0
    return m


def _refuge(root, counts, case, kind, variant):
    written = []
    parts = [("Glaucoma", "g", counts["glaucoma"]), ("Non-Glaucoma", "n", counts["non_glaucoma"])]
    for cls, prefix, n in parts:
        for i in range(1, n + 1):
            c = case(glaucoma=cls == "Glaucoma")
            img = root / "Training400" / cls / f"{prefix}{i:04d}.jpg"
            _save(c.image, img, quality=95)
            _save(_refuge_mask(c), root / "Annotation-Training400" / "Disc_Cup_Masks" / cls / f"{prefix}{i:04d}.bmp")
            written.append(img)
    for i in range(1, counts["val"] + 1):
        c = case()
        img = root / "REFUGE-Validation400" / f"V{i:04d}.jpg"
        _save(c.image, img, quality=95)
        _save(_refuge_mask(c), root / "REFUGE-Validation400-GT" / "Disc_Cup_Masks" / f"V{i:04d}.bmp")
        written.append(img)
    for i in range(1, counts["test_unlabelled"] + 1):
        img = root / "Test400" / f"T{i:04d}.jpg"
        _save(case().image, img, quality=95)
        written.append(img)
    return written


def _drishti(root, counts, case, kind, variant):
    base = root / "Drishti-GS1_files"
    written, k = [], 1
    for part, gt, n in (("Training", "GT", counts["train"]), ("Test", "Test_GT", counts["test"])):
        for _ in range(n):
            c = case()
            rng = np.random.default_rng(k)
            cid = f"drishtiGS_{k:03d}"
            _save(c.image, base / part / "Images" / f"{cid}.png")
            soft = base / part / gt / cid / "SoftMap"
            _save(_soft_map(c.masks["disc"], rng), soft / f"{cid}_ODsegSoftmap.png")
            _save(_soft_map(c.masks["cup"], rng), soft / f"{cid}_cupsegSoftmap.png")
            written.append(base / part / "Images" / f"{cid}.png")
            k += 1
    return written


def _rim_one_r3(root, counts, case, kind, variant):
    written = []
    for cls, prefix, n in (("Healthy", "N", counts["healthy"]), ("Glaucoma", "G", counts["glaucoma"])):
        for i in range(n):
            c = case(glaucoma=cls == "Glaucoma")
            stem = f"{prefix}-{i // 2 + 1}-{'LR'[i % 2]}"
            img = root / cls / "Stereo Images" / f"{stem}.jpg"
            _save(c.image, img, quality=95)
            _save(_m255(c.masks["disc"]), root / cls / "Expert1_masks" / f"{stem}-1-Disc-exp1.png")
            _save(_m255(c.masks["cup"]), root / cls / "Expert1_masks" / f"{stem}-1-Cup-exp1.png")
            written.append(img)
    return written


def _listed(root, counts, case, images, masks, img_ext, mask_name, lists, jpeg_mask=False):
    written, k = [], 1
    for split, n in counts.items():
        names = []
        for _ in range(n):
            c = case()
            stem = f"{k:04d}"
            img = root / images / f"{stem}{img_ext}"
            _save(c.image, img, **({"quality": 95} if img_ext == ".jpg" else {}))
            _save(_m255(c.masks["disc"]), root / masks / mask_name(stem), **({"quality": 90} if jpeg_mask else {}))
            names.append(img.name)
            written.append(img)
            k += 1
        (root / lists[split]).write_text("\n".join(names) + "\n")
    return written


def _rim_one_r1(root, counts, case, kind, variant):
    return _listed(root, counts, case, "RIM-ONE-images", "RIM-ONE-exp1", ".png", lambda s: f"{s}-exp1.png",
                   {"train": "train_files.txt", "test": "test_files.txt"})


def _origa(root, counts, case, kind, variant):
    return _listed(root, counts, case, "images", "masks", ".jpg", lambda s: f"{s}.jpg",
                   {"train": "Set_A.txt", "test": "Set_B.txt"}, jpeg_mask=True)


def _messidor(root, counts, case, kind, variant):
    return _listed(root, counts, case, "save_image", "save_mask", ".png", lambda s: f"{s}.png",
                   {"train": "train.txt", "test": "test.txt"})


def _montgomery(root, counts, case, kind, variant):
    base = root / "MontgomerySet"
    written, k = [], 1
    for tb, n in ((0, counts["normal"]), (1, counts["tb"])):
        for _ in range(n):
            c = case()
            name = f"MCUCXR_{k:04d}_{tb}.png"
            _save(c.image, base / "CXR_png" / name)
            _save(_m255(c.masks["left"]), base / "ManualMask" / "leftMask" / name)
            _save(_m255(c.masks["right"]), base / "ManualMask" / "rightMask" / name)
            written.append(base / "CXR_png" / name)
            k += 1
    return written


def _shenzhen(root, counts, case, kind, variant):
    written = []
    n = counts["labelled"] + counts["unlabelled"]
    for k in range(1, n + 1):
        c = case()
        stem = f"CHNCXR_{k:04d}_{k % 2}"
        _save(c.image, root / "ChinaSet_AllFiles" / "CXR_png" / f"{stem}.png")
        if k <= counts["labelled"]:
            _save(_m255(c.masks["lungs"]), root / "mask" / f"{stem}_mask.png")
        written.append(root / "ChinaSet_AllFiles" / "CXR_png" / f"{stem}.png")
    return written


def _isic(root, counts, case, parts):
    written, k = [], 0
    for split, (data, gt, mask_suffix) in parts.items():
        for _ in range(counts[split]):
            c = case()
            stem = f"ISIC_{k:07d}"
            _save(c.image, root / data / f"{stem}.jpg", quality=95)
            _save(_m255(c.masks["lesion"]), root / gt / f"{stem}{mask_suffix}.png")
            written.append(root / data / f"{stem}.jpg")
            k += 1
    return written


def _isic2017(root, counts, case, kind, variant):
    parts = {s: (f"ISIC-2017_{p}_Data", f"ISIC-2017_{p}_Part1_GroundTruth", "_segmentation")
             for s, p in (("train", "Training"), ("val", "Validation"), ("test", "Test_v2"))}
    written = _isic(root, counts, case, parts)
    for img in written[:: max(len(written) // 5, 1)]:  # the release's superpixel files sit among the images
        _save(np.zeros((8, 8, 3), np.uint8), img.with_name(f"{img.stem}_superpixels.png"))
    return written


def _isic2018(root, counts, case, kind, variant):
    parts = {s: (f"ISIC2018_Task1-2_{p}_Input", f"ISIC2018_Task1_{p}_GroundTruth", "_segmentation")
             for s, p in (("train", "Training"), ("val", "Validation"), ("test", "Test"))}
    return _isic(root, counts, case, parts)


def _kvasir(root, counts, case, kind, variant):
    base = root / "Kvasir-SEG"
    written = []
    for k in range(counts["all"]):
        c = case()
        cid = f"cju{k:04d}polyp{k * 7919 % 100000:05d}"
        _save(c.image, base / "images" / f"{cid}.jpg", quality=90)
        mask = np.repeat(_m255(c.masks["polyp"])[..., None], 3, -1)  # Kvasir's masks are RGB JPEGs
        _save(mask, base / "masks" / f"{cid}.jpg", quality=90)
        written.append(base / "images" / f"{cid}.jpg")
    return written


def _cvc(root, counts, case, kind, variant):
    base = root / "CVC-ColonDB"
    written = []
    for k in range(1, counts["all"] + 1):
        c = case()
        if variant == "bmp300":
            _save(c.image, base / f"{k}.bmp")
            _save(_m255(c.masks["polyp"]), base / f"p{k}.bmp")
            written.append(base / f"{k}.bmp")
        else:
            _save(c.image, base / "images" / f"{k}.png")
            _save(_m255(c.masks["polyp"]), base / "masks" / f"{k}.png")
            written.append(base / "images" / f"{k}.png")
    return written


def _isbi(root, counts, case, kind, variant):
    train = [case() for _ in range(counts["train"])]
    test = [case() for _ in range(counts["test"])]
    _save_stack([c.image for c in train], root / "train-volume.tif")
    _save_stack([((1 - c.masks["membranes"]) * 255).astype(np.uint8) for c in train], root / "train-labels.tif")
    _save_stack([c.image for c in test], root / "test-volume.tif")
    return [root / "train-volume.tif", root / "test-volume.tif"]


def _luna(root, counts, case, kind, variant):
    written = []
    for k in range(counts["all"]):
        c = case()
        name = f"ID_{k // 3:04d}_Z_{100 + 7 * (k % 3):04d}.tif"  # three slices per scan
        _save(_stored(c.image), root / "2d_images" / name)
        _save(_m255(c.masks["lungs"]), root / "2d_masks" / name)
        written.append(root / "2d_images" / name)
    return written


def _images_masks(root, counts, case, kind, variant):
    target = _IMAGES_MASKS_TARGET[kind]
    written, k = [], 0
    for split, n in counts.items():
        names = []
        for _ in range(n):
            c = case()
            stem = f"{kind}_{k:04d}"
            _save(_stored(c.image), root / "images" / f"{stem}.png")
            mask = c.masks[target] if target == "layers" else _m255(c.masks[target])
            _save(mask.astype(np.uint8), root / "masks" / f"{stem}.png")
            names.append(stem)
            written.append(root / "images" / f"{stem}.png")
            k += 1
        (root / f"{split}.txt").write_text("\n".join(names) + "\n")
    return written


_WRITERS = {
    "drive": _drive, "refuge": _refuge, "drishti_gs": _drishti, "rim_one_r3": _rim_one_r3, "rim_one_r1": _rim_one_r1,
    "origa": _origa, "messidor": _messidor, "montgomery": _montgomery, "shenzhen": _shenzhen, "isic2017": _isic2017,
    "isic2018": _isic2018, "kvasir_seg": _kvasir, "cvc_colondb": _cvc, "isbi2012_em": _isbi, "luna2d": _luna,
    "images_masks": _images_masks,
}
