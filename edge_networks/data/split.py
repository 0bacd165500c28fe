"""Deterministic train/validation splits and k folds, saved as MONAI datalist JSON so a run can be repeated."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import numpy as np

__all__ = ["split_datalist", "assign_folds", "save_datalist"]


def _permutation(items: Sequence[dict], seed: int) -> list[dict]:
    ordered = sorted(items, key=lambda it: it["case_id"])  # independent of scan order
    order = np.random.default_rng(seed).permutation(len(ordered))
    return [ordered[i] for i in order]


def split_datalist(items: Sequence[dict], val_fraction: float = 0.2, seed: int = 0) -> tuple[list[dict], list[dict]]:
    """Shuffle by ``seed`` and split into (training, validation); 80/20 by default, as EG-CNN used.

    Only labelled items are split; the same items and seed always give the same split. At least one case goes to
    each side when there are two or more. Items that all carry a ``group`` (the scan of a 2D slice) are split by
    whole groups, so no scan has slices on both sides (the validation side then holds about ``val_fraction``).
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    labelled = [it for it in items if "label" in it]
    n_val = int(round(len(labelled) * val_fraction))
    if len(labelled) >= 2:
        n_val = min(max(n_val, 1), len(labelled) - 1)
    groups = sorted({it["group"] for it in labelled if "group" in it})
    if len(groups) >= 2 and all("group" in it for it in labelled):
        # slices of one scan stay together: whole groups, in seeded order, until n_val items are validation
        order = [groups[i] for i in np.random.default_rng(seed).permutation(len(groups))]
        val_groups: set = set()
        taken = 0
        for g in order[:-1]:
            if taken >= n_val:
                break
            val_groups.add(g)
            taken += sum(it["group"] == g for it in labelled)
        val = [it for it in labelled if it["group"] in val_groups]
        train = [it for it in labelled if it["group"] not in val_groups]
    else:
        shuffled = _permutation(labelled, seed)
        val, train = shuffled[:n_val], shuffled[n_val:]
    return sorted(train, key=lambda it: it["case_id"]), sorted(val, key=lambda it: it["case_id"])


def assign_folds(items: Sequence[dict], num_folds: int = 5, seed: int = 0) -> list[dict]:
    """Copies of ``items`` with a ``"fold"`` key (0..num_folds-1), balanced and deterministic per seed."""
    if num_folds < 2:
        raise ValueError(f"num_folds must be >= 2, got {num_folds}")
    out = []
    for i, item in enumerate(_permutation(items, seed)):
        out.append({**item, "fold": i % num_folds})
    return sorted(out, key=lambda it: it["case_id"])


def save_datalist(path: str | os.PathLike, content: dict) -> None:
    """Write a datalist JSON atomically (a temporary file renamed into place)."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(content, f, indent=2)
    os.replace(tmp, path)
