"""The egcnn_brats and egcnn_kits bundles through MONAI's bundle CLI on tiny synthetic cases.

Each bundle: a short training run (checkpoints written), evaluation from the checkpoint, inference on whole
volumes with outputs in the input's exact geometry, checkpoint loading on the CPU, ``verify_net_in_out``, a
fail-fast run on a broken dataset, and the metadata's mandatory keys.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser

from tests.conftest import REPO

SMALL = ["--num_workers", "0", "--backbone_kwargs", "{'init_filters': 8}", "--edge_channels", "8"]
CASES = {
    "egcnn_brats": {"roi": "[32,32,32]", "extra": [], "labels": {0, 1, 2, 4}, "in_channels": 4},
    "egcnn_kits": {"roi": "[32,32,32]", "extra": ["--spacing", "[6.0,6.0,6.0]", "--num_samples", "1"],
                   "labels": {0, 1, 2}, "in_channels": 1},
}
MANDATORY = ["version", "changelog", "monai_version", "pytorch_version", "numpy_version", "required_packages_version",
             "task", "description", "authors", "copyright", "network_data_format"]
IO_KEYS = ["type", "format", "modality", "num_channels", "spatial_shape", "dtype", "value_range", "is_patch_data",
           "channel_def"]


def bundle_cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "monai.bundle", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600)
    return proc


def configs(name: str, *files: str) -> str:
    paths = [str(REPO / "bundles" / name / "configs" / f) for f in files]
    return paths[0] if len(paths) == 1 else "[" + ",".join(f"'{p}'" for p in paths) + "]"


@pytest.fixture(scope="module")
def trained(tmp_path_factory, brats_root, kits_root):
    """Train both bundles for two epochs on the tiny cases; returns {name: (bundle_root, dataset_dir)}."""
    out = {}
    for name, case in CASES.items():
        root = tmp_path_factory.mktemp(name)
        data = brats_root if name == "egcnn_brats" else kits_root
        proc = bundle_cli("run", "training", "--config_file", configs(name, "train.json"), "--bundle_root", str(root),
                          "--dataset_dir", str(data), "--epochs", "2", "--val_interval", "1",
                          "--roi_size", case["roi"], *SMALL, *case["extra"])
        assert proc.returncode == 0, proc.stderr[-3000:]
        out[name] = (root, data)
    return out


@pytest.mark.parametrize("name", list(CASES))
def test_training_writes_checkpoints_that_load_on_cpu(trained, name):
    root, _ = trained[name]
    models = root / "models"
    assert (models / "model.pt").exists() and (models / "model_last.pt").exists()
    state = torch.load(models / "model.pt", map_location="cpu", weights_only=True)
    parser = ConfigParser()
    parser.read_config(configs(name, "train.json"))
    parser["backbone_kwargs"] = {"init_filters": 8}
    parser["edge_channels"] = 8
    net = parser.get_parsed_content("network_def")
    net.load_state_dict(state)  # strict: every key matches
    last = torch.load(models / "model_last.pt", map_location="cpu", weights_only=False)
    assert {"model", "optimizer", "lr_scheduler", "trainer"} <= set(last)
    assert last["trainer"]["iteration"] == 2 * last["trainer"]["epoch_length"]  # two epochs done


@pytest.mark.parametrize("name", list(CASES))
def test_resume_continues_from_checkpoint(trained, name, tmp_path):
    root, data = trained[name]
    case = CASES[name]
    proc = bundle_cli("run", "training", "--config_file", configs(name, "train.json"), "--bundle_root", str(tmp_path),
                      "--dataset_dir", str(data), "--epochs", "3", "--val_interval", "5", "--roi_size", case["roi"],
                      "--resume_from", str(root / "models" / "model_last.pt"), *SMALL, *case["extra"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = proc.stdout + proc.stderr
    assert "Epoch: 3/3" in log and "Epoch: 1/3" not in log  # resumed after epoch 2


@pytest.mark.parametrize("name", list(CASES))
def test_evaluate_config(trained, name):
    root, data = trained[name]
    case = CASES[name]
    proc = bundle_cli("run", "--config_file", configs(name, "train.json", "evaluate.json"), "--bundle_root", str(root),
                      "--dataset_dir", str(data), "--roi_size", case["roi"], *SMALL, *case["extra"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = (root / "eval" / "metrics.csv").read_text()
    key = "val_mean_dice" if name == "egcnn_brats" else "val_composite_dice"
    assert key in metrics and "hd95" in metrics


@pytest.mark.parametrize("name", list(CASES))
def test_inference_keeps_geometry(trained, name):
    root, data = trained[name]
    case = CASES[name]
    proc = bundle_cli("run", "--config_file", configs(name, "inference.json"), "--bundle_root", str(root),
                      "--dataset_dir", str(data), "--roi_size", case["roi"], "--save_edges", "true",
                      *SMALL, *case["extra"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    pred_dir = root / "eval" / "predictions"
    case_dirs = sorted(p for p in data.iterdir() if p.is_dir())
    for case_dir in case_dirs:
        src = nib.load(str(next(case_dir.glob("*.nii.gz"))))
        seg = nib.load(str(pred_dir / f"{case_dir.name}_seg.nii.gz"))
        edge = nib.load(str(pred_dir / f"{case_dir.name}_edge.nii.gz"))
        assert seg.shape == src.shape and edge.shape[:3] == src.shape
        np.testing.assert_allclose(seg.affine, src.affine, atol=1e-5)
        np.testing.assert_allclose(edge.affine, src.affine, atol=1e-5)
        assert seg.get_data_dtype() == np.uint8
        assert set(np.unique(np.asarray(seg.dataobj)).tolist()) <= case["labels"]
        e = np.asarray(edge.dataobj)
        assert e.min() >= 0 and e.max() <= 1


@pytest.mark.parametrize("name", list(CASES))
def test_verify_net_in_out(name):
    proc = bundle_cli("verify_net_in_out", "network_def", "--meta_file", configs(name, "metadata.json"),
                      "--config_file", configs(name, "inference.json"), "--n", "2", "--any", "8",
                      "--p", "2", "--backbone_kwargs", "{'init_filters': 8}", "--edge_channels", "8",
                      "--device", "cpu")
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.parametrize("name", list(CASES))
def test_metadata_mandatory_keys(name):
    meta = json.loads((REPO / "bundles" / name / "configs" / "metadata.json").read_text())
    assert not [k for k in MANDATORY if k not in meta]
    for section, key in (("inputs", "image"), ("outputs", "pred")):
        spec = meta["network_data_format"][section][key]
        assert not [k for k in IO_KEYS if k not in spec], (section, key)
    assert "research" in meta["intended_use"].lower()
    assert "not reproduced" in json.dumps(meta["paper_reported_metrics"])
    for f in ("train.json", "evaluate.json", "inference.json", "multi_gpu_train.json", "logging.conf",
              "cpu_small.json"):
        assert (REPO / "bundles" / name / "configs" / f).exists(), f
    assert (REPO / "bundles" / name / "docs" / "README.md").exists()
    assert (REPO / "bundles" / name / "LICENSE").exists()


def test_broken_case_fails_before_training(brats_root, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(brats_root, data)
    (data / "BraTS2021_00001" / "BraTS2021_00001_t2.nii.gz").unlink()
    proc = bundle_cli("run", "training", "--config_file", configs("egcnn_brats", "train.json"), "--bundle_root",
                      str(tmp_path / "b"), "--dataset_dir", str(data), "--epochs", "1", "--roi_size", "[32,32,32]",
                      *SMALL)
    assert proc.returncode != 0
    assert "BraTS2021_00001_t2.nii.gz: file is missing" in proc.stderr
    assert not (tmp_path / "b" / "models" / "model.pt").exists()


def test_inference_on_decathlon_4d_layout(trained, tmp_path):
    """Task01's 4D files (FLAIR, T1w, t1gd, T2w in one NIfTI) are segmented like four BraTS files."""
    from tests.edge_networks.data.test_layouts import _to_decathlon

    root, data = trained["egcnn_brats"]
    task = _to_decathlon(data, tmp_path / "Task01_BrainTumour")
    out = tmp_path / "pred"
    proc = bundle_cli("run", "--config_file", configs("egcnn_brats", "inference.json"), "--bundle_root", str(root),
                      "--layout", "decathlon", "--dataset_dir", str(task), "--output_dir", str(out),
                      "--roi_size", "[32,32,32]", *SMALL)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for image in sorted((task / "imagesTr").glob("*.nii.gz")):
        src = nib.load(str(image))
        seg = nib.load(str(out / (image.name.replace(".nii.gz", "_seg.nii.gz"))))
        assert src.shape[3] == 4 and seg.shape == src.shape[:3]
        np.testing.assert_allclose(seg.affine, src.affine, atol=1e-5)
