"""``multi_gpu_train.json`` under ``torchrun --nproc_per_node 2`` on the CPU (gloo backend).

Both ranks train on their shard (DistributedSampler) and validate on theirs (MONAI's metrics all-gather the
scores); only rank 0 logs metrics and writes checkpoints (the other ranks' handlers are ``_disabled_``). CI runs
the representative 3D and 2D bundles; ``make test-all`` every bundle.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from edge_networks.data.synthetic import write_brats_dataset, write_kits_dataset
from edge_networks.data.synthetic.layouts2d import write_2d_dataset
from tests.helpers import (
    REPO,
    SMALL,
    TINY_2D,
    TINY_BRATS,
    TINY_KITS,
    bundle_params,
    cli_overrides,
    config_path,
    layout,
    small_parser,
)


@pytest.fixture(scope="module")
def ten_cases(tmp_path_factory):
    """Ten tiny labelled training cases per layout: the 80/20 split leaves two validation cases, one per rank."""
    brats = tmp_path_factory.mktemp("brats10")
    write_brats_dataset(brats, 10, TINY_BRATS, seed=3, progress=False)
    kits = tmp_path_factory.mktemp("kits10")
    write_kits_dataset(kits, 10, TINY_KITS, seed=3, progress=False)
    roots = {"brats2021": brats, "kits19": kits}
    for lay, (kind, _, size) in TINY_2D.items():  # 20 images: at least ten labelled training images per layout
        roots[lay] = tmp_path_factory.mktemp(f"{lay}10")
        write_2d_dataset(kind, lay, roots[lay], cases=20, size=size, seed=3)
    return roots


@pytest.mark.parametrize("name", bundle_params(slow_unless_representative=True))
def test_torchrun_two_processes_one_set_of_checkpoints(name, ten_cases, tmp_path):
    torchrun = Path(sys.executable).parent / "torchrun"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}  # the CPU path, gloo
    proc = subprocess.run(
        [str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "monai.bundle", "run",
         "--config_file", config_path(name, "train.json", "multi_gpu_train.json"), "--bundle_root", str(tmp_path),
         "--dataset_dir", str(ten_cases[layout(name)]), "--epochs", "2", "--val_interval", "1", "--num_workers", "0",
         *cli_overrides(SMALL[name])],
        capture_output=True, text=True, cwd=REPO, timeout=600, env=env)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    # both ranks ran both epochs to the end
    assert log.count("SupervisedTrainer - INFO - Engine run finished") == 2, log[-4000:]
    # every rank validated (its shard), one rank reported: the metrics line is rank 0's StatsHandler
    assert log.count("SupervisedEvaluator - INFO - Engine run finished") == 4
    assert log.count("Key metric:") == 2
    # rank 0 alone logs the training loss (StatsHandler of train#handlers): one line per iteration of its shard
    models = tmp_path / "models"
    assert sorted(p.name for p in models.iterdir()) == ["last_checkpoint_epoch=1.pt", "last_checkpoint_epoch=2.pt",
                                                        "model.pt", "model_last.pt"]
    # the best checkpoint is the bare network's state dict (DDP's "module." prefix removed), loadable strictly
    net = small_parser(name).get_parsed_content("network_def")
    net.load_state_dict(torch.load(models / "model.pt", map_location="cpu", weights_only=True))
    last = torch.load(models / "model_last.pt", map_location="cpu", weights_only=False)
    assert last["trainer"]["iteration"] == 2 * last["trainer"]["epoch_length"]
    assert log.count("train_loss:") == last["trainer"]["iteration"], "train loss logged by more than one rank"
    if name.startswith("egcnn"):  # 8 training cases, batch 1: each rank's shard is 4 cases
        assert last["trainer"]["epoch_length"] == 4
