"""Packaging: ``pip install edge-seg`` without extras is enough for the bundle CLI, and the console scripts exist.

A fresh virtual environment per CI run would cost minutes, so the test simulates one: it computes, from the
installed distributions' metadata, the dependency closure of ``edge-seg`` without extras, then runs training,
evaluation and inference through ``python -m monai.bundle`` in a process where every module of a distribution
outside that closure fails to import (as it would in an environment built from ``install_requires`` alone).
"""

from __future__ import annotations

import csv
import importlib.metadata as md
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.helpers import REPO, SMALL, cli_overrides, config_path

# Runs in the child process before anything else: the path finder no longer finds the top-level modules of
# distributions outside ALLOWED, so they are absent as in an environment built without them (``import x`` raises
# ModuleNotFoundError and ``importlib.util.find_spec(x)`` returns None, which libraries use as a probe).
BLOCKER = """
import importlib.metadata as md, json, sys
from importlib.machinery import PathFinder
allowed = set(json.loads(sys.argv[1])) | {'pip', 'setuptools', 'wheel'}  # what a new venv has
owners = md.packages_distributions()
canon = lambda n: n.lower().replace('_', '-').replace('.', '-')
def blocked(name):
    top = name.partition('.')[0]
    dists = owners.get(top)
    return bool(dists) and top not in sys.stdlib_module_names and not any(canon(d) in allowed for d in dists)
class WithoutExtras:
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        return None if blocked(name) else PathFinder.find_spec(name, path, target)
    @classmethod
    def find_distributions(cls, *args, **kwargs):  # importlib.metadata: an absent distribution has no metadata
        return (d for d in PathFinder.find_distributions(*args, **kwargs) if canon(d.metadata['Name']) in allowed)
    @classmethod
    def invalidate_caches(cls):
        PathFinder.invalidate_caches()
sys.meta_path[:] = [WithoutExtras if f is PathFinder else f for f in sys.meta_path]
import runpy
for argv in json.loads(sys.argv[2]):
    sys.argv = ['monai.bundle', *argv]
    runpy.run_module('monai.bundle', run_name='__main__', alter_sys=True)
"""


def dependency_closure(dist: str = "edge-seg", extras: tuple[str, ...] = ()) -> set[str]:
    """Canonical names of ``dist`` and everything its ``Requires-Dist`` pulls in for ``extras``, recursively, as
    pip would install them (environment markers evaluated here, extras of dependencies followed)."""
    seen: set[str] = set()
    done: set[tuple[str, frozenset[str]]] = set()  # (distribution, extras) already expanded: cycles end here
    todo = [(dist, frozenset(extras))]
    while todo:
        name, wanted = todo.pop()
        key = canonicalize_name(name)
        if (key, wanted) in done:
            continue
        done.add((key, wanted))
        seen.add(key)
        for line in md.requires(name) or []:
            req = Requirement(line)
            envs = [{"extra": e} for e in wanted] or [{"extra": ""}]
            if req.marker is None or any(req.marker.evaluate(env) for env in envs):
                todo.append((req.name, frozenset(req.extras)))
    return seen


def _run_without_extras(allowed: set[str], runs: list[list[str]]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCKER, json.dumps(sorted(allowed)), json.dumps(runs)],
                          capture_output=True, text=True, cwd=REPO, timeout=600)


def test_install_requires_names_the_cli_dependencies():
    base = dependency_closure()
    assert {"monai", "torch", "pytorch-ignite", "fire", "nibabel"} <= base
    assert "monailabel" not in base and "pytest" not in base  # extras stay extras
    assert "monailabel" in dependency_closure(extras=("label",))


def test_training_evaluation_inference_need_no_extras(brats_root, tmp_path):
    small = cli_overrides({**SMALL["egcnn_brats"], "num_workers": 0})
    common = ["--bundle_root", str(tmp_path), "--dataset_dir", str(brats_root), *small]
    runs = [
        ["run", "training", "--config_file", config_path("egcnn_brats", "train.json"), "--epochs", "1",
         "--val_interval", "1", *common],
        ["run", "--config_file", config_path("egcnn_brats", "train.json", "evaluate.json"), *common],
        ["run", "--config_file", config_path("egcnn_brats", "inference.json"), "--output_dir", str(tmp_path / "p"),
         *common],
    ]
    proc = _run_without_extras(dependency_closure(), runs)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert (tmp_path / "models" / "model.pt").exists() and (tmp_path / "eval" / "metrics.csv").exists()
    assert len(list((tmp_path / "p").glob("*_seg.nii.gz"))) == 3


