"""The bundle configs are generated from ``bundles/_parts`` and must not drift from them."""

from __future__ import annotations

import json
import shutil

import pytest
from monai.bundle import ConfigParser

from edge_networks.bundle.generate import (
    OVERRIDE_CONFIGS,
    PARTS_DIR,
    build_bundle,
    bundle_names,
    check_bundles,
    explain,
    main,
    write_bundle,
)
from tests.helpers import BUNDLES_DIR, discovered_bundles


def test_committed_bundles_equal_the_generated_ones():
    """The drift guard: regenerating every bundle changes nothing (edit bundles/_parts, then regenerate)."""
    assert bundle_names() == discovered_bundles(), "every bundle folder has a spec and every spec a folder"
    assert check_bundles() == []


def test_check_command_names_each_drifted_file(tmp_path, capsys):
    """A hand edit of a generated file, and an edit of a common part, are both reported (exit 1), per bundle."""
    bundles = tmp_path / "bundles"
    shutil.copytree(BUNDLES_DIR, bundles, ignore=shutil.ignore_patterns("models", "_parts"))
    parts = tmp_path / "parts"
    shutil.copytree(PARTS_DIR, parts)
    train = bundles / "egcnn_kits" / "configs" / "train.json"
    content = json.loads(train.read_text())
    content["learning_rate"] = 0.5
    train.write_text(json.dumps(content))
    common = json.loads((parts / "common" / "evaluate.json").read_text())
    common["validate#dataset#cache_rate"] = 1.0
    (parts / "common" / "evaluate.json").write_text(json.dumps(common))
    readme = bundles / "cenet_em" / "docs" / "README.md"  # the docs: a hand edit, and the shared commands text
    readme.write_text(readme.read_text().replace("## Assumptions", "## Assumptions\nedited by hand"))
    commands = parts / "common" / "docs" / "commands.md"
    commands.write_text(commands.read_text().replace("the small CPU profile", "the small CPU profile (2 cores)"))
    assert main(["--check", "--parts", str(parts), "--out", str(bundles)]) == 1  # the command, in-process
    lines = capsys.readouterr().out.splitlines()
    docs = {ln.split("/")[0] for ln in lines if ln.endswith("differs from specs/" + ln.split("/")[0] +
                                                          ".md and the parts' docs (run edge-seg-generate)")}
    assert docs == set(bundle_names())
    assert "egcnn_kits/configs/train.json: learning_rate: generated 0.0001 != committed 0.5" in lines
    assert {ln.split("/")[0] for ln in lines if "evaluate.json: validate#dataset#cache_rate" in ln} == \
        set(bundle_names())
    # regenerating repairs both
    assert main(["--parts", str(parts), "--out", str(bundles)]) == 0
    assert check_bundles(bundles_dir=bundles, parts_dir=parts) == []
    assert json.loads(train.read_text())["learning_rate"] == 0.0001
    assert "edited by hand" not in readme.read_text() and "the small CPU profile (2 cores)" in readme.read_text()


def test_layers_merge_in_order_with_monai_semantics():
    """common, then the parts in their order, then the spec: ``a#b`` sets a nested item, later layers win, the
    override files keep their ``a#b`` keys literal, and bundle_root is the bundle's own folder."""
    files = build_bundle("boundary_aware_brats")
    train, inference = files["train.json"], files["inference.json"]
    assert train["bundle_root"] == "$edge_networks.bundle.bundle_root('boundary_aware_brats')"
    assert list(train)[:2] == ["imports", "bundle_root"]
    # networks/boundary_aware sets spatial_dims 3, tasks/brats_tc_slices (a later part) sets 2 with network_def#...
    assert train["network_def"]["spatial_dims"] == inference["network_def"]["spatial_dims"] == 2
    assert train["network_def"]["_target_"] == "edge_networks.BoundaryAwareNet"
    assert train["epochs"] == 100  # the spec's own section, over common's 300
    assert inference["inferer"]["inferer"]["_target_"] == "SliceInferer"  # the slices part over common
    assert "validate#handlers" in files["evaluate.json"]  # an override file keeps literal ids
    assert files["logging.conf"] == (PARTS_DIR / "common" / "logging.conf").read_text()


