"""``edge_networks.demo``: the edge loss the main job trains with (the training itself is ``make run``)."""

import pytest

from edge_networks import demo


@pytest.mark.parametrize("extra,balanced", [([], "false"), (["--paper-edge-loss"], "true")])
def test_demo_trains_with_the_plain_edge_bce_unless_asked_for_the_papers(tmp_path, monkeypatch, extra, balanced):
    calls = []

    def stop_after_training(args, log, epochs=None):
        calls.append(list(args))
        raise SystemExit(0)

    monkeypatch.setattr(demo, "write_brats_dataset", lambda *a, **k: None)
    monkeypatch.setattr(demo, "prepare_datalist", lambda *a, **k: {"training": [], "validation": []})
    monkeypatch.setattr(demo, "_bundle", stop_after_training)
    with pytest.raises(SystemExit):
        demo.main(["--out", str(tmp_path), *extra])
    (train,) = calls
    assert train[:2] == ["run", "training"]
    assert train[train.index("--edge_bce_balanced") + 1] == balanced


def test_overlays_show_the_edge_map_beside_its_training_target(tmp_path, monkeypatch):
    import nibabel as nib
    import numpy as np

    from edge_networks.metrics import edge_target

    g = np.indices((20, 20, 12)) - np.array([10, 10, 6])[:, None, None, None]
    r = np.sqrt((g**2).sum(0))
    label = np.where(r <= 5, 2, 0) + np.where(r <= 2, 2, 0)  # oedema around an enhancing core (BraTS values 2, 4)
    affine = np.diag([1.0, 1.0, 1.0, 1.0])

    def save(a, name):
        nib.save(nib.Nifti1Image(a.astype(np.float32), affine), str(tmp_path / name))
        return str(tmp_path / name)

    item = {"case_id": "c", "label": save(label, "c_seg_gt.nii.gz"),
            "image": [save(np.random.default_rng(i).random(label.shape), f"c_{i}.nii.gz") for i in range(4)]}
    save(label, "c_seg.nii.gz")
    save((r <= 5).astype(np.float32) * 0.9, "c_edge.nii.gz")  # a filled-blob edge map
    rows = []
    monkeypatch.setattr(demo, "save_montage", lambda r, png, scale: rows.extend(r))
    demo._overlays([item], tmp_path, tmp_path / "o.png")
    ((title, tiles),) = rows
    assert title.endswith("edge probability | edge target") and len(tiles) == 6
    target = edge_target([label > 0, label == 4])[:, :, 6]  # z = the tumour's middle slice
    shown = np.ascontiguousarray(np.rot90(target)[:, ::-1])
    np.testing.assert_array_equal(tiles[5][..., 0] == 255, shown)
    centre = np.ascontiguousarray(np.rot90(r[:, :, 6] == 0)[:, ::-1])  # inside the core, off the target
    assert not shown[centre].any() and (tiles[4][..., 0][centre] > 0).all()  # the blob fills it, the target not


def test_training_prints_progress_with_the_time_left(tmp_path, monkeypatch, capsys):
    """Each finished epoch of the training process prints the time so far and an estimate of the time left."""
    lines = [f"2026 - ignite.engine.engine.SupervisedTrainer - INFO - Epoch[{k}] Complete. Time taken: 00:00:02.000\n"
             for k in (1, 2)] + ["2026 - INFO - Epoch[2] Metrics -- val_mean_dice: 0.5\n"]

    class FakeProcess:
        def __init__(self, *a, **k):
            self.stdout = iter(lines)

        def wait(self):
            return 0

    clock = iter([0.0, 60.0, 120.0, 121.0])
    monkeypatch.setattr(demo.subprocess, "Popen", FakeProcess)
    monkeypatch.setattr(demo.time, "perf_counter", lambda: next(clock))
    demo._bundle(["run", "training"], tmp_path / "train.log", epochs=4)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "training: epoch 1/4 done, 1.0 min so far, about 3.0 min left"
    assert out[1] == "training: epoch 2/4 done, 2.0 min so far, about 2.0 min left"
    assert "val_mean_dice: 0.5" in out[2]
    assert (tmp_path / "train.log").read_text() == "".join(lines)


@pytest.mark.parametrize("extra,epochs,shape", [([], demo.QUICK["epochs"], demo.QUICK["shape"]),
                                                 (["--long"], 80, [96, 96, 64]),
                                                 (["--long", "--epochs", "5"], 5, [96, 96, 64])])
def test_the_quick_run_is_the_default_and_long_the_earlier_one(tmp_path, monkeypatch, extra, epochs, shape):
    seen = {}
    monkeypatch.setattr(demo, "write_brats_dataset", lambda out, cases, shp, **k: seen.update(cases=cases, shape=shp))
    monkeypatch.setattr(demo, "prepare_datalist", lambda *a, **k: {"training": [], "validation": []})

    def stop(args, log, epochs=None):
        seen.update(epochs=epochs, roi=args[args.index("--roi_size") + 1])
        raise SystemExit(0)

    monkeypatch.setattr(demo, "_bundle", stop)
    with pytest.raises(SystemExit):
        demo.main(["--out", str(tmp_path), *extra])
    assert seen["epochs"] == epochs and list(seen["shape"]) == shape
    assert seen["roi"] == str((demo.LONG if extra else demo.QUICK)["roi_size"])
