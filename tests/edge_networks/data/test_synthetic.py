"""Synthetic BraTS/KiTS cases: loadable, nested, geometry as documented, deterministic, plausible contrasts."""

from __future__ import annotations

import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest
from monai.transforms import Compose, EnsureChannelFirstd, LoadImaged, Orientationd
from scipy import ndimage

from edge_networks.data import build_datalist, verify_datalist
from edge_networks.data.synthetic import (
    load_brain_background,
    load_ct_background,
    make_brats_case,
    make_kits_case,
    write_brats_dataset,
    write_kits_dataset,
)
from edge_networks.data.synthetic.brats import BRATS_FOV_MM
from tests.helpers import REPO, TINY_BRATS, TINY_KITS, shared_file
from transforms import ConvertToBratsRegionsd, ConvertToKitsRegionsd


def test_brats_cases_load_nested_and_check(brats_root):
    items = build_datalist("brats2021", brats_root)
    good, bad = verify_datalist(items, "brats2021")
    assert len(good) == 3 and not bad
    load = Compose([LoadImaged(["image", "label"], image_only=True), EnsureChannelFirstd(["image", "label"]),
                    ConvertToBratsRegionsd("label")])
    for item in items:
        d = load(item)
        assert d["image"].shape == (4, *TINY_BRATS)
        tc, wt = d["label"][0].bool().numpy(), d["label"][1].bool().numpy()
        assert wt.sum() > 0 and tc.sum() > 0
        # spatially nested: the core is enclosed by the whole tumour (no core voxel touches non-tumour tissue)
        assert (ndimage.binary_dilation(tc) <= wt).all()
        seg = np.asarray(nib.load(item["label"]).dataobj)
        assert set(np.unique(seg)) <= {0, 1, 2, 4}
        brain = np.asarray(nib.load(item["image"][1]).dataobj) > 0
        assert not (seg[~brain] > 0).any()  # tumour inside the (skull-stripped) brain


def test_tumour_compartments_nested():
    """The generator's compartments: ET and necrosis partition TC, TC lies inside WT away from its border."""
    from edge_networks.data.synthetic.brats import _phantom_tissues, _tumour
    from edge_networks.data.synthetic.fields import Grid

    for seed in range(4):
        rng = np.random.default_rng(seed)
        grid = Grid((64, 64, 42), (3.75, 3.75, 3.7))
        brain, tissue = _phantom_tissues(grid, rng)
        t = _tumour(grid, brain, tissue["wm"], rng)
        assert t["tc"].any() and not (t["wt"] & ~brain).any()
        assert not (t["et"] & t["necrosis"]).any() and np.array_equal(t["et"] | t["necrosis"], t["tc"])
        assert (ndimage.binary_dilation(t["tc"]) <= t["wt"]).all()


def test_brats_geometry_and_dtype():
    case = make_brats_case((60, 60, 40), seed=1)
    spacing = np.linalg.norm(case.affine[:3, :3], axis=0)
    np.testing.assert_allclose(spacing, [f / n for f, n in zip(BRATS_FOV_MM, (60, 60, 40))])
    assert all(img.dtype == np.int16 and img.shape == (60, 60, 40) for img in case.images.values())
    assert case.seg.dtype == np.uint8
    full = make_brats_case(seed=0)
    assert full.seg.shape == (240, 240, 155)
    np.testing.assert_allclose(np.linalg.norm(full.affine[:3, :3], axis=0), [1, 1, 1])


def test_brats_deterministic():
    a, b, c = (make_brats_case((40, 40, 28), seed=s) for s in ((3, 1), (3, 1), (3, 2)))
    np.testing.assert_array_equal(a.seg, b.seg)
    for m in a.images:
        np.testing.assert_array_equal(a.images[m], b.images[m])
    assert not np.array_equal(a.images["t1"], c.images["t1"])


