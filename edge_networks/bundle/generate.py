"""Write every bundle's configs from parts kept once (``bundles/_parts``), and check that they have not drifted.

The bundle folders stay complete and self-contained -- ``python -m monai.bundle run --config_file
bundles/<name>/configs/train.json``, MONAI Label and the sharing zip read them as before -- but nobody edits them
by hand: they are generated from

``bundles/_parts/``
    ``common/``        the engines, handlers and keys every bundle shares: ``train.json``, ``inference.json``,
                       ``evaluate.json``, ``multi_gpu_train.json``, ``inference_ts.json``, ``cpu_small.json``,
                       ``metadata.json``, ``logging.conf``;
    ``networks/<n>/``  one network: its definition and hyper-parameters, its loss, how its edge output is saved;
    ``tasks/<t>/``     one dataset or task: layout, transforms, metrics, postprocessing, the metadata's data format;
    ``specs/<b>.json`` one bundle: the parts it is made of and its own overrides; ``specs/<b>.md`` its docs'
                       paper-specific text (:mod:`.docs` adds the parts' shared ``docs/<section>.md``).

A part folder may hold any of the bundle's file names (merged into that file) and ``shared.json`` (merged into
both ``train.json`` and ``inference.json``: the network definition, the dataset keys). For each file of a bundle
the layers are merged in order -- ``common``, then the spec's ``parts`` in their order, then the spec's own
sections ``shared`` (train and inference) and ``<file name>`` -- with MONAI's own merge: full configs
(``train.json``, ``inference.json``, ``metadata.json``) through :meth:`ConfigParser.load_config_files`, so a later
layer's ``"a#b": v`` sets one nested item and ``"+a": v`` extends a list or dict; override configs
(``evaluate.json``, ``multi_gpu_train.json``, ``inference_ts.json``, ``from_scratch.json``, ``cpu_small.json``)
through the same ``merge_kv`` on a plain dict, because their ``"a#b"`` keys must stay literal for MONAI to apply
them onto ``train.json`` / ``inference.json`` at run time. ``bundle_root`` is set to the bundle's folder.
``from_scratch.json`` (the ResNet-based networks: the recipe for training without ImageNet weights) is merged into
``cpu_small.json`` before each folder's own ``cpu_small.json``: the CPU profile is the from-scratch recipe at CPU
sizes. Files are written with :meth:`ConfigParser.export_config_file`.

Usage::

    python -m edge_networks.bundle.generate             # regenerate every bundle of the specs
    python -m edge_networks.bundle.generate --check     # exit 1, listing each difference, if any file drifted
                                                        # (the README's bundle table included)
    edge-seg-generate egcnn_brats --out /tmp/bundles    # one bundle into another folder
    edge-seg-generate --explain cenet_brats3d learning_rate   # which layer set a key, what the lower ones had

A spec of a new bundle for a new paper on an existing task is a few tens of lines: see docs/development.md.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from monai.bundle import ConfigParser
from monai.bundle.utils import merge_kv

from .datalists import BUNDLES_ENV, REPO_BUNDLES, bundles_dir
from .docs import docs_drift, write_readme
from .readme import START, table_drift, write_table

__all__ = ["PARTS_DIR", "FULL_CONFIGS", "OVERRIDE_CONFIGS", "bundle_names", "build_bundle", "write_bundle",
           "check_bundles", "explain"]

PARTS_DIR = REPO_BUNDLES / "_parts"
FULL_CONFIGS = ("train.json", "inference.json", "metadata.json")
OVERRIDE_CONFIGS = ("evaluate.json", "multi_gpu_train.json", "inference_ts.json", "from_scratch.json",
                    "cpu_small.json")
TEXT_FILES = ("logging.conf",)
# keys a complete bundle must define (a missing part leaves the common file's null placeholder)
REQUIRED = {
    "train.json": ("dataset_dir", "layout", "roi_size", "network_def", "loss", "base_transforms", "train#augmentation",
                   "validate#key_metric"),
    "inference.json": ("dataset_dir", "layout", "roi_size", "network_def", "preprocessing#transforms",
                       "segmentation_postprocessing"),
    "metadata.json": ("version", "changelog", "task", "description", "network_data_format"),
}


def bundle_names(parts_dir: str | Path = PARTS_DIR) -> list[str]:
    """The bundles that have a spec, ``specs/<name>.json``."""
    return sorted(p.stem for p in (Path(parts_dir) / "specs").glob("*.json"))


def _spec(name: str, parts_dir: Path, spec: dict | None = None) -> dict:
    path = parts_dir / "specs" / f"{name}.json"
    if spec is None:
        if not path.exists():
            raise FileNotFoundError(f"{path}: no spec for bundle {name!r}; specs exist for {bundle_names(parts_dir)}")
        spec = json.loads(path.read_text())
    else:
        path = Path(f"the spec of {name}")
    unknown = set(spec) - {"parts", "shared", *FULL_CONFIGS, *OVERRIDE_CONFIGS}
    if unknown:
        raise ValueError(f"{path}: unknown section(s) {sorted(unknown)}; sections are 'parts', 'shared' and file names "
                         f"{[*FULL_CONFIGS, *OVERRIDE_CONFIGS]}")
    missing = [p for p in spec.get("parts", []) if not (parts_dir / p).is_dir()]
    if missing:
        raise FileNotFoundError(f"{path}: part folder(s) {missing} not found under {parts_dir}")
    return spec


def _layers(filename: str, spec: dict, parts_dir: Path) -> tuple[list[Path], dict[str, dict]]:
    """The part files merged into ``filename`` (in order), and the spec's own sections after them, by name."""
    folders = [parts_dir / "common", *(parts_dir / p for p in spec.get("parts", []))]
    shared = filename in ("train.json", "inference.json")
    # cpu_small is the from-scratch recipe at CPU sizes: each folder's from_scratch.json comes before its cpu_small.json
    before = "shared.json" if shared else "from_scratch.json" if filename == "cpu_small.json" else None
    files = []
    for folder in folders:
        for name in (before, filename):
            if name and (folder / name).exists():
                files.append(folder / name)
    sections = {k: spec[k] for k in (("shared",) if shared else ()) + (filename,) if k in spec}
    return files, sections


