"""Datalist builders for the real BraTS, Decathlon Task01 and KiTS19 folder layouts (the 2D datasets: see
:mod:`.layouts2d`).

Every builder scans a dataset root and returns MONAI datalist items: ``{"case_id", "image", "label"}`` with
``image`` a list of per-modality files in the project's modality order (:data:`BRATS_MODALITIES`, the
Decathlon's channel order FLAIR, T1, T1ce, T2) or, for 4D Decathlon files and KiTS, one path. Cases without a
label file (challenge validation/test cases) get no ``label`` key.

Layouts (file names relative to the root):

- ``brats2019`` / ``brats2020``: ``HGG|LGG/<case>/<case>_{flair,t1,t1ce,t2,seg}.nii.gz`` (a flat root of
  case folders, as the BraTS 2020 download has, is accepted too). Labels 0/1/2/4.
- ``brats2021``: ``<case>/<case>_{flair,t1,t1ce,t2,seg}.nii.gz``. Labels 0/1/2/4.
- ``brats2023``: ``<case>/<case>-{t2f,t1n,t1c,t2w,seg}.nii.gz``. Labels 0/1/2/3 (3 = enhancing).
- ``decathlon``: Task01_BrainTumour: ``dataset.json`` naming ``imagesTr/*.nii.gz`` (4D, channels FLAIR, T1w,
  t1gd, T2w) and ``labelsTr/*.nii.gz`` (0 bg, 1 oedema, 2 non-enhancing, 3 enhancing).
- ``kits19``: ``case_XXXXX/imaging.nii.gz`` and ``segmentation.nii.gz``. Labels 0/1/2.
- ``datalist``: a MONAI datalist JSON (``{"training": [...], "validation": [...]}``), paths relative to it.
- ``nnunet`` / ``msd``: any dataset in nnU-Net v2's raw format or the Medical Segmentation Decathlon's, 2D or 3D,
  described by its own ``dataset.json`` (:mod:`.dataset_json`).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from transforms.labels import LAYOUT_LABEL_CONVENTIONS

__all__ = ["BRATS_MODALITIES", "DATASET_FORMATS", "Layout", "LAYOUTS", "get_layout", "layout_name", "build_datalist"]

BRATS_MODALITIES = ("flair", "t1", "t1ce", "t2")


@dataclass(frozen=True)
class Layout:
    """What a dataset layout holds.

    Attributes:
        name: layout name.
        task: ``"brats"`` or ``"kits"``.
        label_convention: name understood by ``transforms.labels`` (``brats``, ``brats2023``, ``decathlon``, ``kits``).
        label_values: every value a label file may hold.
        modalities: image channels, in the order of the datalist's ``image``.
        image_ndim: dimensions of one image file (3, or 4 for the Decathlon's stacked modalities).
        suffixes: file-name suffix of each modality and of the label (per-case-folder layouts).
        spatial_dims: 3 for the volumes, 2 for the 2D datasets (:mod:`.layouts2d`).
        paper_split: ``(train, test)`` counts the papers used where the release has no official split; the
            default validation fraction of ``prepare`` reproduces them. ``None``: 80/20.
        mask_kind: 2D label files: ``"values"`` (only ``label_values``), ``"jpeg"`` (lossy masks, any 0..255,
            thresholded by a transform) or ``"soft"`` (agreement maps 0..255).
        file_ending: the image files' extension (``nnunet`` and ``msd`` layouts: from the dataset's
            ``dataset.json``); empty for the fixed layouts.
    """

    name: str
    task: str
    label_convention: str
    label_values: tuple[int, ...]
    modalities: tuple[str, ...]
    image_ndim: int = 3
    suffixes: dict[str, str] = field(default_factory=dict)
    spatial_dims: int = 3
    paper_split: tuple[int, int] | None = None
    mask_kind: str = "values"
    file_ending: str = ""

    def to_dict(self) -> dict:
        """The fields as JSON values (tuples as lists): what a generated bundle's ``layout`` key holds."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


_BRATS_SUFFIXES = {"flair": "_flair", "t1": "_t1", "t1ce": "_t1ce", "t2": "_t2", "label": "_seg"}
LAYOUTS: dict[str, Layout] = {
    "brats2019": Layout("brats2019", "brats", "brats", (0, 1, 2, 4), BRATS_MODALITIES, suffixes=_BRATS_SUFFIXES),
    "brats2020": Layout("brats2020", "brats", "brats", (0, 1, 2, 4), BRATS_MODALITIES, suffixes=_BRATS_SUFFIXES),
    "brats2021": Layout("brats2021", "brats", "brats", (0, 1, 2, 4), BRATS_MODALITIES, suffixes=_BRATS_SUFFIXES),
    "brats2023": Layout(
        "brats2023",
        "brats",
        "brats2023",
        (0, 1, 2, 3),
        BRATS_MODALITIES,
        suffixes={"flair": "-t2f", "t1": "-t1n", "t1ce": "-t1c", "t2": "-t2w", "label": "-seg"},
    ),
    "decathlon": Layout("decathlon", "brats", "decathlon", (0, 1, 2, 3), BRATS_MODALITIES, image_ndim=4),
    "kits19": Layout("kits19", "kits", "kits", (0, 1, 2), ("ct",)),
}


