"""Each bundle's ``docs/README.md``, written from its hand-written paper-specific text and the text every bundle
shares, kept once in the parts.

``bundles/_parts/specs/<name>.md`` holds what only that bundle says -- the paper, its numbers, the data, the
assumptions and deviations -- under the model zoo's headings (:data:`HEADINGS`). A part folder (``common`` and
every part of the bundle's spec) may hold ``docs/<section>.md`` (``commands.md``, ``overview.md``, ...): that text
is added to the section of that name in every bundle made of the part, with ``{name}``, ``{dataset_dir}``,
``{datalist}``, ``{eval_note}``, ``{edges_note}`` and ``{edge_output}`` filled from the bundle's configs. The shared
text comes first in the sections of :data:`SHARED_FIRST` (the recipe, the network's assumptions, then the bundle's
own notes) and after the bundle's text elsewhere; a line ``<!-- shared -->`` in a section of ``specs/<name>.md``
puts it there instead. A list the shared text ends continues with the bundle's own items.

A line ``<!-- results table: <file> -->`` in ``specs/<name>.md`` becomes the table of the bundle's runs in
``benchmarks/results/<file>`` (a short CPU run per synthetic difficulty or named variant: training and evaluation
seconds and every validation metric), so the numbers a bundle's docs show are read from the results files, not typed.

``edge-seg-generate`` writes the README of every bundle that has a ``specs/<name>.md``; ``--check`` (and the
generator's test) fails when a committed README differs.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

__all__ = ["HEADINGS", "SHARED_FIRST", "RESULTS", "results_table", "bundle_readme", "docs_drift", "write_readme"]

RESULTS = Path("benchmarks") / "results"  # beside the bundles folder, in the checkout it belongs to
_RESULTS_LINE = re.compile(r"^<!-- results table: (\S+) -->$", re.M)

HEADINGS = ("Overview", "Data", "Training configuration", "Input", "Output", "Performance", "Commands",
            "Assumptions", "References", "Licence")
SHARED_FIRST = ("Training configuration", "Input", "Output", "Commands", "Assumptions", "References")
_SHARED_MARK = "<!-- shared -->"
_FIELD = re.compile(r"\{(\w+)\}")  # a template field; other braces (a JSON override) stay as written


def _sections(text: str, path: Path) -> tuple[str, dict[str, str]]:
    """``(title block, {heading: body})`` of a Markdown file split at its ``## `` headings."""
    title, *rest = re.split(r"^## ", text, flags=re.M)
    out = {}
    for block in rest:
        heading, _, body = block.partition("\n")
        heading = heading.strip()
        if heading not in HEADINGS:
            raise ValueError(f"{path}: unknown section {heading!r}; the sections are {list(HEADINGS)}")
        out[heading] = body.strip()
    return title.strip(), out


def _number(value) -> str:
    if isinstance(value, float):
        return "nan" if value != value else f"{value:.0f}" if abs(value) >= 100 else f"{value:.3f}"
    return str(value)


def results_table(name: str, file: str, results: str | Path) -> str:
    """The runs of bundle ``name`` in ``results/file`` as a Markdown table, with the file named under it.

    ``runs`` is keyed ``"<bundle>/<run>"`` (a family's file) or ``"<run>"`` (one bundle's file), a run being a
    synthetic difficulty or a named variant; each run has ``train_s``, ``evaluate_s`` and ``metrics``.

    Raises:
        ValueError: the file has no run of the bundle.
    """
    content = json.loads((Path(results) / file).read_text())
    runs = {k.split("/", 1)[1] if "/" in k else k: v for k, v in content["runs"].items()
            if "/" not in k or k.split("/", 1)[0] == name}
    if not runs:
        raise ValueError(f"benchmarks/results/{file} has no run of {name}")
    metrics = list(dict.fromkeys(m for r in runs.values() for m in r.get("metrics", {})))
    lines = ["| run | train s | eval s | " + " | ".join(m.removeprefix("val_") for m in metrics) + " |",
             "| --- | --- | --- |" + " --- |" * len(metrics)]
    for label, run in runs.items():
        cells = [label, f"{float(run['train_s']):.0f}", f"{float(run['evaluate_s']):.0f}",
                 *(_number(float(run["metrics"].get(m, float("nan")))) for m in metrics)]
        lines.append("| " + " | ".join(cells) + " |")
    machine = content.get("machine")
    where = f" (machine: {', '.join(f'{k} {v}' for k, v in machine.items())})" if isinstance(machine, dict) else \
        f" (machine: {machine})" if machine else ""
    lines += ["", f"Read from `benchmarks/results/{file}`{where} by `edge-seg-generate`."]
    return "\n".join(lines)


