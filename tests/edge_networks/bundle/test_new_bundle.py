"""``edge-seg-new-bundle``: bundles of the project's networks for datasets of one's own in nnU-Net v2 and Medical
Segmentation Decathlon form, 2D and 3D, each checked as the shipped bundles are (``tests/bundles/test_bundles.py``):
MONAI's workflow properties, two training steps, ``verify_net_in_out``, the metadata schema and file set; one
command-line chain; the real lung CT scans as an nnU-Net dataset straight from their NRRD files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
import nibabel as nib
import numpy as np
import pytest
import torch
from ignite.engine import Events
from monai.bundle import ConfigWorkflow, verify_net_in_out
from monai.data import ITKReader
from PIL import Image

from edge_networks.bundle.new_bundle import bundle_spec, main, network_table, new_bundle
from edge_networks.data.dataset_json import read_dataset
from edge_networks.data.plan import PLAN_FILE
from edge_networks.data.synthetic.dataset_json import write_msd_dataset, write_nnunet_dataset
from edge_networks.data.synthetic.io import write_volume
from tests.helpers import REPO, SMALL_WINDOWS, bundle_cli_chain, shared_file

SCHEMA = json.loads((REPO / "tests" / "bundles" / "metadata_schema.json").read_text())
FILE_SET = ("metadata.json", "train.json", "evaluate.json", "inference.json", "multi_gpu_train.json", "logging.conf",
            "cpu_small.json", "inference_ts.json")
BRAIN_REGIONS = {"whole tumour": [1, 2, 3], "tumour core": [2, 3], "enhancing tumour": [3]}

# dataset -> (writer, kind, cases, shape, file ending, networks): the three kinds in both formats, three
# networks each (every network of the project appears at least once)
DATASETS = {
    "nnunet_brain": (write_nnunet_dataset, "brain_mri", (40, 40, 28), ".nii.gz",
                     ("egcnn_segresnet", "boundary_aware", "cenet")),
    "nnunet_ct": (write_nnunet_dataset, "ct", (16, 48, 48), ".nrrd", ("egcnn_unet", "etnet", "banet")),
    "nnunet_rgb": (write_nnunet_dataset, "rgb2d", (52, 68), ".png", ("cenet", "etnet", "banet")),
    "msd_brain": (write_msd_dataset, "brain_mri", (40, 40, 28), ".nii.gz", ("egcnn_vnet", "cenet", "etnet")),
    "msd_ct": (write_msd_dataset, "ct", (16, 48, 48), ".mha", ("egcnn_cenet", "boundary_aware", "banet")),
    "msd_rgb": (write_msd_dataset, "rgb2d", (52, 68), ".png", ("cenet", "etnet", "banet")),
}
CASES = [(d, n) for d, spec in DATASETS.items() for n in spec[4]]


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> dict[str, Path]:
    """Every dataset of :data:`DATASETS` (three training cases and one test case each) and its bundles:
    ``generated["<dataset>/<network>"]``; ``generated["<dataset>"]`` is the dataset folder."""
    root = tmp_path_factory.mktemp("own_data")
    out: dict[str, Path] = {}
    for name, (writer, kind, shape, ending, networks) in DATASETS.items():
        data = writer(kind, root / "data" / name, 3, shape, test_cases=1, file_ending=ending, seed=5)
        out[name] = data
        regions = BRAIN_REGIONS if name == "msd_brain" else None  # MSD labels are plain: regions by option
        for network in networks:
            out[f"{name}/{network}"] = new_bundle(network, data, root / "bundles" / f"{network}_{name}",
                                                  regions=regions, regions_class_order=[1, 2, 3] if regions else None)
    return out


def _small(bundle: Path) -> dict:
    """The bundle's CPU profile, with the tests' small windows (as ``tests.helpers.SMALL`` for shipped bundles)."""
    profile = json.loads((bundle / "configs" / "cpu_small.json").read_text())
    meta = json.loads((bundle / "configs" / "metadata.json").read_text())
    dims = len(meta["network_data_format"]["inputs"]["image"]["spatial_shape"])
    return {**{k: v for k, v in profile.items() if k not in ("epochs", "val_interval")}, **SMALL_WINDOWS[dims],
            "num_workers": 0, "batch_size": min(profile.get("batch_size", 2), 2)}


def _workflow(bundle: Path, kind: str, **extra) -> ConfigWorkflow:
    files = ["train.json"] if kind == "train" else ["inference.json"]
    wf = ConfigWorkflow(config_file=[str(bundle / "configs" / f) for f in files], workflow_type=kind,
                        meta_file=str(bundle / "configs" / "metadata.json"), **{**_small(bundle), **extra})
    wf.initialize()
    return wf


@pytest.mark.parametrize("dataset,network", CASES, ids=[f"{d}-{n}" for d, n in CASES])
def test_generated_bundle_passes_the_bundle_checks(generated, dataset, network):
    bundle = generated[f"{dataset}/{network}"]
    # the file set and the metadata: schema, the dataset's channels and label names for MONAI Label
    files = {p.name for p in (bundle / "configs").iterdir()}
    assert files - {"from_scratch.json"} == set(FILE_SET)  # from_scratch.json: the ResNet encoders' recipe
    assert (bundle / "docs" / "README.md").is_file() and (bundle / "LICENSE").is_file()
    meta = json.loads((bundle / "configs" / "metadata.json").read_text())
    jsonschema.validate(meta, SCHEMA)
    desc = read_dataset(generated[dataset])
    image = meta["network_data_format"]["inputs"]["image"]
    assert list(image["channel_def"].values()) == list(desc.channel_names)
    expected = {"0": "background", **({"1": "whole tumour", "2": "tumour core", "3": "enhancing tumour"}
                                      if dataset.endswith("brain") else {"1": "kidney", "2": "tumour"}
                                      if dataset.endswith("ct") else {"1": "lesion"})}
    assert meta["network_data_format"]["outputs"]["pred"]["channel_def"] == expected
    # MONAI's properties of the train and infer workflows
    for kind in ("train", "infer"):
        wf = _workflow(bundle, kind)
        assert wf.check_properties() == [], kind
        wf.finalize()
    # two real training steps: finite losses, segmentation (+ edge) channels, every parameter moved
    wf = _workflow(bundle, "train", epochs=2, val_interval=100, **{"train#trainer#epoch_length": 1})
    before = {k: v.detach().clone() for k, v in wf.network_def.state_dict().items()}
    losses: list[float] = []
    wf.trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e: losses.append(float(e.state.output[0]["loss"])))
    wf.run()
    out_channels = 3 if dataset.endswith("brain") else len(expected)
    assert wf.parser["out_channels"] == out_channels and wf.parser["sigmoid"] == dataset.endswith("brain")
    assert len(losses) == 2 and np.isfinite(losses).all(), losses
    pred = wf.trainer.state.output[0]["pred"]
    assert pred.shape[0] >= out_channels and list(pred.shape[1:]) == _small(bundle)["roi_size"]
    after = wf.network_def.state_dict()
    frozen = [k for k, v in after.items() if v.is_floating_point() and "num_batches" not in k and
              torch.equal(v, before[k])]
    assert not frozen, frozen[:5]
    wf.finalize()
    verify_net_in_out(net_id="network_def", meta_file=str(bundle / "configs" / "metadata.json"),
                      config_file=str(bundle / "configs" / "inference.json"), n=2, any=8, p=2, device="cpu",
                      **{k: v for k, v in _small(bundle).items() if k != "num_workers"})


def test_generated_cli_chain_trains_evaluates_infers_exports(generated, tmp_path):
    """One generated bundle (EG-CNN on U-Net, nnU-Net CT in NRRD, plain labels) through the command line: train,
    evaluate, infer with edge maps, export; the label maps keep each scan's geometry, named after the case."""
    bundle = generated["nnunet_ct/egcnn_unet"]
    cfg = bundle / "configs"
    small = {**_small(bundle), "epochs": 2, "val_interval": 1, "bundle_root": str(tmp_path)}
    args = [f"--{k}={json.dumps(v)}" if not isinstance(v, str) else f"--{k}={v}" for k, v in small.items()]
    net_args = [a for a in args if "epoch" not in a and "val_int" not in a]
    proc = bundle_cli_chain([
        ["run", "training", "--config_file", str(cfg / "train.json"), *args],
        ["run", "evaluating", "--config_file", f"['{cfg}/train.json','{cfg}/evaluate.json']", *args],
        ["run", "inferring", "--config_file", str(cfg / "inference.json"), "--save_edges", "true",
         "--output_dir", str(tmp_path / "pred"), *net_args],
        ["ckpt_export", "network_def", "--filepath", str(tmp_path / "model.ts"), "--ckpt_file",
         str(tmp_path / "models" / "model.pt"), "--meta_file", str(cfg / "metadata.json"), "--config_file",
         str(cfg / "inference.json"), *net_args],
    ])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (tmp_path / "eval" / "val_hd95_kidney_raw.csv").is_file()
    assert "val_kidney_dice" in (tmp_path / "eval" / "metrics.csv").read_text()
    reader = ITKReader()
    for case in ("case_000", "case_003"):  # a training case and the imagesTs one
        folder = "imagesTs" if case == "case_003" else "imagesTr"
        data, meta = reader.get_data(reader.read(str(generated["nnunet_ct"] / folder / f"{case}_0000.nrrd")))
        seg = nib.load(str(tmp_path / "pred" / f"{case}_seg.nii.gz"))
        assert seg.shape == data.shape
        np.testing.assert_allclose(seg.affine, meta["affine"], atol=1e-4)
        assert set(np.unique(np.asarray(seg.dataobj)).tolist()) <= {0, 1, 2}
        assert (tmp_path / "pred" / f"{case}_edge.nii.gz").is_file()
    assert torch.jit.load(str(tmp_path / "model.ts")) is not None


