"""The leaderboard end to end (``--smoke``: SegResNet vs EG-CNN through the bundle configs) and its statistics."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image

from edge_networks.leaderboard import (
    METHOD_HAS_EDGES,
    METHODS,
    PeakMemory,
    main,
    method_settings,
    paired_bootstrap,
    plot_leaderboard,
    run_leaderboard,
    small_settings,
    time_budget,
)


def test_paired_bootstrap():
    assert paired_bootstrap([0.1, 0.1, 0.1]) == pytest.approx((0.1, 0.1, 0.1))
    mean, lo, hi = paired_bootstrap([0.0, 0.2, float("nan"), 0.1, 0.3])
    assert mean == pytest.approx(0.15) and lo < mean < hi and lo >= 0.0 and hi <= 0.3
    assert np.isnan(paired_bootstrap([float("nan")])[0])


def test_every_edge_method_has_a_registered_baseline():
    for task, methods in METHODS.items():
        for name, m in methods.items():
            assert m.baseline is None or m.baseline in methods, (task, name)
        assert any(m.baseline for m in methods.values()), task


def test_smoke_run_trains_scores_and_compares(tmp_path):
    assert main(["--task", "brats", "--smoke", "--out", str(tmp_path)]) == 0
    with open(tmp_path / "leaderboard.csv") as f:
        table = list(csv.DictReader(f))
    assert [(r["method"], r["region"]) for r in table] == [
        (m, r) for m in ("segresnet", "egcnn_segresnet") for r in ("WT", "TC", "ET")]
    for r in table:
        assert 0.0 <= float(r["dice"]) <= 1.0 and float(r["hd95_mm"]) >= 0.0 and 0.0 <= float(r["bf2"]) <= 1.0
        assert float(r["s_per_iteration"]) > 0 and float(r["s_per_volume"]) > 0
        assert int(float(r["epochs"])) == 2
        assert float(r["train_peak_mib"]) >= 0.0 and float(r["infer_peak_mib"]) >= 0.0
    for r in table:  # the edge head's own F-score: only where there is an edge head
        edge_bf = float(r["edge_bf2"])
        assert (0.0 <= edge_bf <= 1.0) if r["method"] == "egcnn_segresnet" else np.isnan(edge_bf), r
    params = {r["method"]: int(r["params"]) for r in table}
    assert params["egcnn_segresnet"] > params["segresnet"], "the edge stream adds parameters"
    datalist = json.loads((tmp_path / "datalist.json").read_text())
    with open(tmp_path / "per_case.csv") as f:
        per_case = list(csv.DictReader(f))
    assert {r["case"] for r in per_case} == {it["case_id"] for it in datalist["validation"]}
    with open(tmp_path / "paired.csv") as f:
        paired = list(csv.DictReader(f))
    assert [(p["method"], p["baseline"]) for p in paired] == [("egcnn_segresnet", "segresnet")] * 3
    diffs = [float(a["WT/dice"]) - float(b["WT/dice"]) for a in per_case if a["method"] == "egcnn_segresnet"
             for b in per_case if b["method"] == "segresnet" and b["case"] == a["case"]]
    assert float(paired[0]["dice_diff"]) == pytest.approx(np.mean(diffs), abs=1e-9)
    assert "| egcnn_segresnet | segresnet | WT |" in (tmp_path / "leaderboard.md").read_text()
    # the montage: a title row (image, ground truth), then one row per method; EG-CNN's has its edge map too
    montage = np.asarray(Image.open(tmp_path / "montage.png"))
    tile = 2 * 40  # 40x40 axial slices at scale 2
    assert montage.shape[0] == 3 * (tile + 16) and montage.shape[1] == 2 * (tile + 2)
    assert Image.open(tmp_path / "leaderboard.png").size[0] >= 560


def _summary(table):
    return {"task": "brats", "difficulty": "hard", "epochs": 5, "minutes": None, "seeds": 1, "table": table}


def test_plot_bar_heights_and_colours(tmp_path):
    nan = float("nan")
    rows = [{"method": "segresnet", "region": "WT", "dice": 0.5, "dice_std": nan, "bf2": nan},
            {"method": "egcnn_segresnet", "region": "WT", "dice": 0.25, "dice_std": nan, "bf2": nan}]
    img = np.asarray(Image.open(plot_leaderboard(_summary(rows), tmp_path / "p.png")).convert("RGB"))
    plot_h = 260  # plot_leaderboard's Dice axis: 0 to 1 over 260 pixels

    def tallest(colour):
        mask = np.all(img == colour, axis=-1)
        return int(mask.sum(axis=0).max())

    assert abs(tallest((160, 160, 160)) - 0.5 * plot_h) <= 2  # plain backbone: grey, Dice 0.5
    assert abs(tallest((70, 120, 200)) - 0.25 * plot_h) <= 2  # edge method: blue, Dice 0.25


def test_peak_memory_sees_an_allocation():
    with PeakMemory(interval=0.005) as mem:
        x = np.ones((64, 1024, 1024), np.float32)  # 256 MiB, touched
        x += 1
        del x
    assert 200 < mem.mib < 400
    with PeakMemory(interval=0.005) as idle:
        sum(range(1000))
    assert idle.mib < 32


def test_time_budget_stops_after_the_last_epoch_that_fits():
    import time
    from types import SimpleNamespace

    from ignite.engine import Engine

    engine = Engine(lambda e, b: time.sleep(0.05))
    time_budget(SimpleNamespace(trainer=engine), minutes=0.6 / 60)  # 0.6 s; epochs take 0.1 s
    t0 = time.perf_counter()
    engine.run(range(2), max_epochs=100)
    assert 3 <= engine.state.epoch <= 6 and time.perf_counter() - t0 < 0.75


def test_unknown_method_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown brats method"):
        run_leaderboard("brats", tmp_path, ["resnet50"])


def test_cli_overrides_reach_every_method(monkeypatch, tmp_path):
    import edge_networks.leaderboard.cli as cli

    seen = {}
    monkeypatch.setattr(cli, "run_leaderboard", lambda *a, **k: seen.update(k))
    assert main(["--task", "kits", "--out", str(tmp_path), "--roi-size", "32", "32", "16",
                 "--set", "spacing=[3.0,3.0,4.5]", "num_samples=1", "cache=none"]) == 0
    assert seen["extra"] == {"roi_size": [32, 32, 16], "spacing": [3.0, 3.0, 4.5], "num_samples": 1, "cache": "none"}
    provenance = json.loads((tmp_path / "provenance.json").read_text())  # what the results page shows
    assert provenance["command"].startswith("edge-seg-leaderboard --task kits --out ")
    assert provenance["command"].endswith("--roi-size 32 32 16 --set 'spacing=[3.0,3.0,4.5]' num_samples=1 cache=none")
    assert provenance["date"] and provenance["machine"]["cores"] >= 1
    with pytest.raises(SystemExit):
        main(["--task", "kits", "--out", str(tmp_path), "--set", "spacing"])


def _nifti(array, path):
    import nibabel as nib

    nib.save(nib.Nifti1Image(array, np.diag([1.0, 1.0, 1.0, 1.0])), str(path))
    return path


def test_edge_head_score_tells_a_boundary_from_a_blob(tmp_path):
    from scipy import ndimage

    from edge_networks.metrics import score_edge_head

    zz, yy, xx = np.mgrid[:40, :40, :40]
    ball = (zz - 20) ** 2 + (yy - 20) ** 2 + (xx - 20) ** 2 <= 12 ** 2
    label = _nifti(ball.astype(np.uint8) * 2, tmp_path / "seg.nii.gz")  # a WT-only (oedema) tumour
    thin = ball & ~ndimage.binary_erosion(ball)
    boundary = score_edge_head(_nifti(thin.astype(np.float32), tmp_path / "thin.nii.gz"), label, regions=("WT",))
    assert boundary["thin_bf1"] == pytest.approx(1.0) and boundary["interior"] == 0.0
    assert boundary["thickness"] == pytest.approx(1.0)
    blob = score_edge_head(_nifti(ball.astype(np.float32), tmp_path / "blob.nii.gz"), label, regions=("WT",))
    assert blob["interior"] > 0.4 and blob["thin_bf2"] < 0.8 and blob["thickness"] > 5
    # the share of the tumour covered: all of it for the blob, the boundary's share for the boundary
    assert blob["fill"] == 1.0 and boundary["fill"] == pytest.approx(thin.sum() / ball.sum())
    assert boundary["target_fill"] == blob["target_fill"] < 0.5
    # the tumour's core (off the target): all called edge by the blob, none by the boundary
    assert blob["core_fp"] == 1.0 and boundary["core_fp"] == 0.0
    # against the Sobel target (either side of the boundary): the thin boundary is within 2 voxels of all of it
    assert boundary["bf2"] == pytest.approx(1.0) and blob["bf2"] < boundary["bf2"]


def test_time_budget_run_validates_saves_scores_and_resumes(tmp_path):
    """``--minutes``: the run stops after the first epoch, still validates once (which writes model.pt) and is
    scored; the table says how many epochs it reached. A second call on the folder resumes: finished runs are
    scored again, not retrained; other settings are refused."""
    kwargs = dict(epochs=5, cases=6, shape=(40, 40, 28), small=True, extra={"roi_size": [32, 32, 32]},
                  minutes=1e-4, montage=False)
    run_leaderboard("brats", tmp_path, ["segresnet"], **kwargs)
    model = tmp_path / "runs" / "segresnet_seed0" / "models" / "model.pt"
    assert model.is_file()
    with open(tmp_path / "leaderboard.csv") as f:
        table = list(csv.DictReader(f))
    assert {int(float(r["epochs"])) for r in table} == {1}
    assert "up to 5 epochs in 0.0001 min" in (tmp_path / "leaderboard.md").read_text()
    first = (model.stat().st_mtime_ns, (tmp_path / "leaderboard.csv").read_text())
    run_leaderboard("brats", tmp_path, ["segresnet"], **kwargs)
    assert (model.stat().st_mtime_ns, (tmp_path / "leaderboard.csv").read_text()) == first
    with pytest.raises(ValueError, match="other settings"):
        run_leaderboard("brats", tmp_path, ["segresnet"], **{**kwargs, "cases": 7})


@pytest.mark.parametrize(("name", "network", "channels"), [
    ("cenet_2d", "CENet", 1), ("egcnn_cenet_2d", "EGCNN", 2),
    ("etnet_2d_no_edge", "ETNet", 1), ("etnet_2d", "ETNet", 3), ("banet_2d_baseline", "BANet", 1),
    ("banet_2d", "BANet", 9)])
def test_2d_methods_train_on_the_slices(name, network, channels, brats_root, tmp_path):
    """CE-Net, EG-CNN on CE-Net, ET-Net (with and without its EGM) and BA-Net (with and without PEE, mini-MTL and
    CFF) in 2D run through the boundary-aware bundle's slice pipeline: one training iteration, a finite loss, the
    segmentation channel (and the edge channels: one for EG-CNN, two for ET-Net's softmax edge head, BA-Net's four
    stage segmentations and four stage edges) out, the papers' ResNet widths."""
    from edge_networks.leaderboard import workflow

    method = METHODS["brats"][name]
    wf = workflow(method, "train", tmp_path, dataset_dir=str(brats_root), epochs=1, val_interval=5,
                   roi_size=[64, 64], num_samples=2, **{"train#trainer#epoch_length": 1})
    assert type(wf.network_def).__name__ == network
    assert sum(p.numel() for p in wf.network_def.parameters()) > 20_000_000
    wf.run()
    out = wf.trainer.state.output[0]
    assert out["pred"].shape == (channels, 64, 64) and np.isfinite(float(out["loss"]))
    wf.finalize()
    assert (name in METHOD_HAS_EDGES) == (channels > 1) == METHODS["brats"][name].has_edges