def _merged(filename: str, files: Sequence[Path], sections: dict[str, dict]) -> Iterator[Any]:
    """The config after each layer, merged in order with MONAI's ``merge_kv``: into a :class:`ConfigParser` for the
    full configs (what ``ConfigParser.load_config_files`` does), into a plain dict for the override configs (their
    ``"a#b"`` keys stay literal for MONAI to apply at run time). The same object is yielded after every layer."""
    config: Any = ConfigParser(config={}) if filename in FULL_CONFIGS else {}
    for layer in [*(ConfigParser.load_config_file(str(f)) for f in files), *sections.values()]:
        for k, v in layer.items():
            merge_kv(config, k, v)
        yield config


def _has(parser: ConfigParser, key: str) -> bool:
    try:
        return parser[key] is not None
    except (KeyError, IndexError):
        return False


def build_bundle(name: str, parts_dir: str | Path = PARTS_DIR, spec: dict | None = None,
                 bundle_root: str | None = None) -> dict[str, Any]:
    """Every config file of bundle ``name``: ``{file name: dict (JSON files) or str (logging.conf)}``, from its spec
    ``specs/<name>.json`` or from ``spec`` (a bundle made for a dataset of one's own, :mod:`.new_bundle`).
    ``bundle_root``: the folder the configs' ``bundle_root`` names (default: the bundle's folder in the bundles
    folder in use, found at run time).

    Raises:
        FileNotFoundError: no spec, or a part folder it names does not exist.
        ValueError: a generated file lacks a key every bundle needs (a part is missing from the spec), or the spec
            has an unknown section.
    """
    parts_dir = Path(parts_dir)
    spec = _spec(name, parts_dir, spec)
    out: dict[str, Any] = {}
    for filename in FULL_CONFIGS + OVERRIDE_CONFIGS:
        files, sections = _layers(filename, spec, parts_dir)
        if not files and not sections:
            continue
        *_, merged = _merged(filename, files, sections)
        if filename in FULL_CONFIGS:
            parser = merged
            missing = [k for k in REQUIRED[filename] if not _has(parser, k)]
            if missing:
                raise ValueError(f"bundle {name}: {filename} has no {missing}; add the network and task parts to "
                                 f"specs/{name}.json 'parts' or set them in its '{filename}' section")
            config = parser.get()
            if filename != "metadata.json":  # bundle_root right after the imports: the bundle's own folder
                root = bundle_root or f"$edge_networks.bundle.bundle_root('{name}')"
                config = {k: v for k, v in config.items() if k == "imports"} | {"bundle_root": root} | config
        else:
            config = merged
        out[filename] = config
    for filename in TEXT_FILES:
        out[filename] = (parts_dir / "common" / filename).read_text()
    return out


