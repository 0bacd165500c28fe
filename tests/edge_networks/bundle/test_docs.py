"""A bundle's ``docs/README.md`` is its own text merged with the parts' shared text (``edge_networks.bundle.docs``)."""

from __future__ import annotations

import json
import shutil

from edge_networks.bundle.docs import HEADINGS, bundle_readme
from tests.helpers import BUNDLES_DIR


def _section(text: str, heading: str) -> str:
    return text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0].strip()


def test_shared_text_is_placed_filled_and_joined(tmp_path):
    """Shared text comes first in the recipe and assumption sections and after the bundle's own text elsewhere,
    ``<!-- shared -->`` places it, a list it ends continues with the bundle's items, ``{name}`` is filled and the
    braces of a JSON override stay as written."""
    bundles = tmp_path / "bundles"
    shutil.copytree(BUNDLES_DIR / "egcnn_kits" / "configs", bundles / "egcnn_kits" / "configs")
    parts = tmp_path / "parts"
    for folder, files in {
        "common/docs": {"licence.md": "Shared licence.", "training_configuration.md":
                        "Recipe of {name}: `--norm \"['group', {'num_groups': 8}]\"`, {unknown} kept."},
        "networks/x/docs": {"assumptions.md": "- shared one\n- shared two", "references.md": "- Shared ref."},
    }.items():
        (parts / folder).mkdir(parents=True)
        for name, text in files.items():
            (parts / folder / name).write_text(text + "\n")
    (parts / "specs").mkdir()
    (parts / "specs" / "egcnn_kits.json").write_text(json.dumps({"parts": ["networks/x"]}))
    (parts / "specs" / "egcnn_kits.md").write_text(
        "# egcnn_kits: title\n\n## Overview\nOwn overview.\n\n## Training configuration\nOwn recipe note.\n\n"
        "## Assumptions\n- own first\n\n<!-- shared -->\n\n- own last\n\n## References\n- Own ref.\n\n"
        "## Licence\nThe data's own terms.\n")
    text = bundle_readme("egcnn_kits", bundles, parts)
    assert [ln[3:] for ln in text.splitlines() if ln.startswith("## ")] == list(HEADINGS)
    assert _section(text, "Training configuration") == (
        "Recipe of egcnn_kits: `--norm \"['group', {'num_groups': 8}]\"`, {unknown} kept.\n\nOwn recipe note.")
    assert _section(text, "Assumptions") == "- own first\n- shared one\n- shared two\n- own last"
    assert _section(text, "References") == "- Shared ref.\n- Own ref."
    assert _section(text, "Licence") == "The data's own terms.\n\nShared licence."
    assert _section(text, "Overview") == "Own overview."
    assert "<!-- shared -->" not in text


def test_every_committed_bundle_doc_holds_its_parts_text():
    """The shared files are in the generated docs of every bundle made of their part, and in no other."""
    from edge_networks.bundle.generate import PARTS_DIR, bundle_names

    cenet_2d = (PARTS_DIR / "networks" / "cenet_image2d" / "docs" / "training_configuration.md").read_text()
    first = cenet_2d.strip().splitlines()[0]
    for name in bundle_names():
        spec = json.loads((PARTS_DIR / "specs" / f"{name}.json").read_text())
        readme = (BUNDLES_DIR / name / "docs" / "README.md").read_text()
        assert (first in readme) == ("networks/cenet_image2d" in spec["parts"]), name
