"""One small-scale setting per bundle for the end-to-end bundle tests: the bundles' own networks, narrower, with
small windows (what ``configs/cpu_small.json`` does, smaller still), so a CLI run takes seconds on a CPU."""

from __future__ import annotations

import json

from tests.conftest import REPO

_EGCNN = {"backbone_kwargs": {"init_filters": 8}, "edge_channels": 8, "roi_size": [32, 32, 32]}
_BA = {"features": [8, 16, 32, 64], "shape_channels": 8, "aspp_channels": 16}

SMALL: dict[str, dict] = {
    "egcnn_brats": _EGCNN,
    "egcnn_kits": {**_EGCNN, "spacing": [6.0, 6.0, 6.0], "num_samples": 1},
    "boundary_aware_brats": {**_BA, "roi_size": [48, 48]},
    "boundary_aware_brats3d": {**_BA, "roi_size": [32, 32, 32], "num_samples": 1},
}


def cli_overrides(over: dict) -> list[str]:
    """``--key value`` arguments for ``python -m monai.bundle`` (values as Python literals)."""
    out = []
    for k, v in over.items():
        out += [f"--{k}", repr(v)]
    return out


def input_shape(name: str) -> list[int]:
    """``(1, C, *roi_size)``: one network input window of bundle ``name`` at its small setting."""
    meta = json.loads((REPO / "bundles" / name / "configs" / "metadata.json").read_text())
    return [1, meta["network_data_format"]["inputs"]["image"]["num_channels"], *SMALL[name]["roi_size"]]