_UNSET = object()


def _value(config: Any, key: str) -> Any:
    """``key`` of a merged config (``a#b`` nested in a parser; literal in an override dict), or ``_UNSET``."""
    if not isinstance(config, ConfigParser):
        return config.get(key, _UNSET)
    try:
        return config[key]
    except (KeyError, IndexError, TypeError):
        return _UNSET


def explain(name: str, key: str, filename: str = "train.json", parts_dir: str | Path = PARTS_DIR
            ) -> list[tuple[str, Any]]:
    """Where ``key`` (MONAI's ``a#b`` form) of bundle ``name``'s ``filename`` gets its value: every layer, in merge
    order, after which the value changed, as ``(layer, value after it)``; the last one set the generated value.
    Layers are the part files (``common/train.json``, ``networks/cenet/shared.json``, ...) and the spec's sections
    (``specs/<name>.json [shared]``). An empty list: no layer sets ``key``.

    Raises:
        FileNotFoundError: no spec for ``name``.
        ValueError: ``filename`` is not a config file of the bundles.
    """
    if filename not in FULL_CONFIGS + OVERRIDE_CONFIGS:
        raise ValueError(f"{filename!r} is not a bundle config; choose one of {[*FULL_CONFIGS, *OVERRIDE_CONFIGS]}")
    parts_dir = Path(parts_dir)
    spec = _spec(name, parts_dir)
    files, sections = _layers(filename, spec, parts_dir)
    names = [str(f.relative_to(parts_dir)) for f in files] + [f"specs/{name}.json [{k}]" for k in sections]
    history: list[tuple[str, Any]] = []
    last: Any = _UNSET
    for layer, config in zip(names, _merged(filename, files, sections)):
        value = _value(config, key)
        if value is not _UNSET and value != last:
            last = copy.deepcopy(value)  # later layers merge into the same objects
            history.append((layer, last))
    return history


def write_bundle(name: str, out_dir: str | Path = REPO_BUNDLES, parts_dir: str | Path = PARTS_DIR,
                 files: dict[str, Any] | None = None) -> Path:
    """Generate bundle ``name`` into ``out_dir/<name>/configs`` (``files``: from :func:`build_bundle`, built here
    when not given). Each file is written whole (temporary file, then renamed). A new bundle folder also gets
    ``docs/``, ``models/`` and the common ``LICENSE``; its ``docs/README.md`` comes from :mod:`.docs`. Returns the
    configs folder."""
    files = build_bundle(name, parts_dir) if files is None else files
    root = Path(out_dir) / name
    configs = root / "configs"
    configs.mkdir(parents=True, exist_ok=True)
    for filename, content in files.items():
        fd, tmp = tempfile.mkstemp(dir=configs, prefix=f".{filename}.", suffix=".part")
        os.close(fd)
        try:
            if isinstance(content, str):
                Path(tmp).write_text(content)
            else:
                ConfigParser.export_config_file(content, tmp, fmt="json", indent=4)
                with open(tmp, "a") as f:
                    f.write("\n")
            os.replace(tmp, configs / filename)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    (root / "docs").mkdir(exist_ok=True)
    (root / "models").mkdir(exist_ok=True)
    (root / "models" / ".gitkeep").touch()
    if not (root / "LICENSE").exists():
        shutil.copy(Path(parts_dir) / "common" / "LICENSE", root / "LICENSE")
    return configs


