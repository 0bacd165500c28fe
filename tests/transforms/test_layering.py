"""The packages depend one way: ``transforms`` needs MONAI, NumPy and PyTorch (and the image libraries its readers
load), never ``edge_networks``, which builds on it."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import transforms
from tests.helpers import REPO


def test_transforms_does_not_import_edge_networks():
    modules = [f"transforms.{m.name}" for m in pkgutil.iter_modules(transforms.__path__)]
    assert {"transforms.edges", "transforms.labels", "transforms.io", "transforms.readers"} <= set(modules)
    code = ("import importlib, sys\n"
            f"for name in {modules!r}:\n    importlib.import_module(name)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'edge_networks'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True).stdout
    assert out.strip() == "[]", f"transforms imported {out.strip()}"


def test_the_data_package_takes_its_2d_label_conventions_from_transforms():
    from edge_networks.data import LAYOUTS

    assert {n: lay.label_convention for n, lay in LAYOUTS.items() if lay.spatial_dims == 2} == \
        transforms.LAYOUT_LABEL_CONVENTIONS