def _l2(name, task, values, channels, paper_split=None, mask_kind="values") -> Layout:
    """A 2D layout; its label convention comes from ``transforms.labels.LAYOUT_LABEL_CONVENTIONS``."""
    return Layout(name, task, LAYOUT_LABEL_CONVENTIONS[name], values, ("rgb",) if channels == 3 else ("grey",),
                  image_ndim=2, spatial_dims=2, paper_split=paper_split, mask_kind=mask_kind)


# The 2D datasets of CE-Net, ET-Net and BA-Net (DATASETS_2D.md); builders in .layouts2d.
_ANY8 = tuple(range(256))
LAYOUTS.update({
    "drive": _l2("drive", "vessels", (0, 255), 3),
    "refuge": _l2("refuge", "disc_cup", (0, 128, 255), 3),
    "drishti_gs": _l2("drishti_gs", "disc_cup", _ANY8, 3, mask_kind="soft"),
    "rim_one_r3": _l2("rim_one_r3", "disc", (0, 255), 3, paper_split=(99, 60)),
    "rim_one_r1": _l2("rim_one_r1", "disc", (0, 255), 3),
    "origa": _l2("origa", "disc", _ANY8, 3, mask_kind="jpeg"),
    "messidor": _l2("messidor", "disc", (0, 255), 3),
    "montgomery": _l2("montgomery", "lung", (0, 255), 1, paper_split=(80, 58)),
    "shenzhen": _l2("shenzhen", "lung", (0, 255), 1, paper_split=(452, 114)),
    "isic2017": _l2("isic2017", "skin_lesion", (0, 255), 3),
    "isic2018": _l2("isic2018", "skin_lesion", (0, 255), 3),
    "kvasir_seg": _l2("kvasir_seg", "polyp", _ANY8, 3, paper_split=(800, 200), mask_kind="jpeg"),
    "cvc_colondb": _l2("cvc_colondb", "polyp", (0, 255), 3, paper_split=(304, 76)),
    "isbi2012_em": _l2("isbi2012_em", "em_membrane", (0, 255), 1),
    "luna2d": _l2("luna2d", "lung", (0, 255), 1, paper_split=(214, 53)),
    "images_masks": _l2("images_masks", "generic", _ANY8, 3),
})


# Layouts described by the dataset's own ``dataset.json`` (:mod:`.dataset_json`): a bundle made for such a dataset
# carries its layout as a dict of :class:`Layout`'s fields (``Layout.to_dict``), not a name of this table.
DATASET_FORMATS = ("nnunet", "msd")


def get_layout(layout: str | dict | Layout) -> Layout:
    """The :class:`Layout` called ``layout``, or the one a dict of its fields describes (a generated bundle's
    ``layout``, see :mod:`.dataset_json`); a clear error for unknown names."""
    if isinstance(layout, Layout):
        return layout
    if isinstance(layout, dict):
        fields = {k: tuple(v) if isinstance(v, list) else v for k, v in layout.items()}
        if fields.get("name") not in DATASET_FORMATS:
            raise ValueError(f"a layout given by its fields must be one of {list(DATASET_FORMATS)}; got "
                             f"{fields.get('name')!r}")
        try:
            return Layout(**fields)
        except TypeError as e:
            raise ValueError(f"layout fields {sorted(layout)}: {e}") from e
    if layout in DATASET_FORMATS:
        raise ValueError(f"the {layout!r} layout is read from the dataset's dataset.json: use "
                         f"edge_networks.data.read_dataset(ROOT).layout, or a bundle from edge-seg-new-bundle")
    if layout not in LAYOUTS:
        raise ValueError(f"unknown dataset layout {layout!r}; choose one of {sorted(LAYOUTS)}, or an nnU-Net or "
                         "Medical Segmentation Decathlon dataset (edge-seg-new-bundle)")
    return LAYOUTS[layout]


def layout_name(layout: str | dict | Layout) -> str:
    """The name of a layout given by name, fields or object."""
    return get_layout(layout).name


