"""``benchmarks/gpu_check.py --dry-run``: the GPU check's code path on the CPU, every bundle it covers, before device
time is spent on it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.helpers import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
from gpu_check import BUNDLES  # noqa: E402


# CI: one 3D and one 2D bundle (about 25 s); make test-all: every bundle the GPU call trains (about 60 s)
@pytest.mark.parametrize("bundles", [("egcnn_brats", "cenet_drive"),
                                     pytest.param(BUNDLES, marks=pytest.mark.slow)], ids=["ci", "all"])
def test_gpu_check_dry_run(bundles, tmp_path):
    out = tmp_path / "gpu_check.json"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--dry-run", "--out", str(out),
                           "--bundles", *bundles],
                          capture_output=True, text=True, cwd=REPO, timeout=900,
                          env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "2", "CUDA_VISIBLE_DEVICES": ""})
    assert proc.returncode == 0, (proc.stdout[-3000:], proc.stderr[-3000:])
    report = json.loads(out.read_text())
    assert report["dry_run"] is True and report["errors"] == {}
    assert sorted(report["training"]) == sorted(bundles)
    for name, run in report["training"].items():
        assert run["steps"] == 1 and run["s_per_step"] > 0 and run["parameters"] > 0, (name, run)
        assert run["amp"] is False and run["peak_gpu_mib"] is None  # CPU: no AMP, no GPU memory
    inference = report["inference"]
    for name in ("egcnn_brats", "zoo_brats_mri_segmentation"):
        assert inference[name]["output_shape"][2:] == inference["volume"][1:], inference  # the whole volume
        assert inference[name]["s_per_volume"] > 0
