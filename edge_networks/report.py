"""``docs/results.md`` from the committed results files under ``benchmarks/results/``, so that no number in the docs
is typed by hand.

Usage::

    edge-seg-report            # (re)write docs/results.md
    edge-seg-report --check    # exit 1 when docs/results.md differs from what the results files give

Each results file or folder becomes one section, in name order:

- a folder (a leaderboard, a family of short runs) contributes its provenance (``provenance.json``, else
  ``results.json``: command, date, machine, or a line saying which of them it does not record), its settings file
  (``setting.json``), the Markdown its benchmark wrote (``*.md``, headings moved under the section) and its figures
  (``*.png``);
- a JSON file contributes its provenance -- the keys that say how it was made (``command``, ``script``,
  ``benchmark``, ``date``, ``machine``, ``settings``, ...), or a line saying which of them the file does not
  record -- then its other keys: scalars as a list, groups of records as tables (nested keys joined with ``/``; at
  most 30 rows, the rest counted);
- a figure at the top level (a montage) is shown under "Figures".

Every section names its file, so a reader of a number can find the file and the command that produced it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["PROVENANCE", "machine", "write_provenance", "render", "write", "main"]

RESULTS = Path("benchmarks") / "results"  # under the checkout (the folder that holds bundles/)
PAGE = Path("docs") / "results.md"
PROVENANCE = ("what", "benchmark", "script", "command", "date", "machine", "cpu", "cpu_count", "threads", "software",
              "versions", "torch", "precision", "settings", "setting", "data", "input", "optimizer", "repeats",
              "target", "targets", "note")
_RECORD_KEYS = ("name", "variant", "case_id", "clients", "bundle")


def machine() -> dict:
    """The machine a measurement ran on: CPU model, cores, torch's threads, whether the CPU runs bfloat16 natively
    (then the bundles use bf16 autocast) and the first GPU's name (None without one)."""
    import os
    import platform

    import torch

    from .bundle import cpu_supports_bf16

    model = ""
    if Path("/proc/cpuinfo").is_file():
        model = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                      if ln.startswith("model name")), "")
    return {"cpu": model or platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "cpu_supports_bf16": bool(cpu_supports_bf16()),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def write_provenance(folder: str | Path, command: str) -> Path:
    """Write ``folder/provenance.json`` (the command, the date and :func:`machine`): what the results page shows
    for a results folder. Returns its path."""
    import time

    from transforms.writers import write_json_atomic

    return write_json_atomic(Path(folder) / "provenance.json", {
        "command": command, "date": time.strftime("%Y-%m-%d %H:%M %Z"), "machine": machine()}, indent=1)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return ", ".join(_cell(v) for v in value) if len(value) <= 6 and all(
            not isinstance(v, dict | list) for v in value) else f"[{len(value)} values]"
    if isinstance(value, dict):
        return json.dumps(value)[:80]
    return str(value).replace("|", "/").replace("\n", " ")


def _flat(value: Any, prefix: str = "", depth: int = 0) -> dict[str, Any]:
    """A record's scalars, nested keys joined with ``/`` (two levels deep at most)."""
    if isinstance(value, dict) and depth < 3:
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flat(v, f"{prefix}/{k}" if prefix else str(k), depth + 1))
        return out
    return {prefix or "value": value}


MAX_ROWS = 30


def _table(records: dict[str, Any]) -> list[str]:
    """A table of named records; at most :data:`MAX_ROWS` rows, a line saying how many more the file holds."""
    rows = {name: _flat(rec) for name, rec in list(records.items())[:MAX_ROWS]}
    columns = [c for c in dict.fromkeys(c for r in rows.values() for c in r)  # a column repeating the row name: once
               if not all(str(r.get(c)) == name for name, r in rows.items())]
    lines = ["| | " + " | ".join(columns) + " |", "| --- |" + " --- |" * len(columns)]
    for name, r in rows.items():
        lines.append(f"| {name} | " + " | ".join(_cell(r.get(c, "")) for c in columns) + " |")
    if len(records) > MAX_ROWS:
        lines += ["", f"({len(records) - MAX_ROWS} more rows in the file.)"]
    return lines


def _records(value: Any) -> dict[str, Any] | None:
    """``value`` as named records (a table's rows) when it is a group of dicts, else None."""
    if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
        return value
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        key = next((k for k in _RECORD_KEYS if all(k in v for v in value)), None)
        return {str(v[key]) if key else str(i): v for i, v in enumerate(value)}
    return None


def _json_section(path: Path) -> list[str]:
    content = json.loads(path.read_text())
    lines = [f"## {path.stem}", "", f"File: `benchmarks/results/{path.name}`.", ""]
    if not isinstance(content, dict):
        return lines + [_cell(content), ""]
    prov = [k for k in PROVENANCE if k in content]
    lines += [f"- **{k}**: {_cell(content[k]) if not isinstance(content[k], dict) else _inline(content[k])}"
              for k in prov]
    missing = [k for k in ("command", "date", "machine") if k not in content and not
               (k == "command" and ("script" in content or "benchmark" in content))]
    if missing:
        lines.append(f"- not recorded in the file: {', '.join(missing)}")
    lines.append("")
    for key, value in content.items():
        if key in prov:
            continue
        records = _records(value)
        if records is not None:
            lines += [f"**{key}**", "", *_table(records), ""]
        elif isinstance(value, dict):
            lines += [f"**{key}**", "", *_table({key: value}), ""]
        else:
            lines += [f"- **{key}**: {_cell(value)}", ""]
    return lines


