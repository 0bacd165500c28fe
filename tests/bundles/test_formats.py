"""A 3D bundle segments a scan in any format MONAI reads: a real chest CT saved as NRRD (3D Slicer's format) goes
through ``egcnn_kits``'s ``inference.json`` -- the integrity check, the reader, the window -- and its label map keeps
the scan's geometry, named after the file."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import torch
from monai.bundle import ConfigParser
from monai.data import ITKReader

from tests.helpers import SMALL, bundle_cli, cli_overrides, config_path, shared_file


def test_a_real_nrrd_ct_is_segmented_with_its_geometry_kept(tmp_path):
    scan = shared_file("lung_nodule_ct", "lung1_image.nrrd")
    name = "egcnn_kits"
    parser = ConfigParser()
    parser.read_config(str(config_path(name, "inference.json")))
    small = {**SMALL[name]}
    for k, v in small.items():
        parser[k] = v
    (tmp_path / "models").mkdir()
    torch.save(parser.get_parsed_content("network_def").state_dict(), tmp_path / "models" / "model.pt")
    proc = bundle_cli("run", "--config_file", str(config_path(name, "inference.json")), "--bundle_root",
                      str(tmp_path), "--output_dir", str(tmp_path / "out"), "--num_workers", "0",
                      "--datalist", json.dumps([{"image": str(scan)}]), *cli_overrides(small))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = nib.load(str(tmp_path / "out" / "lung1_image_seg.nii.gz"))
    reader = ITKReader()
    data, meta = reader.get_data(reader.read(str(scan)))
    assert out.shape == data.shape
    np.testing.assert_allclose(out.affine, meta["affine"], atol=1e-4)
    assert set(np.unique(np.asarray(out.dataobj)).tolist()) <= {0, 1, 2}  # KiTS labels
