"""The 2D image bundles on a real fundus photograph: the written mask has the input's size and orientation.

The network is replaced by a fixed 1x1 convolution that thresholds the green channel (``--network_def``), so the
correct mask is known without training: the bright optic disc and the thick vessels near it, on the left of
scikit-image's ``retina.jpg``. Everything else is the bundle's own ``inference.json`` -- the 2D reader, the authors'
intensity scaling, the disc-centred crop (``cenet_fundus_od``), the resize to 448x448, the 8-fold flip TTA, MONAI's
``Invertd`` and PNG writer -- so a transposed, flipped, shifted or resized output fails.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.bundle import ConfigWorkflow
from PIL import Image

from tests.helpers import config_path, real_chest_xray, real_fundus_photo
from transforms import BrightestRegionCrop, LoadImage2D

GREEN_LEVEL = 140  # 8-bit green value: about 1% of the photograph, around the disc


def _threshold_network() -> tuple[dict, dict]:
    """``network_def`` and weights: logit = 10 * (green' - level'), ' being the bundles' ``x / 255 * 3.2 - 1.6``."""
    level = GREEN_LEVEL / 255 * 3.2 - 1.6
    state = {"weight": torch.tensor([0.0, 10.0, 0.0]).reshape(1, 3, 1, 1), "bias": torch.tensor([-10.0 * level])}
    return {"_target_": "torch.nn.Conv2d", "in_channels": 3, "out_channels": 1, "kernel_size": 1}, state


def _segment(name: str, image: str, tmp_path, network: tuple[dict, dict] | None = None, **overrides) -> np.ndarray:
    net, state = network or _threshold_network()
    (tmp_path / "models").mkdir(exist_ok=True)
    torch.save(state, tmp_path / "models" / "model.pt")
    out = tmp_path / "out"
    wf = ConfigWorkflow(config_file=config_path(name, "inference.json"), workflow_type="infer",
                        meta_file=config_path(name, "metadata.json"), bundle_root=str(tmp_path), network_def=net,
                        datalist=[{"image": image}], output_dir=str(out), num_workers=0, **overrides)
    wf.initialize()
    wf.run()
    wf.finalize()
    stem = image.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    assert (out / f"{stem}_overlay.png").exists()
    seg = np.asarray(Image.open(out / f"{stem}_seg.png"))
    for f in out.iterdir():  # a second call writes afresh
        f.unlink()
    return seg


@pytest.mark.parametrize("name", ["cenet_fundus_od", "cenet_drive"])
def test_real_fundus_photograph_mask_has_its_size_and_orientation(name, tmp_path):
    path = real_fundus_photo()
    rgb = np.asarray(Image.open(path))
    seg = _segment(name, str(path), tmp_path)
    assert seg.shape == rgb.shape[:2] and seg.dtype == np.uint8
    assert set(np.unique(seg).tolist()) == {0, 255}
    pred, ref = seg > 0, rgb[..., 1] >= GREEN_LEVEL
    if name == "cenet_fundus_od":  # only the 800x800 window around the brightest point is segmented
        window = BrightestRegionCrop(800).compute_slices_for(LoadImage2D()(str(path)))  # x-first slices
        inside = np.zeros_like(ref)
        inside[window[1], window[0]] = True
        assert not pred[~inside].any(), "nothing is segmented outside the disc window"
        assert inside[ref].mean() > 0.9, "the window holds the bright disc"
        ref = ref & inside
    precision, recall = ref[pred].mean(), pred[ref].mean()
    assert precision > 0.8 and recall > 0.8, (precision, recall)
    # the same check fails on a transposed or flipped answer: the disc sits left of centre
    for wrong in (pred.T, pred[::-1], pred[:, ::-1]):
        assert ref[wrong].mean() < 0.5


def test_drive_sized_photograph_not_divisible_by_32(tmp_path):
    """DRIVE's 565x584 (width x height) goes through the 448x448 network and comes back at 565x584."""
    rgb = np.asarray(Image.open(real_fundus_photo()))[300:884, 100:665]  # 584 rows, 565 columns, disc inside
    Image.fromarray(rgb).save(tmp_path / "21_training.tif")
    seg = _segment("cenet_drive", str(tmp_path / "21_training.tif"), tmp_path)
    assert seg.shape == (584, 565)
    ref = rgb[..., 1] >= GREEN_LEVEL
    pred = seg > 0
    assert ref[pred].mean() > 0.8 and pred[ref].mean() > 0.8