def test_the_2d_nnunet_bundle_writes_label_pngs_of_the_input_size(generated, tmp_path):
    """A 2D nnU-Net dataset (RGB PNGs, labels 0/1): CE-Net trains and writes PNG label maps of each image's size
    with the dataset's label values (not 0/255)."""
    bundle = generated["nnunet_rgb/cenet"]
    cfg = bundle / "configs"
    small = {**_small(bundle), "epochs": 1, "val_interval": 1, "bundle_root": str(tmp_path)}
    args = [f"--{k}={json.dumps(v)}" for k, v in small.items()]
    proc = bundle_cli_chain([
        ["run", "training", "--config_file", str(cfg / "train.json"), *args],
        ["run", "inferring", "--config_file", str(cfg / "inference.json"), "--output_dir", str(tmp_path / "pred"),
         *[a for a in args if "epoch" not in a and "val_int" not in a]],
    ])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for image in sorted((generated["nnunet_rgb"] / "imagesTs").glob("*.png")):
        seg = np.asarray(Image.open(tmp_path / "pred" / f"{image.name[:-9]}_seg.png"))
        assert seg.shape == np.asarray(Image.open(image)).shape[:2]
        assert set(np.unique(seg).tolist()) <= {0, 1}


def test_real_lung_ct_as_an_nnunet_dataset(tmp_path):
    """The two real chest CT scans with expert nodule masks (../shared/data/lung_nodule_ct, NRRD), arranged as an
    nnU-Net dataset, become an EG-CNN bundle that trains a few iterations and segments both scans straight from
    their NRRD files, each label map in its scan's geometry."""
    src = shared_file("lung_nodule_ct")
    data = tmp_path / "Dataset010_LungNodule"
    (data / "imagesTr").mkdir(parents=True)
    (data / "labelsTr").mkdir()
    for i in (1, 2):
        shutil.copy(shared_file("lung_nodule_ct", f"lung{i}_image.nrrd"), data / "imagesTr" / f"lung{i}_0000.nrrd")
        shutil.copy(src / f"lung{i}_label.nrrd", data / "labelsTr" / f"lung{i}.nrrd")
    (data / "dataset.json").write_text(json.dumps({"channel_names": {"0": "CT"}, "labels": {"background": 0,
                                                   "nodule": 1}, "numTraining": 2, "file_ending": ".nrrd"}))
    bundle = new_bundle("egcnn_segresnet", data, tmp_path / "bundles" / "egcnn_lung")
    plan = json.loads((data / PLAN_FILE).read_text())
    assert plan["plan"]["intensity_schemes"][0]["scheme"] == "ct"  # CT: clipped to foreground percentiles
    cfg = bundle / "configs"
    small = {**_small(bundle), "epochs": 1, "val_interval": 1, "spacing": [4.0, 4.0, 4.0]}
    args = [f"--{k}={json.dumps(v)}" for k, v in small.items()]
    proc = bundle_cli_chain([
        ["run", "training", "--config_file", str(cfg / "train.json"), *args],
        ["run", "inferring", "--config_file", str(cfg / "inference.json"), "--output_dir", str(tmp_path / "pred"),
         *[a for a in args if "epoch" not in a and "val_int" not in a]],
    ])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    reader = ITKReader()
    for i in (1, 2):
        arr, meta = reader.get_data(reader.read(str(data / "imagesTr" / f"lung{i}_0000.nrrd")))
        seg = nib.load(str(tmp_path / "pred" / f"lung{i}_seg.nii.gz"))
        assert seg.shape == arr.shape
        np.testing.assert_allclose(seg.affine, meta["affine"], atol=1e-4)
        assert set(np.unique(np.asarray(seg.dataobj)).tolist()) <= {0, 1}


