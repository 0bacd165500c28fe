"""The training recipes, pinned: ``bundles/_parts/recipes.json`` holds, per network and per bundle, each recipe value
(optimiser, learning rate, momentum, weight decay, schedule, epochs, batch, input size, loss and its weights,
augmentation, test-time augmentation, encoder weights), where it comes from (the paper, the authors' code, or this
project's choice with the reason) and the config key that carries it; and per bundle ``paper_row``, the row of the
paper's table its defaults reproduce, where ``paper_reported_metrics`` groups several (``edge-seg-reproduce``).
A test checks every bundle's generated ``train.json`` against it; :func:`render_markdown` writes the table the docs
show (``docs/recipes.md``).

Usage::

    python -m edge_networks.bundle.recipes --out docs/recipes.md      # write the table
    python -m edge_networks.bundle.recipes --check                    # exit 1 if a bundle or the page drifted
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .datalists import BUNDLES_ENV, bundles_dir

__all__ = ["recipes_file", "load_recipes", "recipe", "config_value", "check_recipes", "render_markdown"]
_UNSET = object()


def recipes_file(bundles: str | Path | None = None) -> Path:
    """The recipe table of the bundles folder in use (:func:`bundles_dir`: ``--bundles``, ``$EDGE_SEG_BUNDLES`` or
    the checkout's), ``<bundles>/_parts/recipes.json``."""
    return bundles_dir(bundles) / "_parts" / "recipes.json"


def load_recipes(path: str | Path | None = None) -> dict:
    """The recipe table (default: :func:`recipes_file`), checked: every entry has a value and a known source, and
    a project choice its reason.

    Raises:
        ValueError: every malformed entry, listed.
    """
    path = Path(path) if path is not None else recipes_file()
    data = json.loads(path.read_text())
    sources = set(data["sources"])
    faults = []
    rows = [(f"networks/{n}", e) for n, e in data["networks"].items()] + \
        [(f"bundles/{b}", e) for b, e in data["bundles"].items()]
    for where, entry in rows:
        for field, item in entry["values"].items():
            if "value" not in item or item.get("source") not in sources:
                faults.append(f"{where} {field!r}: needs a value and a source in {sorted(sources)}")
            elif item["source"] == "project" and not item.get("reason"):
                faults.append(f"{where} {field!r}: a project choice needs its reason")
    for b, entry in data["bundles"].items():
        if entry.get("network") not in data["networks"]:
            faults.append(f"bundles/{b}: network {entry.get('network')!r} has no row")
        unknown = set(entry) - {"network", "values", "paper_row"}
        if unknown:
            faults.append(f"bundles/{b}: unknown key(s) {sorted(unknown)} (network, values, paper_row)")
    if faults:
        raise ValueError(f"{path}: " + "; ".join(faults))
    return data


def recipe(bundle: str, data: dict | None = None) -> dict[str, dict]:
    """Bundle ``bundle``'s recipe: its network's values, then its own (by field name).

    Raises:
        KeyError: no row for ``bundle``.
    """
    data = data or load_recipes()
    if bundle not in data["bundles"]:
        raise KeyError(f"no recipe for bundle {bundle!r} in {recipes_file()}; add its row")
    row = data["bundles"][bundle]
    return {**data["networks"][row["network"]]["values"], **row["values"]}


def config_value(config: dict, key: str) -> Any:
    """``key`` (MONAI's ``a#b`` form) of a config as written (references and expressions unresolved), or a
    sentinel when absent."""
    node: Any = config
    for part in key.split("#"):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _UNSET
    return node


def check_recipes(bundles: str | Path | None = None, data: dict | None = None) -> list[str]:
    """Every difference between the bundles' generated ``train.json`` and the recipe table (a bundle without a
    row, a key the config lacks, a value that differs), one line each; empty when they agree."""
    data = data or load_recipes()
    folder = bundles_dir(bundles)
    names = sorted(p.parent.parent.name for p in folder.glob("*/configs/train.json"))
    out = [f"{b}: no row in the recipe table" for b in names if b not in data["bundles"]]
    for b in names:
        if b not in data["bundles"]:
            continue
        config = json.loads((folder / b / "configs" / "train.json").read_text())
        for field, item in recipe(b, data).items():
            if "key" not in item:
                continue
            got = config_value(config, item["key"])
            if got is _UNSET:
                out.append(f"{b} {field}: train.json has no {item['key']!r} (the table: {item['value']!r})")
            elif got != item["value"]:
                out.append(f"{b} {field}: train.json {item['key']} = {got!r}, the table {item['value']!r} "
                           f"({item['source']})")
    return out


def _cell(item: dict) -> str:
    value = item.get("text", item["value"])
    text = value if isinstance(value, str) else json.dumps(value)
    mark = {"paper": "", "authors' code": " (code)", "project": " *"}[item["source"]]
    return f"{text}{mark}".replace("|", "\\|")


def render_markdown(data: dict | None = None) -> str:
    """The recipe table as Markdown: one table per network, a column per bundle; ``(code)`` marks the authors'
    code's values, ``*`` this project's choices, whose reasons follow each table."""
    data = data or load_recipes()
    lines = ["# Training recipes", "",
             "Generated from `bundles/_parts/recipes.json` by `python -m edge_networks.bundle.recipes --out "
             "docs/recipes.md`; a test pins every bundle's `train.json` to it. Unmarked values are the paper's, "
             "`(code)` the authors' released code's, `*` this project's choice (reasons below each table).", ""]
    for net, entry in data["networks"].items():
        bundles = [b for b, row in data["bundles"].items() if row["network"] == net]
        rows = {b: recipe(b, data) for b in bundles}
        fields = list(dict.fromkeys(f for b in bundles for f in rows[b]))
        lines += [f"## {entry['paper']}", "", f"Paper section: {entry['section']}.", "",
                  "| | " + " | ".join(f"`{b}`" for b in bundles) + " |",
                  "| --- |" + " --- |" * len(bundles)]
        for f in fields:
            lines.append(f"| {f} | " + " | ".join(_cell(rows[b][f]) if f in rows[b] else "" for b in bundles) + " |")
        reasons = sorted({f"{f} ({', '.join(b for b in bundles if rows[b].get(f) is item)}): {item['reason']}"
                          for b in bundles for f, item in rows[b].items() if item.get("reason")})
        if reasons:
            lines += ["", *[f"- {r}" for r in reasons]]
        lines.append("")
    lines += ["## Reproducing a paper's table", "",
              "`edge-seg-reproduce BUNDLE --dataset_dir DIR` prepares and checks your dataset in the bundle's layout, "
              "trains with the recipe above (torchrun on several GPUs), evaluates and writes `reproduction.md` beside "
              "the paper's numbers. The papers' ImageNet encoders are not shipped: save torchvision's weights once "
              "(`torch.save(torchvision.models.resnet50(weights='IMAGENET1K_V1').state_dict(), 'resnet50.pth')`) "
              "and pass them; without them use `configs/from_scratch.json`.", "",
              "| bundle | command | download first |", "| --- | --- | --- |"]
    weights = {"CENet": "resnet34", "ETNet": "resnet50", "BANet": "resnet50"}
    for b in data["bundles"]:
        train = json.loads((bundles_dir() / b / "configs" / "train.json").read_text())
        arch = weights.get(train["network_def"]["_target_"].split(".")[-1])
        two_d = len(train["roi_size"]) == 2
        flag = f" --pretrained_path {arch}.pth" if arch and two_d else ""
        need = f"torchvision `{arch}` ImageNet weights" if arch and two_d else "nothing (trained from scratch)"
        lines.append(f"| `{b}` | `edge-seg-reproduce {b} --dataset_dir DIR{flag}` | {need}; the dataset "
                     f"(layout `{train['layout']}`) |")
    lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edge_networks.bundle.recipes", description=__doc__.split("\n")[0])
    parser.add_argument("--out", help="write the Markdown table here")
    parser.add_argument("--bundles", default=None,
                        help=f"the bundles folder (default: ${BUNDLES_ENV}, else the source checkout's bundles/)")
    parser.add_argument("--check", action="store_true", help="exit 1 listing every bundle value that differs from "
                        "the table (and, with --out, a page that differs from the rendered table)")
    args = parser.parse_args(argv)
    try:
        os.environ[BUNDLES_ENV] = str(bundles_dir(args.bundles))
    except FileNotFoundError as e:
        parser.error(str(e))
    text = render_markdown()
    if args.check:
        faults = check_recipes()
        if args.out and (not Path(args.out).is_file() or Path(args.out).read_text() != text):
            faults.append(f"{args.out}: differs from the rendered table; run with --out {args.out}")
        print("\n".join(faults) or "every bundle follows the recipe table")
        return 1 if faults else 0
    if args.out:
        Path(args.out).write_text(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
