"""``edge-seg-reproduce``: from this repository to a paper's table on your own GPU, one command per bundle.

    edge-seg-reproduce egcnn_brats --dataset_dir /data/BraTS2019 [--pretrained_path resnet34.pth] [--out DIR]
    edge-seg-reproduce cenet_drive --smoke --out /tmp/repro     # synthetic data, tiny settings, a few minutes on CPU

The stages, each a command written into the report exactly as it ran:

1. **prepare**: the dataset is scanned with the bundle's layout, checked (every fault listed before any training)
   and split as the bundle's datalist (``datalist.json``); ``--smoke`` first writes a small synthetic dataset in
   that layout;
2. **train**: ``python -m monai.bundle run training`` with the bundle's ``train.json`` -- the paper's recipe
   (``docs/recipes.md``) -- or ``torchrun`` with ``multi_gpu_train.json`` when more than one GPU is used (CUDA AMP
   on GPUs, as the bundle configures it); ``--smoke`` adds ``cpu_small.json``, two epochs and small windows;
3. **evaluate**: ``evaluate.json`` on the held-out split (the bundle's metrics, and its test-time augmentation where
   the paper used it);
4. **report**: ``reproduction.json`` and ``reproduction.md``: every metric beside the paper's
   (``paper_reported_metrics`` of the bundle's metadata) with the difference, the hardware, the time of each stage,
   the software versions and the commands.

A second call on the same ``--out`` resumes: finished stages are kept (``stages/<stage>.json``); an interrupted
training continues from ``models/model_last.pt`` (``--resume true``).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from .bundle.datalists import BUNDLES_ENV, bundles_dir
from .bundle.flags import parse_overrides
from .bundle.profiles import SMALL_WINDOWS
from .bundle.recipes import load_recipes
from .data.synthetic import write_layout_dataset

__all__ = ["reproduce", "compare_metrics", "main"]

STAGES = ("prepare", "train", "evaluate")
# --smoke: the small windows every bundle trains on in the tests, two epochs, one validation each
_SMOKE_RUN = {"epochs": 2, "val_interval": 1, "num_workers": 0}
# --smoke's synthetic data: (cases, shape)
_SMOKE_DATA = {2: (8, (80, 96)), 3: (6, (40, 40, 28)), "kits19": (6, (16, 48, 48))}


def _config(bundle: Path, name: str) -> dict:
    return json.loads((bundle / "configs" / name).read_text())


def _flatten(metrics: dict, prefix: str = "") -> dict[str, float]:
    out = {}
    for k, v in metrics.items():
        if k.startswith("note"):
            continue
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}/"))
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[f"{prefix}{k}"] = float(v)
    return out


def _tokens(name: str) -> frozenset[str]:
    return frozenset(name.lower().removeprefix("val_").split("_"))


def compare_metrics(measured: dict[str, float], paper: dict, row: str | None = None) -> list[dict]:
    """Pair each measured metric with the paper's metric of the same name (its words in any order, without the
    ``val_`` prefix: ``val_dice_et`` and ``et_dice``), within ``row`` where the paper's metrics are grouped (for
    example ``segresnet_egcnn``). Returns one row per measured metric: ``metric``, ``measured``, ``paper_key``,
    ``paper``, ``difference`` (measured - paper; ``None`` without a paper value).

    >>> compare_metrics({"val_dice_et": 0.7}, {"a": {"et_dice": 0.75}}, row="a")[0]["difference"]
    -0.05
    """
    # grouped values (rows of a table) are compared only within the row the bundle reproduces
    flat = _flatten(paper.get(row, {})) if row else {k: v for k, v in _flatten(paper).items() if "/" not in k}
    by_tokens = {_tokens(k.split("/")[-1]): k for k in flat}
    rows = []
    for name, value in sorted(measured.items()):
        key = by_tokens.get(_tokens(name))
        rows.append({"metric": name, "measured": value, "paper_key": f"{row}/{key}" if row and key else key,
                     "paper": flat.get(key) if key else None,
                     "difference": round(value - flat[key], 6) if key else None})
    return rows


def _unmatched(measured: dict[str, float], paper: dict, row: str | None) -> dict[str, float]:
    """The paper's values (of ``row``, or ungrouped) that no measured metric pairs with: shown, not compared."""
    paired = {c["paper_key"] for c in compare_metrics(measured, paper, row) if c["paper_key"]}
    flat = ({f"{row}/{k}": v for k, v in _flatten(paper.get(row, {})).items()} if row
            else {k: v for k, v in _flatten(paper).items() if "/" not in k})
    return {k: v for k, v in flat.items() if k not in paired}


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for dist in ("torch", "monai", "pytorch-ignite", "numpy", "nibabel", "edge-seg"):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def _hardware() -> dict:
    """:func:`edge_networks.report.machine`, with the platform and every GPU (a multi-GPU run's)."""
    import torch

    from .report import machine

    return {**machine(), "platform": platform.platform(),
            "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]}


def _run(cmd: list[str], log: Path) -> float:
    """Run ``cmd`` with its output in ``log``; returns the seconds taken.

    Raises:
        SystemExit: the command failed (the log's last lines are shown).
    """
    t0 = time.perf_counter()
    with open(log, "w") as f:
        proc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        tail = "".join(log.read_text().splitlines(keepends=True)[-15:])
        raise SystemExit(f"{shlex.join(cmd[:4])} ... failed (exit {proc.returncode}); log {log}:\n{tail}")
    return time.perf_counter() - t0


def reproduce(bundle_name: str, out: str | Path, dataset_dir: str | Path | None = None, smoke: bool = False,
              pretrained_path: str | None = None, gpus: int | None = None, overrides: dict | None = None) -> dict:
    """Prepare, train, evaluate and report one bundle (see the module's docstring); returns the report.

    Raises:
        ValueError: neither ``dataset_dir`` nor ``smoke``, or a ``pretrained_path`` the bundle does not take.
        FileNotFoundError: no such bundle, dataset folder or weights file.
        edge_networks.data.integrity.DatasetIntegrityError: the dataset has faults (all listed).
    """
    import torch

    from .data import prepare_datalist

    bundle = bundles_dir() / bundle_name
    if not (bundle / "configs" / "train.json").is_file():
        raise FileNotFoundError(f"{bundle}: no bundle {bundle_name!r} (no configs/train.json)")
    if dataset_dir is None and not smoke:
        raise ValueError("give --dataset_dir DIR (your dataset in the bundle's layout), or --smoke")
    train = _config(bundle, "train.json")
    if pretrained_path and "pretrained_path" not in train:
        raise ValueError(f"{bundle_name} takes no pretrained_path (its network has no ImageNet encoder)")
    if pretrained_path and not Path(pretrained_path).is_file():
        raise FileNotFoundError(f"--pretrained_path {pretrained_path}: no such file")
    spatial_dims = len(train["roi_size"])
    out = Path(out).resolve()
    (out / "stages").mkdir(parents=True, exist_ok=True)
    gpus = torch.cuda.device_count() if gpus is None else gpus
    layout = train["layout"]
    data = Path(dataset_dir).resolve() if dataset_dir else out / "data"
    configs = bundle / "configs"
    extra = {**({"pretrained_path": str(Path(pretrained_path).resolve())} if pretrained_path else {}),
             **(dict(_SMOKE_RUN, **SMALL_WINDOWS[spatial_dims]) if smoke else {}), **(overrides or {})}
    args = ["--bundle_root", str(bundle), "--ckpt_dir", str(out / "models"), "--output_dir", str(out / "eval"),
            "--dataset_dir", str(data), "--data_list_file_path", str(out / "datalist.json")]
    for k, v in extra.items():
        args += [f"--{k}", json.dumps(v) if not isinstance(v, str) else v]
    small = [str(configs / "cpu_small.json")] if smoke else []
    files = [str(configs / "train.json"), *small]
    stages: dict[str, dict] = {}
    for stage in STAGES:
        done = out / "stages" / f"{stage}.json"
        if done.is_file():  # resumed: this stage finished in an earlier call
            stages[stage] = json.loads(done.read_text())
            continue
        t0 = time.perf_counter()
        if stage == "prepare":
            if smoke and not (data / ".synthetic").is_file():
                write_layout_dataset(layout, data, *_SMOKE_DATA.get(layout, _SMOKE_DATA[spatial_dims]))
                (data / ".synthetic").write_text("written by edge-seg-reproduce --smoke\n")
            datalist = prepare_datalist(layout, data, out / "datalist.json", seed=0)
            command = ["python", "-m", "edge_networks.data.prepare", "--layout", layout, "--root", str(data),
                       "--out", str(out / "datalist.json"), "--seed", "0"]
            record = {"command": shlex.join(command), "training": len(datalist["training"]),
                      "validation": len(datalist["validation"])}
        elif stage == "train":
            if gpus > 1:
                launcher = [str(Path(sys.executable).with_name("torchrun")), f"--nproc_per_node={gpus}", "-m"]
                files.insert(1, str(configs / "multi_gpu_train.json"))
            else:
                launcher = [sys.executable, "-m"]
            resume = ["--resume", "true"] if (out / "models" / "model_last.pt").is_file() else []
            command = [*launcher, "monai.bundle", "run", "training", "--config_file", json.dumps(files), *args,
                       *resume]
            record = {"command": shlex.join(command), "gpus": gpus, "resumed": bool(resume)}
            _run(command, out / "train.log")
        else:
            command = [sys.executable, "-m", "monai.bundle", "run", "--config_file",
                       json.dumps([str(configs / "train.json"), *small, str(configs / "evaluate.json")]), *args]
            record = {"command": shlex.join(command)}
            _run(command, out / "evaluate.log")
        record["seconds"] = round(time.perf_counter() - t0, 1)
        done.write_text(json.dumps(record, indent=2))
        stages[stage] = record
    with open(out / "eval" / "metrics.csv") as f:
        measured = {row[0]: float(row[1]) for row in csv.reader(f) if len(row) >= 2}
    meta = _config(bundle, "metadata.json")
    row = load_recipes()["bundles"].get(bundle_name, {}).get("paper_row")
    report = {"bundle": bundle_name, "version": meta.get("version"), "smoke": smoke,
              "dataset_dir": str(data), "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
              "paper": meta.get("references", [""])[0],
              "paper_note": meta.get("paper_reported_metrics", {}).get("note"), "paper_row": row,
              "comparison": compare_metrics(measured, meta.get("paper_reported_metrics", {}), row),
              "paper_unmatched": _unmatched(measured, meta.get("paper_reported_metrics", {}), row),
              "stages": stages, "hardware": _hardware(), "software": _versions(), "overrides": extra}
    (out / "reproduction.json").write_text(json.dumps(report, indent=2))
    (out / "reproduction.md").write_text(_markdown(report))
    return report


def _markdown(r: dict) -> str:
    fmt = lambda v: "" if v is None else f"{v:.4f}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = [f"# Reproduction: {r['bundle']} {r['version']}" + (" (smoke: synthetic data, tiny settings)"
                                                                 if r["smoke"] else ""), "",
             f"{r['date']}; dataset `{r['dataset_dir']}`. Paper: {r['paper']}.",
             f"Paper values: {r['paper_note']}" + (f"; row `{r['paper_row']}`" if r["paper_row"] else "") + ".", "",
             "| metric | measured | paper | difference |", "| --- | --- | --- | --- |"]
    for c in r["comparison"]:
        paper = f"{fmt(c['paper'])} ({c['paper_key']})" if c["paper_key"] else ""
        lines.append(f"| {c['metric']} | {fmt(c['measured'])} | {paper} | {fmt(c['difference'])} |")
    if r["paper_unmatched"]:
        lines += ["", "The paper's values without a measured counterpart (another protocol or metric): "
                  + ", ".join(f"{k} {v:g}" for k, v in r["paper_unmatched"].items()) + "."]
    lines += ["", "## Stages", ""]
    for stage, s in r["stages"].items():
        lines += [f"- {stage}: {s.get('seconds', 0):.0f} s", f"  `{s['command']}`"]
    hw = r["hardware"]
    lines += ["", "## Machine and software", "",
              f"{hw['platform']}; CPU {hw['cpu']} ({hw['cores']} cores); GPUs: {', '.join(hw['gpus']) or 'none'}.",
              ", ".join(f"{k} {v}" for k, v in r["software"].items()) + ".", ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="edge-seg-reproduce", description=__doc__.split("\n")[0])
    parser.add_argument("bundle", help="a bundle folder name, e.g. egcnn_brats")
    parser.add_argument("--dataset_dir", help="your dataset, in the bundle's layout")
    parser.add_argument("--out", default=None, help="results folder (default: results/reproduce/<bundle>)")
    parser.add_argument("--pretrained_path", help="ImageNet weights of the encoder (docs/recipes.md names them)")
    parser.add_argument("--gpus", type=int, help="GPUs to train on (default: all; more than one runs torchrun)")
    parser.add_argument("--smoke", action="store_true", help="synthetic data in the bundle's layout, its cpu_small "
                        "profile, small windows, 2 epochs: the whole path in a few minutes on a CPU")
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=JSON", help="further bundle overrides")
    parser.add_argument("--bundles", default=None,
                        help=f"the bundles folder (default: ${BUNDLES_ENV}, else the source checkout's bundles/)")
    args = parser.parse_args(argv)
    try:
        os.environ[BUNDLES_ENV] = str(bundles_dir(args.bundles))
    except FileNotFoundError as e:
        parser.error(str(e))
    try:
        overrides = parse_overrides(args.set)
    except ValueError as e:
        parser.error(str(e))
    out = args.out or f"results/reproduce/{args.bundle}"
    try:
        report = reproduce(args.bundle, out, args.dataset_dir, args.smoke, args.pretrained_path, args.gpus, overrides)
    except (ValueError, FileNotFoundError) as e:
        parser.error(str(e))
    print((Path(out) / "reproduction.md").read_text())
    print(f"report: {Path(out).resolve() / 'reproduction.md'} (and reproduction.json)")
    return 0 if report else 1


if __name__ == "__main__":
    sys.exit(main())
