"""Helpers the bundle configs call."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser
from monai.inferers import SimpleInferer

from edge_networks.bundle import (
    FlipTTAInferer,
    case_name_formatter,
    flag,
    image_subject,
    load_datalist,
    poly_lr,
    select_channel,
    with_roi,
)
from tests.helpers import REPO


def test_poly_lr_schedule():
    f = poly_lr(10, 0.9)
    assert f(0) == 1.0 and f(10) == 0.0
    assert f(5) == pytest.approx(0.5**0.9)


def test_case_name_formatter():
    per_case = case_name_formatter("kits19")
    assert per_case({"filename_or_obj": "/d/case_00007/imaging.nii.gz"}, None)["subject"] == "case_00007"
    single = case_name_formatter("decathlon")
    assert single({"filename_or_obj": "/d/imagesTr/BRATS_004.nii.gz"}, None)["subject"] == "BRATS_004"
    brats = case_name_formatter("brats2021")
    assert brats({"filename_or_obj": "/d/BraTS2021_00002/BraTS2021_00002_flair.nii.gz"}, None)["subject"] == \
        "BraTS2021_00002"
    # a scan of one's own given to a folder-per-case bundle (--datalist): named after the file, not its folder
    assert per_case({"filename_or_obj": "/d/lung_nodule_ct/lung1_image.nrrd"}, None)["subject"] == "lung1_image"
    assert brats({"filename_or_obj": "/d/scans/patient7.mha"}, None)["subject"] == "patient7"


def test_select_channel():
    out = [{"pred": torch.zeros(3, 4, 4), "label": torch.ones(3, 4, 4)}]
    pred, label = select_channel(2)(out)
    assert pred[0].shape == (1, 4, 4) and label[0].shape == (1, 4, 4)


def test_load_datalist_needs_a_source():
    with pytest.raises(ValueError, match="dataset_dir"):
        load_datalist("brats2021")


def test_load_datalist_from_prepared_json(brats_root, tmp_path):
    from edge_networks.data import prepare_datalist

    prepare_datalist("brats2021", brats_root, tmp_path / "dl.json", seed=2)
    dl = load_datalist("brats2021", data_list_file_path=str(tmp_path / "dl.json"))
    assert len(dl["training"]) == 2 and len(dl["validation"]) == 1


def test_flag_reads_command_line_strings():
    assert [flag(v) for v in ("false", "False", " 0", "no", False, 0, None)] == [False] * 7
    assert [flag(v) for v in ("true", "True", "1", "yes", True, 1, torch.tensor(True))] == [True] * 7
    with pytest.raises(ValueError, match='"fasle"'):
        flag("fasle")


@pytest.mark.parametrize("cli_value", ["false", False])
def test_switches_from_the_command_line_turn_things_off(cli_value):
    """``--edge_stream false`` / ``--save_edges false`` / ``--cpu_bf16 false`` arrive as strings and must work."""
    parser = ConfigParser()
    parser.read_config(str(REPO / "bundles" / "egcnn_brats" / "configs" / "inference.json"))
    parser["edge_stream"] = cli_value
    parser["save_edges"] = cli_value
    parser["cpu_bf16"] = cli_value
    parser["backbone_kwargs"] = {"init_filters": 8}
    net = parser.get_parsed_content("network_def")
    assert net.use_edge_stream is False and net.edges_in_eval is False
    assert parser.get_parsed_content("inferer").enabled is False


def _dihedral_reference(x: torch.Tensor, net) -> torch.Tensor:
    """CE-Net's TTAFrame by hand, on numpy arrays: the image and its 90-degree rotation, each as is, flipped up-down,
    left-right and both; predictions mapped back and their sigmoids averaged."""
    a = x[0].numpy()
    probs = []
    for k in (0, 1):
        r = np.rot90(a, k, axes=(1, 2))
        for flip_axes in ((), (1,), (2,), (1, 2)):
            v = np.flip(r, flip_axes) if flip_axes else r
            y = torch.sigmoid(net(torch.as_tensor(v.copy())[None]))[0].numpy()
            y = np.flip(y, flip_axes) if flip_axes else y
            probs.append(np.rot90(y, -k, axes=(1, 2)))
    return torch.as_tensor(np.mean(probs, axis=0))


def test_flip_tta_averages_the_eight_dihedral_variants():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3, padding=1), torch.nn.Conv2d(3, 1, (1, 3), padding=(0, 1))).eval()
    x = torch.randn(1, 2, 12, 12)
    with torch.no_grad():
        got = torch.sigmoid(FlipTTAInferer(SimpleInferer())(x, net))
        ref = _dihedral_reference(x, net)
        plain = torch.sigmoid(net(x))
    torch.testing.assert_close(got[0], ref, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(got, plain, atol=1e-3)  # the kernel is not symmetric: TTA changes the output
    with torch.no_grad():
        torch.testing.assert_close(FlipTTAInferer(SimpleInferer(), enabled=False)(x, net), net(x))


def test_flip_tta_softmax_3d_and_equivariance():
    x = torch.randn(1, 1, 6, 8, 4)
    # an equivariant "network": every variant maps back to the same output
    logits = FlipTTAInferer(SimpleInferer(), activation="softmax")(x, lambda t: torch.cat([t, -t], 1))
    torch.testing.assert_close(torch.softmax(logits, 1), torch.softmax(torch.cat([x, -x], 1), 1), atol=1e-5, rtol=1e-5)
    # a position-dependent network: the 3D average over the 8 flips, by hand
    ramp = torch.arange(6.0).reshape(1, 1, 6, 1, 1)
    net = lambda t: t + ramp  # noqa: E731
    got = torch.sigmoid(FlipTTAInferer(SimpleInferer(), rot90=False)(x, net))
    ref = torch.stack([torch.sigmoid(x + (ramp.flip(2) if 0 in axes else ramp))
                       for axes in [(), (0,), (1,), (2,), (0, 1), (0, 2), (1, 2), (0, 1, 2)]]).mean(0)
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="activation"):
        FlipTTAInferer(SimpleInferer(), activation="relu")


def test_with_roi_appends_the_fov_and_subject_names():
    out = [{"pred": torch.ones(1, 2, 2), "label": torch.zeros(1, 2, 2), "fov": torch.tensor([[[255.0, 0], [1, 0]]])}]
    pred, label = with_roi("fov")(out)
    assert label[0].shape == (2, 2, 2) and label[0][1].tolist() == [[1, 0], [1, 0]]
    assert image_subject({"filename_or_obj": "/d/DRIVE/test/images/01_test.tif", "page": -1}) == "01_test"
    assert image_subject({"filename_or_obj": "/d/train-volume.tif", "page": torch.tensor(3)}) == "train-volume_03"
    fmt = case_name_formatter("drive")
    assert fmt({"filename_or_obj": "/x/21_training.tif"}, None)["subject"] == "21_training"


def test_load_datalist_keeps_a_release_test_split_out_of_training(tmp_path):
    """DRIVE's 20 test images are labelled; a bundle pointed at the folder must not train or select on them."""
    from edge_networks.data.synthetic.layouts2d import write_2d_dataset

    write_2d_dataset("fundus", "drive", tmp_path, cases=8, size=32, seed=0)
    dl = load_datalist("drive", str(tmp_path), check=False)
    names = [it["case_id"] for part in dl.values() for it in part]
    assert names and all(n.endswith("_training") for n in names)
    assert len(dl["validation"]) >= 1 and len(dl["training"]) >= 1
