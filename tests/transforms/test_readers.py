"""2D readers: a predicted mask overlays its input pixel for pixel (PNG, JPEG, TIFF, DICOM), DICOM polarity and
spacing, channel conversion, multi-page TIFF pages, palette GIFs, errors naming the file; the real fundus
photograph (scikit-image) and computed radiograph (pydicom-data) load right; NIfTI writing keeps any affine."""

from __future__ import annotations

import logging

import numpy as np
import pydicom
import pytest
from monai.transforms import LoadImage, SaveImaged
from PIL import Image

from edge_networks.data import verify_datalist
from tests.helpers import asymmetric, real_chest_xray, real_fundus_photo, write_dicom
from transforms import LoadImage2D, LoadImage2Dd
from transforms.readers import Image2DReader, read_image_2d


@pytest.mark.parametrize("fmt", ["png", "jpg", "tif", "bmp", "gif", "dcm"])
def test_written_mask_overlays_its_input(fmt, tmp_path):
    """Read -> channel-first (C, W, H) -> threshold as a 'prediction' -> MONAI's SaveImaged to PNG: the written
    mask equals the threshold of the file's own pixels (not transposed, not flipped), same width and height."""
    a = asymmetric()
    src = tmp_path / f"x.{fmt}"
    if fmt == "dcm":
        write_dicom(src, a.astype(np.uint16) * 16)
    elif fmt == "jpg":
        Image.fromarray(np.repeat(a[..., None], 3, -1)).save(src, quality=100)  # a colour JPEG
    else:
        Image.fromarray(a).save(src)
    d = LoadImage2Dd("image")({"image": str(src)})
    img = d["image"]
    assert img.shape[1:] == (a.shape[1], a.shape[0]), "MONAI order: x (width) first"
    pred = (img[:1] > img.max() / 2).float()
    pred.meta = dict(img.meta)
    SaveImaged("pred", output_dir=str(tmp_path / "out"), output_ext=".png", output_dtype=np.uint8, scale=255,
               resample=False, separate_folder=False, output_postfix="seg")({"pred": pred})
    written = np.asarray(Image.open(tmp_path / "out" / "x_seg.png"))
    assert written.shape == a.shape
    np.testing.assert_array_equal(written > 0, a > 120)


def test_dicom_monochrome1_is_inverted_and_spacing_read(tmp_path):
    a = asymmetric().astype(np.uint16) * 16
    m2 = read_image_2d(write_dicom(tmp_path / "m2.dcm", a))
    m1 = read_image_2d(write_dicom(tmp_path / "m1.dcm", a.max() + a.min() - a, "MONOCHROME1"))
    np.testing.assert_array_equal(m1.array, m2.array)  # the same picture, whatever the stored polarity
    assert "MONOCHROME1 inverted" in " ".join(m1.notes)
    assert m2.spacing == (0.5, 0.25) and m2.spacing_known
    img = LoadImage2D()(str(tmp_path / "m2.dcm"))
    np.testing.assert_allclose(np.diag(np.asarray(img.affine))[:2], [0.25, 0.5])  # x = column spacing first
    cr = read_image_2d(write_dicom(tmp_path / "cr.dcm", a, spacing=(0.2, 0.2), tag="ImagerPixelSpacing"))
    assert cr.spacing == (0.2, 0.2)


def test_channels_are_converted_and_logged(tmp_path, caplog):
    rgb = np.zeros((6, 8, 3), np.uint8)
    rgb[..., 0] = 200
    Image.fromarray(rgb).save(tmp_path / "c.png")
    Image.fromarray(rgb[..., 0]).save(tmp_path / "g.png")
    with caplog.at_level(logging.WARNING):
        grey = LoadImage2D(channels=1)(str(tmp_path / "c.png"))
        colour = LoadImage2D(channels=3)(str(tmp_path / "g.png"))
    assert grey.shape == (1, 8, 6) and float(grey[0, 0, 0]) == round(200 * 0.299)
    assert colour.shape == (3, 8, 6) and (colour[0] == colour[2]).all()
    assert "c.png" in caplog.text and "converted to grey" in caplog.text and "replicated to 3 channels" in caplog.text
    assert LoadImage2D()(str(tmp_path / "c.png")).shape == (3, 8, 6)  # kept as stored by default
    with pytest.raises(ValueError, match="channels"):
        Image2DReader(channels=2)


