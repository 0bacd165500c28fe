"""The README's bundle table, written from each bundle's ``configs/metadata.json`` (and its network from
``configs/inference.json``) by ``edge-seg-generate``, so that it cannot drift from the bundles.

The table sits between two marker comments of ``README.md``; :func:`write_table` replaces what is between them and
:func:`table_drift` says whether the committed README holds what the bundles give.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

__all__ = ["START", "END", "bundle_table", "write_table", "table_drift"]

START = "<!-- bundle table: written by edge-seg-generate from each bundle's configs/metadata.json; do not edit -->"
END = "<!-- end of bundle table -->"


def _paper(reference: str) -> str:
    """``"Hatamizadeh A, ... Edge-Gated CNNs ... MIDL 2020 ..."`` -> ``"Hatamizadeh et al. 2020"``."""
    author = reference.split(" ", 1)[0].rstrip(",")
    year = re.search(r"\b(19|20)\d\d\b", reference)
    return f"{author} et al. {year.group(0)}" if year else author


def _datasets(source: str) -> str:
    """The datasets of a metadata ``data_source``, without its parenthesised details and notes."""
    while re.search(r"\([^()]*\)", source):
        source = re.sub(r"\s*\([^()]*\)", "", source)
    return source.split(";")[0].strip()


def _headline(metrics: dict) -> str:
    """The paper's first reported result group, as ``key value`` pairs (at most three)."""
    for key, value in metrics.items():
        if key.startswith("note"):
            continue
        if isinstance(value, str):
            return "none (beyond the paper)"
        if isinstance(value, dict):
            pairs = [f"{k} {v}" for k, v in value.items() if isinstance(v, int | float) and
                     not k.endswith("_std")][:3]
            return f"{key}: " + ", ".join(pairs)
        pairs = [f"{k} {v}" for k, v in metrics.items() if isinstance(v, int | float) and not k.endswith("_std")]
        return ", ".join(pairs[:3])
    return ""


def bundle_table(bundles: str | Path) -> str:
    """A Markdown table with a row per bundle folder of ``bundles`` (one with ``configs/metadata.json``)."""
    rows = ["| bundle | paper | task | datasets | network | paper's result (on its data) |",
            "| --- | --- | --- | --- | --- | --- |"]
    for folder in sorted(p for p in Path(bundles).iterdir() if (p / "configs" / "metadata.json").is_file()):
        meta = json.loads((folder / "configs" / "metadata.json").read_text())
        inference = json.loads((folder / "configs" / "inference.json").read_text())
        net = inference.get("network_def", {})
        network = f"`{str(net.get('_target_', '?')).split('.')[-1]}`"
        dims = net.get("spatial_dims")
        if isinstance(dims, int):
            network += f" {dims}D"
        cells = [f"[{folder.name}](bundles/{folder.name}/docs/README.md)", _paper(meta["references"][0]), meta["task"],
                 _datasets(meta.get("data_source", "")), network, _headline(meta.get("paper_reported_metrics", {}))]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def _with_table(readme: Path, bundles: str | Path) -> tuple[str, str]:
    """``(the README as committed, the README with the table the bundles give)``.

    Raises:
        ValueError: the README has no markers.
    """
    text = readme.read_text()
    if START not in text or END not in text:
        raise ValueError(f"{readme}: no bundle table markers ({START!r} ... {END!r})")
    head, rest = text.split(START, 1)
    return text, f"{head}{START}\n{bundle_table(bundles)}\n{END}{rest.split(END, 1)[1]}"


def write_table(readme: str | Path, bundles: str | Path) -> bool:
    """Write the table into ``readme`` between the markers; returns whether the file changed.

    Raises:
        ValueError: the README has no markers.
    """
    old, new = _with_table(Path(readme), bundles)
    if new != old:
        Path(readme).write_text(new)
    return new != old


def table_drift(readme: str | Path, bundles: str | Path) -> list[str]:
    """``["README.md: the bundle table differs ..."]`` when the committed table is not what the bundles give."""
    old, new = _with_table(Path(readme), bundles)
    return [] if new == old else \
        [f"{Path(readme).name}: the bundle table differs from the bundles' metadata (run edge-seg-generate)"]
