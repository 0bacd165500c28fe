"""Every bundle of ``bundles/``, data-driven: discovered from the folder, small settings from ``tests.helpers.SMALL``
(each bundle's ``cpu_small`` profile with smaller windows).

Cheap checks run in-process on each bundle: MONAI's ``ConfigWorkflow`` with ``check_properties`` for the train
and infer workflows, one real training iteration of the bundle's trainer on tiny volumes, ``verify_net_in_out``,
the metadata against the local schema and the file set of BUNDLE_CONVENTIONS.md. Then one real command-line
chain per bundle on a tiny dataset: ``python -m monai.bundle run training`` -> ``evaluate.json`` -> ``inference.json``
-> ``ckpt_export``, each step checked on its outputs. A new bundle needs one row in ``TINY``; nothing else.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import jsonschema
import monai
import nibabel as nib
import numpy as np
import pytest
import torch
from ignite.engine import Events
from monai.bundle import ConfigWorkflow, verify_net_in_out
from PIL import Image

from edge_networks.data import build_datalist, read_image_2d
from tests.helpers import (
    BUNDLES_DIR,
    CHAIN_SLOW,
    SMALL,
    bundle_cli_chain,
    bundle_params,
    cli_overrides,
    config_path,
    discovered_bundles,
    has_edge_output,
    input_shape,
    is_image2d,
    label_values,
    layout,
    read_json,
    small_parser,
)
from transforms.image2d import output_stem

BUNDLES = bundle_params()
CHAINS = bundle_params(slow=CHAIN_SLOW)  # the command-line chain tests
SCHEMA = json.loads((Path(__file__).parent / "metadata_schema.json").read_text())
CONVENTION_FILES = ("metadata.json", "train.json", "evaluate.json", "inference.json", "multi_gpu_train.json",
                    "logging.conf", "cpu_small.json", "inference_ts.json")


def test_every_bundle_has_a_small_setting():
    assert sorted(SMALL) == discovered_bundles(), "add the new bundle's row to tests.helpers.TINY"


def _workflow(name: str, kind: str, data: Path, tmp: Path, **extra) -> ConfigWorkflow:
    files = ["train.json"] if kind == "train" else ["inference.json"]
    wf = ConfigWorkflow(config_file=[config_path(name, f) for f in files], workflow_type=kind,
                        meta_file=config_path(name, "metadata.json"), bundle_root=str(tmp), dataset_dir=str(data),
                        num_workers=0, **SMALL[name], **extra)
    wf.initialize()
    return wf


@pytest.mark.parametrize("name", BUNDLES)
def test_workflows_have_monai_properties(name, dataset_roots, tmp_path):
    """MONAI's required train and infer properties exist and instantiate (trainer, evaluator, datasets, ...)."""
    data = dataset_roots[layout(name)]
    for kind in ("train", "infer"):
        wf = _workflow(name, kind, data, tmp_path)
        assert wf.check_properties() == [], (name, kind)
        assert wf.bundle_root == str(tmp_path) and str(wf.device) in ("cpu", "cuda:0")
        wf.finalize()


@pytest.mark.parametrize("precision", ["float32", "bf16"])
@pytest.mark.parametrize("name", BUNDLES)
def test_two_training_iterations(name, precision, dataset_roots, tmp_path):
    """The bundle's own trainer, loss and optimizer take two steps (one per epoch: EG-CNN's identity-initialised
    fusion gives its edge normalisation a gradient only from the second), in float32 and under the CPU bfloat16
    autocast that ``cpu_bf16`` switches on (forced on here: on a CPU without native bf16 oneDNN emulates it, slower
    but the same code path): a finite loss at both steps, segmentation (+ edge, for the edge networks) channels in
    the training output, and every parameter of the network moved and finite."""
    wf = _workflow(name, "train", dataset_roots[layout(name)], tmp_path, epochs=2, val_interval=100,
                   cpu_bf16=precision == "bf16", **{"train#trainer#epoch_length": 1})
    net = wf.network_def
    before = {k: v.detach().clone() for k, v in net.state_dict().items()}
    losses = []
    wf.trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e: losses.append(float(e.state.output[0]["loss"])))
    wf.run()
    out = wf.trainer.state.output[0]  # decollated: one dict per sample of the batch
    seg_channels = read_json(name, "train.json")["out_channels"]
    assert len(losses) == 2 and np.isfinite(losses).all(), losses
    if has_edge_output(name):
        assert out["pred"].shape[0] > seg_channels, "training output: segmentation and then edge channels"
    else:
        assert out["pred"].shape[0] == seg_channels
    assert list(out["pred"].shape[1:]) == list(SMALL[name]["roi_size"])
    after = net.state_dict()
    moved = {k for k, v in after.items() if v.is_floating_point() and not torch.equal(v, before[k])}
    frozen = {k for k, v in after.items() if v.is_floating_point() and "num_batches" not in k} - moved
    assert not frozen, f"parameters that did not move in two steps: {sorted(frozen)[:5]}"
    not_finite = sorted(k for k, v in after.items() if v.is_floating_point() and not torch.isfinite(v).all())
    assert not not_finite, f"non-finite parameters after two steps: {not_finite[:5]}"
    wf.finalize()
    shutil.rmtree(tmp_path / "models", ignore_errors=True)  # up to 1 GB of checkpoints per bundle


