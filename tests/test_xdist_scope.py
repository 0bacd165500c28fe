"""The work units of ``make test``'s pytest-xdist scheduler (``tests/conftest.py``): a bundle's chain and sharing
tests share one worker, so their module fixtures are made once."""

from __future__ import annotations

from tests.conftest import CHAIN_TESTS, xdist_scope


def test_one_bundles_chain_tests_are_one_unit_and_bundles_are_not_mixed():
    units = {xdist_scope(f"tests/bundles/test_bundles.py::{t}[{n}]") for t in CHAIN_TESTS for n in ("cenet_drive",)}
    assert units == {"chain-cenet_drive"}
    assert xdist_scope(f"tests/bundles/test_bundles.py::{CHAIN_TESTS[0]}[egcnn_kits]") == "chain-egcnn_kits"


def test_sharing_tests_group_by_bundle_and_other_tests_stand_alone():
    assert xdist_scope("tests/bundles/test_sharing.py::test_torchscript_and_onnx_equal_eager[banet_isic]") \
        == xdist_scope("tests/bundles/test_sharing.py::test_packed_bundle_segments_with_monai_only[banet_isic]") \
        == "sharing-banet_isic"
    for nodeid in ("tests/bundles/test_bundles.py::test_two_training_iterations[cenet_drive]",
                   "tests/bundles/test_sharing.py::test_pack_refuses_a_bundle_without_weights",
                   "tests/test_packaging.py::test_a_console_script_runs"):
        assert xdist_scope(nodeid) == nodeid
