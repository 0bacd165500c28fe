"""Faults: real ``python -m monai.bundle`` processes killed with SIGKILL, a corrupt case, an unwritable folder.

Training killed mid-epoch, during validation and while a checkpoint is being written resumes with ``--resume true``
and ends equal to an uninterrupted run (the same epochs, best metric, ``model.pt`` and final weights). Inference
killed while writing a case leaves no truncated file, and ``--skip_existing true`` finishes the rest."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from monai.transforms import LoadImage

from edge_networks.bundle import find_resume_checkpoint
from tests.bundles.faults import prelude
from tests.helpers import SMALL, bundle_cli_chain, cli_overrides, config_path, layout, small_parser

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


# (fault point, first poisoned iteration) -> (what the error says, the newest epoch checkpoint left)
NAN_FAULTS = {
    # epoch 3's first iteration: its loss is NaN, no step is taken with it
    ("nan_loss", 5): ("training stopped: the loss is nan at epoch 3, iteration 1 of 2 (iteration 5 overall)", 2),
    # epoch 2's last step takes a NaN gradient: the weights are NaN when epoch 2's checkpoint is due
    ("nan_grad", 4): ("training stopped: after epoch 2 (iteration 4) the weights are not finite", 1),
}


@pytest.mark.parametrize("fault", list(NAN_FAULTS), ids=[f[0] for f in NAN_FAULTS])
def test_non_finite_loss_stops_training_and_keeps_the_last_finite_checkpoint(fault, brats_root, tmp_path):
    """A loss that turns NaN (or finite losses whose gradient is NaN) stops the bundle's training with an error that
    names the epoch and iteration, the last finite checkpoint and what to try; no checkpoint with NaN weights is
    written, and the newest checkpoint, the one ``--resume true`` loads, is the last finite epoch's."""
    name = "egcnn_brats"
    said, epoch = NAN_FAULTS[fault]
    root = tmp_path / "bundle"
    proc = bundle_cli_chain([["run", "training", "--config_file", config_path(name, "train.json"), "--bundle_root",
                              str(root), "--dataset_dir", str(brats_root), "--num_workers", "0",
                              *cli_overrides(SMALL[name]), "--batch_size", "1", "--epochs", str(EPOCHS),
                              "--val_interval", "1"]], prelude=prelude(*fault))
    log = proc.stdout + proc.stderr
    assert proc.returncode not in (0, -9), log[-3000:]
    assert "NonFiniteLossError" in log and said in log, log[-3000:]
    models = root / "models"
    newest = models / f"last_checkpoint_epoch={epoch}.pt"
    assert f"The last finite checkpoint is {newest}: `--resume true` continues from it." in log, log[-3000:]
    assert "--cpu_bf16 false" in log and "--learning_rate" in log
    assert find_resume_checkpoint(models) == str(newest)
    assert not list(models.glob(f"last_checkpoint_epoch={epoch + 1}.pt"))
    for path in models.glob("*.pt"):  # every checkpoint left (epoch, model.pt, model_last.pt) holds finite weights
        state = torch.load(path, map_location="cpu", weights_only=False)
        weights = state.get("model", state)
        assert all(torch.isfinite(v).all() for v in weights.values() if v.is_floating_point()), path.name


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


def _weights(name: str, root: Path) -> Path:
    (root / "models").mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(small_parser(name, "inference.json").get_parsed_content("network_def").state_dict(),
               root / "models" / "model.pt")
    return root


@pytest.mark.parametrize("name, ext", [("egcnn_brats", ".nii.gz"), ("cenet_em", ".png")])
def test_killed_inference_leaves_whole_files_and_a_rerun_finishes(name, ext, dataset_roots, tmp_path):
    data = dataset_roots[layout(name)]
    root = _weights(name, tmp_path / "bundle")
    common = ["run", "--config_file", config_path(name, "inference.json"), "--bundle_root", str(root),
              "--dataset_dir", str(data), "--num_workers", "0", "--cpu_bf16", "false", *cli_overrides(SMALL[name])]
    out, reference = tmp_path / "out", tmp_path / "reference"
    proc = bundle_cli_chain([[*common, "--output_dir", str(out)]], prelude=prelude("image_write", 2))
    assert proc.returncode == -9, proc.stderr[-2000:]
    written = sorted(out.glob(f"*_seg{ext}"))
    partial = [p for p in out.iterdir() if p.name.startswith(".")]
    # the first case whole, the second only as a hidden temporary, nothing truncated under an output's name
    assert len(written) == 1 and len(partial) == 1 and partial[0].name.endswith(ext), sorted(out.iterdir())
    first = written[0].stat().st_mtime_ns
    proc = bundle_cli_chain([[*common, "--output_dir", str(out), "--skip_existing", "true"],
                             [*common, "--output_dir", str(reference)]])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "--skip_existing: 1 of" in proc.stdout + proc.stderr
    assert written[0].stat().st_mtime_ns == first  # not segmented again
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in reference.iterdir())
    for ref in sorted(reference.glob(f"*_seg{ext}")):
        expected = LoadImage(image_only=True)(str(ref))
        np.testing.assert_array_equal(LoadImage(image_only=True)(str(out / ref.name)), expected, err_msg=ref.name)


def test_on_error_skip_segments_the_good_cases_and_reports_the_bad_one(brats_root, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(brats_root, data)
    bad = data / "BraTS2021_00001" / "BraTS2021_00001_flair.nii.gz"
    bad.write_bytes(bad.read_bytes()[:200])  # a download cut short
    root = _weights("egcnn_brats", tmp_path / "bundle")
    common = ["run", "--config_file", config_path("egcnn_brats", "inference.json"), "--bundle_root", str(root),
              "--dataset_dir", str(data), "--num_workers", "0", "--cpu_bf16", "false",
              *cli_overrides(SMALL["egcnn_brats"])]
    proc = bundle_cli_chain([[*common, "--output_dir", str(tmp_path / "out"), "--on_error", "skip"]])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "BraTS2021_00000_seg.nii.gz", "BraTS2021_00002_seg.nii.gz", "skipped_cases.json"]
    report = json.loads((tmp_path / "out" / "skipped_cases.json").read_text())
    assert report["to_segment"] == 2 and [s["case"] for s in report["skipped"]] == ["BraTS2021_00001"]
    assert any("BraTS2021_00001_flair.nii.gz" in fault for fault in report["skipped"][0]["faults"])
    # without the flag: the same folder fails before any case is segmented, the bad file named
    proc = bundle_cli_chain([[*common, "--output_dir", str(tmp_path / "strict")]])
    assert proc.returncode != 0 and "BraTS2021_00001_flair.nii.gz" in proc.stderr
    assert not (tmp_path / "strict").exists() or not list((tmp_path / "strict").iterdir())


def test_unwritable_output_or_full_disk_fails_at_the_start(brats_root, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    common = ["run", "training", "--config_file", config_path("egcnn_brats", "train.json"), "--dataset_dir",
              str(brats_root), "--epochs", "1", "--num_workers", "0", *cli_overrides(SMALL["egcnn_brats"])]
    proc = bundle_cli_chain([[*common, "--bundle_root", str(tmp_path / "b"), "--ckpt_dir", str(blocker / "models")]])
    assert proc.returncode != 0 and f"{blocker / 'models'}: output folder is not writable" in proc.stderr
    proc = bundle_cli_chain([[*common, "--bundle_root", str(tmp_path / "c"), "--min_free_mb", "1e12"]])
    assert proc.returncode != 0 and "MiB needed" in proc.stderr and "integrity check" not in proc.stderr
    assert not list((tmp_path / "c").rglob("*.pt"))
