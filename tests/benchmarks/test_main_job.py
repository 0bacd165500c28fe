"""``benchmarks/main_job.py``: a demo's ``summary.json`` becomes a run of the main job's results file."""

from __future__ import annotations

import json
import sys

from tests.helpers import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
from main_job import main, record  # noqa: E402


def _summary(mean: float) -> dict:
    metrics = {"val_mean_dice": mean, **{f"val_dice_{r}": mean for r in ("wt", "tc", "et")},
               **{f"val_hd95_{r}": 3.14159 for r in ("wt", "tc", "et")}}
    return {"command": "python -m edge_networks.demo --long", "date": "2026-12-06 10:00 UTC",
            "machine": {"cpu": "EPYC", "cores": 2, "torch_threads": 2, "cpu_supports_bf16": True, "gpu": None},
            "cases": 20, "shape": [96, 96, 64], "epochs": 80, "roi_size": [64, 64, 64],
            "learning_rate": 0.001, "edge_bce": "plain", "float32": False, "metrics": metrics,
            "edge_head": {"core_fp": 0.123456, "bf1": 0.5}, "timings_s": {"data_s": 5.0, "train_s": 100.4},
            "wall_s": 120.0}


def test_a_run_is_recorded_and_replaced_by_name(tmp_path):
    results = tmp_path / "main_job.json"
    results.write_text(json.dumps({"command": "kept", "runs": [{"name": "default", "wall_s": 1.0}]}))
    run = record(_summary(0.9), "long", results)
    assert run["dice"] == {"wt": 0.9, "tc": 0.9, "et": 0.9, "mean": 0.9} and run["hd95_mm"]["wt"] == 3.14
    assert run["wall_s"] == 120.0 and run["edge_head"] == {"core_fp": 0.123} and run["stages_s"] == "data 5 / train 100"
    assert run["settings"] == "20 cases of 96x96x64, 80 epochs on 64x64x64 crops, Adam 0.001, plain edge BCE"
    assert run["machine"] == "EPYC, 2 cores, 2 threads, bf16 autocast"
    summary = tmp_path / "summary.json"
    summary.write_text(json.dumps(_summary(0.8)))
    assert main(["--name", "long", "--summary", str(summary), "--wall-s", "99", "--results", str(results)]) == 0
    content = json.loads(results.read_text())
    assert content["command"] == "kept" and [r["name"] for r in content["runs"]] == ["default", "long"]
    assert content["runs"][1]["dice"]["mean"] == 0.8 and content["runs"][1]["wall_s"] == 99.0