def test_region_labels_need_a_sigmoid_network_and_plain_labels_a_softmax_one(generated):
    brain = read_dataset(generated["nnunet_brain"])
    ct = read_dataset(generated["nnunet_ct"])
    plan = {"patch_size": [32, 32, 32], "spacing": [1.0, 1.0, 1.0], "batch_size": 2,
            "intensity_schemes": [{"scheme": "zscore"}] * 4}
    spec = bundle_spec("egcnn_segresnet", brain, plan, REPO / "bundles" / "_parts")
    assert spec["shared"]["sigmoid"] and spec["shared"]["out_channels"] == 3
    assert spec["shared"]["regions"] == [[1, 2, 3], [2, 3], [3]]
    assert spec["shared"]["regions_class_order"] == [1, 2, 3]
    assert spec["train.json"]["label_to_regions"]["_target_"] == "transforms.LabelsToRegionsd"
    spec = bundle_spec("egcnn_segresnet", ct, {**plan, "intensity_schemes": [{"scheme": "zscore"}]},
                       REPO / "bundles" / "_parts")
    assert not spec["shared"]["sigmoid"] and spec["shared"]["out_channels"] == 3
    assert spec["inference.json"]["edge_offset"] == 1  # one edge map per class: the background's is skipped
    assert "label_to_regions" not in spec["train.json"]


