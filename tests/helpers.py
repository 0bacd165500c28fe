"""Helpers shared by the test modules (test modules never import each other): paths, the bundles and their small
test settings, the bundle command line, and dataset conversions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from monai.bundle import ConfigParser
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from edge_networks.bundle import SMALL_WINDOWS, cpu_small
from edge_networks.data import build_datalist

REPO = Path(__file__).resolve().parents[1]
BUNDLES_DIR = REPO / "bundles"
SHARED_DATA = Path(os.environ.get("EDGE_SEG_SHARED_DATA", REPO.parent / "shared" / "data"))

TINY_BRATS = (40, 40, 28)
TINY_KITS = (16, 48, 48)
# layout: (generator, about this many images, (height, width)) -- not square and not divisible by 32, so a bundle
# that transposed or cropped its output would be caught; DRIVE's 6 images give 3 training, 3 test
TINY_2D = {
    "drive": ("fundus", 6, (72, 58)),
    "origa": ("fundus", 4, (80, 100)),
    "refuge": ("fundus", 6, (84, 76)),
    "montgomery": ("cxr", 4, (64, 52)),
    "shenzhen": ("cxr", 6, (60, 52)),
    "isic2017": ("dermoscopy", 6, (52, 68)),
    "kvasir_seg": ("endoscopy", 5, (56, 66)),
    "rim_one_r1": ("fundus", 5, (62, 58)),
    "luna2d": ("ct_slice", 4, (48, 56)),
    "isbi2012_em": ("em", 6, (48, 48)),
    "images_masks": ("oct", 4, (56, 72)),
}

# Every bundle's small setting for the tests: its ``configs/cpu_small.json`` profile (narrow networks, the CPU
# optimiser; :func:`edge_networks.bundle.cpu_small`), then the smaller windows and batches named here, so that a CLI
# run takes seconds on a CPU. A new bundle adds one row.
_3D = SMALL_WINDOWS[3]
_2D = {**SMALL_WINDOWS[2], "batch_size": 2}
_DISC = {**_2D, "disc_crop_size": [72, 72]}
_KITS = {**_3D, "spacing": [6.0, 6.0, 6.0], "num_samples": 1}
TINY: dict[str, dict] = {
    "egcnn_brats": _3D,
    "egcnn_kits": _KITS,
    "boundary_aware_brats": {"roi_size": [48, 48]},
    "boundary_aware_brats3d": {**_3D, "num_samples": 1},
    "cenet_fundus_od": _DISC,
    "cenet_drive": _2D,
    "cenet_luna2d": _2D,
    "cenet_em": _2D,
    "cenet_oct": _2D,
    "cenet_brats3d": {**_3D, "batch_size": 1},  # its profile trains 3D crops in fours; one keeps the tests light
    "etnet_refuge": _DISC,
    "etnet_drive": _2D,
    "etnet_montgomery": _2D,
    "etnet_luna2d": _2D,
    "etnet_brats3d": _3D,
    "banet_isic": _2D,
    "banet_polyp": _2D,
    "banet_shenzhen": _2D,
    "banet_rim_one": _2D,
    "banet_kits3d": {**_KITS, "reduce_channels": 16, "aspp_channels": 16},
}
SMALL: dict[str, dict] = {name: {**cpu_small(name, BUNDLES_DIR), **tiny} for name, tiny in TINY.items()}
# The expensive cross-bundle tests (sharing, torchrun, MONAI Label) run on these in CI (`make test`): one 3D bundle,
# one 2D network on 3D volumes and one 2D bundle on image files. `make test-all` runs them on every bundle (the
# others carry the `slow` marker).
REPRESENTATIVE = ("egcnn_brats", "boundary_aware_brats", "cenet_drive")


def discovered_bundles() -> list[str]:
    """Every bundle folder of the repository (one with ``configs/metadata.json``)."""
    return sorted(p.name for p in BUNDLES_DIR.iterdir() if (p / "configs" / "metadata.json").exists())


# Bundles whose command-line chain (train -> evaluate -> infer -> export) CI skips (`make test-all` runs it): their
# network and their pipeline are each covered by another bundle's chain -- ET-Net by etnet_refuge and
# etnet_montgomery, BA-Net by banet_isic and banet_shenzhen, the DRIVE and LUNA tasks by cenet_drive and cenet_luna2d,
# the 2D image pipeline of polyp and RIM-ONE (binary masks, no crop) by the others; their layouts by
# tests/edge_networks/data -- or they are the 3D ResNet-50 networks beyond the papers (30-80 s per chain on 2 cores).
# Every in-process check (workflow properties, two training steps, verify_net_in_out, metadata, docs) still runs on
# them in CI.
CHAIN_SLOW = ("etnet_drive", "etnet_luna2d", "etnet_brats3d", "banet_polyp", "banet_rim_one", "banet_kits3d")


def bundle_params(names: list[str] | None = None, slow_unless_representative: bool = False,
                  slow: tuple[str, ...] = ()) -> list:
    """``pytest.param`` per bundle; with ``slow_unless_representative`` all but :data:`REPRESENTATIVE` are slow, and
    the bundles named in ``slow`` are."""
    out = []
    for name in names or discovered_bundles():
        marks = [pytest.mark.slow] if (slow_unless_representative and name not in REPRESENTATIVE) or name in slow \
            else []
        out.append(pytest.param(name, marks=marks, id=name))
    return out


def shared_file(*parts: str) -> Path:
    """A file of ../shared/data, or skip the test with the reason."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real scan not available: {path} (set EDGE_SEG_SHARED_DATA to the shared data folder)")
    return path


