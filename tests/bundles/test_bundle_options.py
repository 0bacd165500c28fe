"""Options the bundles share, through the command line where that is what users run: resuming training, failing
fast on a broken dataset, the Decathlon 4D layout, and the papers' "no edge" ablation switches."""

from __future__ import annotations

import shutil

import nibabel as nib
import numpy as np
import pytest
import torch

from tests.helpers import (
    SMALL,
    bundle_cli,
    bundle_cli_chain,
    bundle_params,
    cli_overrides,
    config_path,
    layout,
    small_parser,
    to_decathlon,
)


@pytest.mark.parametrize("name", bundle_params(slow_unless_representative=True))
def test_resume_continues_from_last_checkpoint(name, dataset_roots, tmp_path):
    data = str(dataset_roots[layout(name)])
    common = ["--config_file", config_path(name, "train.json"), "--dataset_dir", data, "--num_workers", "0",
              *cli_overrides(SMALL[name])]
    # a 3-epoch run, then one that pretends it stopped after epoch 3 of 4: --resume_from continues with epoch 4 only
    proc = bundle_cli_chain([
        ["run", "training", *common, "--bundle_root", str(tmp_path / "a"), "--epochs", "3", "--val_interval", "5"],
        ["run", "training", *common, "--bundle_root", str(tmp_path / "b"), "--epochs", "4", "--val_interval", "5",
         "--resume_from", str(tmp_path / "a" / "models" / "model_last.pt")]])
    assert proc.returncode == 0, proc.stderr[-3000:]
    first = torch.load(tmp_path / "a" / "models" / "model_last.pt", map_location="cpu", weights_only=False)
    epoch_length = first["trainer"]["epoch_length"]
    assert first["trainer"]["iteration"] == 3 * epoch_length
    log = proc.stdout + proc.stderr
    assert "Epoch: 3/3" in log and "Epoch: 4/4" in log and "Epoch: 1/4" not in log and "Epoch: 3/4" not in log
    resumed = torch.load(tmp_path / "b" / "models" / "model_last.pt", map_location="cpu", weights_only=False)
    assert resumed["trainer"]["iteration"] == 4 * epoch_length and resumed["trainer"]["max_epochs"] == 4


def test_broken_case_fails_before_training(brats_root, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(brats_root, data)
    (data / "BraTS2021_00001" / "BraTS2021_00001_t2.nii.gz").unlink()
    proc = bundle_cli("run", "training", "--config_file", config_path("egcnn_brats", "train.json"), "--bundle_root",
                      str(tmp_path / "b"), "--dataset_dir", str(data), "--epochs", "1",
                      *cli_overrides(SMALL["egcnn_brats"]))
    assert proc.returncode != 0
    assert "BraTS2021_00001_t2.nii.gz: file is missing" in proc.stderr
    assert not (tmp_path / "b" / "models").exists() or not list((tmp_path / "b" / "models").iterdir())


def test_inference_on_decathlon_4d_layout(brats_root, tmp_path):
    """Task01's 4D files (FLAIR, T1w, t1gd, T2w in one NIfTI) are segmented like the four BraTS files."""
    root = tmp_path / "bundle"
    (root / "models").mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(small_parser("egcnn_brats", "inference.json").get_parsed_content("network_def").state_dict(),
               root / "models" / "model.pt")
    task = to_decathlon(brats_root, tmp_path / "Task01_BrainTumour")
    over = ["--bundle_root", str(root), "--num_workers", "0", "--cpu_bf16", "false",
            *cli_overrides(SMALL["egcnn_brats"])]
    proc = bundle_cli_chain([
        ["run", "--config_file", config_path("egcnn_brats", "inference.json"), "--layout", "decathlon",
         "--dataset_dir", str(task), "--output_dir", str(tmp_path / "dec"), *over],
        ["run", "--config_file", config_path("egcnn_brats", "inference.json"), "--dataset_dir", str(brats_root),
         "--output_dir", str(tmp_path / "brats"), *over]])
    assert proc.returncode == 0, proc.stderr[-3000:]
    decathlon = sorted((task / "imagesTr").glob("*.nii.gz"))
    brats = sorted((tmp_path / "brats").glob("*_seg.nii.gz"))
    assert len(decathlon) == len(brats) == 3
    for image, reference in zip(decathlon, brats):
        src = nib.load(str(image))
        seg = nib.load(str(tmp_path / "dec" / image.name.replace(".nii.gz", "_seg.nii.gz")))
        assert src.shape[3] == 4 and seg.shape == src.shape[:3]
        np.testing.assert_allclose(seg.affine, src.affine, atol=1e-5)
        np.testing.assert_array_equal(np.asarray(seg.dataobj), np.asarray(nib.load(str(reference)).dataobj))


@pytest.mark.parametrize(("name", "switch"), [("egcnn_brats", {"edge_stream": "false"}),
                                              ("boundary_aware_brats3d", {"edge_loss_weight": 0.0})])
def test_no_edge_ablation_switches(name, switch):
    """The papers' ablations as the documented overrides: EG-CNN's "None" rows drop the edge stream (only the
    segmentation channels come out, the loss is the Dice alone); the boundary-aware "no edge loss" row keeps the
    shape stream but gives its head no gradient."""
    parser = small_parser(name, **switch)
    net, loss = parser.get_parsed_content("network_def"), parser.get_parsed_content("loss")
    seg_channels = parser["out_channels"]
    torch.manual_seed(0)
    x = torch.rand(input_size := [1, parser["network_def"]["in_channels"], *SMALL[name]["roi_size"]])
    y = (torch.rand(1, seg_channels, *input_size[2:]) > 0.7).float()
    out = net.train()(x)
    loss(out, y).backward()
    if "edge_stream" in switch:
        assert out.shape[1] == seg_channels and set(loss.last) == {"dice"}
    else:
        assert out.shape[1] == 2 * seg_channels
        head = [p for n, p in net.named_parameters() if n.startswith("shape_head")]
        assert head and all(p.grad is None or not p.grad.any() for p in head)
        assert any(p.grad is not None and p.grad.any() for n, p in net.named_parameters() if "shape_head" not in n)