@pytest.mark.parametrize("name", BUNDLES)
def test_verify_net_in_out(name):
    """MONAI's ``verify_net_in_out``: the network accepts the metadata's input and gives its output shape."""
    verify_net_in_out(net_id="network_def", meta_file=config_path(name, "metadata.json"),
                      config_file=config_path(name, "inference.json"), n=2, any=8, p=2, device="cpu", **SMALL[name])


@pytest.mark.parametrize("name", BUNDLES)
def test_metadata_and_file_set(name):
    meta = read_json(name, "metadata.json")
    jsonschema.validate(meta, SCHEMA)
    assert meta["version"] in meta["changelog"]
    assert meta["monai_version"] == monai.__version__
    assert meta["pytorch_version"] == torch.__version__.split("+")[0]
    assert "edge-seg" in meta["required_packages_version"]
    assert "research" in meta["intended_use"].lower()
    assert "not reproduced" in json.dumps(meta["paper_reported_metrics"])
    # what inference writes is what MONAI Label reads as label names
    assert 0 in label_values(name) and len(label_values(name)) >= 2
    spatial = meta["network_data_format"]["inputs"]["image"]["spatial_shape"]
    assert len(spatial) == small_parser(name)["network_def"]["spatial_dims"]
    folder = BUNDLES_DIR / name
    assert not [f for f in CONVENTION_FILES if not (folder / "configs" / f).exists()]
    assert (folder / "docs" / "README.md").exists() and (folder / "LICENSE").exists()
    assert not (folder / "scripts").exists(), "bundles hold no Python code (BUNDLE_CONVENTIONS.md)"


README_HEADINGS = ["Overview", "Data", "Training configuration", "Input", "Output", "Performance", "Commands",
                   "Assumptions", "References", "Licence"]


@pytest.mark.parametrize("name", BUNDLES)
def test_readme_has_the_model_zoo_headings(name):
    """One heading set for every bundle's docs/README.md (the model zoo's, plus assumptions), in this order."""
    text = (BUNDLES_DIR / name / "docs" / "README.md").read_text()
    headings = [line[3:].strip() for line in text.splitlines() if line.startswith("## ")]
    assert headings == README_HEADINGS
    sections = text.split("\n## ")[1:]
    assert all(len(s.split("\n", 1)[1].strip()) > 40 for s in sections), "an empty section"


# ---------------------------------------------------------------------------------------------------------------
# one command-line chain per bundle: train -> evaluate -> infer -> export
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chain(tmp_path_factory, dataset_roots):
    """``chain[name]``: bundle ``name`` trained for two epochs, evaluated, run for inference with edge maps and
    exported to TorchScript by ``python -m monai.bundle`` commands on the tiny dataset (one interpreter, see
    ``bundle_cli_chain``); made on first use, once per module. Returns ``(bundle_root, predictions_dir)``."""
    cache: dict[str, tuple[Path, Path]] = {}

    class _Lazy:
        def __getitem__(self, name: str) -> tuple[Path, Path]:
            if name not in cache:
                # the chain tests run grouped by bundle (conftest.py), so the previous bundle's chain is done: its
                # checkpoints (about 1 GB for a ResNet-50 network with Adam's state) go, and the disk holds one
                for done in list(cache):
                    shutil.rmtree(cache.pop(done)[0], ignore_errors=True)
                root = tmp_path_factory.mktemp(name)
                pred = root / "predictions"
                common = ["--bundle_root", str(root), "--dataset_dir", str(dataset_roots[layout(name)]),
                          "--num_workers", "0", *cli_overrides(SMALL[name])]
                proc = bundle_cli_chain([
                    ["run", "training", "--config_file", config_path(name, "train.json"), "--epochs", "2",
                     "--val_interval", "1", *common],
                    ["run", "evaluating", "--config_file", config_path(name, "train.json", "evaluate.json"), *common],
                    ["run", "inferring", "--config_file", config_path(name, "inference.json"), "--output_dir",
                     str(pred), "--save_edges", "true", *common],
                    ["ckpt_export", "network_def", "--filepath", str(root / "models" / "model.ts"), "--ckpt_file",
                     str(root / "models" / "model.pt"), "--meta_file", config_path(name, "metadata.json"),
                     "--config_file", config_path(name, "inference.json"), "--bundle_root", str(root),
                     *cli_overrides(SMALL[name])],
                ])
                assert proc.returncode == 0, proc.stderr[-4000:]
                assert proc.stdout.count("edge-seg chain: step") == 4
                cache[name] = (root, pred)
            return cache[name]

    return _Lazy()


