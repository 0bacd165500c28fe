"""The output contract every edge network keeps (``nets.blocks.segmentation_and_edges``), tested once for all of
them through their bundles' small networks: one tensor, the segmentation channels first; in training the edge (and
deep-supervision) channels after them; in evaluation the segmentation alone, or with ``edges_in_eval`` the same
segmentation followed by the edge map; the scripted network returns the same."""

from __future__ import annotations

import pytest
import torch

from tests.helpers import has_edge_output, input_shape, read_json, small_parser

EDGE_NETWORKS = ["egcnn_brats", "boundary_aware_brats", "etnet_refuge", "banet_rim_one"]


@pytest.mark.parametrize("name", EDGE_NETWORKS)
def test_segmentation_then_edges_in_training_and_with_edges_in_eval(name):
    assert has_edge_output(name)
    torch.manual_seed(0)
    net = small_parser(name).get_parsed_content("network_def")
    seg_channels = read_json(name, "train.json")["out_channels"]
    x = torch.randn([2, *input_shape(name)[1:]])  # two: BatchNorm in training needs more than one value
    with torch.no_grad():
        train_out = net.train()(x)
        net.eval()
        net.edges_in_eval = False
        seg = net(x)
        net.edges_in_eval = True
        with_edges = net(x)
        scripted = torch.jit.script(net)(x)
    assert seg.shape[1] == seg_channels and seg.shape[2:] == x.shape[2:]
    assert train_out.shape[1] > seg_channels and train_out.shape[2:] == x.shape[2:]
    assert seg_channels < with_edges.shape[1] <= train_out.shape[1]
    torch.testing.assert_close(with_edges[:, :seg_channels], seg)  # the same segmentation, edges appended
    torch.testing.assert_close(scripted, with_edges)