def test_multipage_tiff_pages_and_palette_gif(tmp_path):
    pages = [np.full((5, 7), 10 * (k + 1), np.uint8) for k in range(3)]
    ims = [Image.fromarray(p) for p in pages]
    ims[0].save(tmp_path / "s.tif", save_all=True, append_images=ims[1:])
    d = LoadImage2Dd(["image"])({"image": str(tmp_path / "s.tif"), "page": 2})
    assert d["image"].shape == (1, 7, 5) and float(d["image"].max()) == 30
    with pytest.raises(ValueError, match=r"s\.tif: multi-page TIFF of 3 pages"):
        read_image_2d(tmp_path / "s.tif")
    with pytest.raises(ValueError, match=r"s\.tif: page 3 out of range"):
        read_image_2d(tmp_path / "s.tif", 3)
    Image.fromarray((asymmetric() > 100).astype(np.uint8) * 255).save(tmp_path / "m.gif")  # stored as palette
    assert Image.open(tmp_path / "m.gif").mode == "P"
    gif = read_image_2d(tmp_path / "m.gif").array
    assert gif.ndim == 2 and set(np.unique(gif).tolist()) == {0, 255}


def test_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.png: file is missing"):
        read_image_2d(tmp_path / "nope.png")
    Image.fromarray(asymmetric()).save(tmp_path / "t.png")
    data = (tmp_path / "t.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="cut.png: unreadable or truncated"):
        read_image_2d(tmp_path / "cut.png")
    write_dicom(tmp_path / "d.dcm", asymmetric().astype(np.uint16))
    raw = (tmp_path / "d.dcm").read_bytes()
    (tmp_path / "cut.dcm").write_bytes(raw[: len(raw) - 200])
    with pytest.raises(ValueError, match="cut.dcm: unreadable or truncated DICOM"):
        read_image_2d(tmp_path / "cut.dcm")


def test_monai_loadimage_takes_the_reader(tmp_path):
    Image.fromarray(asymmetric()).save(tmp_path / "x.png")
    img = LoadImage(reader=Image2DReader(), ensure_channel_first=True, image_only=True)(str(tmp_path / "x.png"))
    ours = LoadImage2D()(str(tmp_path / "x.png"))
    assert img.shape == ours.shape == (1, 50, 30)
    np.testing.assert_array_equal(np.asarray(img), np.asarray(ours))


# ---------------------------------------------------------------------------------------------------------------
# the two real 2D images installable from the package registries
# ---------------------------------------------------------------------------------------------------------------


def test_real_fundus_photograph_loads_and_checks(tmp_path):
    path = real_fundus_photo()
    img = LoadImage2D()(str(path))
    assert img.shape == (3, 1411, 1411) and float(img.max()) > 200
    rgb = np.asarray(Image.open(path))
    np.testing.assert_array_equal(np.asarray(img[1]), rgb[..., 1].T)  # x-first order: the file transposed, no flip
    corner, centre = float(img[:, :60, :60].mean()), float(img[:, 600:800, 600:800].mean())
    assert corner < 20 < centre, "dark surround outside the circular field of view, lit retina inside"
    red, blue = float(img[0, 600:800, 600:800].mean()), float(img[2, 600:800, 600:800].mean())
    assert red > blue, "a fundus is red-orange"
    good, bad = verify_datalist([{"case_id": "retina", "image": str(path)}], "images_masks", require_label=False)
    assert len(good) == 1 and not bad


def test_real_computed_radiograph_loads_inverted_and_checks():
    path = real_chest_xray()
    ds = pydicom.dcmread(str(path))
    assert ds.PhotometricInterpretation == "MONOCHROME1"
    img = LoadImage2D()(str(path))
    assert img.shape == (1, int(ds.Columns), int(ds.Rows))  # x (columns) first
    a = np.asarray(img[0]).T  # rows first again, as displayed
    h, w = a.shape
    lungs = np.concatenate([a[int(0.3 * h):int(0.6 * h), int(0.2 * w):int(0.38 * w)].ravel(),
                            a[int(0.3 * h):int(0.6 * h), int(0.62 * w):int(0.8 * w)].ravel()])
    mediastinum = a[int(0.3 * h):int(0.6 * h), int(0.46 * w):int(0.54 * w)]
    assert np.median(lungs) < np.median(mediastinum), "after inversion the lungs are dark, the mediastinum bright"
    stored = ds.pixel_array
    assert np.median(stored[int(0.3 * h):int(0.6 * h), int(0.2 * w):int(0.38 * w)]) > np.median(
        stored[int(0.3 * h):int(0.6 * h), int(0.46 * w):int(0.54 * w)]), "stored MONOCHROME1: lungs high"
    good, bad = verify_datalist([{"case_id": "cr", "image": str(path)}], "montgomery", require_label=False)
    assert len(good) == 1 and not bad
