"""``edge-seg-reproduce``: prepare, train, evaluate and report one bundle; ``--smoke`` on synthetic data for one 3D
and one 2D bundle, the resume after an interruption, and the errors raised before any training."""

from __future__ import annotations

import json

import pytest

from edge_networks.data.integrity import DatasetIntegrityError
from edge_networks.reproduce import compare_metrics, main, reproduce


def test_compare_metrics_pairs_names_within_the_paper_row():
    paper = {"note": "n", "a": {"et_dice": 0.75, "mean_dice": 0.8}, "b": {"et_dice": 0.5}, "auc": 0.9}
    rows = {c["metric"]: c for c in compare_metrics({"val_dice_et": 0.7, "val_hd95_et": 3.0}, paper, row="a")}
    assert rows["val_dice_et"]["paper_key"] == "a/et_dice" and rows["val_dice_et"]["difference"] == pytest.approx(-0.05)
    assert rows["val_hd95_et"]["paper"] is None
    # without a row only the ungrouped values are candidates: no arbitrary row is picked
    ungrouped = {c["metric"]: c for c in compare_metrics({"val_dice_et": 0.7, "val_auc": 0.8}, paper)}
    assert ungrouped["val_dice_et"]["paper"] is None and ungrouped["val_auc"]["paper"] == 0.9


def test_smoke_3d_reports_against_the_paper_row_and_resumes(tmp_path, capsys):
    out = tmp_path / "repro"
    assert main(["egcnn_brats", "--smoke", "--out", str(out)]) == 0
    report = json.loads((out / "reproduction.json").read_text())
    rows = {c["metric"]: c for c in report["comparison"]}
    assert rows["val_dice_et"]["paper_key"] == "segresnet_egcnn/et_dice" and rows["val_dice_et"]["paper"] == 0.768
    assert rows["val_dice_et"]["difference"] == pytest.approx(rows["val_dice_et"]["measured"] - 0.768, abs=1e-6)
    assert set(report["stages"]) == {"prepare", "train", "evaluate"}
    assert "monai.bundle run training" in report["stages"]["train"]["command"]
    assert report["software"]["monai"] and report["hardware"]["cores"]
    md = (out / "reproduction.md").read_text()
    assert "| val_dice_et |" in md and "segresnet_egcnn/et_dice" in md and "monai.bundle run training" in md
    # a second call keeps the finished stages; after an interrupted training it resumes from model_last.pt
    log = (out / "train.log").stat().st_mtime_ns
    reproduce("egcnn_brats", out, smoke=True)
    assert (out / "train.log").stat().st_mtime_ns == log
    for stage in ("train", "evaluate"):
        (out / "stages" / f"{stage}.json").unlink()
    again = reproduce("egcnn_brats", out, smoke=True)
    assert again["stages"]["train"]["resumed"] and "--resume true" in again["stages"]["train"]["command"]


def test_smoke_2d_lists_the_papers_values_it_cannot_pair(tmp_path):
    report = reproduce("cenet_drive", tmp_path / "repro", smoke=True)
    assert report["comparison"] and all(0.0 <= c["measured"] <= 1.0 for c in report["comparison"])
    assert report["paper_unmatched"]["auc"] == 0.9779  # the bundle measures AUC in and outside the FOV
    assert "cpu_small.json" in report["stages"]["train"]["command"]


def test_bad_requests_fail_before_any_training(tmp_path):
    with pytest.raises(ValueError, match="--dataset_dir"):
        reproduce("egcnn_brats", tmp_path / "a")
    with pytest.raises(ValueError, match="takes no pretrained_path"):
        reproduce("egcnn_brats", tmp_path / "b", smoke=True, pretrained_path="w.pth")
    with pytest.raises(FileNotFoundError, match="no such file"):
        reproduce("cenet_drive", tmp_path / "c", smoke=True, pretrained_path=str(tmp_path / "missing.pth"))
    with pytest.raises(FileNotFoundError, match="no bundle 'nope'"):
        reproduce("nope", tmp_path / "d", smoke=True)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises((DatasetIntegrityError, ValueError, FileNotFoundError)):
        reproduce("egcnn_brats", tmp_path / "e", dataset_dir=empty)
    assert not (tmp_path / "e" / "stages" / "train.json").exists() and not (tmp_path / "e" / "models").exists()