def real_fundus_photo() -> Path:
    """scikit-image's real fundus photograph (1411x1411 RGB JPEG, CC0), or skip the test."""
    import skimage.data

    path = Path(skimage.data.__file__).parent / "retina.jpg"
    if not path.exists():
        pytest.skip(f"scikit-image without its retina photograph: {path}")
    return path


def real_chest_xray() -> Path:
    """pydicom-data's real computed radiograph ``RG1_UNCR.dcm`` (PA chest, 1955x1841, MONOCHROME1), or skip."""
    import importlib.resources

    try:
        return Path(str(importlib.resources.files("data_store") / "data" / "RG1_UNCR.dcm"))
    except ModuleNotFoundError:
        pytest.skip("pydicom-data is not installed (pip install -e '.[dev]')")


def torchvision_resnet50(tmp_path: Path, replace_stride_with_dilation: list[bool]) -> tuple:
    """A randomly initialised torchvision ``resnet50`` (eval mode, seed 0) and its state dict saved to
    ``tmp_path/resnet50.pth``: the reference the ResNet-50 encoders (ET-Net, BA-Net) must load and reproduce."""
    import torch
    torchvision = pytest.importorskip("torchvision", reason="torchvision is the independent reference of this "
                                      "test: pip install -e '.[label,dev]'")

    torch.manual_seed(0)
    tv = torchvision.models.resnet50(weights=None, replace_stride_with_dilation=replace_stride_with_dilation).eval()
    path = tmp_path / "resnet50.pth"
    torch.save(tv.state_dict(), path)
    return tv, path


def config_path(name: str, *files: str) -> str:
    """One config file of bundle ``name``, or several as the CLI's ``"['a.json','b.json']"``."""
    paths = [str(BUNDLES_DIR / name / "configs" / f) for f in files]
    return paths[0] if len(paths) == 1 else "[" + ",".join(f"'{p}'" for p in paths) + "]"


def read_json(name: str, file: str) -> dict:
    return json.loads((BUNDLES_DIR / name / "configs" / file).read_text())


def layout(name: str) -> str:
    """The dataset layout bundle ``name`` trains on (its ``train.json`` ``layout``)."""
    return read_json(name, "train.json")["layout"]


def is_image2d(name: str) -> bool:
    """Whether bundle ``name`` reads 2D image files (PNG, JPEG, TIFF, ...) and writes 2D masks."""
    from edge_networks.data import get_layout

    return get_layout(layout(name)).spatial_dims == 2


def has_edge_output(name: str) -> bool:
    """Whether bundle ``name``'s network gives edge channels after its segmentation channels."""
    return bool(read_json(name, "inference.json").get("split_edges"))


def label_values(name: str) -> set[int]:
    """The label values bundle ``name`` writes: the keys of its metadata's ``outputs.pred.channel_def``."""
    meta = read_json(name, "metadata.json")
    return {int(k) for k in meta["network_data_format"]["outputs"]["pred"]["channel_def"]}


def input_shape(name: str) -> list[int]:
    """``(1, C, *roi_size)``: one network input window of bundle ``name`` at its small setting."""
    meta = read_json(name, "metadata.json")
    return [1, meta["network_data_format"]["inputs"]["image"]["num_channels"], *SMALL[name]["roi_size"]]


def small_parser(name: str, *files: str, **extra) -> ConfigParser:
    """A ConfigParser of bundle ``name``'s ``files`` (default ``train.json``) with its small setting applied."""
    parser = ConfigParser()
    parser.read_config([config_path(name, f) for f in (files or ("train.json",))])
    for k, v in {**SMALL[name], **extra}.items():
        parser[k] = v
    return parser


def cli_overrides(over: dict) -> list[str]:
    """``--key value`` arguments for ``python -m monai.bundle`` (values as Python literals)."""
    out = []
    for k, v in over.items():
        out += [f"--{k}", repr(v)]
    return out