def _inline(d: dict) -> str:
    return "; ".join(f"{k} {_cell(v)}" for k, v in _flat(d).items())


def _folder_provenance(folder: Path) -> list[str]:
    """How a folder's results were made: ``command``, ``date``, ``machine`` and ``note`` from its
    ``provenance.json``, else from its ``results.json`` (the file's own keys, or the distinct values of its runs),
    and a line naming what neither records."""
    found: dict[str, list[str]] = {}
    source = next((folder / n for n in ("provenance.json", "results.json") if (folder / n).is_file()), None)
    content = json.loads(source.read_text()) if source else {}
    runs = content.get("runs", {})
    runs = list(runs.values()) if isinstance(runs, dict) else runs
    for key in ("command", "date", "machine", "note"):
        values = [content[key]] if key in content else [r[key] for r in runs if isinstance(r, dict) and key in r]
        cells = list(dict.fromkeys(_inline(v) if isinstance(v, dict) else _cell(v) for v in values))
        if cells:
            found[key] = cells
    lines = [f"- **{k}**: {'; '.join(v)}" for k, v in found.items()]
    missing = [k for k in ("command", "date", "machine") if k not in found]
    return lines + ([f"- not recorded in the folder: {', '.join(missing)}"] if missing else [])


def _folder_section(folder: Path) -> list[str]:
    lines = [f"## {folder.name}", "", f"Folder: `benchmarks/results/{folder.name}/`.", "", *_folder_provenance(folder)]
    setting = folder / "setting.json"
    if setting.is_file():
        lines += [f"- **settings** (`setting.json`): {_inline(json.loads(setting.read_text()))}"]
    lines.append("")
    for md in sorted(folder.glob("*.md")):
        for line in md.read_text().splitlines():
            lines.append("##" + line if line.startswith("#") else line)
        lines.append("")
    for png in sorted(folder.glob("*.png")):
        lines += [f"![{folder.name}/{png.name}](../benchmarks/results/{folder.name}/{png.name})", ""]
    if not any(folder.glob("*.md")):
        for js in sorted(p for p in folder.glob("*.json") if p.name != "setting.json"):
            lines += [f"### {js.name}", "", *(ln for ln in _json_section(js)[4:]  # the folder's provenance is above
                                              if not ln.startswith("- not recorded in the file"))]
    return lines


def render(results: str | Path) -> str:
    """The page for the results under ``results``."""
    results = Path(results)
    intro = ("Generated by `edge-seg-report` from the files under `benchmarks/results/`; do not edit (a test fails "
             "when this page differs from what the files give). Each section names its file; the file names the "
             "command, date, machine and settings where it recorded them. These are short CPU runs and benchmarks on "
             "synthetic data unless a section says otherwise; the papers' numbers are in each bundle's docs.")
    lines = ["# Results", "", intro, ""]
    entries = sorted(p for p in results.iterdir() if not p.name.startswith("."))
    for entry in entries:
        if entry.is_dir():
            lines += _folder_section(entry)
        elif entry.suffix == ".json":
            lines += _json_section(entry)
    figures = [p for p in entries if p.suffix == ".png"]
    if figures:
        lines += ["## Figures", ""]
        lines += [f"![{p.stem}](../benchmarks/results/{p.name})" for p in figures]
    return "\n".join(lines).rstrip() + "\n"


def write(page: str | Path, results: str | Path) -> bool:
    """Write the page; returns whether it changed."""
    page = Path(page)
    text = render(results)
    old = page.read_text() if page.is_file() else None
    if text != old:
        page.write_text(text)
    return text != old


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="edge-seg-report", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if docs/results.md is stale")
    parser.add_argument("--results", default=None, help="the results folder (default: the checkout's "
                        "benchmarks/results)")
    parser.add_argument("--page", default=None, help="the page to write (default: the checkout's docs/results.md)")
    args = parser.parse_args(argv)
    if args.results is None or args.page is None:
        from .bundle.datalists import bundles_dir

        try:
            root = bundles_dir().parent
        except FileNotFoundError as e:
            parser.error(f"{e}; or pass --results and --page")
        args.results = args.results or str(root / RESULTS)
        args.page = args.page or str(root / PAGE)
    if args.check:
        page = Path(args.page)
        stale = not page.is_file() or page.read_text() != render(args.results)
        if stale:
            print(f"{page}: differs from what {args.results} gives; run edge-seg-report", file=sys.stderr)
        return 1 if stale else 0
    print(f"{args.page}: {'written' if write(args.page, args.results) else 'up to date'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
