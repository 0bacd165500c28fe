"""A complete bundle of any of the project's networks for a dataset of one's own in nnU-Net v2 or Medical
Segmentation Decathlon format, 2D or 3D.

Usage::

    edge-seg-new-bundle --network egcnn_segresnet --dataset /data/nnUNet_raw/Dataset004_Liver \\
        --out bundles/egcnn_liver
    python -m monai.bundle run training --config_file bundles/egcnn_liver/configs/train.json

The bundle is written from the same parts as the shipped bundles (``bundles/_parts``): the network's parts
(``bundles/_parts/networks.json`` names them per network and dimensionality), then the generic task part
``tasks/dataset3d`` (volumes) or ``tasks/image2d`` + ``tasks/dataset2d`` (image files), then the dataset's own
values from its ``dataset.json`` and its plan (:mod:`edge_networks.data.plan`, computed once and saved as
``edge_seg_plan.json`` next to ``dataset.json``): the layout, channels, labels, target spacing, intensity
normalisation, window size and batch size. Plain labels train a softmax network over background and the classes
(its edge ground truth: one Sobel edge map per class); nnU-Net's region-based labels (``regions_class_order``) or
``--regions`` train one sigmoid channel per region (one edge map per region) and write a label map as nnU-Net does.

The result has the shipped bundles' file set (``train.json``, ``evaluate.json``, ``inference.json``,
``inference_ts.json``, ``multi_gpu_train.json``, ``cpu_small.json``, ``metadata.json`` with the dataset's
channels and label names in ``channel_def``, ``logging.conf``, ``docs/README.md``, ``LICENSE``), trains, evaluates,
infers, exports, resumes and is served by the MONAI Label app (``--conf bundles DIR``) as they are.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from transforms.writers import atomic_folder

from ..data.dataset_json import DatasetDescription, read_dataset
from ..data.plan import PLAN_FILE, load_or_plan
from .datalists import bundles_dir
from .generate import build_bundle, write_bundle

__all__ = ["network_table", "bundle_spec", "new_bundle", "main"]


def network_table(parts_dir: str | Path | None = None) -> dict[str, dict]:
    """The networks a bundle can be made of: ``bundles/_parts/networks.json`` without its comment."""
    parts = Path(parts_dir) if parts_dir else bundles_dir() / "_parts"
    table = json.loads((parts / "networks.json").read_text())
    return {k: v for k, v in table.items() if not k.startswith("_")}


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "label"


def _with_regions(desc: DatasetDescription, regions: dict[str, Sequence[int]] | None,
                  regions_class_order: Sequence[int] | None) -> DatasetDescription:
    """``desc`` with region-based labels given on the command line (an MSD or plain nnU-Net dataset)."""
    if not regions:
        return desc
    order = list(regions_class_order or [])
    if len(order) != len(regions):
        raise ValueError(f"--regions names {len(regions)} region(s); --regions_class_order must give one label value "
                         f"each, got {order}")
    unknown = sorted({int(v) for r in regions.values() for v in r} - set(desc.label_values))
    if unknown:
        raise ValueError(f"--regions use label value(s) {unknown} that {desc.root / 'dataset.json'} does not define "
                         f"(its values: {list(desc.label_values)})")
    labels = {"background": 0, **{n: tuple(int(v) for v in r) for n, r in regions.items()}}
    return dataclasses.replace(desc, labels=labels, regions_class_order=tuple(int(v) for v in order))


def _metrics(desc: DatasetDescription, spatial_dims: int) -> tuple[dict, dict]:
    """(train.json, evaluate.json) metric sections: Dice per class or region, HD95 per class or region in 3D."""
    names = list(desc.foreground)
    offset = 0 if desc.region_based else 1  # one-hot class channels start with the background
    train: dict[str, Any] = {}
    evaluate: dict[str, Any] = {"metric_details": ["val_mean_dice"]}
    for i, name in enumerate(names):
        select = f"$edge_networks.bundle.select_channel({i + offset})"
        key = f"val_{_slug(name)}_dice"
        train[key] = {"_target_": "MeanDice", "include_background": True, "output_transform": select}
        evaluate["metric_details"].append(key)
        if spatial_dims == 3:
            hd = f"val_hd95_{_slug(name)}"
            evaluate[f"validate#additional_metrics#{hd}"] = {
                "_target_": "IgniteMetricHandler",
                "metric_fn": {"_target_": "edge_networks.metrics.PerImageMetric", "name": "hd95",
                              "spacing": "from_image"},
                "output_transform": select}
            evaluate["metric_details"].append(hd)
    return {"validate#additional_metrics": train}, evaluate


def _metadata(entry: dict, desc: DatasetDescription, plan: dict, out_channels: int,
              parts_dir: Path) -> dict:
    roi = plan["patch_size"]
    ct = [c.strip().lower() == "ct" for c in desc.channel_names]
    modality = "CT" if all(ct) else "image" if desc.spatial_dims == 2 else "MR"
    like = json.loads((parts_dir / "specs" / f"{entry['references_of']}.json").read_text())
    labels = desc.output_labels
    kind = "regions (sigmoid, nnU-Net's region-based training)" if desc.region_based else "classes (softmax)"
    return {
        "version": "0.1.0",
        "changelog": {"0.1.0": f"generated by edge-seg-new-bundle for {desc.name} ({desc.format} format)"},
        "name": f"{entry['title']} on {desc.name}",
        "task": f"Segmentation of {', '.join(desc.foreground)} in {desc.name}",
        "description": (f"{entry['title']} generated for the {desc.format} dataset {desc.name}: "
                        f"{len(desc.channel_names)} input channel(s) ({', '.join(desc.channel_names)}), "
                        f"{len(desc.foreground)} foreground {kind}, window {roi}"
                        + (f" at spacing {plan['spacing']} mm" if plan["spacing"] else "")
                        + f"; settings from the dataset's plan ({PLAN_FILE})."),
        "references": like["metadata.json"]["references"],
        "data_source": f"{desc.root} ({desc.format} format); no weights are shipped",
                "image_classes": f"{len(desc.channel_names)} channel(s): {', '.join(desc.channel_names)}",
        "label_classes": "label file values " + ", ".join(f"{v} {n}" for v, n in
                                                           {0: "background", **{x: n for n, vs in
                                                            desc.foreground.items() for x in vs[:1]}}.items()),
        "pred_classes": f"{out_channels} channels; inference writes the label values of outputs.pred.channel_def",
        "paper_reported_metrics": {"note": "no paper reports this dataset; the papers' numbers for their own datasets "
                                           "are in the shipped bundles (not reproduced here)"},
        "network_data_format": {
            "inputs": {"image": {
                "type": "image", "format": "hounsfield" if all(ct) else "magnitude", "modality": modality,
                "num_channels": len(desc.channel_names), "spatial_shape": roi, "dtype": "float32",
                "value_range": [], "is_patch_data": desc.spatial_dims == 3,
                "channel_def": {str(i): n for i, n in enumerate(desc.channel_names)}}},
            "outputs": {"pred": {
                "type": "image", "format": "segmentation", "modality": modality, "num_channels": out_channels,
                "spatial_shape": roi, "dtype": "float32", "value_range": [], "is_patch_data": desc.spatial_dims == 3,
                "channel_def": {str(v): n for v, n in labels.items()}}},
        },
    }


def bundle_spec(network: str, desc: DatasetDescription, plan: dict,
                parts_dir: str | Path | None = None) -> dict:
    """The spec (parts and overrides, as ``bundles/_parts/specs/*.json``) of a bundle of ``network`` on the dataset
    ``desc`` with its ``plan``.

    Raises:
        ValueError: an unknown network, or one without a version of the dataset's dimensionality.
    """
    parts_dir = Path(parts_dir) if parts_dir else bundles_dir() / "_parts"
    table = network_table(parts_dir)
    if network not in table:
        raise ValueError(f"unknown network {network!r}; choose one of {sorted(table)}")
    entry = table[network]
    dims = desc.spatial_dims
    if str(dims) not in entry["parts"]:
        fits = sorted(n for n, e in table.items() if str(dims) in e["parts"])
        raise ValueError(f"{network} has no {dims}D version for the {dims}D dataset {desc.name}; {dims}D networks: "
                         f"{fits}")
    task = ["tasks/dataset3d"] if dims == 3 else ["tasks/image2d", "tasks/dataset2d"]
    parts = [p for part in entry["parts"][str(dims)] for p in (task if part == "@task" else [part])]
    sigmoid = desc.region_based
    out_channels = len(desc.foreground) + (0 if sigmoid else 1)
    shared: dict[str, Any] = {
        **entry.get("shared", {}), **(entry.get("shared_3d", {}) if dims == 3 else {}),
        "dataset_dir": str(desc.root), "layout": desc.layout.to_dict(), "roi_size": plan["patch_size"],
        "image_channels": len(desc.channel_names), "out_channels": out_channels, "sigmoid": sigmoid,
        "regions": [list(v) for v in desc.foreground.values()] if sigmoid else [],
        "regions_class_order": list(desc.regions_class_order) if sigmoid else [],
        "intensity_schemes": plan["intensity_schemes"],
    }
    if dims == 3:
        shared["spacing"] = plan["spacing"]
    regions_key = "label_to_regions"
    train, evaluate = _metrics(desc, dims)
    train["batch_size"] = plan["batch_size"]
    if sigmoid:
        train[regions_key] = {"_target_": "transforms.LabelsToRegionsd", "keys": "label", "regions": "@regions"}
    inference: dict[str, Any] = {}
    if not sigmoid and entry.get("softmax_edge_offset"):
        inference["edge_offset"] = entry["softmax_edge_offset"]
    small = {**entry.get("cpu_small", {}), **(entry.get("cpu_small_3d", {}) if dims == 3 else {})}
    spec: dict[str, Any] = {"parts": parts, "shared": shared, "train.json": train, "evaluate.json": evaluate,
                            "metadata.json": _metadata(entry, desc, plan, out_channels, parts_dir)}
    if inference:
        spec["inference.json"] = inference
    if small:
        spec["cpu_small.json"] = small
    return spec


def _docs(name: str, network: str, desc: DatasetDescription, plan: dict, spec: dict, out: Path) -> str:
    meta = spec["metadata.json"]
    cfg = f"{out}/configs"
    labels = ", ".join(f"{v} {n}" for v, n in desc.output_labels.items())
    norm = "; ".join(f"{c}: {s['scheme']}" for c, s in zip(desc.channel_names, plan["intensity_schemes"]))
    regions = ("region-based: one sigmoid channel per region (" + ", ".join(
        f"{n} = labels {list(v)}" for n, v in desc.foreground.items()) + f"), written back with regions_class_order "
               f"{list(desc.regions_class_order)}") if desc.region_based else \
        "plain labels: one softmax channel per class, background included"
    return f"""# {meta['name']}

Generated by `edge-seg-new-bundle --network {network} --dataset {desc.root}` from the project's parts and the
dataset's plan (`{desc.root / PLAN_FILE}`). Edit the parts or the dataset and generate it again rather than
editing these configs.

## Overview
{meta['description']}

## Data
The {desc.format} dataset `{desc.root}` ({desc.name}): {len(desc.channel_names)} channel(s)
({', '.join(desc.channel_names)}), file ending `{desc.file_ending}`. Labels: {regions}. Training and
validation come from the labelled cases (nnU-Net's `splits_final.json` fold 0 when it is in the dataset folder,
else a seeded 80/20 split); `imagesTs` / the Decathlon's `test` list are never trained on. Every case passes the
integrity check (missing channel files, label values not in `dataset.json`, geometry mismatch, empty images)
before training starts.

## Training configuration
Window {plan['patch_size']}{f" at spacing {plan['spacing']} mm" if plan['spacing'] else ""}, batch size
{plan['batch_size']}, intensity normalisation per channel ({norm}); the network's own loss, optimiser and
schedule (its shipped bundles' recipe). `configs/cpu_small.json` is a small CPU profile.

## Input
{len(desc.channel_names)} channel(s) ({', '.join(desc.channel_names)}), resampled to the plan's spacing and
normalised as above; whole images are segmented with a sliding window (3D) or resized to the window (2D).

## Output
A label map with the values {labels}, in the input's geometry (NIfTI unless `--output_ext` says otherwise;
PNG for 2D images); `--save_edges true` also writes the edge probability map where the network has an edge
output.

## Performance
No numbers are shipped with a generated bundle: train it and evaluate it on your data
(`evaluate.json` writes per-case Dice and, in 3D, HD95 per label to `eval/`).

## Commands
```bash
python -m monai.bundle run training --config_file {cfg}/train.json
python -m monai.bundle run training --config_file "['{cfg}/train.json','{cfg}/cpu_small.json']"
python -m monai.bundle run evaluating --config_file "['{cfg}/train.json','{cfg}/evaluate.json']"
python -m monai.bundle run inferring --config_file {cfg}/inference.json \\
    --datalist "[{{'image': 'scan{desc.file_ending}'}}]"
python -m monai.bundle ckpt_export network_def --filepath {out}/models/model.ts --ckpt_file {out}/models/model.pt \\
    --meta_file {cfg}/metadata.json --config_file {cfg}/inference.json
torchrun --nproc_per_node=2 -m monai.bundle run training \\
    --config_file "['{cfg}/train.json','{cfg}/multi_gpu_train.json']"
monailabel start_server --app apps/monailabel --studies STUDIES --conf bundles {out.parent} --conf models {name}
```

## Assumptions
The plan follows nnU-Net's rules (target spacing, normalisation by channel name, patch size within a voxel
budget) with the differences listed in `edge_networks/data/plan.py`. The configs hold the dataset folder's absolute
path (`dataset_dir`) and the bundle folder's (`bundle_root`): pass `--dataset_dir` / `--bundle_root` after
moving either.

## References
{chr(10).join(f"- {r}" for r in meta['references'])}
- Isensee F, Jaeger PF, Kohl SAA, Petersen J, Maier-Hein KH. nnU-Net: a self-configuring method for deep
  learning-based biomedical image segmentation. Nature Methods 18:203-211, 2021 (the dataset format and the
  planning rules)

## Licence
The configs are under the licence in `LICENSE`; the dataset's own licence applies to the data and to weights
trained on it.
"""


def new_bundle(network: str, dataset: str | Path, out: str | Path, parts_dir: str | Path | None = None,
               max_voxels: int | None = None, regions: dict[str, Sequence[int]] | None = None,
               regions_class_order: Sequence[int] | None = None, force: bool = False) -> Path:
    """Write bundle ``out`` (its folder; the name is the folder's) of ``network`` for the dataset in ``dataset``.

    Args:
        network: a key of ``bundles/_parts/networks.json``.
        dataset: an nnU-Net v2 or MSD dataset folder (with ``dataset.json``).
        out: the new bundle's folder.
        parts_dir: the parts (default: the bundles folder in use's ``_parts``).
        max_voxels: the plan's largest training window, in voxels (default 128^3 in 3D, 512^2 in 2D).
        regions: region name -> label values, for region-based training on a dataset whose ``dataset.json`` has
            plain labels (an MSD dataset); needs ``regions_class_order``.
        regions_class_order: the label value each region writes back.
        force: replace an existing bundle folder.

    Returns:
        the bundle folder.

    Raises:
        FileExistsError: ``out`` exists and ``force`` is False.
        ValueError, FileNotFoundError: a bad dataset (its faults listed) or network.
    """
    out = Path(out).expanduser().resolve()
    if out.exists() and not force:
        raise FileExistsError(f"{out} exists; choose another --out or pass --force to replace it")
    parts_dir = Path(parts_dir) if parts_dir else bundles_dir() / "_parts"
    desc = _with_regions(read_dataset(dataset), regions, regions_class_order)
    plan = load_or_plan(desc.root, max_voxels)["plan"]
    spec = bundle_spec(network, desc, plan, parts_dir)
    files = build_bundle(out.name, parts_dir, spec=spec, bundle_root=str(out))
    with atomic_folder(out) as tmp:  # the bundle appears whole or not at all
        write_bundle(tmp.name, tmp.parent, parts_dir, files)
        (tmp / "docs" / "README.md").write_text(_docs(out.name, network, desc, plan, spec, out))
    return out


def _regions_arg(text: str | None) -> dict[str, list[int]] | None:
    return json.loads(text) if text else None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="edge-seg-new-bundle", description=__doc__.split("\n\n")[0])
    parser.add_argument("--network", required=True, help="one of bundles/_parts/networks.json: egcnn_segresnet, "
                        "egcnn_unet, egcnn_vnet, egcnn_cenet, boundary_aware (3D); cenet, etnet, banet (2D and 3D)")
    parser.add_argument("--dataset", required=True, help="an nnU-Net v2 or Decathlon dataset folder (dataset.json)")
    parser.add_argument("--out", required=True, help="the new bundle's folder, e.g. bundles/egcnn_liver")
    parser.add_argument("--max_voxels", type=int, default=None,
                        help="the largest training window in voxels (default 128^3 in 3D, 512^2 in 2D)")
    parser.add_argument("--regions", type=_regions_arg, default=None,
                        help='region-based training on plain labels: \'{"whole tumour": [1, 2, 3], "core": [2, 3]}\'')
    parser.add_argument("--regions_class_order", type=lambda s: [int(v) for v in s.split(",")], default=None,
                        help="the label value each region writes back, e.g. 1,2")
    parser.add_argument("--bundles", default=None, help="the bundles folder whose _parts to use")
    parser.add_argument("--force", action="store_true", help="replace an existing bundle folder")
    args = parser.parse_args(argv)
    try:
        parts = bundles_dir(args.bundles) / "_parts"
        out = new_bundle(args.network, args.dataset, args.out, parts, args.max_voxels, args.regions,
                         args.regions_class_order, args.force)
    except (ValueError, FileNotFoundError, FileExistsError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"{out}: {args.network} bundle for {args.dataset}")
    print(f"train it: python -m monai.bundle run training --config_file {out}/configs/train.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
