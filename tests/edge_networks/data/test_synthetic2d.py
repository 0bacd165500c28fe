"""Synthetic 2D images: the anatomy the issue asks for, exact and consistent masks, determinism, and a hard mode
that no single intensity threshold solves."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy import ndimage

from edge_networks.data.synthetic.images2d import GENERATORS_2D, TARGETS_2D, threshold_baseline
from edge_networks.data.synthetic.layouts2d import write_2d_dataset
from tests.helpers import REPO


def _rng(seed):
    return np.random.default_rng([seed, 0])


def _widths(mask: np.ndarray) -> np.ndarray:
    """Local width of a thin structure: twice the distance to the background at its centreline pixels."""
    dist = ndimage.distance_transform_edt(mask)
    ridge = mask & (dist >= ndimage.maximum_filter(dist, size=3))
    return 2 * dist[ridge] - 1


def test_fundus_vessel_tree_at_drive_size():
    c = GENERATORS_2D["fundus"](584, 565, _rng(0))
    v, fov, disc, cup = (c.masks[k].astype(bool) for k in ("vessels", "fov", "disc", "cup"))
    assert c.image.shape == (584, 565, 3) and c.image.dtype == np.uint8
    w = _widths(v & ~ndimage.binary_dilation(disc, iterations=5))  # trunks merge where they leave the disc
    assert w.min() <= 1.5 and 5 <= w.max() <= 9, "branches from 1 px up to about 8 px"
    assert (v & disc).any(), "vessels cross the disc"
    assert (cup <= disc).all() and 0 < cup.sum() < disc.sum()
    assert (v <= fov).all() and (c.image[~fov] == 0).all(), "nothing outside the circular field of view"
    green = c.image[..., 1].astype(float)
    thick = v & (ndimage.distance_transform_edt(v) >= 2)
    assert green[thick].mean() < green[fov & ~ndimage.binary_dilation(v, iterations=3) & ~disc].mean()
    assert c.image[disc & ~cup].mean() > c.image[fov & ~disc].mean(), "the disc is bright"
    _, n_components = ndimage.label(v, structure=np.ones((3, 3)))
    assert n_components < 25, "a connected tree, not scattered fragments"


def test_cxr_heart_overlaps_left_lung_and_masks_exclude_it():
    c = GENERATORS_2D["cxr"](512, 480, _rng(1))
    left, right, lungs = (c.masks[k].astype(bool) for k in ("left", "right", "lungs"))
    cols = np.nonzero(left.any(0))[0].mean(), np.nonzero(right.any(0))[0].mean()
    assert cols[0] > 240 > cols[1], "the patient's left lung is on the image's right"
    assert (lungs == (left | right)).all() and not (left & right).any()
    img = c.image.astype(float)
    assert img[lungs].mean() + 40 < img[~lungs & (img > 60)].mean(), "lungs dark, tissue bright"
    edge = lungs & ~ndimage.binary_erosion(lungs, iterations=3)
    assert img[edge].mean() > img[ndimage.binary_erosion(lungs, iterations=8)].mean(), "diffuse borders"


def test_em_membranes_are_one_to_three_pixels_wide():
    c = GENERATORS_2D["em"](256, 256, _rng(2))
    m = c.masks["membranes"].astype(bool)
    w = _widths(m)
    assert w.min() >= 1 and np.percentile(w, 99) <= 3.5
    _, cells = ndimage.label(~m)
    assert cells > 10


def test_oct_layers_are_ordered_bands():
    c = GENERATORS_2D["oct"](200, 240, _rng(3))
    layers = c.masks["layers"].astype(int)
    assert set(np.unique(layers).tolist()) == set(range(9))
    assert (np.diff(layers, axis=0) >= 0).all(), "layer index never decreases downwards in any A-scan"


def test_ct_slice_is_in_hounsfield_units():
    c = GENERATORS_2D["ct_slice"](128, 128, _rng(4))
    lungs = c.masks["lungs"].astype(bool)
    assert c.image.dtype == np.int16 and c.image.min() >= -1024
    assert -950 < np.median(c.image[lungs]) < -700 and np.median(c.image[~lungs][:200]) < -900


@pytest.mark.parametrize("kind", sorted(GENERATORS_2D))
def test_deterministic_and_hard_mode_defeats_a_threshold(kind):
    """Same seed, same image; hard mode keeps the best single-threshold Dice below 0.7 (the issue's bar; the
    benchmark measures it at full size on more images)."""
    gen = GENERATORS_2D[kind]
    a, b = gen(96, 112, _rng(5)), gen(96, 112, _rng(5))
    assert np.array_equal(a.image, b.image) and all(np.array_equal(a.masks[k], b.masks[k]) for k in a.masks)
    target = TARGETS_2D[kind]
    for k, m in a.masks.items():
        assert m.shape == a.image.shape[:2], k
    hard = [gen(96, 112, np.random.default_rng([s, 1]), True) for s in range(3)]
    best = threshold_baseline([c.image for c in hard], [c.masks[target] for c in hard])
    assert best["dice"] < 0.7, best


def test_threshold_baseline_finds_a_perfect_threshold():
    img = np.zeros((10, 10), np.uint8)
    img[2:5, 2:5] = 200
    mask = (img > 100).astype(np.uint8)
    assert threshold_baseline([img], [mask])["dice"] == pytest.approx(1.0)
    assert threshold_baseline([255 - img], [mask])["polarity"] == "<="


def test_cli_writes_and_checks(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "edge_networks.data.synthetic", "dermoscopy", "--layout",
                           "isic2018", "--out", str(tmp_path), "--cases", "6", "--size", "24", "32", "--difficulty",
                           "hard"], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert "integrity check passed" in proc.stdout
    assert len(list((tmp_path / "ISIC2018_Task1-2_Training_Input").glob("*.jpg"))) >= 3
    bad = subprocess.run([sys.executable, "-m", "edge_networks.data.synthetic", "em", "--layout", "drive", "--out",
                          str(tmp_path)], capture_output=True, text=True, cwd=REPO)
    assert bad.returncode == 2 and "invalid choice" in bad.stderr


def test_interrupted_write_leaves_no_partial_file(tmp_path, monkeypatch):
    from PIL import Image

    calls = {"n": 0}
    real_save = Image.Image.save

    def flaky(self, fp, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real_save(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", flaky)
    with pytest.raises(KeyboardInterrupt):
        write_2d_dataset("fundus", "drive", tmp_path, cases=2, size=(16, 16))
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) == 2 and not any(p.name.startswith(".") for p in files), files


def test_refuge_glaucoma_folder_holds_large_cups(tmp_path):
    """The class folder agrees with the anatomy: Glaucoma/ discs have cup-to-disc ratios above the others'."""
    from PIL import Image

    from edge_networks.metrics import vertical_cdr

    write_2d_dataset("fundus", "refuge", tmp_path, cases=24, size=(96, 96))
    masks = tmp_path / "Annotation-Training400" / "Disc_Cup_Masks"

    def vcdrs(cls):
        out = []
        for f in sorted((masks / cls).glob("*.bmp")):
            m = np.asarray(Image.open(f))
            out.append(vertical_cdr(m < 192, m < 64, vertical_axis=0))  # rows-first file array
        return out

    glaucoma, normal = vcdrs("Glaucoma"), vcdrs("Non-Glaucoma")
    assert glaucoma and normal and min(glaucoma) > max(normal) - 0.05 and np.mean(glaucoma) > np.mean(normal) + 0.15


def test_write_layout_dataset_picks_the_layouts_generator(tmp_path):
    """One entry point by layout (the leaderboard and ``edge-seg-reproduce --smoke``): a 2D layout gets its image
    generator at the given size, a 3D one its volume writer, an unknown one a list of the known ones."""
    from edge_networks.data import build_datalist
    from edge_networks.data.synthetic import write_layout_dataset

    write_layout_dataset("drive", tmp_path / "drive", 6, (40, 48))
    items = build_datalist("drive", tmp_path / "drive")
    from PIL import Image

    assert items and np.asarray(Image.open(items[0]["image"])).shape[:2] == (40, 48)
    write_layout_dataset("kits19", tmp_path / "kits", 2, (8, 24, 24))
    assert len(build_datalist("kits19", tmp_path / "kits")) == 2
    with pytest.raises(ValueError, match="no synthetic generator writes the 'nope' layout.*drive"):
        write_layout_dataset("nope", tmp_path / "x", 2, (8, 8))
