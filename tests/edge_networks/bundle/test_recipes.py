"""The recipe table pins every bundle's training recipe; the docs page is rendered from it."""

from __future__ import annotations

import json
import shutil

import pytest

from edge_networks.bundle.recipes import check_recipes, load_recipes, main, recipe, recipes_file, render_markdown
from tests.helpers import BUNDLES_DIR, REPO, discovered_bundles


def test_every_bundle_follows_the_recipe_table_and_the_page_is_current():
    data = load_recipes()
    assert sorted(data["bundles"]) == discovered_bundles()
    assert check_recipes() == []
    assert (REPO / "docs" / "recipes.md").read_text() == render_markdown(data)
    # the values the issue names, as the table holds them
    assert recipe("cenet_brats3d")["learning rate"]["value"] == 0.01
    assert recipe("etnet_drive")["binary tasks"]["value"] == "softmax"
    assert recipe("banet_isic")["optimiser"] == {"key": "optimizer_name", "value": "sgd", "source": "paper"}


def test_a_bundle_that_drifts_from_the_table_is_named(tmp_path):
    for name in ("cenet_drive", "egcnn_brats"):
        shutil.copytree(BUNDLES_DIR / name / "configs", tmp_path / name / "configs")
    config = tmp_path / "cenet_drive" / "configs" / "train.json"
    train = json.loads(config.read_text())
    train["learning_rate"] = 0.01
    del train["tta"]
    config.write_text(json.dumps(train))
    shutil.copytree(BUNDLES_DIR / "egcnn_kits" / "configs", tmp_path / "new_bundle" / "configs")
    faults = check_recipes(tmp_path)
    assert "cenet_drive learning rate: train.json learning_rate = 0.01, the table 0.004 (paper)" in faults
    assert any(f.startswith("cenet_drive TTA: train.json has no 'tta'") for f in faults)
    assert "new_bundle: no row in the recipe table" in faults
    assert not [f for f in faults if f.startswith("egcnn_brats")]


def test_a_project_choice_needs_its_reason(tmp_path):
    data = json.loads(recipes_file().read_text())
    data["networks"]["cenet"]["values"]["epochs"] = {"key": "epochs", "value": 100, "source": "project"}
    data["bundles"]["cenet_em"]["values"]["batch"] = {"key": "batch_size", "value": 8, "source": "rumour"}
    path = tmp_path / "recipes.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError) as err:
        load_recipes(path)
    assert "'epochs': a project choice needs its reason" in str(err.value) and "'batch'" in str(err.value)


def test_check_command(capsys):
    assert main(["--check", "--out", str(REPO / "docs" / "recipes.md")]) == 0
    assert "every bundle follows the recipe table" in capsys.readouterr().out


def test_the_table_follows_the_bundles_folder_in_use(tmp_path, monkeypatch):
    """After a plain install the bundles come from --bundles or $EDGE_SEG_BUNDLES; the table is read from that
    folder's _parts, not from beside the package."""
    (tmp_path / "_parts").mkdir()
    data = json.loads(recipes_file().read_text())
    data["bundles"] = {"egcnn_brats": data["bundles"]["egcnn_brats"]}
    (tmp_path / "_parts" / "recipes.json").write_text(json.dumps(data))
    shutil.copytree(BUNDLES_DIR / "egcnn_brats" / "configs", tmp_path / "egcnn_brats" / "configs")
    monkeypatch.setenv("EDGE_SEG_BUNDLES", str(tmp_path))
    assert recipes_file() == tmp_path / "_parts" / "recipes.json"
    assert list(load_recipes()["bundles"]) == ["egcnn_brats"] and check_recipes() == []
