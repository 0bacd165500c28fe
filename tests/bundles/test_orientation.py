"""Every bundle's inference on inputs stored in several orientations (RAS, LPS, LSA, slice axis first).

The written label map must have its input's shape and affine, and -- since ``Orientationd`` hands the network the
same RAS array whatever the storage order -- the same content in world space as the RAS copy's. MONAI 1.6.1's
``NibabelWriter`` failed on permuted orientations (LSA: "Affine ... is not invertible"); the bundles write with
``transforms.readers.NibabelWriterKeepGeometry``.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.bundle import ConfigWorkflow

from edge_networks.data import build_datalist
from tests.helpers import SMALL, bundle_params, config_path, discovered_bundles, is_image2d, layout

ORIENTATIONS = ("RAS", "LPS", "LSA", "SPL")  # SPL: the slice (S) axis first


def _reoriented(img: nib.Nifti1Image, code: str) -> nib.Nifti1Image:
    now = nib.orientations.io_orientation(img.affine)
    return img.as_reoriented(nib.orientations.ornt_transform(now, nib.orientations.axcodes2ornt(tuple(code))))


def _dataset(name: str, source: Path, out: Path) -> dict[str, list[Path]]:
    """One copy of ``source``'s first case per orientation, in the bundle's layout; returns the files per code."""
    first = build_datalist(layout(name), source)[0]
    files = first["image"] if isinstance(first["image"], list) else [first["image"]]
    written = {}
    for code in ORIENTATIONS:
        if layout(name) == "kits19":
            case = out / f"case_{ORIENTATIONS.index(code):05d}"
            names = ["imaging.nii.gz"]
        else:
            cid = f"BraTS2021_{ORIENTATIONS.index(code):05d}"
            case = out / cid
            names = [f"{cid}_{Path(f).name.split('_')[-1]}" for f in files]
        case.mkdir(parents=True)
        written[code] = []
        for f, n in zip(files, names):
            nib.save(_reoriented(nib.load(f), code), case / n)
            written[code].append(case / n)
    return written


@pytest.mark.parametrize("name", bundle_params([b for b in discovered_bundles() if not is_image2d(b)]))
def test_inference_keeps_every_input_orientation(name, dataset_roots, tmp_path):
    written = _dataset(name, dataset_roots[layout(name)], tmp_path / "data")
    for code, files in written.items():
        assert "".join(nib.aff2axcodes(nib.load(files[0]).affine)) == code
    wf = ConfigWorkflow(config_file=config_path(name, "inference.json"), workflow_type="infer",
                        meta_file=config_path(name, "metadata.json"), bundle_root=str(tmp_path),
                        dataset_dir=str(tmp_path / "data"), num_workers=0, **SMALL[name])
    wf.initialize()
    torch.manual_seed(0)
    (tmp_path / "models").mkdir()
    torch.save(wf.parser.get_parsed_content("network_def").state_dict(), tmp_path / "models" / "model.pt")
    wf.run()
    wf.finalize()
    preds = sorted((tmp_path / "eval" / "predictions").glob("*_seg.nii.gz"))
    assert len(preds) == len(ORIENTATIONS)
    in_ras = {}
    for code, pred in zip(ORIENTATIONS, preds):  # case numbers follow ORIENTATIONS
        src, seg = nib.load(written[code][0]), nib.load(pred)
        assert seg.shape == src.shape[:3], (code, seg.shape, src.shape)
        np.testing.assert_allclose(seg.affine, src.affine, atol=1e-5, err_msg=code)
        in_ras[code] = np.asarray(_reoriented(seg, "RAS").dataobj)
    assert in_ras["RAS"].any(), "an all-background prediction proves nothing about orientation"
    for code in ORIENTATIONS[1:]:
        np.testing.assert_array_equal(in_ras[code], in_ras["RAS"], err_msg=f"{code} output differs from RAS")
