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


@pytest.mark.parametrize("crop", [True, False])
def test_brats_inference_crops_to_the_brain_and_pads_back(brats_root, crop):
    """BraTS inference crops to the nonzero box (nnU-Net's crop; less to compute and hold) padded to a multiple of
    ``size_divisible``, and Invertd puts the prediction back on the input's grid with background outside."""
    from monai.data import MetaTensor

    from edge_networks.data import build_datalist

    parser = small_parser("egcnn_brats", "inference.json", crop_foreground=str(crop).lower())
    item = build_datalist("brats2021", brats_root)[0]
    raw = np.stack([np.asarray(nib.load(p).dataobj) for p in item["image"]])
    nonzero = raw.any(axis=0)
    box = [np.flatnonzero(nonzero.any(axis=tuple(a for a in range(3) if a != d))) for d in range(3)]
    extent = [int(b[-1] - b[0] + 1) for b in box]
    assert extent != list(raw.shape[1:])  # the phantom has background around the brain
    data = parser.get_parsed_content("preprocessing")({"image": item["image"]})
    k = parser["size_divisible"]
    shape = list(data["image"].shape[1:])
    wanted = [-(-(e if crop else s) // k) * k for e, s in zip(extent, raw.shape[1:])]
    assert shape == wanted and all(s % k == 0 for s in shape)
    # every brain voxel is kept (normalisation keeps the zeros at zero)
    assert int((data["image"] != 0).any(dim=0).sum()) == int(nonzero.sum())
    # an all-foreground prediction comes back on the input grid: label 4 on the network's box, 0 outside
    data["pred"] = MetaTensor(torch.full((3, *shape), 10.0), meta=data["image"].meta)
    out = data
    for t in parser.get_parsed_content("segmentation_postprocessing"):
        out = t(out)
    pred = out["pred"].numpy()[0]
    assert pred.shape == raw.shape[1:]
    np.testing.assert_allclose(out["pred"].affine.numpy(), nib.load(item["image"][0]).affine, atol=1e-5)
    if crop:
        assert (pred[nonzero] == 4).all() and (pred > 0).sum() < pred.size
        inside = np.zeros_like(nonzero)
        inside[tuple(slice(b[0], b[-1] + 1) for b in box)] = True
        assert (pred[~inside] == 0).all()
    else:
        assert (pred == 4).all()
