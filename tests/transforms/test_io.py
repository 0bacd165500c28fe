"""``SaveOverlayd``: the prediction drawn over the photograph it came from, in the photograph's orientation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from tests.helpers import asymmetric
from transforms import LoadImage2Dd, SaveOverlayd, overlay_image


def test_overlay_lies_on_its_input(tmp_path):
    rows = asymmetric(30, 50)  # rows first, no symmetry
    Image.fromarray(rows).save(tmp_path / "case.png")
    d = LoadImage2Dd("image")({"image": str(tmp_path / "case.png")})
    d["pred"] = d["image"].clone()
    d["pred"][:] = (d["image"] > 128).float() * 255  # (1, W, H) x-first, as the bundles' predictions
    SaveOverlayd("pred", output_dir=tmp_path / "out")(d)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["case_overlay.png"]  # no temporary file left
    out = np.asarray(Image.open(tmp_path / "out" / "case_overlay.png"))
    assert out.shape == (30, 50, 3)
    fg = rows > 128
    np.testing.assert_array_equal(out[~fg], np.repeat(rows[~fg][:, None], 3, 1))  # untouched where no mask
    assert (out[fg][:, 0] > out[fg][:, 1]).all()  # red over the mask: the L-shape and the bar, where they are


def test_overlay_classes_and_errors():
    img = np.zeros((4, 6), np.uint16)
    img[0, 0] = 1000  # not uint8: scaled to 0..255
    mask = np.zeros((4, 6), np.int64)
    mask[:, :3], mask[:, 3:] = 1, 2
    out = overlay_image(img, mask, alpha=0.5)
    assert out.dtype == np.uint8 and len({tuple(out[2, 1]), tuple(out[2, 4])}) == 2  # one colour per class
    with pytest.raises(ValueError, match="does not match"):
        overlay_image(img, mask[:, :4])
    with pytest.raises(ValueError, match="no source file name"):
        SaveOverlayd("pred", output_dir="unused")({"pred": torch.zeros(1, 4, 4)})
