"""Datasets in nnU-Net v2's raw format or the Medical Segmentation Decathlon's (MSD), 2D or 3D, in any file format
MONAI reads, described by their own ``dataset.json``.

nnU-Net v2 (``nnUNet_raw/DatasetXXX_Name/``; nnU-Net's ``documentation/dataset_format.md``)::

    dataset.json      channel_names {"0": "CT", ...}, labels {"background": 0, "tumour": 1, ...} (a region: a list
                      of label values, with regions_class_order), numTraining, file_ending (".nii.gz", ".nrrd",
                      ".mha", ".png", ...)
    imagesTr/<case>_<XXXX><file_ending>   one file per channel XXXX = 0000, 0001, ... (a DICOM series: a folder
                                          <case>_<XXXX>/); a 2D RGB image is one file <case>_0000 with its three
                                          channels, as nnU-Net's natural-image reader takes it
    labelsTr/<case><file_ending>
    imagesTs/<case>_<XXXX><file_ending>   never trained on
    splits_final.json                     optional, copied from nnUNet_preprocessed/DatasetXXX_Name/: a list of
                                          folds {"train": [cases], "val": [cases]}; fold 0 gives the validation side

MSD (``TaskXX_Name/``)::

    dataset.json      modality {"0": "MRI", ...}, labels {"0": "background", "1": "liver", ...}, training
                      [{"image": "./imagesTr/x.nii.gz", "label": "./labelsTr/x.nii.gz"}], test ["./imagesTs/y.nii.gz"]
    images            one file per case; several modalities: one 4D file, channels last (a DICOM series: a folder)

:func:`read_dataset` reads and checks ``dataset.json`` (every fault listed at once); :func:`dataset_items` lists the
cases as datalist items (``case_id``, ``image``, ``label``, ``split``), with the file paths the format names,
existing or not, so that the integrity check (:mod:`.integrity`) names each missing channel file.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from .layouts import DATASET_FORMATS, Layout, get_layout

__all__ = ["DatasetDescription", "DatasetJsonError", "read_dataset", "dataset_items", "resolve_layout", "SUFFIXES_2D"]

SUFFIXES_2D = (".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff")
_ENDINGS = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd", ".dcm", *SUFFIXES_2D)
_CHANNEL = re.compile(r"^(?P<case>.+)_(?P<channel>\d{4})$")


# the keys each format's dataset.json must have, and what to say when one is missing
_REQUIRED = {
    "nnunet": (("channel_names", "labels", "file_ending"), "nnU-Net v2 needs channel_names, labels, numTraining, "
               "file_ending"),
    "msd": (("modality", "labels", "training"), "a Decathlon dataset.json has modality, labels, training, test"),
}


class DatasetJsonError(ValueError):
    """A ``dataset.json`` that cannot describe the dataset; the message lists every fault."""


@dataclass(frozen=True)
class DatasetDescription:
    """What a dataset's ``dataset.json`` says, in one form for both formats.

    Attributes:
        root: the dataset folder.
        format: ``"nnunet"`` or ``"msd"``.
        name: the dataset's name (its ``name`` key, else the folder's name).
        channel_names: the image channels, in order (nnU-Net's ``channel_names``, MSD's ``modality``).
        labels: label name -> label value, background included; a region (nnU-Net's region-based labels) maps to
            the tuple of label values it covers.
        regions_class_order: nnU-Net's ``regions_class_order``: the value written for each region (regions in the
            order of ``labels``, background left out); None for plain labels.
        file_ending: the files' extension (nnU-Net's ``file_ending``; MSD: the first training image's).
        spatial_dims: 2 for image files (PNG, BMP, JPEG, TIFF), else 3.
    """

    root: Path
    format: str
    name: str
    channel_names: tuple[str, ...]
    labels: dict[str, int | tuple[int, ...]]
    regions_class_order: tuple[int, ...] | None
    file_ending: str
    spatial_dims: int

    @property
    def region_based(self) -> bool:
        """Whether the labels are nnU-Net regions (sigmoid channels that may overlap) rather than classes."""
        return self.regions_class_order is not None

    @property
    def foreground(self) -> dict[str, tuple[int, ...]]:
        """Foreground label or region name -> the label values it covers, in ``labels`` order."""
        out = {}
        for name, value in self.labels.items():
            values = value if isinstance(value, tuple) else (value,)
            if values != (0,):
                out[name] = values
        return out

    @property
    def label_values(self) -> tuple[int, ...]:
        """Every value a label file may hold (background included)."""
        values = {0}
        for v in self.foreground.values():
            values.update(v)
        return tuple(sorted(values))

    @property
    def output_labels(self) -> dict[int, str]:
        """Value -> name of the label map inference writes: the classes, or for regions the value of each region
        in ``regions_class_order`` named after its region (nnU-Net's conversion back to a label map)."""
        if not self.region_based:
            return {0: "background", **{v[0]: n for n, v in self.foreground.items()}}
        return {0: "background", **{int(v): n for n, v in zip(self.foreground, self.regions_class_order)}}

    @property
    def layout(self) -> Layout:
        """The :class:`~edge_networks.data.layouts.Layout` the integrity check and the datalists use."""
        image_ndim = self.spatial_dims
        if self.format == "msd" and self.spatial_dims == 3 and len(self.channel_names) > 1:
            image_ndim = 4
        return Layout(self.format, "generic", self.format, self.label_values, self.channel_names,
                      image_ndim=image_ndim, spatial_dims=self.spatial_dims, file_ending=self.file_ending)


def _ending(name: str) -> str:
    low = name.lower()
    return next((e for e in _ENDINGS if low.endswith(e)), Path(name).suffix.lower())


def _as_values(name: str, value, problems: list[str]) -> int | tuple[int, ...] | None:
    if isinstance(value, bool) or not isinstance(value, int | list | tuple):
        problems.append(f"label {name!r}: value {value!r} is not an integer or a list of integers")
        return None
    if isinstance(value, int):
        return value
    if not value or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        problems.append(f"label {name!r}: region {value!r} is not a non-empty list of integers")
        return None
    return tuple(value)


def read_dataset(root: str | os.PathLike) -> DatasetDescription:
    """Read and check ``root/dataset.json`` of an nnU-Net v2 or MSD dataset.

    The format is told by the keys: ``channel_names`` and ``file_ending`` (nnU-Net v2), ``modality`` and
    ``training`` (MSD).

    Raises:
        FileNotFoundError: no ``dataset.json`` in ``root``.
        DatasetJsonError: the file is not JSON, has neither format's keys, lacks a key its format needs, has no
            background 0, non-consecutive plain labels (nnU-Net's rule), regions without ``regions_class_order``
            (or of another length), or an nnU-Net ``numTraining`` that differs from the labels in ``labelsTr``;
            every fault is listed.
    """
    root = Path(root).expanduser().resolve()
    path = root / "dataset.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; an nnU-Net v2 or Medical Segmentation Decathlon dataset folder "
                                "has a dataset.json")
    try:
        spec = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DatasetJsonError(f"{path}: not a JSON file ({e})") from e
    problems: list[str] = []
    if "channel_names" in spec or "file_ending" in spec:
        fmt = "nnunet"
        channels = spec.get("channel_names", {})
        raw_labels = dict(spec.get("labels", {}))
        ending = str(spec.get("file_ending", ""))
    elif "modality" in spec or "training" in spec:
        fmt = "msd"
        channels = spec.get("modality", {})
        raw_labels = {}
        for value, name in dict(spec.get("labels", {})).items():
            try:
                raw_labels[str(name)] = int(value)
            except ValueError:
                problems.append(f"labels: key {value!r} is not a label value")
        training = spec.get("training", [])
        first = training[0]["image"] if training and isinstance(training[0], dict) and "image" in training[0] else ""
        ending = _ending(first) if first else ".nii.gz"
    else:
        raise DatasetJsonError(f"{path}: neither nnU-Net v2 (channel_names, labels, file_ending) nor Medical "
                               "Segmentation Decathlon (modality, labels, training) keys")
    keys, hint = _REQUIRED[fmt]
    problems += [f"no '{key}' ({hint})" for key in keys if key not in spec]
    if not isinstance(channels, dict) or not channels:
        problems.append("no image channel named (channel_names / modality is empty)")
        channel_names: tuple[str, ...] = ()
    else:
        try:
            order = sorted(channels, key=int)
        except ValueError:
            order = []
            problems.append(f"channel keys {sorted(channels)} are not 0, 1, 2, ...")
        if order and [int(k) for k in order] != list(range(len(order))):
            problems.append(f"channel keys {order} are not 0, 1, 2, ...")
        channel_names = tuple(str(channels[k]) for k in order)
    labels: dict[str, int | tuple[int, ...]] = {}
    for name, value in raw_labels.items():
        v = _as_values(name, value, problems)
        if v is not None:
            labels[name] = v
    plain = [v for v in labels.values() if isinstance(v, int)]
    regions = {n: v for n, v in labels.items() if isinstance(v, tuple)}
    if labels and 0 not in plain:
        problems.append("no background label 0")
    order_spec = spec.get("regions_class_order")
    regions_class_order = None
    if regions:
        if order_spec is None:
            problems.append(f"region-based labels {sorted(regions)} need 'regions_class_order' (nnU-Net's rule)")
        else:
            regions_class_order = tuple(int(v) for v in order_spec)
            n_fg = len([n for n, v in labels.items() if v != 0])
            if len(regions_class_order) != n_fg:
                problems.append(f"regions_class_order has {len(regions_class_order)} value(s) for {n_fg} "
                                "foreground region(s)")
    elif sorted(plain) != list(range(len(plain))):
        problems.append(f"label values {sorted(plain)} are not consecutive from 0 (nnU-Net's rule)")
    if ending and not ending.startswith("."):
        problems.append(f"file_ending {ending!r} does not start with '.'")
    dims = 2 if ending.lower() in SUFFIXES_2D else 3
    if fmt == "nnunet" and "numTraining" in spec and (root / "labelsTr").is_dir() and not problems:
        found = len([p for p in (root / "labelsTr").iterdir() if p.name.endswith(ending)])
        if found != int(spec["numTraining"]):
            problems.append(f"numTraining is {spec['numTraining']} but labelsTr holds {found} {ending} label(s)")
    if problems:
        raise DatasetJsonError(f"{path}: " + "; ".join(problems))
    return DatasetDescription(root, fmt, str(spec.get("name") or root.name), channel_names, labels,
                              regions_class_order, ending, dims)