def _results_dir(bundles: Path) -> Path:
    """``benchmarks/results`` of the checkout ``bundles`` belongs to, else of the source checkout this package runs
    from (a copy of the bundles elsewhere).

    Raises:
        FileNotFoundError: neither exists.
    """
    from .datalists import REPO_BUNDLES

    candidates = [bundles.resolve().parent / RESULTS, REPO_BUNDLES.parent / RESULTS]
    for folder in candidates:
        if folder.is_dir():
            return folder
    raise FileNotFoundError(f"no results folder for the bundle docs' results tables: looked in {candidates}")


def _values(bundle: Path) -> dict[str, str]:
    """The template fields of a bundle, from its configs."""
    train = json.loads((bundle / "configs" / "train.json").read_text())
    inference = json.loads((bundle / "configs" / "inference.json").read_text())
    from ..data.layouts import get_layout

    layout = get_layout(train["layout"]) if isinstance(train["layout"], dict | str) else None
    if layout is not None and layout.spatial_dims == 2:
        datalist = "[{'image': 'image.png'}]"
    elif layout is not None and len(layout.modalities) == 4:
        datalist = "[{'image': ['flair.nii.gz','t1.nii.gz','t1ce.nii.gz','t2.nii.gz']}]"
    else:
        datalist = "[{'image': 'scan.nii.gz'}]"
    tta = bool(layout is not None and layout.spatial_dims == 2 and train.get("tta") is True)
    return {
        "name": bundle.name,
        "dataset_dir": str(train.get("dataset_dir")),
        "datalist": datalist,
        "eval_note": ", with 8-fold flip test-time augmentation" if tta else "",
        "edges_note": "; --save_edges true also writes the edge map" if inference.get("split_edges") else "",
        "edge_output": "\n- `<stem>_edge.png` with `--save_edges true`: the edge head's probability x 255"
        if inference.get("split_edges") else "",
    }


def _join(pieces) -> str:
    """Paragraphs joined by a blank line; a list continued by the next piece's list stays one list."""
    out = ""
    for piece in pieces:
        listed = out and piece.startswith("- ") and out.splitlines()[-1].startswith(("- ", "  "))
        out = f"{out}\n{piece}" if listed else f"{out}\n\n{piece}" if out else piece
    return out


def bundle_readme(name: str, bundles: str | Path, parts_dir: str | Path) -> str | None:
    """The README of bundle ``name`` (None when it has no ``specs/<name>.md``).

    Raises:
        ValueError: the spec's Markdown has a section outside :data:`HEADINGS`.
    """
    parts_dir = Path(parts_dir)
    spec_md = parts_dir / "specs" / f"{name}.md"
    if not spec_md.is_file():
        return None
    spec = json.loads((parts_dir / "specs" / f"{name}.json").read_text())
    text = spec_md.read_text()
    if _RESULTS_LINE.search(text):
        results = _results_dir(Path(bundles))
    text = _RESULTS_LINE.sub(lambda m: results_table(name, m.group(1), results), text)
    title, own = _sections(text, spec_md)
    values = _values(Path(bundles) / name)
    folders = [parts_dir / "common", *(parts_dir / p for p in spec.get("parts", []))]
    lines = [title, ""]
    for heading in HEADINGS:
        shared = [(f / "docs" / f"{re.sub(r'[^a-z0-9]+', '_', heading.lower())}.md") for f in folders]
        shared_text = [_FIELD.sub(lambda m: values.get(m.group(1), m.group(0)), p.read_text().strip())
                       for p in shared if p.is_file()]
        mine = own.get(heading, "")
        if _SHARED_MARK in mine:
            before, _, after = mine.partition(_SHARED_MARK)
            pieces = [before.strip(), *shared_text, after.strip()]
        else:
            pieces = [*shared_text, mine] if heading in SHARED_FIRST else [mine, *shared_text]
        lines += [f"## {heading}", _join(p for p in pieces if p), ""]
    return "\n".join(lines).rstrip() + "\n"


def write_readme(name: str, bundles: str | Path, parts_dir: str | Path) -> bool:
    """Write bundle ``name``'s ``docs/README.md`` from the parts; returns whether it changed (False without a
    ``specs/<name>.md``)."""
    text = bundle_readme(name, bundles, parts_dir)
    if text is None:
        return False
    path = Path(bundles) / name / "docs" / "README.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    changed = not path.is_file() or path.read_text() != text
    if changed:
        path.write_text(text)
    return changed


def docs_drift(name: str, bundles: str | Path, parts_dir: str | Path) -> list[str]:
    """``["<name>/docs/README.md: ..."]`` when the committed README differs from what the parts give."""
    text = bundle_readme(name, bundles, parts_dir)
    path = Path(bundles) / name / "docs" / "README.md"
    if text is not None and (not path.is_file() or path.read_text() != text):
        return [f"{name}/docs/README.md: differs from specs/{name}.md and the parts' docs (run edge-seg-generate)"]
    return []
