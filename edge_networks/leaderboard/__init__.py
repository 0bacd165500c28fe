"""Head-to-head leaderboard: every registered method, trained through its bundle, against its plain baseline.

    edge-seg-leaderboard --task brats|kits|fundus_od [--difficulty hard] [--seeds 3] [--epochs 30] --out DIR
    edge-seg-leaderboard --task brats|fundus_od --smoke --out DIR     # under 3 minutes on 2 CPU cores

One synthetic dataset (the task's generator, ``--difficulty``), one split (``prepare_datalist``, seeded), and for
each method and seed the method's bundle configs with overrides (``train.json`` for training, ``inference.json`` on
the held-out cases) -- the same epochs, crops, seeds and precision for all; no second training loop. The held-out
cases are the release's labelled test images where the layout has them (ORIGA's Set B), else the validation split.

The package is split by job:

- :mod:`.registry`: the tasks and methods, read from data (``tasks/<task>.json``: a method is a bundle and its
  overrides; adding one is adding an entry);
- :mod:`.runner`: running and resuming (:func:`run_leaderboard`), the ``--small`` settings, cost measurement;
- :mod:`.scoring`: a held-out case's written maps against its ground truth by :mod:`edge_networks.metrics` (Dice,
  HD95 in mm -- pixels for 2D images --, boundary F-score at 1 and 2 voxels, an edge head's own F-score at 2
  voxels), and the paired bootstrap;
- :mod:`.report`: ``per_case.csv``, ``leaderboard.csv``, ``paired.csv``, ``leaderboard.md``, ``leaderboard.json``,
  ``leaderboard.png`` and ``montage.png``;
- :mod:`.cli`: the command line.
"""

from .cli import main
from .registry import METHOD_HAS_EDGES, METHODS, REGIONS, TASKS, Method, Task, load_task
from .report import plot_leaderboard, write_montage, write_tables
from .runner import PeakMemory, method_settings, run_leaderboard, small_settings, time_budget, workflow
from .scoring import case_outputs, paired_bootstrap, score_case

__all__ = ["Method", "Task", "METHODS", "TASKS", "METHOD_HAS_EDGES", "REGIONS", "load_task", "run_leaderboard",
           "workflow", "method_settings", "small_settings", "PeakMemory", "time_budget", "score_case",
           "case_outputs", "paired_bootstrap", "write_tables", "plot_leaderboard", "write_montage", "main"]