def _nnunet_cases(folder: Path, ending: str) -> set[str]:
    cases = set()
    if folder.is_dir():
        for p in folder.iterdir():
            stem = p.name[: -len(ending)] if p.is_file() and p.name.endswith(ending) else p.name if p.is_dir() else None
            match = _CHANNEL.match(stem) if stem else None
            if match:
                cases.add(match["case"])
    return cases


def _channel_file(folder: Path, case: str, channel: int, ending: str) -> str:
    """``<case>_<XXXX><ending>``, or the DICOM series folder ``<case>_<XXXX>`` where only that exists."""
    path = folder / f"{case}_{channel:04d}{ending}"
    series = folder / f"{case}_{channel:04d}"
    return str(series if not path.exists() and series.is_dir() else path)


def _splits(root: Path, fold: int) -> dict[str, str]:
    """Case -> ``"train"``/``"val"`` from nnU-Net's ``splits_final.json`` (fold ``fold``), or empty."""
    path = root / "splits_final.json"
    if not path.is_file():
        return {}
    folds = json.loads(path.read_text())
    if not isinstance(folds, list) or not 0 <= fold < len(folds) or not {"train", "val"} <= set(folds[fold]):
        raise DatasetJsonError(f"{path}: no fold {fold} with 'train' and 'val' lists (nnU-Net's splits_final.json "
                               "is a list of {'train': [...], 'val': [...]})")
    return {**{c: "train" for c in folds[fold]["train"]}, **{c: "val" for c in folds[fold]["val"]}}


