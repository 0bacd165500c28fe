"""Shared fixtures: tiny synthetic datasets in the real layouts (helpers live in :mod:`tests.helpers`)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import torch

from edge_networks.data.synthetic import write_brats_dataset, write_kits_dataset
from edge_networks.data.synthetic.layouts2d import write_2d_dataset
from tests.helpers import TINY_2D, TINY_BRATS, TINY_KITS

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs one pytest-xdist worker per core: one thread each (and in the bundle processes they start),
    # so the workers do not fight over the cores
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def brats_root(tmp_path_factory) -> Path:
    """Three tiny BraTS-2021-layout cases (read-only for tests: copy before corrupting)."""
    root = tmp_path_factory.mktemp("brats2021")
    write_brats_dataset(root, 3, TINY_BRATS, seed=7, progress=False)
    return root


@pytest.fixture(scope="session")
def kits_root(tmp_path_factory) -> Path:
    """Two tiny KiTS19-layout cases."""
    root = tmp_path_factory.mktemp("kits19")
    write_kits_dataset(root, 2, TINY_KITS, seed=7, progress=False)
    return root


@pytest.fixture(scope="session")
def image2d_roots(tmp_path_factory) -> dict[str, Path]:
    """Tiny synthetic 2D datasets in the real releases' layouts, one per layout the 2D bundles train on (see
    ``TINY_2D``: generator, image count, size)."""
    roots = {}
    for layout, (kind, cases, size) in TINY_2D.items():
        roots[layout] = tmp_path_factory.mktemp(layout)
        write_2d_dataset(kind, layout, roots[layout], cases=cases, size=size, seed=7)
    return roots


@pytest.fixture(scope="session")
def dataset_roots(brats_root, kits_root, image2d_roots) -> dict[str, Path]:
    """The tiny dataset of each layout the bundles train on: ``dataset_roots[layout]``."""
    return {"brats2021": brats_root, "kits19": kits_root, **image2d_roots}


_PARAMETRIZED = re.compile(r"::(?P<test>[A-Za-z_0-9]+)\[(?P<params>[^\]]*)\]$")
CHAIN_TESTS = ("test_cli_training_writes_checkpoints_that_load_on_cpu", "test_cli_evaluate_writes_per_case_metrics",
               "test_cli_inference_keeps_geometry_and_writes_label_values", "test_cli_ckpt_export_equals_eager")


def xdist_scope(nodeid: str) -> str:
    """The unit of work that ``make test``'s pytest-xdist scheduler (``--dist loadgroup``) sends to one worker:
    one bundle's four chain tests (``chain-<bundle>``) or its sharing tests (``sharing-<bundle>``) go together, so
    that their module fixture (the CLI chain, the export) is made once, not once on each worker; any other test is
    its own unit.

    Read from the node id alone, because the scheduler sees nothing else: pytest-xdist 3.8's own
    ``xdist_group`` marks do not work with pytest 9.2, where the ``@group`` suffix it writes to ``item._nodeid`` is
    no longer part of the node id (the groups were silently ignored).

    >>> xdist_scope("tests/bundles/test_bundles.py::test_cli_evaluate_writes_per_case_metrics[cenet_drive]")
    'chain-cenet_drive'
    """
    match = _PARAMETRIZED.search(nodeid)
    if match:
        name = match["params"].split("-")[0]
        if match["test"] in CHAIN_TESTS:
            return f"chain-{name}"
        if "/test_sharing.py::" in nodeid:
            return f"sharing-{name}"
    return nodeid


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadgroup`` groups by :func:`xdist_scope` (units with more tests are sent first, pytest-xdist's
    default reordering); other ``--dist`` modes are left to pytest-xdist."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class BundleScopeScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return xdist_scope(nodeid)

    return BundleScopeScheduling(config, log)


def pytest_collection_modifyitems(session, config, items):
    """Run the command-line chain tests of ``tests/bundles/test_bundles.py`` grouped by bundle (all four checks of
    one bundle's chain, then the next bundle's), where they sat, so that the chain fixture can delete a finished
    bundle's checkpoints: twenty bundles' chains at once would need about 25 GB of temporary disk."""
    positions = [i for i, it in enumerate(items) if it.originalname in CHAIN_TESTS]
    if not positions:
        return
    chain = [items[i] for i in positions]
    chain.sort(key=lambda it: (it.callspec.params.get("name", ""), CHAIN_TESTS.index(it.originalname)))
    for i, it in zip(positions, chain):
        items[i] = it
