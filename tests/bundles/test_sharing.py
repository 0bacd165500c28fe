"""Sharing a bundle: the local metadata schema, TorchScript / ONNX export through MONAI's CLI with outputs equal to
the eager network, the zip archive, and TorchScript inference without this project installed.

Each bundle runs with small widths (the networks are the bundles' own, only narrower) and random weights: the
checks compare the exported files with the eager network on the same weights, which needs no training.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import jsonschema
import nibabel as nib
import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser
from PIL import Image

from edge_networks.data import build_datalist, read_image_2d
from edge_networks.serving.sharing import main as sharing_main
from edge_networks.serving.sharing import pack_bundle
from tests.helpers import (
    REPO,
    SMALL,
    bundle_cli,
    bundle_cli_chain,
    bundle_params,
    cli_overrides,
    input_shape,
    is_image2d,
    label_values,
    layout,
    read_json,
)

SCHEMA = json.loads((Path(__file__).parent / "metadata_schema.json").read_text())
# CI: the representative 3D and 2D bundles; make test-all: every bundle
BUNDLES = bundle_params(slow_unless_representative=True)

# the README's onnx_export options: named input/output, dynamic batch axis
ONNX_KWARGS = ("{'input_names': ['image'], 'output_names': ['pred'], "
               "'dynamic_axes': {'image': {0: 'batch'}, 'pred': {0: 'batch'}}}")
# a fresh interpreter in which this project's packages cannot be imported: what a receiver has
NO_PROJECT = "import sys; sys.modules.update({m: None for m in ('edge_networks', 'transforms', 'tests')}); "


def run_without_project(code: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", NO_PROJECT + code, *args], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


def eager_network(name: str, bundle: Path) -> torch.nn.Module:
    parser = ConfigParser()
    parser.read_config(str(REPO / "bundles" / name / "configs" / "inference.json"))
    for k, v in SMALL[name].items():
        parser[k] = v
    net = parser.get_parsed_content("network_def")
    net.load_state_dict(torch.load(bundle / "models" / "model.pt", map_location="cpu", weights_only=True))
    return net.eval()


def _export(name: str, bundle: Path) -> Path:
    """A copy of bundle ``name`` with random small weights, exported by ``monai.bundle ckpt_export / onnx_export``."""
    shutil.copytree(REPO / "bundles" / name, bundle, ignore=shutil.ignore_patterns("models"))
    (bundle / "models").mkdir()
    torch.manual_seed(0)
    parser = ConfigParser()
    parser.read_config(str(bundle / "configs" / "inference.json"))
    for k, v in SMALL[name].items():
        parser[k] = v
    torch.save(parser.get_parsed_content("network_def").state_dict(), bundle / "models" / "model.pt")
    common = ["--ckpt_file", str(bundle / "models" / "model.pt"),
              "--meta_file", str(bundle / "configs" / "metadata.json"),
              "--config_file", str(bundle / "configs" / "inference.json"),
              "--bundle_root", str(bundle), *cli_overrides(SMALL[name])]
    proc = bundle_cli_chain([
        ["ckpt_export", "network_def", "--filepath", str(bundle / "models" / "model.ts"), *common],
        ["onnx_export", "network_def", "--filepath", str(bundle / "models" / "model.onnx"), "--input_shape",
         repr(input_shape(name)), "--converter_kwargs", ONNX_KWARGS, *common]])
    assert proc.returncode == 0, proc.stderr[-3000:]
    return bundle


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """``exported[name]``: the exported copy of bundle ``name``, made once per module on first use."""
    cache: dict[str, Path] = {}

    class _Lazy:
        def __getitem__(self, name: str) -> Path:
            if name not in cache:
                cache[name] = _export(name, tmp_path_factory.mktemp("share") / name)
            return cache[name]

    return _Lazy()


def test_schema_rejects_what_monai_label_misreads():
    """Region names as channel_def of a label-map output (the zoo BraTS bundle's mistake) and missing keys."""
    meta = json.loads((REPO / "bundles" / "egcnn_brats" / "configs" / "metadata.json").read_text())
    bad = json.loads(json.dumps(meta))
    bad["network_data_format"]["outputs"]["pred"]["channel_def"] = {"0": "background", "TC": "tumour core"}
    with pytest.raises(jsonschema.ValidationError, match="does not match"):
        jsonschema.validate(bad, SCHEMA)
    bad = json.loads(json.dumps(meta))
    del bad["network_data_format"]["inputs"]["image"]["is_patch_data"]
    with pytest.raises(jsonschema.ValidationError, match="is_patch_data"):
        jsonschema.validate(bad, SCHEMA)
    bad = dict(meta)
    del bad["copyright"]
    with pytest.raises(jsonschema.ValidationError, match="copyright"):
        jsonschema.validate(bad, SCHEMA)


@pytest.mark.parametrize("name", BUNDLES)
def test_torchscript_and_onnx_equal_eager(exported, name, tmp_path):
    import onnxruntime as ort

    bundle = exported[name]
    torch.manual_seed(1)
    x = torch.rand(input_shape(name))
    with torch.no_grad():
        ref = eager_network(name, bundle)(x)
    torch.save(x, tmp_path / "x.pt")
    # the TorchScript file in a process that cannot import this project
    proc = run_without_project(
        "import torch; m = torch.jit.load(sys.argv[1], map_location='cpu').eval(); "
        "x = torch.load(sys.argv[2]); torch.save(m(x).detach(), sys.argv[3])",
        str(bundle / "models" / "model.ts"), str(tmp_path / "x.pt"), str(tmp_path / "y.pt"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ts = torch.load(tmp_path / "y.pt")
    assert ts.shape == ref.shape == (x.shape[0], json.loads(
        (bundle / "configs" / "metadata.json").read_text())["network_data_format"]["outputs"]["pred"]["num_channels"],
        *x.shape[2:])
    np.testing.assert_allclose(ts.numpy(), ref.numpy(), rtol=1e-4, atol=1e-4)
    # the ONNX file with onnxruntime; the batch axis is dynamic
    sess = ort.InferenceSession(str(bundle / "models" / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["image"]
    (onx,) = sess.run(None, {"image": x.numpy()})
    np.testing.assert_allclose(onx, ref.numpy(), rtol=1e-4, atol=1e-4)
    x2 = torch.cat([x, x.flip(-1)])
    (onx2,) = sess.run(None, {"image": x2.numpy()})
    with torch.no_grad():
        ref2 = eager_network(name, bundle)(x2)
    np.testing.assert_allclose(onx2, ref2.numpy(), rtol=1e-4, atol=1e-4)


def _native_case(name: str, dataset_roots: dict[str, Path]) -> tuple[Path, dict]:
    root = dataset_roots[layout(name)]
    return root, build_datalist(layout(name), root)[0]


@pytest.mark.parametrize("name", BUNDLES)
def test_packed_bundle_segments_with_monai_only(exported, name, dataset_roots, tmp_path):
    """The zip unpacks to a bundle whose inference_ts.json segments a volume like the eager inference.json."""
    bundle = exported[name]
    archive = pack_bundle(bundle, tmp_path / "dist")
    version = json.loads((bundle / "configs" / "metadata.json").read_text())["version"]
    assert archive.name == f"{name}_v{version}.zip"
    with zipfile.ZipFile(archive) as zf:
        names = set(zf.namelist())
        zf.extractall(tmp_path / "received")
    for f in ("configs/metadata.json", "configs/inference.json", "configs/inference_ts.json", "configs/train.json",
              "models/model.pt", "models/model.ts", "docs/README.md", "LICENSE"):
        assert f"{name}/{f}" in names, f
    assert not [n for n in names if not n.startswith(f"{name}/")]
    assert f"{name}/models/model_last.pt" not in names

    root, item = _native_case(name, dataset_roots)
    over = cli_overrides(SMALL[name])
    # eager, with this project, in float32 like the TorchScript run (no CPU bf16 autocast, no test-time flips)
    proc = bundle_cli("run", "--config_file", str(REPO / "bundles" / name / "configs" / "inference.json"),
                      "--bundle_root", str(bundle), "--datalist",
                      repr([{k: item[k] for k in ("image", "page") if k in item}]),  # a TIFF stack's page 0
                      "--cpu_bf16", "false", "--tta", "false", "--output_dir", str(tmp_path / "eager"),
                      "--num_workers", "0", *over)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # TorchScript, MONAI only, from the unpacked archive
    received = tmp_path / "received" / name
    cfg = f"['{received}/configs/inference.json','{received}/configs/inference_ts.json']"
    proc = run_without_project(
        "import runpy; sys.argv = ['monai.bundle'] + sys.argv[1:]; runpy.run_module('monai.bundle', "
        "run_name='__main__', alter_sys=True)",
        "run", "--config_file", cfg, "--bundle_root", str(received), "--datalist", repr([{"image": item["image"]}]),
        "--data_root_dir", str(root), "--output_dir", str(tmp_path / "ts"), "--num_workers", "0",
        *over, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    if is_image2d(name):
        _compare_image2d(name, item, tmp_path / "eager", tmp_path / "ts")
        return
    eager = sorted((tmp_path / "eager").glob("*_seg.nii.gz"))
    ts = sorted((tmp_path / "ts").rglob("*_seg.nii.gz"))
    assert len(eager) == 1 and len(ts) == 1, (eager, ts)
    first = item["image"][0] if isinstance(item["image"], list) else item["image"]
    # --data_root_dir keeps the case folder, so KiTS's identical file names do not collide
    assert ts[0].parent.name == Path(first).parent.name
    e, t = nib.load(str(eager[0])), nib.load(str(ts[0]))
    src = nib.load(first)
    assert t.shape == src.shape[:3] and t.get_data_dtype() == np.uint8
    np.testing.assert_allclose(t.affine, src.affine, atol=1e-5)
    labels = {int(k) for k in json.loads((bundle / "configs" / "metadata.json").read_text())[
        "network_data_format"]["outputs"]["pred"]["channel_def"]}
    got = set(np.unique(np.asarray(t.dataobj)).tolist())
    assert got <= labels
    np.testing.assert_array_equal(np.asarray(t.dataobj), np.asarray(e.dataobj))


def _compare_image2d(name: str, item: dict, eager_dir: Path, ts_dir: Path) -> None:
    """2D bundles: MONAI's PILReader/PILWriter give the same mask PNG as the project's reader and writer -- same
    size and orientation as the input, same values -- unless the bundle crops with project code (the disc-centred
    crop of cenet_fundus_od: inference_ts.json resizes the whole photograph instead, which the docs say)."""
    (eager,) = sorted(eager_dir.glob("*_seg.png"))
    (ts,) = sorted(ts_dir.rglob("*_seg.png"))
    src = read_image_2d(item["image"], item.get("page")).array
    e, t = np.asarray(Image.open(eager)), np.asarray(Image.open(ts))
    assert t.shape == e.shape == src.shape[:2] and t.dtype == np.uint8
    assert set(np.unique(t).tolist()) <= label_values(name)
    if not read_json(name, "inference.json")["image_crop"]:
        np.testing.assert_array_equal(t, e)


def test_pack_refuses_a_bundle_without_weights(tmp_path):
    bundle = tmp_path / "egcnn_brats"
    shutil.copytree(REPO / "bundles" / "egcnn_brats", bundle, ignore=shutil.ignore_patterns("models"))
    with pytest.raises(FileNotFoundError, match=r"models/model.pt: missing"):
        pack_bundle(bundle, tmp_path / "dist")
    assert not (tmp_path / "dist").exists() or not list((tmp_path / "dist").iterdir())


def test_pack_command_exports_missing_files(exported, tmp_path, capsys):
    """``python -m edge_networks.sharing --onnx`` with overrides: model.ts and model.onnx are exported from
    model.pt (``export_torchscript`` / ``export_onnx``), then packed."""
    import onnxruntime as ort

    bundle = tmp_path / "egcnn_brats"
    shutil.copytree(exported["egcnn_brats"], bundle)
    for f in ("model.ts", "model.onnx"):
        (bundle / "models" / f).unlink()
    sharing_main([str(bundle), "--out", str(tmp_path / "dist"), "--onnx", "--input_shape",
                  repr(input_shape("egcnn_brats")), "--backbone_kwargs", "{'init_filters': 8}", "--edge_channels", "8"])
    archive = Path(capsys.readouterr().out.strip().splitlines()[-1])
    with zipfile.ZipFile(archive) as zf:
        assert {"egcnn_brats/models/model.ts", "egcnn_brats/models/model.onnx"} <= set(zf.namelist())
    x = torch.rand(2, *input_shape("egcnn_brats")[1:])  # batch 2: the ONNX batch axis is dynamic
    with torch.no_grad():
        ref = eager_network("egcnn_brats", bundle)(x)
        ts = torch.jit.load(str(bundle / "models" / "model.ts")).eval()(x)
    np.testing.assert_allclose(ts.numpy(), ref.numpy(), rtol=1e-4, atol=1e-4)
    sess = ort.InferenceSession(str(bundle / "models" / "model.onnx"), providers=["CPUExecutionProvider"])
    (onx,) = sess.run(None, {"image": x.numpy()})
    np.testing.assert_allclose(onx, ref.numpy(), rtol=1e-4, atol=1e-4)


def test_inference_ts_without_input_says_so(exported, tmp_path):
    bundle = exported["egcnn_brats"]
    cfg = f"['{bundle}/configs/inference.json','{bundle}/configs/inference_ts.json']"
    proc = bundle_cli("run", "--config_file", cfg, "--bundle_root", str(bundle), "--output_dir", str(tmp_path / "o"))
    assert proc.returncode != 0
    assert "inference_ts.json: no input; pass --datalist" in proc.stderr
    assert not (tmp_path / "o").exists()
