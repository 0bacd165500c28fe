"""A 3D bundle segments a scan in any format MONAI reads: a real chest CT saved as NRRD (3D Slicer's format) goes
through ``egcnn_kits``'s ``inference.json`` -- the integrity check, the reader, the window -- and its label map keeps
the scan's geometry, named after the file; and every shipped 3D bundle segments a case saved as NRRD and as
MetaImage."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser, ConfigWorkflow
from monai.data import ITKReader

from edge_networks.data import build_datalist
from edge_networks.data.synthetic.io import write_volume
from tests.helpers import (
    SMALL,
    bundle_cli,
    cli_overrides,
    config_path,
    discovered_bundles,
    is_image2d,
    label_values,
    layout,
    shared_file,
)


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


THREE_D = [n for n in discovered_bundles() if not is_image2d(n)]


@pytest.mark.parametrize("name", THREE_D)
def test_every_3d_bundle_segments_nrrd_and_mha_inputs(name, dataset_roots, tmp_path):
    """Each shipped 3D bundle's ``inference.json`` takes a case saved as NRRD and the same case as MetaImage (one
    file per modality, as 3D Slicer and ITK tools write them): both pass the integrity check, are read, and get a
    label map in their own geometry, named after the file."""
    item = build_datalist(layout(name), dataset_roots[layout(name)])[0]
    files = item["image"] if isinstance(item["image"], list) else [item["image"]]
    datalist = []
    (tmp_path / "in").mkdir()
    for ext in (".nrrd", ".mha"):
        converted = []
        for i, path in enumerate(files):
            img = nib.load(path)
            converted.append(str(write_volume(tmp_path / "in" / f"scan{ext[1:]}_{i}{ext}", np.asarray(img.dataobj),
                                              img.affine)))
        datalist.append({"image": converted if len(converted) > 1 else converted[0]})
    parser = ConfigParser()
    parser.read_config(str(config_path(name, "inference.json")))
    for k, v in SMALL[name].items():
        parser[k] = v
    (tmp_path / "models").mkdir()
    torch.save(parser.get_parsed_content("network_def").state_dict(), tmp_path / "models" / "model.pt")
    wf = ConfigWorkflow(config_file=str(config_path(name, "inference.json")), workflow_type="infer",
                        bundle_root=str(tmp_path), output_dir=str(tmp_path / "out"), num_workers=0,
                        datalist=datalist, **SMALL[name])
    wf.initialize()
    wf.run()
    wf.finalize()
    reader = ITKReader()
    for entry, ext in zip(datalist, ("nrrd", "mha")):
        first = entry["image"][0] if isinstance(entry["image"], list) else entry["image"]
        data, meta = reader.get_data(reader.read(first))
        (out,) = (tmp_path / "out").glob(f"scan{ext}_*seg.nii.gz")
        seg = nib.load(str(out))
        assert seg.shape == data.shape[:3], (name, ext)
        np.testing.assert_allclose(seg.affine, meta["affine"], atol=1e-4)
        assert set(np.unique(np.asarray(seg.dataobj)).astype(int).tolist()) <= label_values(name)