def _nnunet_items(desc: DatasetDescription, fold: int) -> list[dict]:
    root, ending = desc.root, desc.file_ending
    n_files = 1 if desc.spatial_dims == 2 else len(desc.channel_names)
    split_of = _splits(root, fold)
    items = []
    labels = root / "labelsTr"
    train_cases = _nnunet_cases(root / "imagesTr", ending)
    if labels.is_dir():
        train_cases |= {p.name[: -len(ending)] for p in labels.iterdir() if p.name.endswith(ending)}
    for folder, cases, split in (("imagesTr", train_cases, None), ("imagesTs", None, "test")):
        for case in sorted(cases if cases is not None else _nnunet_cases(root / folder, ending)):
            image = [_channel_file(root / folder, case, c, ending) for c in range(n_files)]
            item: dict = {"case_id": case, "image": image if n_files > 1 else image[0]}
            if split is None:
                item["label"] = str(labels / f"{case}{ending}")
                if split_of:
                    item["split"] = split_of.get(case, "train")
            else:
                item["split"] = split
            items.append(item)
    return items


def _msd_case_id(path: str) -> str:
    name = Path(path).name
    ending = _ending(name)
    return name[: -len(ending)] if ending and name.lower().endswith(ending) else name


def _msd_items(desc: DatasetDescription) -> list[dict]:
    spec = json.loads((desc.root / "dataset.json").read_text())
    items = []
    for entry in spec.get("training", []):
        image = str((desc.root / entry["image"]).resolve())
        item = {"case_id": _msd_case_id(image), "image": image}
        if entry.get("label"):
            item["label"] = str((desc.root / entry["label"]).resolve())
        items.append(item)
    for entry in spec.get("test", []):
        image = str((desc.root / (entry if isinstance(entry, str) else entry["image"])).resolve())
        items.append({"case_id": _msd_case_id(image), "image": image, "split": "test"})
    return items


