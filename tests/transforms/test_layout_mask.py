"""``LayoutMask(d)``: every 2D layout's mask files -> the training target, from the files the synthetic writers and
the real releases use."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from edge_networks.data import build_datalist
from edge_networks.data.synthetic.layouts2d import write_2d_dataset
from transforms import LayoutMask, LayoutMaskd, LoadImage2Dd


@pytest.mark.parametrize(("layout", "target", "values", "expected"), [
    ("drive", "foreground", [0, 255], [0, 1]),
    ("origa", "foreground", [0, 100, 127, 128, 200, 255], [0, 0, 0, 1, 1, 1]),  # JPEG masks: threshold at 128
    ("isbi2012_em", "foreground", [255, 0, 120], [0, 1, 1]),  # membranes (black) are the foreground
    ("refuge", "disc", [255, 128, 0], [0, 1, 1]),  # the disc includes the cup
    ("refuge", "cup", [255, 128, 0], [0, 0, 1]),
    ("refuge", "disc_cup_indices", [255, 128, 0, 200, 40], [0, 1, 2, 0, 2]),  # softmax classes, resampled values
    ("images_masks", "foreground", [0, 1, 3, 255], [0, 1, 1, 1]),
    ("images_masks", "indices", [0, 1, 3, 8], [0, 1, 3, 8]),
])
def test_conventions_by_hand(layout, target, values, expected):
    img = torch.tensor(values, dtype=torch.float32).reshape(1, 1, -1)
    out = LayoutMask(layout, target)(img)
    assert out.shape == (1, 1, len(values))
    assert out.flatten().tolist() == expected


def test_two_file_labels():
    # Montgomery: [left, right] lung files -> their union; Drishti-GS: [disc, cup] soft maps at an agreement level
    lr = torch.tensor([[[255.0, 0.0, 0.0]], [[0.0, 255.0, 0.0]]])
    assert LayoutMask("montgomery")(lr).flatten().tolist() == [1, 1, 0]
    soft = torch.tensor([[[255.0, 200.0, 0.0]], [[255.0, 0.0, 0.0]]])
    assert LayoutMask("drishti_gs", "disc_cup")(soft).tolist() == [[[1, 0, 0]], [[1, 0, 0]]]
    assert LayoutMask("drishti_gs", "disc", agreement="any")(soft).flatten().tolist() == [1, 1, 0]
    assert LayoutMask("drishti_gs", "disc_cup_indices", agreement="any")(soft).flatten().tolist() == [2, 1, 0]


def test_refused_targets_and_layouts():
    with pytest.raises(ValueError, match="no cup annotation"):
        LayoutMask("origa", "cup")
    with pytest.raises(ValueError, match="no cup annotation"):
        LayoutMask("montgomery", "disc_cup_indices")
    with pytest.raises(ValueError, match="class-index layout"):
        LayoutMask("drive", "indices")
    with pytest.raises(ValueError, match="2D layouts"):
        LayoutMask("brats2021")
    with pytest.raises(ValueError, match="unknown target"):
        LayoutMask("drive", "vessels")


@pytest.mark.parametrize(("kind", "layout", "target", "key"), [
    ("fundus", "origa", "foreground", "disc"), ("fundus", "drive", "foreground", "vessels"),
    ("em", "isbi2012_em", "foreground", "membranes"), ("oct", "images_masks", "indices", "layers"),
    ("ct_slice", "luna2d", "foreground", "lungs"),
])
def test_written_files_give_back_the_generator_masks(kind, layout, target, key, tmp_path, monkeypatch):
    """The synthetic writers' files, loaded as the bundles load them, give back the generator's own masks
    (rows first in the generator, x first after loading)."""
    from edge_networks.data.synthetic import layouts2d as writer

    made = []
    original = writer.GENERATORS_2D[kind]
    monkeypatch.setitem(writer.GENERATORS_2D, kind, lambda *a, **k: made.append(original(*a, **k)) or made[-1])
    write_2d_dataset(kind, layout, tmp_path, cases=2, size=(48, 64), seed=3)
    item = next(it for it in build_datalist(layout, tmp_path) if "label" in it)
    d = LoadImage2Dd(["image", "label"])(item)
    got = LayoutMaskd("label", layout=layout, target=target)(d)["label"]
    assert isinstance(got, MetaTensor) and got.shape == (1, 64, 48)
    expected = [c.masks[key] for c in made]
    ok = [np.array_equal(got[0].numpy().T, (m if target == "indices" else m > 0).astype(np.float32)) for m in expected]
    if layout == "origa":  # JPEG masks: compression noise at the edges only
        ok = [np.mean(got[0].numpy().T != (m > 0)) < 0.02 for m in expected]
    assert any(ok)