@pytest.mark.parametrize("name", CHAINS)
def test_cli_training_writes_checkpoints_that_load_on_cpu(chain, name):
    models = chain[name][0] / "models"
    # the newest two epoch checkpoints (for --resume), the best model, the final state, the TorchScript export
    assert sorted(p.name for p in models.iterdir()) == sorted(["last_checkpoint_epoch=1.pt",
                                                               "last_checkpoint_epoch=2.pt", "model.pt",
                                                               "model_last.pt", "model.ts"])
    net = small_parser(name).get_parsed_content("network_def")
    net.load_state_dict(torch.load(models / "model.pt", map_location="cpu"))  # strict
    # every checkpoint holds tensors and plain Python values: torch.load's default weights_only=True loads it
    last = torch.load(models / "model_last.pt", map_location="cpu")
    for epoch in (1, 2):
        torch.load(models / f"last_checkpoint_epoch={epoch}.pt", map_location="cpu")
    assert {"model", "optimizer", "lr_scheduler", "trainer", "training_state"} <= set(last)
    assert last["trainer"]["max_epochs"] == 2 and last["trainer"]["iteration"] == 2 * last["trainer"]["epoch_length"]


@pytest.mark.parametrize("name", CHAINS)
def test_cli_evaluate_writes_per_case_metrics(chain, dataset_roots, name):
    root = chain[name][0]
    train = read_json(name, "train.json")
    names = {*train["validate"]["key_metric"], *train["validate"]["additional_metrics"]}
    names |= {k.split("#")[-1] for k in read_json(name, "evaluate.json") if k.startswith("validate#additional_")}
    with open(root / "eval" / "metrics.csv") as f:
        summary = {k: float(v) for k, v in csv.reader(f)}
    assert set(summary) == names, "every metric of the bundle, and no other, in metrics.csv"
    details = read_json(name, "evaluate.json")["metric_details"]
    assert details and set(details) <= names
    cases = build_datalist(layout(name), dataset_roots[layout(name)])
    measured = []
    for metric in details:
        with open(root / "eval" / f"{metric}_raw.csv") as f:
            rows = list(csv.reader(f))
        assert rows[0][0] == "filename" and 1 <= len(rows) - 1 < len(cases), (metric, rows)  # validation cases only
        values = [float(v) for r in rows[1:] for v in r[1:]]  # nan where a case lacks the region (e.g. no ET)
        assert all(0.0 <= v <= 1.0 for v in values if not np.isnan(v)) if "dice" in metric or "jaccard" in metric \
            else all(v >= 0.0 for v in values if not np.isnan(v))
        measured += [v for v in values if not np.isnan(v)]
    assert measured, "no per-case value at all"


@pytest.mark.parametrize("name", CHAINS)
def test_cli_inference_keeps_geometry_and_writes_label_values(chain, dataset_roots, name):
    data = dataset_roots[layout(name)]
    pred = chain[name][1]
    if is_image2d(name):
        _check_image2d_outputs(name, data, pred)
        return
    edges = has_edge_output(name)
    edge_postfix = _edge_postfix(name)
    items = build_datalist(layout(name), data)
    # one label map per case, and one edge map for the edge networks (--save_edges true)
    assert len(list(pred.glob("*.nii.gz"))) == (2 if edges else 1) * len(items)
    for item in items:
        first = item["image"][0] if isinstance(item["image"], list) else item["image"]
        src = nib.load(first)
        case = Path(first).parent.name
        seg = nib.load(str(pred / f"{case}_seg.nii.gz"))
        assert seg.shape == src.shape[:3] and seg.get_data_dtype() == np.uint8
        np.testing.assert_allclose(seg.affine, src.affine, atol=1e-5)
        assert set(np.unique(np.asarray(seg.dataobj)).tolist()) <= label_values(name)
        if edges:
            edge = nib.load(str(pred / f"{case}_{edge_postfix}.nii.gz"))
            assert edge.shape[:3] == src.shape[:3]
            np.testing.assert_allclose(edge.affine, src.affine, atol=1e-5)
            e = np.asarray(edge.dataobj)
            assert 0.0 <= e.min() and e.max() <= 1.0 and e.dtype == np.float32