def test_new_bundle_refuses_what_it_cannot_build(generated, tmp_path, capsys):
    rgb = generated["nnunet_rgb"]
    with pytest.raises(ValueError, match=r"egcnn_segresnet has no 2D version.*2D networks: \['banet', 'cenet', "):
        new_bundle("egcnn_segresnet", rgb, tmp_path / "x")
    with pytest.raises(ValueError, match="unknown network 'unet3000'"):
        new_bundle("unet3000", rgb, tmp_path / "x")
    with pytest.raises(ValueError, match=r"label value\(s\) \[7\]"):
        new_bundle("cenet", generated["msd_ct"], tmp_path / "x", regions={"a": [1, 7]}, regions_class_order=[1])
    assert not (tmp_path / "x").exists()
    existing = generated["nnunet_rgb/cenet"]
    assert main(["--network", "cenet", "--dataset", str(rgb), "--out", str(existing)]) == 1
    assert "exists" in capsys.readouterr().err
    assert set(network_table(REPO / "bundles" / "_parts")) == {
        "egcnn_segresnet", "egcnn_unet", "egcnn_vnet", "egcnn_cenet", "boundary_aware", "cenet", "etnet", "banet"}


def test_volumes_write_with_their_geometry(tmp_path):
    """The synthetic writer keeps a RAS affine in NIfTI, NRRD and MetaImage alike (what MONAI's readers give back)."""
    affine = np.array([[-0.8, 0, 0, 10.0], [0, -0.7, 0, -20.0], [0, 0, 2.5, 30.0], [0, 0, 0, 1]])
    data = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6)
    reader = ITKReader()
    for ext in (".nii.gz", ".nrrd", ".mha"):
        path = write_volume(tmp_path / f"v{ext}", data, affine)
        arr, meta = reader.get_data(reader.read(str(path)))
        np.testing.assert_array_equal(arr, data)
        np.testing.assert_allclose(meta["affine"], affine, atol=1e-5)