def test_new_bundle_from_a_short_spec(tmp_path):
    """A new paper on an existing task is a spec of a few lines: here the boundary-aware network on KiTS."""
    parts = tmp_path / "parts"
    shutil.copytree(PARTS_DIR, parts)
    spec = {"parts": ["networks/boundary_aware", "tasks/kits"],
            "metadata.json": {"version": "0.1.0", "changelog": {"0.1.0": "first"}, "name": "BA KiTS",
                              "task": "kidney and tumour", "description": "boundary-aware network on KiTS19",
                              "references": []}}
    (parts / "specs" / "boundary_aware_kits.json").write_text(json.dumps(spec))
    configs = write_bundle("boundary_aware_kits", tmp_path / "bundles", parts)
    parser = ConfigParser()
    parser.read_config(str(configs / "train.json"))
    assert parser["layout"] == "kits19" and parser["spacing"] == [1.0, 1.0, 1.0]
    assert parser["network_def"]["in_channels"] == 1 and parser.get_parsed_content("network_def#out_channels") == 3
    assert parser["loss"]["_target_"] == "edge_networks.BoundaryAwareLoss" and parser["sigmoid"] is False
    loss = parser.get_parsed_content("loss")
    assert loss.sigmoid is False and loss.out_channels == 3
    net = parser.get_parsed_content("network_def", instantiate=True)
    assert type(net).__name__ == "BoundaryAwareNet"
    assert json.loads((configs / "metadata.json").read_text())["network_data_format"]["inputs"]["image"][
        "modality"] == "CT"
    assert not list(configs.glob(".*.part")), "temporary files left behind"
    assert (configs.parent / "LICENSE").read_text() == (PARTS_DIR / "common" / "LICENSE").read_text()
    assert (configs.parent / "models").is_dir() and (configs.parent / "docs").is_dir()


def test_spec_without_a_task_part_is_refused(tmp_path, capsys):
    parts = tmp_path / "parts"
    shutil.copytree(PARTS_DIR, parts)
    (parts / "specs" / "broken.json").write_text(json.dumps({"parts": ["networks/egcnn"]}))
    with pytest.raises(ValueError, match=r"bundle broken: train.json has no \['dataset_dir', 'layout', 'roi_size'"):
        build_bundle("broken", parts)
    (parts / "specs" / "typo.json").write_text(json.dumps({"parts": ["networks/egcnn", "tasks/bratz"]}))
    with pytest.raises(FileNotFoundError, match=r"part folder\(s\) \['tasks/bratz'\] not found"):
        build_bundle("typo", parts)
    # the command validates every bundle before writing any
    out = tmp_path / "out"
    assert main(["--parts", str(parts), "--out", str(out)]) == 2 and not out.exists()
    assert "error: bundle broken: train.json has no" in capsys.readouterr().err


@pytest.mark.parametrize(("name", "filename", "key"), [
    ("cenet_brats3d", "train.json", "learning_rate"), ("cenet_brats3d", "train.json", "norm"),
    ("egcnn_kits", "inference.json", "preprocessing#transforms"), ("banet_rim_one", "train.json", "loss"),
    ("egcnn_brats", "cpu_small.json", "roi_size"), ("etnet_refuge", "metadata.json", "task"),
    ("banet_rim_one", "inference.json", "edge_writer"), ("egcnn_kits", "inference.json", "edge_offset"),
])
def test_explain_ends_with_the_generated_value(name, filename, key):
    history = explain(name, key, filename)
    assert history, f"no layer sets {key}"
    generated = build_bundle(name)[filename]
    expected = generated[key] if filename in OVERRIDE_CONFIGS else ConfigParser(generated)[key]
    assert history[-1][1] == expected
    assert len({layer for layer, _ in history}) == len(history)  # each layer once, in merge order


def test_explain_names_each_layer_that_changed_a_key(capsys):
    # cenet_brats3d's learning rate: the common default, CE-Net's part, then the bundle's own spec
    layers = [layer for layer, _ in explain("cenet_brats3d", "learning_rate")]
    assert layers[0] == "common/train.json" and layers[-1] == "specs/cenet_brats3d.json [train.json]"
    assert "networks/cenet/train.json" in layers
    # a later layer that sets one item of a dict an earlier layer defined still counts as a change of the dict
    assert [layer for layer, _ in explain("cenet_oct", "prob_saver", "inference.json")] == \
        ["tasks/image2d/inference.json", "tasks/oct/inference.json"]
    assert main(["--explain", "cenet_brats3d", "learning_rate"]) == 0
    out = capsys.readouterr().out
    assert "common/train.json: 0.0001" in out and out.strip().endswith("set by specs/cenet_brats3d.json [train.json]")
    assert main(["--explain", "cenet_brats3d", "no_such_key"]) == 1
    with pytest.raises(ValueError, match="not a bundle config"):
        explain("cenet_brats3d", "epochs", "nope.json")


def _override_keys(path):
    """The keys a part file sets: its top-level keys; a spec's, those of each of its file sections."""
    config = json.loads(path.read_text())
    if path.parent.name == "specs":
        return [k for section in config.values() if isinstance(section, dict) for k in section]
    return list(config)


def test_no_part_addresses_a_list_item_by_position():
    """Overrides name what they change (``edge_offset``, ``prob_saver#scale``), never a list position
    (``split_edges#5#func``): reordering a lower layer's list must not silently retarget them."""
    positional = [f"{path.relative_to(PARTS_DIR)}: {key}" for path in sorted(PARTS_DIR.rglob("*.json"))
                  for key in _override_keys(path) if any(part.isdigit() for part in key.lstrip("+").split("#")[1:])]
    assert not positional, positional
