"""Running the leaderboard: one synthetic dataset, then for each method and seed the method's bundle trained with
``train.json`` and run with ``inference.json`` through MONAI's :class:`~monai.bundle.ConfigWorkflow` (no second
training loop), its cost measured, its written maps scored; a second call on the same folder resumes."""

from __future__ import annotations

import ctypes
import gc
import json
import os
import re
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..bundle.datalists import bundles_dir
from ..bundle.profiles import cpu_small
from ..data import prepare_datalist
from ..data.synthetic import write_layout_dataset
from .registry import METHODS, TASKS, Method, Task
from .report import write_montage, write_tables
from .scoring import case_outputs, score_case

__all__ = ["run_leaderboard", "workflow", "method_settings", "small_settings", "PeakMemory", "time_budget"]

def _configs(bundle: str) -> Path:
    return bundles_dir() / bundle / "configs"


def _network_part(method: Method) -> dict:
    """The inference keys of the method's network part (``_parts/networks/<network>/inference.json``): its edge-map
    chain and the switch that makes the network return its edge logits in evaluation."""
    if method.network is None:
        return {}
    path = bundles_dir() / "_parts" / "networks" / method.network / "inference.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no inference part for network {method.network!r} (the method's 'network')")
    return json.loads(path.read_text())


def workflow(method: Method, kind: str, root: Path, **extra):
    """The method's bundle as an initialised :class:`~monai.bundle.ConfigWorkflow`: ``kind`` ``"train"``
    (``train.json``) or ``"infer"`` (``inference.json``, with the network part's edge-map chain and the method's
    inference keys), ``bundle_root`` ``root``, the method's overrides, then ``extra``."""
    from monai.bundle import ConfigWorkflow

    configs = _configs(method.bundle)
    over = {**method.overrides, **(({**_network_part(method), **method.inference}) if kind == "infer" else {}),
            **extra}
    wf = ConfigWorkflow(config_file=str(configs / ("train.json" if kind == "train" else "inference.json")),
                        meta_file=str(configs / "metadata.json"), workflow_type=kind, bundle_root=str(root),
                        num_workers=0, **over)
    wf.initialize()
    return wf


def small_settings(method: Method, task: Task) -> dict:
    """``--small``: the method's bundle's ``cpu_small`` profile without its run length, restricted (``task.small ==
    "network"``) to the keys its network definition references (the CPU widths), then the method's ``small``."""
    profile = cpu_small(method.bundle)
    if task.small == "network":
        net = json.loads((_configs(method.bundle) / "train.json").read_text())["network_def"]
        refs = set(re.findall(r"@(\w+)", json.dumps(net)))
        profile = {k: v for k, v in profile.items() if k in refs}
    return {**profile, **method.small}


def method_settings(method: Method, task: Task, shape: Sequence[int], small: bool, extra: dict | None) -> dict:
    """Overrides of one method's runs, in order: ``--small``'s (:func:`small_settings`), the task's defaults for
    ``shape``, the user's ``extra``; a 2D network on slices (``roi``) then takes whole axial slices at the volume's
    in-plane size (``slices32``: resized up to the next multiple of 32, as CE-Net's encoder needs)."""
    over = {**(small_settings(method, task) if small else {}), **task.defaults(shape), **(extra or {})}
    if method.roi == "slices":
        over["roi_size"] = list(shape[:2])
    elif method.roi == "slices32":
        over["roi_size"] = [-(-s // 32) * 32 for s in shape[:2]]
    return over


class PeakMemory:
    """Peak memory of a phase, in MiB: on CUDA ``torch.cuda.max_memory_allocated`` (tensors only); on the CPU the
    peak resident set size of this process above its size when the phase began (after ``gc`` and glibc's
    ``malloc_trim``), sampled every ``interval`` s from ``/proc/self/statm`` (Linux; elsewhere ``nan``).

    >>> with PeakMemory() as mem:
    ...     x = np.ones((64, 1024, 1024), np.float32)  # 256 MiB
    >>> mem.mib > 200
    True
    """

    def __init__(self, interval: float = 0.02):
        self.interval, self.mib = interval, float("nan")

    @staticmethod
    def _rss() -> int | None:
        try:
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            return None

    def __enter__(self):
        import torch

        self._cuda = torch.cuda.is_available()
        if self._cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self._base = torch.cuda.memory_allocated()
            return self
        gc.collect()
        try:  # hand freed heap back to the system, so that an earlier phase's freed memory is not reused unseen
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass
        self._base = self._rss()
        self._peak = self._base
        self._stop = threading.Event()

        def sample():
            while not self._stop.wait(self.interval):
                rss = self._rss()
                if rss is not None:
                    self._peak = max(self._peak, rss)

        self._thread = threading.Thread(target=sample, daemon=True)
        if self._base is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc):
        import torch

        if self._cuda:
            torch.cuda.synchronize()
            self.mib = (torch.cuda.max_memory_allocated() - self._base) / 2**20
            return False
        if self._base is None:
            return False
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, self._rss() or 0)
        self.mib = (self._peak - self._base) / 2**20
        return False