def _differences(a: Any, b: Any, where: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{where}#{k}".lstrip("#") + (": only generated" if k in a else ": only committed")
               for k in sorted(set(a) ^ set(b), key=str)]
        for k in a:
            if k in b:
                out += _differences(a[k], b[k], f"{where}#{k}")
        return out
    return [] if a == b else [f"{where.lstrip('#') or '(whole file)'}: generated {json.dumps(a)[:120]} != committed "
                              f"{json.dumps(b)[:120]}"]


def check_bundles(names: Sequence[str] | None = None, bundles_dir: str | Path = REPO_BUNDLES,
                  parts_dir: str | Path = PARTS_DIR) -> list[str]:
    """Differences between the committed configs of ``names`` (default: every spec) and freshly generated ones,
    as ``"<bundle>/configs/<file>: <id>: ..."`` lines; empty when nothing drifted. JSON files compare as parsed
    JSON, ``logging.conf`` as text. A config file that is committed but would not be generated counts too."""
    problems = []
    for name in names or bundle_names(parts_dir):
        configs = Path(bundles_dir) / name / "configs"
        generated = build_bundle(name, parts_dir)
        committed = {p.name for p in configs.glob("*") if p.suffix in (".json", ".conf")} if configs.is_dir() else set()
        for extra in sorted(committed - set(generated)):
            problems.append(f"{name}/configs/{extra}: committed but not generated from the parts")
        for filename, content in generated.items():
            path = configs / filename
            if not path.exists():
                problems.append(f"{name}/configs/{filename}: missing (generate it)")
            elif isinstance(content, str):
                if path.read_text() != content:
                    problems.append(f"{name}/configs/{filename}: text differs from common/{filename}")
            else:
                problems += [f"{name}/configs/{filename}: {d}" for d in
                             _differences(content, json.loads(path.read_text()))]
        problems += docs_drift(name, bundles_dir, parts_dir)
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="bundles to generate (default: every spec in PARTS/specs)")
    parser.add_argument("--bundles", default=None,
                        help=f"the bundles folder (default: ${BUNDLES_ENV}, else the source checkout's bundles/)")
    parser.add_argument("--parts", default=None, help="the parts folder (default: BUNDLES/_parts)")
    parser.add_argument("--out", default=None, help="where the bundle folders go (default: BUNDLES)")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; list the differences with the committed files and exit 1 if any")
    parser.add_argument("--explain", nargs=2, metavar=("BUNDLE", "KEY"),
                        help="print which layer of the parts set KEY (a#b) of BUNDLE, and what each lower layer had")
    parser.add_argument("--file", default="train.json", help="the config file --explain looks in (default train.json)")
    args = parser.parse_args(argv)
    try:
        if args.parts is None or args.out is None:
            root = bundles_dir(args.bundles)
            args.parts = args.parts or str(root / "_parts")
            args.out = args.out or str(root)
        if args.explain:
            bundle, key = args.explain
            history = explain(bundle, key, args.file, args.parts)
            if not history:
                print(f"{bundle} {args.file}: no layer sets {key!r}")
                return 1
            print(f"{bundle} {args.file} {key!r}, layer by layer (lowest first):")
            for layer, value in history:
                print(f"  {layer}: {json.dumps(value)}")
            print(f"set by {history[-1][0]}")
            return 0
        names = args.names or bundle_names(args.parts)
        readme = Path(args.out).parent / "README.md"
        has_table = readme.is_file() and START in readme.read_text()
        if args.check:
            problems = check_bundles(names, args.out, args.parts)
            if has_table:
                problems += table_drift(readme, args.out)
            for p in problems:
                print(p)
            if problems:
                print(f"{len(problems)} difference(s): edit bundles/_parts, then run edge-seg-generate",
                      file=sys.stderr)
            return 1 if problems else 0
        built = {name: build_bundle(name, args.parts) for name in names}  # every bundle valid before writing any
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for name, files in built.items():
        print(write_bundle(name, args.out, args.parts, files))
        if write_readme(name, args.out, args.parts):
            print(f"{Path(args.out) / name / 'docs' / 'README.md'}: written from specs/{name}.md and the parts' docs")
    if has_table and write_table(readme, args.out):
        print(f"{readme}: bundle table updated")
    return 0

if __name__ == "__main__":
    sys.exit(main())
