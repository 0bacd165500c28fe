"""boundary_aware_brats (2D slices) and boundary_aware_brats3d through MONAI's bundle CLI on tiny cases."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
import torch

from tests.bundles.test_egcnn_bundles import IO_KEYS, MANDATORY, bundle_cli, configs
from tests.conftest import REPO

VARIANTS = {
    "boundary_aware_brats": ["--roi_size", "[48,48]"],
    "boundary_aware_brats3d": ["--roi_size", "[32,32,32]"],
}


def small(name: str, *files: str) -> str:
    return configs(name, *files, "cpu_small.json")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, brats_root):
    out = {}
    for name, extra in VARIANTS.items():
        root = tmp_path_factory.mktemp(name)
        proc = bundle_cli("run", "training", "--config_file", small(name, "train.json"), "--bundle_root", str(root),
                          "--dataset_dir", str(brats_root), "--epochs", "2", "--val_interval", "1", *extra)
        assert proc.returncode == 0, proc.stderr[-3000:]
        out[name] = root
    return out


@pytest.mark.parametrize("name", list(VARIANTS))
def test_train_checkpoint_loads_on_cpu(trained, name):
    state = torch.load(trained[name] / "models" / "model.pt", map_location="cpu", weights_only=True)
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config([configs(name, "train.json"), configs(name, "cpu_small.json")])
    parser.get_parsed_content("network_def").load_state_dict(state)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_ablation_without_edge_loss_trains(brats_root, tmp_path, name):
    proc = bundle_cli("run", "training", "--config_file", small(name, "train.json"), "--bundle_root", str(tmp_path),
                      "--dataset_dir", str(brats_root), "--epochs", "1", "--val_interval", "1",
                      "--edge_loss_weight", "0", *VARIANTS[name])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "models" / "model.pt").exists()


@pytest.mark.parametrize("name", list(VARIANTS))
def test_evaluate_per_volume_and_per_slice(trained, brats_root, name):
    proc = bundle_cli("run", "--config_file", small(name, "train.json", "evaluate.json"), "--bundle_root",
                      str(trained[name]), "--dataset_dir", str(brats_root), *VARIANTS[name])
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = (trained[name] / "eval" / "metrics.csv").read_text()
    for key in ("val_dice", "val_jaccard", "val_hd95", "val_slice_dice", "val_slice_jaccard", "val_slice_hd"):
        assert key in metrics


@pytest.mark.parametrize("name", list(VARIANTS))
def test_inference_writes_3d_mask_and_boundary_in_input_geometry(trained, brats_root, name):
    out = trained[name] / "pred"
    proc = bundle_cli("run", "--config_file", small(name, "inference.json"), "--bundle_root", str(trained[name]),
                      "--dataset_dir", str(brats_root), "--output_dir", str(out), "--save_edges", "true",
                      *VARIANTS[name])
    assert proc.returncode == 0, proc.stderr[-3000:]
    for case_dir in sorted(p for p in brats_root.iterdir() if p.is_dir()):
        src = nib.load(str(case_dir / f"{case_dir.name}_t1ce.nii.gz"))
        seg = nib.load(str(out / f"{case_dir.name}_seg.nii.gz"))
        boundary = nib.load(str(out / f"{case_dir.name}_boundary.nii.gz"))
        assert seg.shape == boundary.shape == src.shape
        np.testing.assert_allclose(seg.affine, src.affine, atol=1e-5)
        assert set(np.unique(np.asarray(seg.dataobj)).tolist()) <= {0, 1}
        b = np.asarray(boundary.dataobj)
        assert b.min() >= 0 and b.max() <= 1


@pytest.mark.parametrize("name", list(VARIANTS))
def test_verify_net_in_out_and_metadata(name):
    proc = bundle_cli("verify_net_in_out", "network_def", "--meta_file", configs(name, "metadata.json"),
                      "--config_file", small(name, "inference.json"), "--n", "2", "--any", "8", "--p", "2",
                      "--device", "cpu")
    assert proc.returncode == 0, proc.stderr[-3000:]
    meta = json.loads((REPO / "bundles" / name / "configs" / "metadata.json").read_text())
    assert not [k for k in MANDATORY if k not in meta]
    for section, key in (("inputs", "image"), ("outputs", "pred")):
        assert not [k for k in IO_KEYS if k not in meta["network_data_format"][section][key]]
    for f in ("train.json", "evaluate.json", "inference.json", "multi_gpu_train.json", "logging.conf",
              "cpu_small.json"):
        assert (REPO / "bundles" / name / "configs" / f).exists(), f
    assert (REPO / "bundles" / name / "docs" / "README.md").exists() and (REPO / "bundles" / name / "LICENSE").exists()