CUP_LEVEL = 180  # green value of the brightest ~0.4% of the photograph: the "cup" inside the "disc"


def _disc_cup_network() -> tuple[dict, dict]:
    """A fixed 3-class 1x1 convolution for ``etnet_refuge``: logits 0 (background), ``10 (g - L1)`` (rim) and
    ``10 (g - L1) + 10 (g - L2)`` (cup) on the scaled green value ``g``: the argmax is background below ``L1``,
    rim between ``L1`` and ``L2``, cup above ``L2``."""
    def scaled(v: float) -> float:
        return v / 255 * 3.2 - 1.6

    l1, l2 = scaled(GREEN_LEVEL), scaled(CUP_LEVEL)
    weight = torch.tensor([[0.0, 0.0, 0.0], [0.0, 10.0, 0.0], [0.0, 20.0, 0.0]]).reshape(3, 3, 1, 1)
    state = {"weight": weight, "bias": torch.tensor([0.0, -10.0 * l1, -10.0 * (l1 + l2)])}
    return {"_target_": "torch.nn.Conv2d", "in_channels": 3, "out_channels": 3, "kernel_size": 1}, state


def test_etnet_refuge_disc_and_cup_label_map_on_a_real_photograph(tmp_path):
    """One label map of the photograph's size: 0 background, 1 disc rim, 2 cup, at the known places (the bright
    disc, its brightest core as the cup, inside the 800x800 window); REFUGE's 255/128/0 on request."""
    path = real_fundus_photo()
    rgb = np.asarray(Image.open(path))
    seg = _segment("etnet_refuge", str(path), tmp_path, _disc_cup_network())
    assert seg.shape == rgb.shape[:2] and seg.dtype == np.uint8
    assert set(np.unique(seg).tolist()) == {0, 1, 2}
    window = BrightestRegionCrop(800).compute_slices_for(LoadImage2D()(str(path)))  # x-first slices
    inside = np.zeros(rgb.shape[:2], bool)
    inside[window[1], window[0]] = True
    green = rgb[..., 1]
    for pred, ref in ((seg >= 1, green >= GREEN_LEVEL), (seg == 2, green >= CUP_LEVEL)):
        ref = ref & inside
        assert not pred[~inside].any()
        assert ref[pred].mean() > 0.8 and pred[ref].mean() > 0.8, (ref[pred].mean(), pred[ref].mean())
        for wrong in (pred.T, pred[::-1], pred[:, ::-1]):
            assert ref[wrong].mean() < 0.5
    refuge = _segment("etnet_refuge", str(path), tmp_path, _disc_cup_network(), refuge_values=True)
    np.testing.assert_array_equal(refuge, np.choose(seg, [255, 128, 0]).astype(np.uint8))


@pytest.mark.parametrize("name", ["etnet_montgomery", "banet_shenzhen"])
def test_chest_xray_bundle_mask_of_a_real_chest_radiograph(name, tmp_path):
    """pydicom-data's real computed radiograph (DICOM, MONOCHROME1, 1955x1841) through the X-ray bundle's
    inference: a 0/255 mask of the radiograph's rows and columns, in its orientation. A fixed 1x1 convolution marks
    the dark pixels (z-score below -0.5 after the MONOCHROME1 inversion: the lungs and the air around the body)."""
    import pydicom

    path = real_chest_xray()
    ds = pydicom.dcmread(str(path))
    shown = ds.pixel_array.max() - ds.pixel_array.astype(np.float64)  # MONOCHROME1: high values are dark
    z = (shown - shown.mean()) / shown.std()
    net = ({"_target_": "torch.nn.Conv2d", "in_channels": 1, "out_channels": 1, "kernel_size": 1},
           {"weight": torch.tensor([-10.0]).reshape(1, 1, 1, 1), "bias": torch.tensor([-5.0])})
    seg = _segment(name, str(path), tmp_path, net)
    assert seg.shape == (int(ds.Rows), int(ds.Columns)) and seg.dtype == np.uint8
    assert set(np.unique(seg).tolist()) == {0, 255}
    pred, ref = seg > 0, z < -0.5
    assert 0.05 < ref.mean() < 0.7
    assert ref[pred].mean() > 0.9 and pred[ref].mean() > 0.9, (ref[pred].mean(), pred[ref].mean())
    assert ref[pred[::-1]].mean() < ref[pred].mean() - 0.1, "an upside-down answer fails"
