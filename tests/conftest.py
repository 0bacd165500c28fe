"""Shared fixtures: tiny synthetic datasets in the real layouts, and the real scans in ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from edge_networks.data.synthetic import write_brats_dataset, write_kits_dataset

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("EDGE_SEG_SHARED_DATA", REPO.parent / "shared" / "data"))

TINY_BRATS = (40, 40, 28)
TINY_KITS = (16, 48, 48)


def shared_file(*parts: str) -> Path:
    """A file of ../shared/data, or skip the test with the reason."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real scan not available: {path} (set EDGE_SEG_SHARED_DATA to the shared data folder)")
    return path


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
