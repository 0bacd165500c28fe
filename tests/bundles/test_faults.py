"""Training survives SIGKILL: a real ``python -m monai.bundle run training`` process is killed mid-epoch, during
validation and while a checkpoint is being written; ``--resume true`` then finishes the run, and the result equals an
uninterrupted run's (the same epochs, best metric, ``model.pt`` and final weights)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.bundles.faults import prelude
from tests.helpers import SMALL, bundle_cli_chain, cli_overrides, config_path, layout

EPOCHS = 3
# (fault point, n-th occurrence) -> the epoch whose checkpoint is the newest complete one when the process dies.
# Each training epoch here has 2 iterations (batch size 1, 2 training cases) and validation after every epoch.
KILLS = {
    ("train_iteration", 4): 1,  # the second iteration of epoch 2
    ("validation", 2): 1,  # epoch 2's validation
    ("checkpoint_write", 2): 1,  # epoch 2's checkpoint, half of it on disk
}


def _load_all(models: Path) -> dict[str, dict]:
    return {p.name: torch.load(p, map_location="cpu", weights_only=False) for p in sorted(models.glob("*.pt"))}


@pytest.mark.parametrize("name", ["egcnn_brats", "cenet_em"])
def test_killed_training_resumes_as_if_uninterrupted(name, dataset_roots, tmp_path):
    data = str(dataset_roots[layout(name)])
    common = ["run", "training", "--config_file", config_path(name, "train.json"), "--dataset_dir", data,
              "--num_workers", "0", *cli_overrides(SMALL[name]), "--batch_size", "1", "--epochs", str(EPOCHS),
              "--val_interval", "1"]
    roots = {kill: tmp_path / f"{kill[0]}_{kill[1]}" for kill in KILLS}
    for kill, root in roots.items():
        proc = bundle_cli_chain([[*common, "--bundle_root", str(root)]], prelude=prelude(*kill))
        assert proc.returncode == -9, f"{kill}: the process was not killed\n{proc.stderr[-2000:]}"
        models = root / "models"
        # whatever the moment of the kill, every *.pt there is complete, and the newest epoch is the expected one
        saved = _load_all(models)
        assert f"last_checkpoint_epoch={KILLS[kill]}.pt" in saved, sorted(saved)
        assert not any(f"epoch={e}" in n for n in saved for e in range(KILLS[kill] + 1, EPOCHS + 1)), sorted(saved)
        if kill[0] == "checkpoint_write":
            partial = [p for p in models.iterdir() if not p.name.endswith(".pt")]
            assert len(partial) == 1 and partial[0].stat().st_size > 0, "the cut-short write left no partial file"
    # one interpreter: the uninterrupted reference, then each killed run resumed with the same command + --resume
    proc = bundle_cli_chain([[*common, "--bundle_root", str(tmp_path / "reference")]]
                            + [[*common, "--bundle_root", str(root), "--resume", "true"] for root in roots.values()])
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = proc.stdout + proc.stderr
    # each resumed run started after the newest complete epoch (1 of 3, iteration 2): only epoch 2 is trained again
    assert log.count("last_checkpoint_epoch=1.pt: epoch 1, iteration 2") == len(KILLS), log[-3000:]
    reference = _load_all(tmp_path / "reference" / "models")
    for kill, root in roots.items():
        resumed = _load_all(root / "models")
        assert sorted(resumed) == sorted(reference), kill  # rotation kept the newest two, the partial file is gone
        assert sorted(p.name for p in (root / "models").iterdir()) == sorted(resumed), kill
        final, ref = resumed["model_last.pt"], reference["model_last.pt"]
        assert final["trainer"] == ref["trainer"], kill
        for key in ("best_metric", "best_metric_epoch"):
            assert final["training_state"][key] == pytest.approx(ref["training_state"][key], abs=1e-6), (kill, key)
        assert final["training_state"]["best_saver"] == ref["training_state"]["best_saver"], kill
        for file in ("model_last.pt", "model.pt"):
            weights, ref_weights = resumed[file], reference[file]
            weights, ref_weights = weights.get("model", weights), ref_weights.get("model", ref_weights)
            for k, v in ref_weights.items():
                torch.testing.assert_close(weights[k], v, rtol=0, atol=1e-6, msg=f"{kill} {file} {k}")
