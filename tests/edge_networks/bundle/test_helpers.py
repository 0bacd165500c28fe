"""Helpers the bundle configs call."""

from __future__ import annotations

import pytest
import torch
from monai.bundle import ConfigParser
from monai.inferers import SimpleInferer, SlidingWindowInferer

from edge_networks import EGCNN
from edge_networks.bundle import AutocastInferer, case_name_formatter, flag, load_datalist, poly_lr, select_channel
from tests.helpers import REPO


def test_poly_lr_schedule():
    f = poly_lr(10, 0.9)
    assert f(0) == 1.0 and f(10) == 0.0
    assert f(5) == pytest.approx(0.5**0.9)


def test_autocast_inferer_bf16_close_to_float32_and_switchable():
    net = EGCNN(3, 4, 3, backbone_kwargs={"init_filters": 8}).eval()
    x = torch.randn(1, 4, 32, 32, 32)
    with torch.no_grad():
        ref = SimpleInferer()(x, net)
        off = AutocastInferer(SimpleInferer(), enabled=False)(x, net)
        bf16 = AutocastInferer(SlidingWindowInferer((16, 16, 16), overlap=0.0), enabled=True)(x, net)
        window = SlidingWindowInferer((16, 16, 16), overlap=0.0)
        plain_window = window(x, net)
    assert torch.equal(off, ref)
    assert bf16.dtype == torch.float32  # stitched and returned in float32
    assert not torch.equal(bf16, plain_window)  # autocast really ran: the same windows differ from float32
    assert (bf16 - plain_window).abs().max() < 0.1 * ref.abs().max()
    seen = []

    class Probe(torch.nn.Module):  # what the network sees: autocast on, and its convolutions computed in bf16
        def forward(self, t):
            seen.append((torch.is_autocast_enabled("cpu"), torch.nn.functional.conv3d(t, torch.ones(1, 4, 1, 1, 1))
                         .dtype))
            return t

    with torch.no_grad():
        AutocastInferer(SimpleInferer(), enabled=True)(x, Probe())
        AutocastInferer(SimpleInferer(), enabled=False)(x, Probe())
    assert seen == [(True, torch.bfloat16), (False, torch.float32)]


def test_case_name_formatter():
    per_case = case_name_formatter("kits19")
    assert per_case({"filename_or_obj": "/d/case_00007/imaging.nii.gz"}, None)["subject"] == "case_00007"
    single = case_name_formatter("decathlon")
    assert single({"filename_or_obj": "/d/imagesTr/BRATS_004.nii.gz"}, None)["subject"] == "BRATS_004"


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