def test_every_task_pairs_an_edge_method_with_a_plain_baseline():
    """Each registered pair differs by the edges: the edge method is trained with edge supervision, its baseline
    is not (the plot's colours and the verdicts rest on this)."""
    for task, methods in METHODS.items():
        for name, m in methods.items():
            if m.baseline:
                assert m.has_edges and not methods[m.baseline].has_edges, (task, name)
    assert not METHODS["fundus_od"]["cenet"].has_edges and METHODS["fundus_od"]["egcnn_cenet"].has_edges


def test_the_disc_window_follows_the_photograph_size():
    """The paper's 800-pixel disc window of ORIGA's 2048 rows, scaled to the synthetic photographs."""
    from edge_networks.leaderboard import TASKS

    assert TASKS["fundus_od"].defaults((2048, 3072))["disc_crop_size"] == [800, 800]
    assert TASKS["fundus_od"].defaults((512, 768))["disc_crop_size"] == [200, 200]
    assert TASKS["brats"].defaults((96, 96, 64)) == {}


def _png(array, path):
    Image.fromarray(np.asarray(array, np.uint8)).save(path)
    return str(path)


def test_2d_scores_read_the_mask_through_the_layout_and_refuse_a_transposed_prediction(tmp_path):
    """A 2D task's prediction (0/255 PNG) against its ground truth (ORIGA's mask convention, >= 128): Dice of two
    20x20 squares shifted by 5 columns is 0.75, distances in pixels; a transposed mask is refused, not scored."""
    from edge_networks.leaderboard import score_case as _score

    gt, pred = np.zeros((40, 60), np.uint8), np.zeros((40, 60), np.uint8)
    gt[10:30, 10:30] = 250  # JPEG-like: not exactly 255
    pred[10:30, 15:35] = 255
    item = {"image": "unused.jpg", "label": _png(gt, tmp_path / "gt.png")}
    method = METHODS["fundus_od"]["unet"]
    out = _score(method, "fundus_od", _png(pred, tmp_path / "p_seg.png"), item)
    assert out["disc/dice"] == pytest.approx(0.75)
    assert out["disc/hd95_px"] == pytest.approx(5.0) and out["disc/bf2"] < 1.0
    same = _score(method, "fundus_od", _png(gt // 250 * 255, tmp_path / "same_seg.png"), item)
    assert same["disc/dice"] == 1.0 and same["disc/hd95_px"] == 0.0 and same["disc/bf1"] == 1.0
    with pytest.raises(ValueError, match="prediction of shape"):
        _score(method, "fundus_od", _png(pred.T, tmp_path / "t_seg.png"), item)


def test_2d_smoke_run_scores_the_release_test_set(tmp_path):
    """``--task fundus_od --smoke``: U-Net vs EG-CNN on U-Net through ``cenet_fundus_od`` on synthetic ORIGA,
    scored on the release's labelled test images (Set B), HD95 in pixels; the table's Dice is the Dice of the
    written PNG masks against the mask files, recomputed here from the files."""
    assert main(["--task", "fundus_od", "--smoke", "--out", str(tmp_path)]) == 0
    with open(tmp_path / "leaderboard.csv") as f:
        table = list(csv.DictReader(f))
    assert [(r["method"], r["region"]) for r in table] == [("unet", "disc"), ("egcnn_unet", "disc")]
    assert "hd95_px" in table[0] and int(float(table[0]["epochs"])) == 2
    assert "HD95 (px)" in (tmp_path / "leaderboard.md").read_text()
    params = {r["method"]: int(r["params"]) for r in table}
    assert params["egcnn_unet"] > params["unet"] > 1_000_000
    test_items = [it for it in json.loads((tmp_path / "datalist.json").read_text())["testing"] if "label" in it]
    with open(tmp_path / "per_case.csv") as f:
        per_case = list(csv.DictReader(f))
    assert len(test_items) >= 3 and {r["case"] for r in per_case} == {it["case_id"] for it in test_items}
    for r in per_case:
        item = next(it for it in test_items if it["case_id"] == r["case"])
        gt = np.asarray(Image.open(item["label"]).convert("L")) >= 128
        pred = np.asarray(Image.open(tmp_path / "runs" / f"{r['method']}_seed0" / "pred" / f"{r['case']}_seg.png"))
        assert pred.shape == gt.shape and set(np.unique(pred)) <= {0, 255}
        ref = 2 * (gt & (pred > 0)).sum() / max(gt.sum() + (pred > 0).sum(), 1)
        assert float(r["disc/dice"]) == pytest.approx(ref, abs=1e-6)
    with open(tmp_path / "paired.csv") as f:
        assert [(p["method"], p["baseline"], p["region"]) for p in csv.DictReader(f)] == [
            ("egcnn_unet", "unet", "disc")]
    # EG-CNN's edge head: its map written as an 8-bit PNG at the photograph's size, scored; none for the U-Net
    for r in table:
        edge_bf = float(r["edge_bf2"])
        assert (0.0 <= edge_bf <= 1.0) if r["method"] == "egcnn_unet" else np.isnan(edge_bf), r
    from transforms.image2d import output_stem

    pred_dir = tmp_path / "runs" / "egcnn_unet_seed0" / "pred"
    for item in test_items:  # each test image's own edge map, at its size
        edge = pred_dir / f"{output_stem(item['image'], item.get('page'))}_edge.png"
        gt = np.asarray(Image.open(item["label"]).convert("L"))
        assert np.asarray(Image.open(edge)).shape == gt.shape, edge
    assert not list((tmp_path / "runs" / "unet_seed0" / "pred").glob("*_edge*"))
    # the montage: image, ground truth, the two masks, EG-CNN's edge map -- two rows of at most four tiles
    width, height = Image.open(tmp_path / "montage.png").size
    assert 1.2 * height < width < 3 * height


def test_2d_edge_head_score_reads_the_png_map_through_the_layout(tmp_path):
    """A 2D edge map (8-bit PNG, probability x 255) against an ORIGA-style mask: the disc's thin boundary scores
    1 at one pixel with nothing inside, the filled disc is a blob; a transposed map is refused."""
    from scipy import ndimage

    from edge_networks.metrics import score_edge_head

    yy, xx = np.mgrid[:48, :64]
    disc = (yy - 24) ** 2 + (xx - 30) ** 2 <= 12 ** 2
    label = _png(disc * 250, tmp_path / "mask.png")
    thin = disc & ~ndimage.binary_erosion(disc)
    kw = {"regions": ("disc",), "convention": "disc", "layout": "origa"}
    boundary = score_edge_head(_png(thin * 255, tmp_path / "thin_edge.png"), label, **kw)
    assert boundary["thin_bf1"] == pytest.approx(1.0) and boundary["interior"] == 0.0
    assert boundary["bf2"] == pytest.approx(1.0)
    blob = score_edge_head(_png(disc * 200, tmp_path / "blob_edge.png"), label, **kw)  # probability 0.78
    assert blob["fill"] == 1.0 and blob["interior"] > 0.4 and blob["bf2"] < boundary["bf2"]
    assert blob["core_fp"] == 1.0 and boundary["core_fp"] == 0.0
    faint = score_edge_head(_png(thin * 100, tmp_path / "faint_edge.png"), label, **kw)  # probability 0.39
    assert np.isnan(faint["interior"]) and faint["fill"] == 0.0
    with pytest.raises(ValueError, match="edge map of shape"):
        score_edge_head(_png(thin.T * 255, tmp_path / "t_edge.png"), label, **kw)


@pytest.mark.parametrize(("name", "task", "expected"), [
    ("egcnn_cenet", "fundus_od", lambda x: torch.sigmoid(x[2:]).amax(0, keepdim=True)),
    ("etnet", "fundus_od", lambda x: torch.softmax(x[2:], 0)[1:2]),
    ("banet_3d", "kits", lambda x: torch.sigmoid(x[2:]).amax(0, keepdim=True)),
    ("egcnn_segresnet", "kits", lambda x: torch.sigmoid(x[3:]).amax(0, keepdim=True)),
])
def test_a_swapped_network_writes_its_edge_map_with_its_parts_chain(name, task, expected):
    """A method whose network is not its bundle's own takes the edge-map chain of its network part
    (``_parts/networks/<network>/inference.json``) at inference: the first ``out_channels`` channels stay the
    segmentation, the edge map is the maximum of the edge channels' sigmoids or a 2-class head's edge class. BA-Net
    on EG-CNN's KiTS bundle reads its one edge channel, not the bundle's skip of EG-CNN's background edge channel."""
    from monai.bundle import ConfigParser

    from edge_networks.leaderboard.runner import _configs, _network_part

    method = METHODS[task][name]
    parser = ConfigParser()
    parser.read_config(str(_configs(method.bundle) / "inference.json"))
    for k, v in {**method.overrides, **_network_part(method), **method.inference, "out_channels": 2}.items():
        parser[k] = v
    logits = torch.randn(2 + (2 if name == "etnet" else 3), 5, 6)
    data = {"pred": logits.clone()}
    assert parser["split_edges"] == "@edge_map"  # the common chain, its edge probability named by the part
    for i in range(3):
        data = parser.get_parsed_content(f"edge_map#{i}")(data)
    assert torch.equal(data["pred"], logits[:2])
    assert torch.allclose(data["edge"], expected(logits))


def test_task_files_are_checked_and_every_fault_listed(tmp_path):
    from edge_networks.leaderboard import load_task
    from edge_networks.leaderboard.registry import TASKS_DIR

    task = json.loads((TASKS_DIR / "brats.json").read_text())
    task["methods"]["egcnn_unet"]["baseline"] = "resnet"
    task["methods"]["unet"]["colour"] = "blue"
    task["task"]["smoke"]["methods"].append("nope")
    path = tmp_path / "brats.json"
    path.write_text(json.dumps(task))
    with pytest.raises(ValueError) as err:
        load_task(path)
    message = str(err.value)
    assert str(path) in message and "'colour'" in message and "'resnet'" in message and "'nope'" in message


def test_small_settings_come_from_the_bundles_cpu_small_profile():
    """``--small`` takes a 3D bundle's CPU widths from its ``cpu_small`` profile (the keys its network references,
    not its learning rate or crop), then the method's named ``small`` keys; a 2D image task takes the whole profile
    but its run length."""
    brats, fundus = METHODS["brats"], METHODS["fundus_od"]
    from edge_networks.leaderboard import TASKS

    assert small_settings(brats["segresnet"], TASKS["brats"]) == {"backbone_kwargs": {"init_filters": 8},
                                                                  "edge_channels": 8}
    assert small_settings(brats["unet"], TASKS["brats"])["backbone_kwargs"] == {"features": [8, 8, 16, 16, 32, 8]}
    assert small_settings(brats["vnet"], TASKS["brats"])["backbone_kwargs"] == {}
    assert small_settings(brats["boundary_aware_3d"], TASKS["brats"]) == {
        "features": [8, 16, 32, 64], "shape_channels": 8, "aspp_channels": 16}
    two_d = small_settings(fundus["unet"], TASKS["fundus_od"])
    assert two_d["optimizer_name"] == "adam" and two_d["roi_size"] == [128, 128] and "epochs" not in two_d
    # the task's and the user's settings come after; a 2D network on slices takes whole (CE-Net: /32) slices
    over = method_settings(brats["cenet_2d"], TASKS["brats"], (40, 40, 28), True, {"roi_size": [16, 16, 16]})
    assert over["roi_size"] == [64, 64]
    assert method_settings(fundus["unet"], TASKS["fundus_od"], (256, 384), True, {"roi_size": [64, 64]})[
        "roi_size"] == [64, 64]


def test_kits_edge_heads_are_scored_against_kidney_and_tumour_edges(tmp_path):
    """KiTS: the edge map (the bundles write the maximum of the kidney and tumour edge channels) is scored against
    the union of the kidneys and tumour Sobel-support edges: that union itself scores 1, the filled kidney
    less; a method without an edge head gets no edge score."""
    import torch

    from edge_networks.leaderboard import score_case as _score
    from transforms import label_to_edge

    zz, yy, xx = np.mgrid[:32, :32, :32]
    label = np.zeros((32, 32, 32), np.uint8)
    label[(zz - 16) ** 2 + (yy - 16) ** 2 + (xx - 16) ** 2 <= 10 ** 2] = 1
    label[(zz - 16) ** 2 + (yy - 16) ** 2 + (xx - 21) ** 2 <= 4 ** 2] = 2
    gt = _nifti(label, tmp_path / "case_00000.nii.gz")
    masks = torch.as_tensor(np.stack([label > 0, label == 2])[None])
    target = label_to_edge(masks, 3, mode="both", merge=True)[0, 0].numpy().astype(np.float32)
    pred = _nifti(label, tmp_path / "pred_seg.nii.gz")
    item = {"label": gt}
    exact = _score(METHODS["kits"]["egcnn_segresnet"], "kits", pred, item, _nifti(target, tmp_path / "e.nii.gz"))
    assert exact["edges/edge_bf2"] == pytest.approx(1.0) and exact["kidneys/dice"] == 1.0
    blob = _score(METHODS["kits"]["egcnn_segresnet"], "kits", pred, item,
                  _nifti((label > 0).astype(np.float32), tmp_path / "b.nii.gz"))
    assert blob["edges/edge_bf2"] < 0.95
    assert "edges/edge_bf2" not in _score(METHODS["kits"]["segresnet"], "kits", pred, item)


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_edge_target_is_the_union_of_both_sides_of_every_region_boundary(spatial_dims):
    from scipy import ndimage

    from edge_networks.metrics import edge_target

    g = np.indices((24,) * spatial_dims) - 12
    r = np.sqrt((g**2).sum(0))
    outer, inner = r <= 8, (r <= 4) & (g[0] > -2)  # nested regions, the inner one not a ball
    cube = np.ones((3,) * spatial_dims, bool)  # the Sobel kernel's support
    expected = np.zeros_like(outer)
    for m in (outer, inner):
        expected |= (m & ~ndimage.binary_erosion(m, cube)) | (ndimage.binary_dilation(m, cube) & ~m)
    got = edge_target([outer, inner])
    assert got.dtype == bool and got.shape == outer.shape
    np.testing.assert_array_equal(got, expected)
    assert not got[(12,) * spatial_dims] and not got[(0,) * spatial_dims]  # centre and far corner off it