def bundle_cli(*args: str, cwd: Path = REPO, env: dict | None = None) -> subprocess.CompletedProcess:
    """``python -m monai.bundle ARGS`` in a subprocess (this interpreter), output captured."""
    return subprocess.run([sys.executable, "-m", "monai.bundle", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600, env=env)


# One interpreter runs several `python -m monai.bundle ...` commands in turn (fire's CLI, exactly as from the shell):
# importing torch + MONAI costs about 11 s per process here, which a chain of commands pays once.
_CHAIN = """
import json, runpy, sys
for i, argv in enumerate(json.loads(sys.argv[1])):
    sys.argv = ['monai.bundle', *argv]
    try:
        runpy.run_module('monai.bundle', run_name='__main__', alter_sys=True)
    except SystemExit as e:
        if e.code not in (None, 0):
            print(f'edge-seg chain: step {i} ({argv[0]} {argv[1]}) failed', file=sys.stderr)
            raise
    print(f'edge-seg chain: step {i} done', flush=True)
"""


def bundle_cli_chain(steps: list[list[str]], cwd: Path = REPO, prelude: str = "") -> subprocess.CompletedProcess:
    """``python -m monai.bundle STEP`` for each step, in order, in one subprocess; stops at the first failure
    (non-zero exit, the failing step named on stderr). ``prelude``: Python run first in that process."""
    return subprocess.run([sys.executable, "-c", prelude + _CHAIN, json.dumps(steps)], capture_output=True,
                          text=True, cwd=cwd, timeout=900)


def to_decathlon(brats_root: Path, out: Path) -> Path:
    """Convert BraTS-2021-layout cases to Task01's layout: 4D images, labels 1 oedema / 2 non-enh / 3 enh."""
    (out / "imagesTr").mkdir(parents=True)
    (out / "labelsTr").mkdir()
    training = []
    for i, item in enumerate(build_datalist("brats2021", brats_root)):
        imgs = [nib.load(p) for p in item["image"]]
        stack = np.stack([np.asarray(im.dataobj) for im in imgs], axis=-1)
        seg = np.asarray(nib.load(item["label"]).dataobj)
        dec = np.select([seg == 2, seg == 1, seg == 4], [1, 2, 3], 0).astype(np.uint8)
        name = f"BRATS_{i:03d}.nii.gz"
        nib.save(nib.Nifti1Image(stack, imgs[0].affine), str(out / "imagesTr" / name))
        nib.save(nib.Nifti1Image(dec, imgs[0].affine), str(out / "labelsTr" / name))
        training.append({"image": f"./imagesTr/{name}", "label": f"./labelsTr/{name}"})
    spec = {"name": "BRATS", "modality": {"0": "FLAIR", "1": "T1w", "2": "t1gd", "3": "T2w"},
            "labels": {"0": "background", "1": "edema", "2": "non-enhancing tumor", "3": "enhancing tumour"},
            "training": training, "test": []}
    (out / "dataset.json").write_text(json.dumps(spec))
    return out


def asymmetric(h: int = 30, w: int = 50) -> np.ndarray:
    """Grey image, rows first, with no symmetry: an L-shape near the top-left and a bar on the right."""
    a = np.full((h, w), 20, np.uint8)
    a[3:9, 4:40] = 220  # a long horizontal bar near the top
    a[9:26, 4:10] = 220  # going down on the left
    a[15:18, 44:48] = 220  # a small blob on the right
    return a


def write_dicom(path: Path, rows_first: np.ndarray, photometric: str = "MONOCHROME2", spacing=(0.5, 0.25),
                tag: str = "PixelSpacing") -> Path:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1"  # CR image storage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PatientName = "CR", "Synthetic^Test"
    ds.Rows, ds.Columns = rows_first.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    setattr(ds, tag, [f"{spacing[0]}", f"{spacing[1]}"])
    ds.PixelData = rows_first.astype(np.uint16).tobytes()
    ds.is_little_endian, ds.is_implicit_VR = True, False
    ds.save_as(str(path), write_like_original=False)
    return path


def assert_scripts_and_exports(net, x, path: Path, atol: float = 1e-4) -> None:
    """``net`` (in eval mode) gives the same output eagerly, under TorchScript and through ONNX Runtime."""
    import onnxruntime as ort
    import torch

    with torch.no_grad():
        eager = net(x)
        torch.testing.assert_close(torch.jit.script(net)(x), eager)
    torch.onnx.export(net, (x,), str(path), input_names=["image"], output_names=["pred"], dynamo=True)
    onnx_out = ort.InferenceSession(str(path)).run(None, {"image": x.numpy()})[0]
    torch.testing.assert_close(torch.as_tensor(onnx_out), eager, rtol=atol, atol=atol)