def dataset_items(root: str | os.PathLike, layout: str | dict | Layout | None = None, fold: int = 0) -> list[dict]:
    """The cases of an nnU-Net v2 or MSD dataset as datalist items, sorted by case id.

    Training cases carry ``label``; test cases (``imagesTs``, MSD's ``test``) carry ``split: "test"`` and no label,
    so they are never trained on. With nnU-Net's ``splits_final.json`` in ``root``, training cases carry
    ``split: "train"`` or ``"val"`` from fold ``fold``.

    Args:
        root: the dataset folder (holding ``dataset.json``).
        layout: the dataset's layout (checked against the folder's format); None reads it from ``dataset.json``.
        fold: the fold of ``splits_final.json``. Defaults to 0.

    Raises:
        FileNotFoundError, DatasetJsonError: see :func:`read_dataset`.
        ValueError: ``layout`` names the other format.
    """
    desc = read_dataset(root)
    if layout is not None and get_layout(layout).name != desc.format:
        raise ValueError(f"{desc.root}: a {desc.format} dataset, not {get_layout(layout).name} "
                         f"(one of {list(DATASET_FORMATS)})")
    items = _nnunet_items(desc, fold) if desc.format == "nnunet" else _msd_items(desc)
    return sorted(items, key=lambda it: it["case_id"])


def resolve_layout(layout: str | dict | Layout, root: str | os.PathLike | None = None) -> Layout:
    """``get_layout(layout)``, except that the bare names ``"nnunet"`` and ``"msd"`` are read from ``root``'s
    ``dataset.json`` (and must match its format).

    Raises:
        ValueError: ``"nnunet"``/``"msd"`` without ``root``, or ``root`` in the other format.
    """
    if isinstance(layout, str) and layout in DATASET_FORMATS:
        if root is None:
            raise ValueError(f"the {layout!r} layout is read from a dataset folder's dataset.json; give the folder")
        lay = read_dataset(root).layout
        if lay.name != layout:
            raise ValueError(f"{root}: a {lay.name} dataset, not {layout}")
        return lay
    return get_layout(layout)
