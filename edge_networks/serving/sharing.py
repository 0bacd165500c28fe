"""Export and pack a bundle for sharing: TorchScript / ONNX files and a zip in MONAI's bundle archive format.

The archive holds one top-level folder named after the bundle (what ``monai.bundle.download`` unpacks and
``monai.bundle.load`` reads)::

    <name>/configs/*.json, logging.conf   every config, metadata.json included
    <name>/models/model.pt                 the weights (state dict)
    <name>/models/model.ts                 the TorchScript network (needs only PyTorch to load)
    <name>/models/model.onnx               optional, with ``--onnx``
    <name>/docs/README.md, <name>/LICENSE

A receiver with only MONAI installed segments a volume from the TorchScript file with
``configs/inference_ts.json`` (docs/export.md). Usage::

    python -m edge_networks.serving.sharing bundles/egcnn_brats --out dist \
        --config_file "['bundles/egcnn_brats/configs/inference.json']"

The export runs MONAI's own ``ckpt_export`` / ``onnx_export`` when ``model.ts`` / ``model.onnx`` is missing or
older than ``model.pt``; pass the config files the weights were trained with (e.g. add ``cpu_small.json``) so
that the exported network matches them.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

from transforms.writers import atomic_path

__all__ = ["export_torchscript", "export_onnx", "pack_bundle"]

# what a shared bundle holds besides configs/: weights that a receiver needs, never optimizer state or runs
MODEL_FILES = ("model.pt", "model.ts", "model.onnx")


def _config_files(bundle: Path, config_file: str | Sequence[str] | None) -> list[str]:
    if config_file is None:
        return [str(bundle / "configs" / "inference.json")]
    files = [config_file] if isinstance(config_file, str) else list(config_file)
    missing = [f for f in files if not Path(f).exists()]
    if missing:
        raise FileNotFoundError(f"config file(s) not found: {missing}")
    return [str(f) for f in files]


def _stale(target: Path, source: Path) -> bool:
    return not target.exists() or target.stat().st_mtime < source.stat().st_mtime


def _require_weights(bundle: Path) -> Path:
    ckpt = bundle / "models" / "model.pt"
    if not ckpt.exists():
        raise FileNotFoundError(
            f"{ckpt}: missing; train the bundle first (python -m monai.bundle run training --config_file "
            f"{bundle}/configs/train.json ...) or copy trained weights there"
        )
    return ckpt


def export_torchscript(bundle: str | Path, config_file: str | Sequence[str] | None = None, **override) -> Path:
    """Write ``models/model.ts`` with MONAI's ``ckpt_export`` (the network is scripted, not traced).

    Args:
        bundle: the bundle folder.
        config_file: config file(s) that define ``network_def`` as trained; ``configs/inference.json`` by default.
        override: config overrides, e.g. ``edge_channels=8``.

    Returns:
        The path of the TorchScript file.
    """
    from monai.bundle import ckpt_export

    bundle = Path(bundle)
    ckpt = _require_weights(bundle)
    out = bundle / "models" / "model.ts"
    with atomic_path(out) as tmp:  # a killed export leaves the previous model.ts or none, never a truncated one
        ckpt_export(net_id="network_def", filepath=str(tmp), ckpt_file=str(ckpt),
                    meta_file=str(bundle / "configs" / "metadata.json"),
                    config_file=_config_files(bundle, config_file), **{"bundle_root": str(bundle), **override})
    return out


def export_onnx(bundle: str | Path, config_file: str | Sequence[str] | None = None,
                input_shape: Sequence[int] | None = None, **override) -> Path:
    """Write ``models/model.onnx`` with MONAI's ``onnx_export`` (torch's dynamo exporter), batch axis dynamic.

    Args:
        bundle: the bundle folder.
        config_file: config file(s) that define ``network_def`` as trained; ``configs/inference.json`` by default.
        input_shape: ``(N, C, *spatial)`` of the example input; the metadata's input shape by default. The
            spatial size is fixed in the graph: feed windows of this size (the sliding-window ``roi_size``).
        override: config overrides.

    Returns:
        The path of the ONNX file.
    """
    from monai.bundle import onnx_export

    bundle = Path(bundle)
    ckpt = _require_weights(bundle)
    out = bundle / "models" / "model.onnx"
    kwargs = {"input_names": ["image"], "output_names": ["pred"],
              "dynamic_axes": {"image": {0: "batch"}, "pred": {0: "batch"}}}
    with atomic_path(out) as tmp:
        onnx_export(net_id="network_def", filepath=str(tmp), ckpt_file=str(ckpt),
                    meta_file=str(bundle / "configs" / "metadata.json"),
                    config_file=_config_files(bundle, config_file),
                    input_shape=list(input_shape) if input_shape else None, converter_kwargs=kwargs,
                    **{"bundle_root": str(bundle), **override})
    return out


def pack_bundle(
    bundle: str | Path,
    out_dir: str | Path,
    config_file: str | Sequence[str] | None = None,
    onnx: bool = False,
    input_shape: Sequence[int] | None = None,
    **override,
) -> Path:
    """Export what is missing or stale, then write ``<out_dir>/<name>_v<version>.zip`` atomically.

    Args:
        bundle: the bundle folder (``configs/metadata.json``, ``models/model.pt``, ``docs/``, ``LICENSE``).
        out_dir: where the archive goes.
        config_file: config file(s) for the export (see :func:`export_torchscript`).
        onnx: also export and pack ``models/model.onnx``.
        input_shape: ``(N, C, *spatial)`` of the ONNX example input (see :func:`export_onnx`).
        override: config overrides for the export.

    Returns:
        The archive's path.
    """
    bundle = Path(bundle).resolve()
    name = bundle.name
    meta_file = bundle / "configs" / "metadata.json"
    if not meta_file.exists():
        raise FileNotFoundError(f"{meta_file}: missing; {bundle} is not a bundle folder")
    try:
        version = json.loads(meta_file.read_text())["version"]
    except (json.JSONDecodeError, KeyError) as e:
        raise ValueError(f"{meta_file}: no readable 'version' ({e})") from e
    for required in (bundle / "LICENSE", bundle / "docs" / "README.md"):
        if not required.exists():
            raise FileNotFoundError(f"{required}: missing; a shared bundle carries its docs and license")
    ckpt = _require_weights(bundle)
    if _stale(bundle / "models" / "model.ts", ckpt):
        export_torchscript(bundle, config_file, **override)
    if onnx and _stale(bundle / "models" / "model.onnx", ckpt):
        export_onnx(bundle, config_file, input_shape=input_shape, **override)

    files = sorted(p for p in (bundle / "configs").iterdir() if p.is_file())
    files += [bundle / "docs" / "README.md", bundle / "LICENSE"]
    files += [p for p in (bundle / "docs").rglob("*") if p.is_file() and p.name != "README.md"]
    files += [bundle / "models" / f for f in MODEL_FILES if (f != "model.onnx" or onnx)]

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{name}_v{version}.zip"
    fd, tmp = tempfile.mkstemp(dir=out_dir, suffix=".zip.part")
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for f in files:
                zf.write(f, f"{name}/{f.relative_to(bundle).as_posix()}")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def _parse_override(pairs: Sequence[str]) -> dict:
    """``--key value`` pairs after the known options, values as Python literals where they parse."""
    out: dict = {}
    it = iter(pairs)
    for key in it:
        if not key.startswith("--"):
            raise SystemExit(f"unexpected argument {key!r}; overrides are --key value pairs")
        try:
            raw = next(it)
        except StopIteration as e:
            raise SystemExit(f"override {key} has no value") from e
        try:
            out[key[2:]] = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            out[key[2:]] = raw
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle", help="bundle folder, e.g. bundles/egcnn_brats")
    parser.add_argument("--out", default="dist", help="output folder of the zip (default: dist)")
    parser.add_argument("--config_file", default=None,
                        help="config file(s) as trained, a path or a Python list of paths (default: inference.json)")
    parser.add_argument("--onnx", action="store_true", help="also export and pack models/model.onnx")
    parser.add_argument("--input_shape", default=None,
                        help="ONNX example input (N, C, *spatial) as a Python list; the metadata's shape by default")
    args, rest = parser.parse_known_args(argv)
    config = args.config_file
    if config and config.strip().startswith("["):
        config = ast.literal_eval(config)
    shape = ast.literal_eval(args.input_shape) if args.input_shape else None
    target = pack_bundle(args.bundle, args.out, config_file=config, onnx=args.onnx, input_shape=shape,
                         **_parse_override(rest))
    print(target)


if __name__ == "__main__":
    main()