def time_budget(wf, minutes: float) -> None:
    """Stop ``wf``'s trainer after the last epoch that fits in ``minutes`` (from the mean epoch time so far)."""
    from ignite.engine import Events

    start = time.perf_counter()

    def check(engine):
        elapsed = time.perf_counter() - start
        if elapsed * (engine.state.epoch + 1) / engine.state.epoch > minutes * 60:
            engine.terminate()

    wf.trainer.add_event_handler(Events.EPOCH_COMPLETED, check)


def run_leaderboard(task: str, out: str | Path, methods: Sequence[str], seeds: int = 1, epochs: int = 10,
                    cases: int = 16, shape: Sequence[int] | None = None, difficulty: str = "easy",
                    small: bool = False, extra: dict | None = None, minutes: float | None = None,
                    montage: bool = True, val_fraction: float | None = None) -> dict:
    """Train and score ``methods`` on one synthetic ``task`` dataset; write the tables, the plot and the montage;
    return the summary.

    Args:
        task: a key of ``TASKS`` (``"brats"``, ``"kits"``, ``"fundus_od"``).
        out: output folder (the data, every run, and the tables).
        methods: entries of ``METHODS[task]``.
        seeds: seeds 0 .. seeds - 1 per method (the split and the data do not change with it).
        epochs: training epochs, the same for every method; with ``minutes`` the most any method may run.
        cases: synthetic cases generated (split by ``prepare_datalist``: the validation part is held out).
        shape: data shape (default: the task's).
        difficulty: the generator's ``"easy"`` or ``"hard"`` mode.
        small: narrow networks (:func:`small_settings`).
        extra: further overrides for every method (for example ``roi_size``).
        minutes: a training time budget per method and seed instead of a fixed epoch count: each stops after the
            last epoch that fits, and the table says how many epochs it reached.
        montage: write ``montage.png`` (one held-out case segmented by every method, seed 0).
        val_fraction: the held-out fraction of the cases (default: the layout's, 0.2).

    Raises:
        ValueError: an unknown method, a shape of the wrong length, or ``out`` holding a leaderboard with other
            settings.
    """
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    unknown = set(methods) - set(METHODS[task])
    if unknown:
        raise ValueError(f"unknown {task} method(s) {sorted(unknown)}; registered: {sorted(METHODS[task])}")
    data = out / "data"
    t = TASKS[task]
    shape = tuple(shape or t.shape)
    if len(shape) != t.spatial_dims:
        raise ValueError(f"{task}: shape {list(shape)} needs {t.spatial_dims} values "
                         f"({'height, width' if t.generator else 'x, y, z'})")
    # a second call on the same folder resumes: the data is kept, finished runs (run.json) are not trained again
    setting = {"task": task, "cases": cases, "shape": list(shape), "difficulty": difficulty, "epochs": epochs,
               "small": small, "extra": extra or {}, "minutes": minutes, "val_fraction": val_fraction}
    setting = json.loads(json.dumps(setting))  # as saved: tuples become lists
    saved = out / "setting.json"
    if saved.is_file() and json.loads(saved.read_text()) != setting:
        raise ValueError(f"{out} holds a leaderboard with other settings ({saved}: {saved.read_text().strip()}); "
                         "use a new --out folder")
    if not saved.is_file() or not (out / "datalist.json").is_file():
        write_layout_dataset(t.layout, data, cases, shape, seed=0, difficulty=difficulty)
        saved.write_text(json.dumps(setting))
    datalist = prepare_datalist(t.layout, data, out / "datalist.json", seed=0, val_fraction=val_fraction)
    # scored on the release's labelled test images where it has them (ORIGA's Set B, the papers' test split), else on
    # the validation cases (which, then, also pick nothing: one validation at the end of training)
    held_out = [it for it in datalist.get("testing", []) if "label" in it] or datalist["validation"]
    rows, info = [], {}
    for name in methods:
        method = METHODS[task][name]
        over = method_settings(method, t, shape, small, extra)
        for seed in range(seeds):
            root = out / "runs" / f"{name}_seed{seed}"
            done = root / "run.json"
            if done.is_file():
                info.setdefault(name, []).append(json.loads(done.read_text()))
            else:
                info.setdefault(name, []).append(_train_and_infer(method, root, data, out, held_out, epochs, seed,
                                                                  over, minutes))
                done.write_text(json.dumps(info[name][-1]))
            for item in held_out:
                pred, edge = case_outputs(root / "pred", item, t)
                rows.append({"method": name, "seed": seed, "case": item["case_id"],
                             **score_case(method, task, pred, item, edge if method.has_edges else None)})
    info = {name: {k: (float(np.median([r[k] for r in runs])) if k != "params" else runs[0][k]) for k in runs[0]}
            for name, runs in info.items()}
    summary = write_tables(task, out, methods, rows, info, epochs, seeds, difficulty, minutes)
    if montage and held_out:
        write_montage(task, out, methods, held_out[0])
    return summary


