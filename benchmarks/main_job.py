"""The main job's results file: run ``python -m edge_networks.demo`` (or take a finished run's ``summary.json``) and
record it in ``benchmarks/results/main_job.json``, the file the docs' main-job tables are generated from.

    python benchmarks/main_job.py --name "default" [-- DEMO ARGS]          # e.g. -- --float32 (the name: any text)
    python benchmarks/main_job.py --name long --summary results/long/summary.json

A run is recorded under its name (an earlier run of that name is replaced) with the demo's command, date, machine,
settings, wall time, per-stage seconds, held-out Dice and HD95 per region and the edge head's scores
(``edge_networks.metrics.score_edge_head``). Measure alone on the machine: the wall time is the point.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from transforms.writers import write_json_atomic

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "main_job.json"
# the edge head's scores kept (edge_networks.metrics.score_edge_head): F@2 against its target and the thin boundary,
# the share far from every boundary, thickness, the tumour's share covered (and the target's), the core called edge
EDGE_HEAD = ("bf2", "thin_bf2", "interior", "thickness", "fill", "target_fill", "core_fp")


def record(summary: dict, name: str, results: Path = RESULTS, wall_s: float | None = None) -> dict:
    """Add (or replace) the run ``name`` in ``results`` from a demo ``summary.json``; returns the run's record."""
    m, s, mach = summary["metrics"], summary, summary["machine"]
    bf16 = mach.get("cpu_supports_bf16") and not s.get("float32")
    run = {  # one line per run: the settings, machine and timings as short text, the scores as columns
        "name": name, "command": s["command"], "date": s["date"],
        "machine": f"{mach.get('cpu')}, {mach.get('cores')} cores, {mach.get('torch_threads')} threads, "
                   f"{'bf16 autocast' if bf16 else 'float32'}" + (f", GPU {mach['gpu']}" if mach.get("gpu") else ""),
        "settings": f"{s['cases']} cases of {'x'.join(map(str, s['shape']))}, {s['epochs']} epochs on "
                    f"{'x'.join(map(str, s['roi_size']))} crops, Adam {s['learning_rate']}, {s['edge_bce']} edge BCE",
        "wall_s": round(wall_s if wall_s is not None else s.get("wall_s", sum(s["timings_s"].values())), 1),
        "stages_s": " / ".join(f"{k.removesuffix('_s')} {v:.0f}" for k, v in s["timings_s"].items()),
        "dice": {r: round(m[f"val_dice_{r}"], 3) for r in ("wt", "tc", "et")} | {"mean": round(m["val_mean_dice"], 3)},
        "hd95_mm": {r: round(m[f"val_hd95_{r}"], 2) for r in ("wt", "tc", "et")},
        "edge_head": {k: round(v, 3) for k, v in s.get("edge_head", {}).items() if k in EDGE_HEAD},
    }
    content = json.loads(results.read_text()) if results.is_file() else {"runs": []}
    runs = [r for r in content.get("runs", []) if r.get("name") != name]
    content["runs"] = [*runs, run]
    write_json_atomic(results, content, indent=1)
    return run


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    own, demo_args = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--name", required=True, help="the run's name in the results file")
    p.add_argument("--summary", default=None, help="record this finished run's summary.json instead of running")
    p.add_argument("--out", default=None, help="the demo's results folder (default: /tmp/main_job/<name>)")
    p.add_argument("--wall-s", type=float, default=None,
                   help="with --summary: the run's wall time measured outside it (default: the summary's own)")
    p.add_argument("--results", default=str(RESULTS))
    a = p.parse_args(own)
    wall = a.wall_s
    if a.summary is None:
        out = Path(a.out or Path("/tmp/main_job") / a.name.strip("-").replace(" ", "_"))
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "edge_networks.demo", "--out", str(out), *demo_args], check=True,
                       cwd=REPO)
        wall, a.summary = time.perf_counter() - t0, out / "summary.json"
    run = record(json.loads(Path(a.summary).read_text()), a.name, Path(a.results), wall)
    print(json.dumps(run, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