def test_a_generated_bundle_is_served_with_the_dataset_label_names(generated, tmp_path):
    """MONAI Label serves a generated bundle (a Decathlon CT set in MetaImage files): ``/info`` names the dataset's
    labels with the values inference writes, an MHA study is listed (the dataset's format is a study suffix), and
    ``/infer`` on it returns a label map in the study's geometry."""
    requests = pytest.importorskip("requests", reason="the MONAI Label app needs the label extra")
    pytest.importorskip("monailabel", reason="the MONAI Label app needs the label extra")
    from edge_networks.serving.launch import bundle_copy, free_port, local_server

    source = generated["msd_ct/boundary_aware"]
    bundle = bundle_copy(source, tmp_path / "bundles", {**_small(source), "cpu_bf16": False})
    studies = tmp_path / "studies"
    studies.mkdir()
    shutil.copy(generated["msd_ct"] / "imagesTs" / "case_003.mha", studies / "CT_003.mha")
    app = tmp_path / "app"
    shutil.copytree(REPO / "apps" / "monailabel", app, ignore=shutil.ignore_patterns("logs", "__pycache__"))
    with local_server(app, studies, [bundle.name], bundles=bundle.parent, log=tmp_path / "server.log",
                      port=free_port()) as url:
        info = requests.get(f"{url}/info/", timeout=30).json()
        assert info["models"][bundle.name]["labels"] == {"kidney": 1, "tumour": 2}
        listed = requests.get(f"{url}/datastore/", params={"output": "all"}, timeout=30).json()["objects"]
        assert "CT_003" in listed  # the dataset's own format is a study suffix
        r = requests.post(f"{url}/infer/{bundle.name}", params={"image": "CT_003", "output": "image"},
                          data={"params": "{}"}, timeout=600)
        assert r.status_code == 200, (r.text[-2000:], (tmp_path / "server.log").read_text()[-4000:])
    # MONAI Label answers in the study's own format (its file name in the header)
    name = r.headers["content-disposition"].split("filename=")[-1].strip('"')
    assert name.endswith(".mha"), name
    (tmp_path / "seg.mha").write_bytes(r.content)
    reader = ITKReader()
    seg, seg_meta = reader.get_data(reader.read(str(tmp_path / "seg.mha")))
    data, meta = reader.get_data(reader.read(str(studies / "CT_003.mha")))
    assert seg.shape == data.shape
    np.testing.assert_allclose(seg_meta["affine"], meta["affine"], atol=1e-4)
    assert set(np.unique(seg).tolist()) <= {0, 1, 2}