def test_blocker_really_blocks(tmp_path):
    """Without fire in the closure, the bundle CLI fails the way a bare install did before fire was required."""
    proc = _run_without_extras(dependency_closure() - {"fire"}, [["run", "--config_file", str(tmp_path / "x.json")]])
    assert proc.returncode != 0
    assert "fire" in proc.stderr


SCRIPTS = {
    "edge-seg-prepare": "edge_networks.data.prepare:main",
    "edge-seg-check": "edge_networks.data.integrity:main",
    "edge-seg-synthetic": "edge_networks.data.synthetic.__main__:main",
    "edge-seg-generate": "edge_networks.bundle.generate:main",
    "edge-seg-pack": "edge_networks.serving.sharing:main",
    "edge-seg-demo": "edge_networks.demo:main",
    "edge-seg-leaderboard": "edge_networks.leaderboard:main",
    "edge-seg-reproduce": "edge_networks.reproduce:main",
    "edge-seg-new-bundle": "edge_networks.bundle.new_bundle:main",
    "edge-seg-report": "edge_networks.report:main",
}


def test_console_scripts_point_at_the_python_m_mains():
    """Each script is installed and calls the ``main`` that ``python -m <module>`` runs (the -m forms stay)."""
    eps = {ep.name: ep for ep in md.entry_points(group="console_scripts") if ep.name.startswith("edge-seg-")}
    assert {name: ep.value for name, ep in eps.items()} == SCRIPTS
    for name, ep in eps.items():
        assert (Path(sys.executable).parent / name).exists(), f"{name} not installed: pip install -e ."
        assert callable(ep.load())


def test_a_console_script_runs():
    """One script end to end (each costs an interpreter start with torch and MONAI, ~12 s here)."""
    proc = subprocess.run([str(Path(sys.executable).parent / "edge-seg-generate"), "--check"], capture_output=True,
                          text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]


def test_scripts_find_their_bundles_outside_a_checkout(tmp_path):
    """A plain (non-editable) install has no ``bundles/`` beside its package: the scripts take ``--bundles`` or
    ``EDGE_SEG_BUNDLES``, and without either say so instead of failing on a missing path. The package is installed
    with ``pip install --target`` (its dependencies come from this environment) and run from a folder outside the
    checkout."""
    target, work, source = tmp_path / "site", tmp_path / "work", tmp_path / "source"
    work.mkdir()
    # the package's sources alone (the build writes into its source folder, which must not be the checkout)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for name in ("edge_networks", "transforms"):
        shutil.copytree(REPO / name, source / name, ignore=ignore)
    for name in ("setup.cfg", "pyproject.toml", "README.md", "MANIFEST.in"):
        shutil.copy(REPO / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target",
                    str(target), str(source)], check=True, capture_output=True, cwd=work)
    env = {**os.environ, "PYTHONPATH": str(target)}
    env.pop("EDGE_SEG_BUNDLES", None)

    def run(*args, **extra):
        return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=work,
                              env={**env, **extra}, timeout=300)

    where = run("-c", "import edge_networks; print(edge_networks.__file__)")
    assert where.stdout.strip().startswith(str(target)), where.stdout + where.stderr
    missing = run("-m", "edge_networks.bundle.generate", "--check")
    assert missing.returncode == 2 and "--bundles DIR or set EDGE_SEG_BUNDLES" in missing.stderr, missing.stderr
    assert run("-m", "edge_networks.bundle.generate", "--check", "--bundles", str(REPO / "bundles")).returncode == 0
    assert run("-m", "edge_networks.bundle.generate", "--check", EDGE_SEG_BUNDLES=str(REPO / "bundles")).returncode \
        == 0
    demo = run("-m", "edge_networks.demo", "--help")
    assert demo.returncode == 0 and "--bundles" in demo.stdout, demo.stderr
    lb = run("-m", "edge_networks.leaderboard", "--task", "brats", "--out", str(work / "lb"), "--smoke")
    assert lb.returncode == 2 and "--bundles DIR or set EDGE_SEG_BUNDLES" in lb.stderr, lb.stderr[-2000:]
    # the smoke run itself: the methods (package data) and the bundles found, both methods trained and scored
    lb = run("-m", "edge_networks.leaderboard", "--task", "brats", "--out", str(work / "lb"), "--smoke", "--bundles",
             str(REPO / "bundles"))
    assert lb.returncode == 0, lb.stdout[-2000:] + lb.stderr[-2000:]
    with open(work / "lb" / "leaderboard.csv") as f:
        assert {row["method"] for row in csv.DictReader(f)} == {"segresnet", "egcnn_segresnet"}