def _train_and_infer(method: Method, root: Path, data: Path, out: Path, held_out: list, epochs: int, seed: int,
                     over: dict, minutes: float | None) -> dict:
    """One run: train through the bundle's ``train.json``, segment ``held_out`` with ``inference.json`` (the edge
    head's map written too where the method has one); returns the run's cost (parameters, epochs reached,
    s/iteration, s/volume, peak memory)."""
    t0 = time.perf_counter()
    wf = workflow(method, "train", root, dataset_dir=str(data), data_list_file_path=str(out / "datalist.json"),
                  epochs=epochs, val_interval=epochs, seed=seed, **over)
    params = sum(p.numel() for p in wf.network_def.parameters())
    if minutes:
        time_budget(wf, minutes)
    with PeakMemory() as train_mem:  # the training loop and its validation
        wf.run()
        reached = int(wf.trainer.state.epoch)
        if reached < epochs:  # stopped by the budget: the one validation saves model.pt
            wf.parser.get_parsed_content("validate#evaluator").run(reached)
    iterations = int(wf.trainer.state.iteration)
    wf.finalize()
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    wf = workflow(method, "infer", root, output_dir=str(root / "pred"), save_edges=method.has_edges,
                  datalist=[{k: it[k] for k in ("image", "page") if k in it} for it in held_out], **over)
    with PeakMemory() as infer_mem:
        wf.run()
    wf.finalize()
    infer_s = (time.perf_counter() - t0) / max(len(held_out), 1)
    return {"params": params, "epochs": reached, "s_per_iteration": train_s / max(iterations, 1),
            "s_per_volume": infer_s, "train_peak_mib": train_mem.mib, "infer_peak_mib": infer_mem.mib}