def test_brats_relative_contrasts():
    """Enhancing rim bright on T1ce, oedema bright on T2/FLAIR, necrosis dark on T1ce, CSF dark on FLAIR."""
    means = {m: {} for m in ("flair", "t1", "t1ce", "t2")}
    for seed in range(4):
        case = make_brats_case((96, 96, 62), seed=seed)
        wm_like = ndimage.binary_erosion(case.images["t1"] > np.percentile(case.images["t1"][case.seg == 0], 80))
        wm_like &= ndimage.binary_dilation(case.seg > 0, iterations=8) & (case.seg == 0)
        regions = {"wm": wm_like, "oedema": case.seg == 2, "core": case.seg == 1, "et": case.seg == 4}
        for m, img in case.images.items():
            for r, mask in regions.items():
                if mask.sum() > 20:
                    means[m].setdefault(r, []).append(float(img[mask].mean()))
    mean = {m: {r: np.mean(v) for r, v in d.items()} for m, d in means.items()}
    assert mean["t1ce"]["et"] > 1.2 * mean["t1ce"]["wm"]
    assert mean["t1ce"]["core"] < 0.6 * mean["t1ce"]["wm"]
    assert mean["t2"]["oedema"] > 1.5 * mean["t2"]["wm"]
    assert mean["flair"]["oedema"] > 1.5 * mean["flair"]["wm"]


def test_kits_cases(kits_root):
    items = build_datalist("kits19", kits_root)
    good, _ = verify_datalist(items, "kits19")
    assert len(good) == 2
    for item in items:
        img = nib.load(item["image"])
        seg = np.asarray(nib.load(item["label"]).dataobj)
        data = np.asarray(img.dataobj)
        assert data.dtype == np.int16 and data.shape == TINY_KITS and seg.shape == TINY_KITS
        assert data.min() >= -1024 and -1100 < np.median(data) < 400
        assert set(np.unique(seg)) == {0, 1, 2}
        # KiTS19 geometry: slice axis first, mapped to the superior-inferior world axis
        assert nib.aff2axcodes(img.affine) == ("I", "P", "L")
        # tumour touches kidney (grows inside it)
        assert (ndimage.binary_dilation(seg == 2) & (seg == 1)).any()
    load = Compose([LoadImaged(["image", "label"], image_only=True), EnsureChannelFirstd(["image", "label"]),
                    Orientationd(["image", "label"], "RAS"), ConvertToKitsRegionsd("label")])
    d = load(items[0])
    assert d["image"].shape == (1, TINY_KITS[2], TINY_KITS[1], TINY_KITS[0])
    assert (d["label"][1] <= d["label"][0]).all()


def test_kits_full_size_geometry_and_determinism():
    a = make_kits_case((24, 96, 96), seed=5)
    b = make_kits_case((24, 96, 96), seed=5)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_allclose(np.abs(np.diag(a.affine[[2, 1, 0], :3]))[[0, 1, 2]], [12.0, 4.1666667, 4.1666667])
    tumour = a.seg == 2
    kidney_hu = a.image[a.seg == 1].mean()
    fat_hu = np.median(a.image[(a.image > -200) & (a.image < -50)])
    assert tumour.sum() > 0 and kidney_hu > 100 and -130 < fat_hu < -60


def test_cli_writes_checked_cases(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "edge_networks.data.synthetic", "kits", "--out", str(tmp_path), "--cases", "1",
         "--shape", "12", "40", "40", "--quiet"],
        capture_output=True, text=True, cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr
    assert "integrity check passed" in proc.stdout
    assert (tmp_path / "case_00000" / "segmentation.nii.gz").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folders left


def test_brats_on_real_background(tmp_path):
    t1 = shared_file("brain_mri", "ch2bet.nii.gz")
    write_brats_dataset(tmp_path, 1, (80, 80, 52), seed=2, background=str(t1), progress=False)
    items = build_datalist("brats2021", tmp_path)
    good, _ = verify_datalist(items, "brats2021")
    assert len(good) == 1
    seg = np.asarray(nib.load(items[0]["label"]).dataobj)
    t2 = np.asarray(nib.load(items[0]["image"][3]).dataobj).astype(float)
    t1img = np.asarray(nib.load(items[0]["image"][1]).dataobj).astype(float)
    assert (seg == 2).sum() > 0 and set(np.unique(seg)) <= {0, 1, 2, 4}
    # real anatomy kept: the real T1's brain extent and its CSF bright on the derived T2
    brain = t1img > 0
    csf = brain & (t1img < np.percentile(t1img[brain], 10)) & (seg == 0)
    wm = brain & (t1img > np.percentile(t1img[brain], 80)) & (seg == 0)
    assert t2[csf].mean() > 1.5 * t2[wm].mean()
    _, mask, _ = load_brain_background(str(t1))
    assert mask.sum() > 1e6