def _nifti(path_without_ext: Path) -> Path:
    """``<path>.nii.gz``, or ``<path>.nii`` when only the uncompressed file exists."""
    gz = path_without_ext.with_name(path_without_ext.name + ".nii.gz")
    plain = path_without_ext.with_name(path_without_ext.name + ".nii")
    return plain if not gz.exists() and plain.exists() else gz


def _case_dirs(root: Path, layout: Layout) -> list[Path]:
    if layout.name in ("brats2019", "brats2020"):
        grade_dirs = [root / g for g in ("HGG", "LGG") if (root / g).is_dir()]
        if grade_dirs:
            return sorted((d for g in grade_dirs for d in g.iterdir() if d.is_dir()), key=lambda p: p.name)
    return sorted((d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")), key=lambda p: p.name)


def _brats_case(case_dir: Path, layout: Layout) -> dict:
    case = case_dir.name
    item: dict = {
        "case_id": case,
        "image": [str(_nifti(case_dir / f"{case}{layout.suffixes[m]}")) for m in layout.modalities],
    }
    label = _nifti(case_dir / f"{case}{layout.suffixes['label']}")
    if label.exists():
        item["label"] = str(label)
    return item


def _kits_case(case_dir: Path) -> dict:
    item: dict = {"case_id": case_dir.name, "image": str(_nifti(case_dir / "imaging"))}
    label = _nifti(case_dir / "segmentation")
    if label.exists():
        item["label"] = str(label)
    return item


def _decathlon(root: Path) -> list[dict]:
    spec_file = root / "dataset.json"
    if not spec_file.is_file():
        raise FileNotFoundError(f"{spec_file}: missing; a Decathlon task folder has a dataset.json")
    with open(spec_file) as f:
        spec = json.load(f)
    order = [str(spec.get("modality", {}).get(str(i), "")).lower() for i in range(4)]
    if order and any(order) and order != ["flair", "t1w", "t1gd", "t2w"]:
        raise ValueError(
            f"{spec_file}: modality order {order} differs from Task01's FLAIR, T1w, t1gd, T2w; "
            "reorder the channels or describe the data with a plain datalist"
        )
    items = []
    for entry in spec.get("training", []):
        image = (root / entry["image"]).resolve()
        items.append({"case_id": image.name.split(".nii")[0], "image": str(image), "label": str(root / entry["label"])})
    for entry in spec.get("test", []):
        path = entry if isinstance(entry, str) else entry["image"]
        image = (root / path).resolve()
        items.append({"case_id": image.name.split(".nii")[0], "image": str(image)})
    return items


def _plain_datalist(path: Path) -> list[dict]:
    with open(path) as f:
        spec = json.load(f)
    items = []
    base = path.parent
    for section in ("training", "validation", "testing", "test"):
        for i, entry in enumerate(spec.get(section, [])):
            entry = {"image": entry} if isinstance(entry, str) else dict(entry)
            for key in ("image", "label"):
                if key in entry:
                    val = entry[key]
                    entry[key] = [str(base / v) for v in val] if isinstance(val, list) else str(base / val)
            first = entry["image"][0] if isinstance(entry["image"], list) else entry["image"]
            entry.setdefault("case_id", Path(first).name.split(".nii")[0] if first else f"{section}_{i}")
            items.append(entry)
    return items


def build_datalist(layout: str | dict | Layout, root: str | os.PathLike) -> list[dict]:
    """Scan ``root`` in ``layout`` and return one datalist item per case, sorted by case id.

    Args:
        layout: a key of :data:`LAYOUTS`, ``"datalist"`` for a MONAI datalist JSON file given as ``root``, or an
            ``nnunet``/``msd`` layout's fields (:func:`get_layout`).
        root: dataset folder (or the JSON file for ``"datalist"``).

    Raises:
        FileNotFoundError: ``root`` does not exist or holds no case.
        ValueError: unknown layout.
    """
    root = Path(root).expanduser().resolve()
    if not root.exists():
        raise FileNotFoundError(f"{root}: dataset root does not exist")
    if layout == "datalist":
        items = _plain_datalist(root)
    else:
        lay = get_layout(layout)
        if lay.name in DATASET_FORMATS:
            from .dataset_json import dataset_items

            items = dataset_items(root, lay)
        elif lay.spatial_dims == 2:
            from .layouts2d import build_2d

            items = build_2d(lay.name, root)
        elif lay.name == "decathlon":
            items = _decathlon(root)
        elif lay.task == "kits":
            items = [_kits_case(d) for d in _case_dirs(root, lay) if d.name.startswith("case_")]
        else:
            items = [_brats_case(d, lay) for d in _case_dirs(root, lay)]
    if not items:
        raise FileNotFoundError(f"{root}: no {layout} case found (expected layout: see edge_networks.data.layouts)")
    return sorted(items, key=lambda it: it["case_id"])