def _edge_postfix(name: str) -> str | None:
    """The file postfix of a bundle's edge map (``--save_edges true``), None for a network without an edge head."""
    config = read_json(name, "inference.json")
    return config["edge_postfix"] if config["split_edges"] else None


def _check_image2d_outputs(name: str, data: Path, pred: Path) -> None:
    """2D bundles: one mask PNG and one overlay PNG per input image (each page of a TIFF stack), named after the
    input's stem, with the input's width and height, holding only the metadata's label values."""
    items = build_datalist(layout(name), data)
    assert len(list(pred.glob("*_seg.png"))) == len(list(pred.glob("*_overlay.png"))) == len(items)
    edge_postfix = _edge_postfix(name)
    assert len(list(pred.glob(f"*_{edge_postfix}.png"))) == (len(items) if edge_postfix else 0)
    for item in items:
        src = read_image_2d(item["image"], item.get("page"))
        stem = output_stem(item["image"], item.get("page"))
        seg = Image.open(pred / f"{stem}_seg.png")
        overlay = Image.open(pred / f"{stem}_overlay.png")
        assert seg.size == overlay.size == src.array.shape[1::-1], (stem, seg.size, src.array.shape)
        assert seg.mode == "L" and overlay.mode == "RGB"
        assert set(np.unique(np.asarray(seg)).tolist()) <= label_values(name)
        if edge_postfix:  # the edge networks' edge probability map, 0..255, of the input's size
            edge = Image.open(pred / f"{stem}_{edge_postfix}.png")
            assert edge.size == seg.size and edge.mode == "L", (stem, edge.size, edge.mode)


@pytest.mark.parametrize("name", CHAINS)
def test_cli_ckpt_export_equals_eager(chain, name):
    root = chain[name][0]
    ts = root / "models" / "model.ts"
    net = small_parser(name, "inference.json").get_parsed_content("network_def")
    net.load_state_dict(torch.load(root / "models" / "model.pt", map_location="cpu", weights_only=True))
    torch.manual_seed(0)
    x = torch.rand(input_shape(name))
    with torch.no_grad():
        ref = net.eval()(x)
        got = torch.jit.load(str(ts), map_location="cpu").eval()(x)
    assert got.shape == ref.shape == (1, read_json(name, "metadata.json")["network_data_format"]["outputs"]["pred"][
        "num_channels"], *x.shape[2:])
    np.testing.assert_allclose(got.numpy(), ref.numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", BUNDLES)
def test_resnet_bundles_document_their_weights_and_a_from_scratch_recipe(name):
    """A bundle whose network takes ImageNet weights (``pretrained_path``) has ``configs/from_scratch.json`` for
    training without them (keys of its ``train.json``; ``cpu_small.json`` is that recipe at CPU sizes), and its docs
    name the torchvision file to pass (2D) or say that 3D has none."""
    train = read_json(name, "train.json")
    scratch = BUNDLES_DIR / name / "configs" / "from_scratch.json"
    if "pretrained_path" not in train:
        assert not scratch.exists()
        return
    recipe = json.loads(scratch.read_text())
    assert recipe and set(recipe) <= set(train), sorted(set(recipe) - set(train))
    small = read_json(name, "cpu_small.json")
    assert {k: small[k] for k in recipe} == recipe
    docs = " ".join((BUNDLES_DIR / name / "docs" / "README.md").read_text().split())
    network = train["network_def"]["_target_"].split(".")[-1]
    arch = {"CENet": "resnet34", "ETNet": "resnet50", "BANet": "resnet50"}[network]
    if train["network_def"].get("spatial_dims") == 3:
        assert "refused in 3D" in docs
    else:
        assert f"--pretrained_path {arch}.pth" in docs and f"torchvision.models.{arch}(weights=" in docs
    assert "configs/from_scratch.json" in docs