def test_kits_on_real_background(tmp_path):
    ct = shared_file("abdomen_ct", "example_ct_sm.nii.gz")
    seg = shared_file("abdomen_ct", "example_seg.nii.gz")
    write_kits_dataset(tmp_path, 2, seed=3, background=str(ct), background_labels=str(seg), progress=False)
    items = build_datalist("kits19", tmp_path)
    good, _ = verify_datalist(items, "kits19")
    assert len(good) == 2
    hu, kidney, _ = load_ct_background(str(ct), str(seg))
    for item in items:
        lab = np.asarray(nib.load(item["label"]).dataobj)
        assert set(np.unique(lab)) == {0, 1, 2}
        assert lab.shape == hu.shape[::-1]  # written slice-axis first
        tumour = lab == 2
        near_kidney = ndimage.binary_dilation(lab == 1, iterations=3)
        assert (tumour & near_kidney).sum() > 0.5 * tumour.sum()
    a, b = (np.asarray(nib.load(it["image"]).dataobj) for it in items)
    assert not np.array_equal(a, b)  # deformation and flips vary the anatomy
    with pytest.raises(ValueError, match="kidney label"):
        load_ct_background(str(ct), str(seg), kidney_labels=[250])


def test_brats_hard_mode_defeats_a_threshold_and_keeps_the_labels_valid():
    """--difficulty hard: TC and ET are not found by any single intensity threshold (best Dice < 0.6, the issue's
    bar), where easy mode's ET is; labels stay nested and in the BraTS convention; easy mode is unchanged by it."""
    from edge_networks.data.layouts import BRATS_MODALITIES
    from edge_networks.data.synthetic.images2d import threshold_baseline

    shape = (80, 80, 52)
    scores = {}
    for difficulty in ("easy", "hard"):
        cases = [make_brats_case(shape, seed=[3, i], difficulty=difficulty) for i in range(3)]
        feats = [[c.images[m] for m in BRATS_MODALITIES] for c in cases]
        scores[difficulty] = {r: threshold_baseline(feats, [np.isin(c.seg, v).astype(np.uint8) for c in cases])["dice"]
                              for r, v in (("TC", (1, 4)), ("ET", (4,)))}
        for c in cases:
            assert set(np.unique(c.seg).tolist()) <= {0, 1, 2, 4}
            core = np.isin(c.seg, [1, 4])
            assert (ndimage.binary_dilation(core) <= (c.seg > 0)).all()
    assert scores["hard"]["TC"] < 0.6 and scores["hard"]["ET"] < 0.6, scores
    assert scores["easy"]["ET"] > scores["hard"]["ET"] + 0.1, scores
    again = make_brats_case(shape, seed=[3, 0])
    assert np.array_equal(again.images["t1ce"], make_brats_case(shape, seed=[3, 0], difficulty="easy").images["t1ce"])
    with pytest.raises(ValueError, match="difficulty"):
        make_brats_case(shape, seed=0, difficulty="medium")


def test_kits_hard_mode_tumour_looks_like_kidney():
    """--difficulty hard for KiTS: the tumour's HU moves between medulla and cortex (closer to the kidney's own
    mean than in easy mode) and the tumour stays inside a kidney; easy mode is unchanged by the option."""
    gap = {}
    for difficulty in ("easy", "hard"):
        diffs = []
        for i in range(3):
            c = make_kits_case((32, 128, 128), seed=[5, i], difficulty=difficulty)
            tumour, kidney = c.seg == 2, c.seg == 1
            assert tumour.any() and set(np.unique(c.seg).tolist()) == {0, 1, 2}
            diffs.append(abs(float(c.image[tumour].mean()) - float(c.image[kidney].mean())))
        gap[difficulty] = np.mean(diffs)
    assert gap["hard"] < 0.6 * gap["easy"], gap
    assert np.array_equal(make_kits_case((32, 128, 128), seed=[5, 0]).image,
                          make_kits_case((32, 128, 128), seed=[5, 0], difficulty="easy").image)
