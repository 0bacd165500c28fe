"""The leaderboard's tasks and methods, read from data: ``tasks/<task>.json`` beside this module.

Each file holds one task (its synthetic data, the label convention it is scored by, the ``--smoke`` setting, how
``--small`` narrows the networks) and its methods. A method is a bundle and the overrides that make it the method::

    "egcnn_unet": {"bundle": "egcnn_brats", "writes": "brats", "baseline": "unet",
                   "overrides": {"backbone": "unet"},
                   "small": {"backbone_kwargs": {"features": [8, 8, 16, 16, 32, 8]}}}

``bundle``: the bundle whose ``train.json`` / ``inference.json`` run it; ``overrides``: bundle keys set for training
and inference (the ablation switch, or another network and its loss in the bundle's pipeline); ``network``: the
network part (``bundles/_parts/networks/<network>``) whose ``inference.json`` writes the edge map, where the network
is not the bundle's own; ``inference``: keys set for inference only; ``small``: keys set on top of the bundle's
``cpu_small`` profile with ``--small``; ``writes``: the label convention of the written maps (``brats``, ``tc``,
``kits``, ``disc``: :func:`edge_networks.metrics.region_masks`); ``edges``: trained with edge supervision (default:
unless the overrides switch off ``edge_stream`` or ``edge_loss_weight``); ``baseline``: the method it is compared
with; ``roi``: ``slices`` (a 2D network on whole axial slices) or ``slices32`` (resized up to a multiple of 32, for
CE-Net's encoder). Adding a method is adding an entry.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..metrics import region_masks

__all__ = ["Method", "Task", "TASKS", "METHODS", "METHOD_HAS_EDGES", "REGIONS", "TASKS_DIR", "load_task"]

TASKS_DIR = Path(__file__).with_name("tasks")
_METHOD_KEYS = {"bundle", "network", "writes", "edges", "baseline", "roi", "overrides", "inference", "small"}
_WRITES = ("brats", "tc", "kits", "disc")


@dataclass(frozen=True)
class Method:
    """A leaderboard entry: a bundle with overrides, the label map it writes, and the entry it is compared with
    (the fields of a method in ``tasks/<task>.json``, see the module's docstring)."""

    bundle: str
    overrides: dict = field(default_factory=dict)
    baseline: str | None = None
    writes: str = "brats"
    edges: bool | None = None
    network: str | None = None
    inference: dict = field(default_factory=dict)
    small: dict = field(default_factory=dict)
    roi: str | None = None

    @property
    def has_edges(self) -> bool:
        """Trained with edge supervision (its edge head's map is written and scored)."""
        if self.edges is not None:
            return self.edges
        return bool(self.overrides.get("edge_stream", True) and self.overrides.get("edge_loss_weight", 1.0))


@dataclass(frozen=True)
class Task:
    """A leaderboard task: its synthetic data (the 3D writers, or the 2D ``generator`` of ``layout``), the label
    ``convention`` its ground truth is scored by, the default data ``shape`` (``(x, y, z)`` for volumes,
    ``(height, width)`` for 2D images; 2D distances are in pixels), the ``--smoke`` setting (``shape``, ``methods``,
    ``overrides``), and ``small``: what ``--small`` takes from a bundle's ``cpu_small`` profile -- ``"network"`` its
    keys that the network definition references (the CPU widths), ``"profile"`` all of it but the run length."""

    layout: str
    convention: str
    shape: tuple[int, ...]
    smoke: dict
    small: str = "network"
    generator: str | None = None
    disc_window: float | None = None  # the disc crop (``disc_crop_size``) as a fraction of the image height
    slice_axis: int = 2  # the montage's slicing axis of a volume (KiTS 2019 stores the slices first)

    def defaults(self, shape: Sequence[int]) -> dict:
        """Overrides every method gets on data of ``shape`` (before the user's)."""
        if not self.disc_window:
            return {}
        side = int(round(self.disc_window * shape[0]))
        return {"disc_crop_size": [side, side]}

    @property
    def regions(self) -> tuple[str, ...]:
        """The regions scored: those of the task's label convention (:func:`edge_networks.metrics.region_masks`)."""
        import numpy as np

        return tuple(region_masks(np.zeros(1, np.uint8), self.convention))

    @property
    def spatial_dims(self) -> int:
        return 2 if self.generator else 3

    @property
    def unit(self) -> str:
        return "px" if self.generator else "mm"


def load_task(path: str | Path) -> tuple[Task, dict[str, Method]]:
    """A task file's task and methods, checked: unknown keys, a baseline that is not a method, an unknown label
    convention are refused with the file named.

    Raises:
        ValueError: the file is not a valid task.
    """
    path = Path(path)
    data = json.loads(path.read_text())
    t = data["task"]
    task = Task(layout=t["layout"], convention=t["convention"], shape=tuple(t["shape"]), smoke=t["smoke"],
                small=t.get("small", "network"), generator=t.get("generator"), disc_window=t.get("disc_window"),
                slice_axis=t.get("slice_axis", 2))
    faults = []
    if task.small not in ("network", "profile"):
        faults.append(f"task small {task.small!r} is not 'network' or 'profile'")
    methods = {}
    for name, m in data["methods"].items():
        unknown = set(m) - _METHOD_KEYS
        if unknown:
            faults.append(f"method {name}: unknown key(s) {sorted(unknown)}; keys are {sorted(_METHOD_KEYS)}")
            continue
        if m.get("writes", "brats") not in _WRITES:
            faults.append(f"method {name}: writes {m['writes']!r} is not one of {_WRITES}")
        if m.get("roi") not in (None, "slices", "slices32"):
            faults.append(f"method {name}: roi {m['roi']!r} is not 'slices' or 'slices32'")
        methods[name] = Method(**m)
    for name, m in methods.items():
        if m.baseline is not None and m.baseline not in methods:
            faults.append(f"method {name}: baseline {m.baseline!r} is not a method of the task")
    for name in task.smoke.get("methods", []):
        if name not in methods:
            faults.append(f"smoke method {name!r} is not a method of the task")
    if faults:
        raise ValueError(f"{path}: " + "; ".join(faults))
    return task, methods


_LOADED = {p.stem: load_task(p) for p in sorted(TASKS_DIR.glob("*.json"))}
if not _LOADED:  # package data missing (an install built without MANIFEST.in)
    raise ImportError(f"no leaderboard task files (*.json) in {TASKS_DIR}; reinstall the package with its data")
TASKS: dict[str, Task] = {name: task for name, (task, _) in _LOADED.items()}
METHODS: dict[str, dict[str, Method]] = {name: methods for name, (_, methods) in _LOADED.items()}
# the methods trained with edge supervision (the plot colours them)
METHOD_HAS_EDGES = {name for task in METHODS.values() for name, m in task.items() if m.has_edges}
REGIONS = {name: task.regions for name, task in TASKS.items()}
