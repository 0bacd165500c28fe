"""Datalist builders for the 2D datasets of CE-Net, ET-Net and BA-Net, in their real on-disk layouts.

Each builder scans a dataset root and returns MONAI datalist items ``{"case_id", "image", "label", "split"}``:

- ``label``: a mask file, or a list of files that a label transform of :mod:`transforms.labels` combines
  (Drishti-GS: ``[disc soft map, cup soft map]``; Montgomery: ``[left lung, right lung]``); absent for unlabelled
  images (REFUGE Test400, Shenzhen images without a third-party mask, the ISBI 2012 test stack);
- ``split``: the release's own split (``train``, ``val``, ``test``) where it has one, which ``prepare`` honours;
- extra keys where a dataset has them: ``mask`` (DRIVE's field-of-view), ``second_observer`` (DRIVE test),
  ``cup`` (RIM-ONE r3), ``glaucoma`` (REFUGE Training400 class), ``page`` (multi-page TIFF slice), ``group``
  (the scan a LUNA slice comes from), so that a split never puts slices of one scan on both sides.

File names follow ``DATASETS_2D.md``: the challenge downloads as they unpack. Mask names are matched
case-insensitively where releases disagree (ISIC's ``_segmentation`` / ``_Segmentation``). Where a layout is an
inference rather than a documented fact (RIM-ONE r1, ORIGA and Messidor as CE-Net's code reads them, the
300-frame CVC-ColonDB folder), the builder's docstring says so.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path

__all__ = ["BUILDERS_2D", "build_2d"]

_IMG = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".dcm")


def _files(folder: Path, suffixes: Iterable[str] = _IMG) -> list[Path]:
    if not folder.is_dir():
        return []
    suffixes = tuple(s.lower() for s in suffixes)
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes and
                  not p.name.startswith("."))


def _find_ci(folder: Path, name: str) -> Path | None:
    """The file ``name`` in ``folder``, matched case-insensitively."""
    exact = folder / name
    if exact.exists():
        return exact
    if folder.is_dir():
        low = name.lower()
        for p in folder.iterdir():
            if p.name.lower() == low:
                return p
    return None


def _under(root: Path, name: str) -> Path:
    """``root/name`` or ``root`` itself when the user pointed at that folder already."""
    return root if root.name == name else root / name


def _read_list(path: Path) -> list[str]:
    """Stems listed in a split file (one per line; paths and extensions allowed; blank lines and # ignored)."""
    out = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            out.append(Path(line.split()[0]).stem)
    return out


def _item(case_id: str, image: Path, label=None, split: str | None = None, **extra) -> dict:
    item: dict = {"case_id": case_id, "image": str(image)}
    if label is not None:
        item["label"] = [str(p) for p in label] if isinstance(label, list | tuple) else str(label)
    if split is not None:
        item["split"] = split
    item.update({k: (str(v) if isinstance(v, Path) else v) for k, v in extra.items() if v is not None})
    return item


def drive(root: Path) -> list[dict]:
    """DRIVE: ``{training,test}/images/NN_{training,test}.tif``, vessels ``1st_manual/NN_manual1.gif``, FOV
    ``mask/NN_{training,test}_mask.gif``, second observer ``test/2nd_manual/NN_manual2.gif``. Official 20/20."""
    items = []
    for part, split in (("training", "train"), ("test", "test")):
        for img in _files(root / part / "images", (".tif", ".tiff")):
            num = img.stem.split("_")[0]
            label = root / part / "1st_manual" / f"{num}_manual1.gif"
            second = root / part / "2nd_manual" / f"{num}_manual2.gif"
            items.append(_item(img.stem, img, label, split, mask=root / part / "mask" / f"{img.stem}_mask.gif",
                               second_observer=second if second.exists() else None))
    return items


def refuge(root: Path) -> list[dict]:
    """REFUGE: ``Training400/{Glaucoma,Non-Glaucoma}/*.jpg`` with ``Annotation-Training400/Disc_Cup_Masks/<class>/
    <id>.bmp``, ``REFUGE-Validation400/V*.jpg`` with ``REFUGE-Validation400-GT/Disc_Cup_Masks/V*.bmp`` and the
    unlabelled ``Test400/T*.jpg``. Masks 255 background, 128 disc rim, 0 cup. Official 400/400/400."""
    items = []
    for cls, flag in (("Glaucoma", 1), ("Non-Glaucoma", 0)):
        for img in _files(root / "Training400" / cls, (".jpg",)):
            label = root / "Annotation-Training400" / "Disc_Cup_Masks" / cls / f"{img.stem}.bmp"
            items.append(_item(img.stem, img, label, "train", glaucoma=flag))
    for img in _files(root / "REFUGE-Validation400", (".jpg",)):
        items.append(_item(img.stem, img, root / "REFUGE-Validation400-GT" / "Disc_Cup_Masks" / f"{img.stem}.bmp",
                           "val"))
    for img in _files(root / "Test400", (".jpg",)):
        items.append(_item(img.stem, img, None, "test"))
    return items


def drishti_gs(root: Path) -> list[dict]:
    """Drishti-GS1: ``Drishti-GS1_files/{Training,Test}/Images/drishtiGS_NNN.png``, soft maps
    ``Training/GT/<id>/SoftMap/<id>_{ODseg,cupseg}Softmap.png`` (test: ``Test/Test_GT/...``). Official 50/51.
    ``label`` is ``[disc, cup]`` soft maps (binarise with ``transforms.BinariseSoftMapd``)."""
    base = _under(root, "Drishti-GS1_files")
    items = []
    for part, gt, split in (("Training", "GT", "train"), ("Test", "Test_GT", "test")):
        for img in _files(base / part / "Images", (".png",)):
            soft = base / part / gt / img.stem / "SoftMap"
            label = [soft / f"{img.stem}_ODsegSoftmap.png", soft / f"{img.stem}_cupsegSoftmap.png"]
            items.append(_item(img.stem, img, label if soft.is_dir() else None, split))
    return items


def rim_one_r3(root: Path) -> list[dict]:
    """RIM-ONE r3: ``{Healthy,Glaucoma}/Stereo Images/<id>.jpg``, disc masks ``<class>/Expert1_masks/
    <id>-1-Disc-exp1.png`` and cup masks ``...-1-Cup-exp1.png`` (key ``cup``). No official split (the
    literature's 99/60 is a seeded split here)."""
    items = []
    for cls in ("Healthy", "Glaucoma"):
        for img in _files(root / cls / "Stereo Images", (".jpg", ".png")):
            masks = root / cls / "Expert1_masks"
            disc, cup = masks / f"{img.stem}-1-Disc-exp1.png", masks / f"{img.stem}-1-Cup-exp1.png"
            items.append(_item(img.stem, img, disc, cup=cup if cup.exists() else None, glaucoma=int(cls != "Healthy")))
    return items


def _listed(root: Path, images: Path, masks: Path, mask_name: Callable[[Path], str],
            lists: dict[str, tuple[str, ...]]) -> list[dict]:
    """Images + masks folders and list files (first existing name per split)."""
    split_of: dict[str, str] = {}
    for split, names in lists.items():
        for n in names:
            if (root / n).is_file():
                split_of.update({s: split for s in _read_list(root / n)})
                break
    items = []
    for img in _files(images):
        mask = _find_ci(masks, mask_name(img))
        items.append(_item(img.stem, img, mask if mask is not None else masks / mask_name(img),
                           split_of.get(img.stem) if split_of else None))
    return items


def rim_one_r1(root: Path) -> list[dict]:
    """RIM-ONE r1 as CE-Net's code reads it (the official layout is undocumented): ``RIM-ONE-images/*.png``,
    ``RIM-ONE-exp1/<id>-exp1.png``, ``train_files.txt`` / ``test_files.txt``."""
    return _listed(root, root / "RIM-ONE-images", root / "RIM-ONE-exp1", lambda p: f"{p.stem}-exp1.png",
                   {"train": ("train_files.txt",), "test": ("test_files.txt",)})


def origa(root: Path) -> list[dict]:
    """ORIGA as CE-Net's code reads it (masks are not openly distributed): ``images/*.jpg``, ``masks/*.jpg``
    (JPEG: threshold them), ``Set_A.txt`` (train) and ``Set_B.txt`` (test)."""
    return _listed(root, root / "images", root / "masks", lambda p: f"{p.stem}.jpg",
                   {"train": ("Set_A.txt",), "test": ("Set_B.txt",)})


def messidor(root: Path) -> list[dict]:
    """Messidor disc masks as CE-Net's code reads them: ``save_image/*.png``, ``save_mask/*.png``, ``train.txt``
    and ``test.txt``."""
    return _listed(root, root / "save_image", root / "save_mask", lambda p: f"{p.stem}.png",
                   {"train": ("train.txt",), "test": ("test.txt",)})


def montgomery(root: Path) -> list[dict]:
    """Montgomery County: ``MontgomerySet/CXR_png/MCUCXR_NNNN_L.png`` (``L`` 1 = TB), masks
    ``ManualMask/{leftMask,rightMask}/<same name>``; ``label`` is ``[left, right]`` (union:
    ``transforms.CombineMasksd``). 138 images, no official split (ET-Net's 80/58 is a seeded split here)."""
    base = _under(root, "MontgomerySet")
    items = []
    for img in _files(base / "CXR_png", (".png",)):
        label = [base / "ManualMask" / "leftMask" / img.name, base / "ManualMask" / "rightMask" / img.name]
        items.append(_item(img.stem, img, label, tuberculosis=int(img.stem.endswith("_1"))))
    return items


def shenzhen(root: Path) -> list[dict]:
    """Shenzhen: ``ChinaSet_AllFiles/CXR_png/CHNCXR_NNNN_L.png`` with third-party lung masks
    ``mask/CHNCXR_NNNN_L_mask.png`` (beside ``ChinaSet_AllFiles`` or inside it) for 566 of the 662 images; the
    others are unlabelled. No official split (BA-Net's 452/114 is a seeded split here)."""
    base = _under(root, "ChinaSet_AllFiles")
    mask_dirs = [d for d in (root / "mask", base / "mask", root / "masks") if d.is_dir()]
    items = []
    for img in _files(base / "CXR_png", (".png",)):
        mask = next((d / f"{img.stem}_mask.png" for d in mask_dirs if (d / f"{img.stem}_mask.png").exists()), None)
        items.append(_item(img.stem, img, mask, tuberculosis=int(img.stem.endswith("_1"))))
    return items


def _isic(root: Path, parts: list[tuple[str, str, str]]) -> list[dict]:
    items = []
    for data, gt, split in parts:
        for img in _files(root / data, (".jpg", ".jpeg", ".png")):
            if img.stem.lower().endswith("_superpixels"):
                continue
            mask = _find_ci(root / gt, f"{img.stem}_segmentation.png")
            items.append(_item(img.stem, img, mask, split))
    return items


def isic2017(root: Path) -> list[dict]:
    """ISIC 2017 Part 1: ``ISIC-2017_{Training,Validation,Test_v2}_Data/ISIC_*.jpg`` (``*_superpixels.png``
    skipped), masks ``ISIC-2017_<part>_Part1_GroundTruth/ISIC_*_segmentation.png`` (0/255, name case-insensitive).
    Official 2000/150/600."""
    return _isic(root, [(f"ISIC-2017_{p}_Data", f"ISIC-2017_{p}_Part1_GroundTruth", s)
                        for p, s in (("Training", "train"), ("Validation", "val"), ("Test_v2", "test"))])


def isic2018(root: Path) -> list[dict]:
    """ISIC 2018 Task 1: ``ISIC2018_Task1-2_{Training,Validation,Test}_Input/*.jpg``, masks
    ``ISIC2018_Task1_<part>_GroundTruth/*_segmentation.png`` (validation and test masks where downloaded).
    Official 2594/100/1000."""
    return _isic(root, [(f"ISIC2018_Task1-2_{p}_Input", f"ISIC2018_Task1_{p}_GroundTruth", s)
                        for p, s in (("Training", "train"), ("Validation", "val"), ("Test", "test"))])


def kvasir_seg(root: Path) -> list[dict]:
    """Kvasir-SEG: ``Kvasir-SEG/images/<id>.jpg`` and ``Kvasir-SEG/masks/<id>.jpg`` (JPEG masks: threshold at 128).
    1000 images, no official split (BA-Net's 800/200 is a seeded split here)."""
    base = _under(root, "Kvasir-SEG")
    return [_item(img.stem, img, base / "masks" / f"{img.stem}.jpg") for img in _files(base / "images", (".jpg",))]


def cvc_colondb(root: Path) -> list[dict]:
    """CVC-ColonDB, both releases: the 380-image version ``CVC-ColonDB/{images,masks}/<n>.png`` (BA-Net, PraNet;
    BA-Net's 304/76 is a seeded split here), or the original 300 frames ``<n>.bmp`` with polyp masks ``p<n>.bmp``
    in one folder (``s<n>.bmp``, ``c<n>.bmp``: other annotations, not read; the folder structure of that
    release is an inference)."""
    base = _under(root, "CVC-ColonDB")
    if (base / "images").is_dir():
        return [_item(img.stem, img, base / "masks" / img.name) for img in _files(base / "images", (".png",))]
    return [_item(img.stem, img, base / f"p{img.stem}.bmp")
            for img in _files(base, (".bmp",)) if re.fullmatch(r"\d+", img.stem)]


def isbi2012_em(root: Path) -> list[dict]:
    """ISBI 2012 EM: ``train-volume.tif`` + ``train-labels.tif`` (30 pages each; white cell interior, black
    membrane) and the unlabelled ``test-volume.tif``; one item per page (``page`` key)."""
    from transforms.image2d import count_pages

    items = []
    for stack, labels, split in (("train-volume.tif", "train-labels.tif", None), ("test-volume.tif", None, "test")):
        path = root / stack
        if not path.exists():
            continue
        try:
            n = count_pages(path)
        except Exception:  # an unreadable stack: one item, so the integrity check names the file
            n = 1
        for k in range(n):
            label = root / labels if labels else None
            items.append(_item(f"{path.stem}_{k:02d}", path, label, split, page=k))
    return items


def luna2d(root: Path) -> list[dict]:
    """LUNA lung slices ("finding lungs in CT data"): ``2d_images/ID_NNNN_Z_NNNN.tif`` and ``2d_masks/<same>``.
    267 slices, no official split (ET-Net's 214/53 is a seeded split here); ``group`` = the scan id, so a split by
    groups keeps each scan's slices together."""
    items = []
    for img in _files(root / "2d_images", (".tif", ".tiff")):
        m = re.match(r"(ID_\d+)", img.stem)
        items.append(_item(img.stem, img, root / "2d_masks" / img.name, group=m.group(1) if m else img.stem))
    return items


_MASK_SUFFIXES = ("", "_mask", "_segmentation", "_seg", "-mask", "_label", "_gt")


def images_masks(root: Path) -> list[dict]:
    """Your own 2D data: ``images/`` and ``masks/`` matched by file stem (the mask stem may end in ``_mask``,
    ``_segmentation``, ``_seg``, ``-mask``, ``_label`` or ``_gt``); optional split lists ``train.txt``,
    ``val.txt``, ``test.txt`` (stems or file names, one per line). Mask values: class indices (e.g. OCT layers).
    Images without a mask are unlabelled."""
    masks = {p.stem.lower(): p for p in _files(root / "masks")}
    split_of: dict[str, str] = {}
    for split in ("train", "val", "test"):
        for name in (f"{split}.txt", f"{split}_files.txt"):
            if (root / name).is_file():
                split_of.update({s: split for s in _read_list(root / name)})
                break
    items = []
    for img in _files(root / "images"):
        mask = next((masks[k] for k in (f"{img.stem}{s}".lower() for s in _MASK_SUFFIXES) if k in masks), None)
        items.append(_item(img.stem, img, mask, split_of.get(img.stem) if split_of else None))
    return items


BUILDERS_2D: dict[str, Callable[[Path], list[dict]]] = {
    "drive": drive,
    "refuge": refuge,
    "drishti_gs": drishti_gs,
    "rim_one_r3": rim_one_r3,
    "rim_one_r1": rim_one_r1,
    "origa": origa,
    "messidor": messidor,
    "montgomery": montgomery,
    "shenzhen": shenzhen,
    "isic2017": isic2017,
    "isic2018": isic2018,
    "kvasir_seg": kvasir_seg,
    "cvc_colondb": cvc_colondb,
    "isbi2012_em": isbi2012_em,
    "luna2d": luna2d,
    "images_masks": images_masks,
}


def build_2d(layout: str, root: Path) -> list[dict]:
    """Items of 2D ``layout`` under ``root`` (see the builders)."""
    return BUILDERS_2D[layout](root)
