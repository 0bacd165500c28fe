"""The documentation: every relative link and ``#anchor`` in ``README.md``, ``docs/`` and the bundles' docs resolves
inside the repository, no document links outside it, the README stays short, and its bundle table is what the
bundles' metadata gives (``edge-seg-generate`` writes it)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from edge_networks.bundle.readme import END, START, bundle_table, table_drift
from tests.helpers import REPO

DOCS = sorted([REPO / "README.md", *(REPO / "docs").glob("*.md"), *(REPO / "bundles").glob("*/docs/README.md")])
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation but ``-`` and ``_`` dropped, spaces as ``-``."""
    text = re.sub(r"[`*]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for line in FENCE.sub("", path.read_text()).splitlines():
        if line.startswith("#"):
            base = slug(line.lstrip("#"))
            n = seen.get(base, 0)
            out.add(base if n == 0 else f"{base}-{n}")
            seen[base] = n + 1
    return out


def links(path: Path) -> list[str]:
    return LINK.findall(FENCE.sub("", path.read_text()))


def test_the_slug_follows_github():
    assert slug("The main job (`make run`), 80 epochs") == "the-main-job-make-run-80-epochs"
    assert slug("2D datasets (`edge_networks.data`, `transforms`)") == "2d-datasets-edge_networksdata-transforms"


@pytest.mark.parametrize("doc", DOCS, ids=[str(d.relative_to(REPO)) for d in DOCS])
def test_every_link_resolves_inside_the_repository(doc):
    bad = []
    for target in links(doc):
        if re.match(r"^[a-z]+:", target):  # https:, mailto: -- outside links are allowed only as web addresses
            continue
        file, _, anchor = target.partition("#")
        dest = (doc.parent / file).resolve() if file else doc
        if REPO.resolve() not in dest.parents and dest != REPO.resolve():
            bad.append(f"{target}: outside the repository")
        elif not dest.exists():
            bad.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            bad.append(f"{target}: no heading #{anchor} in {dest.name}")
    assert not bad, bad


def test_the_readme_is_short_and_its_bundle_table_is_generated():
    text = (REPO / "README.md").read_text()
    assert len(text.splitlines()) <= 250
    table = text.split(START, 1)[1].split(END, 1)[0].strip()
    assert table == bundle_table(REPO / "bundles")
    assert len(table.splitlines()) == 2 + len([p for p in (REPO / "bundles").iterdir()
                                               if (p / "configs" / "metadata.json").exists()])
    assert table_drift(REPO / "README.md", REPO / "bundles") == []


def test_a_changed_bundle_shows_as_drift(tmp_path):
    import shutil

    bundles = tmp_path / "bundles"
    shutil.copytree(REPO / "bundles" / "egcnn_kits", bundles / "egcnn_kits")
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n{START}\n{bundle_table(bundles)}\n{END}\nrest\n")
    assert table_drift(readme, bundles) == []
    meta = bundles / "egcnn_kits" / "configs" / "metadata.json"
    meta.write_text(meta.read_text().replace('"task": "Kidney', '"task": "Renal'))
    assert table_drift(readme, bundles) == ["README.md: the bundle table differs from the bundles' metadata "
                                            "(run edge-seg-generate)"]


def test_the_results_page_is_what_the_results_files_give(tmp_path):
    from edge_networks.report import main, render

    page = REPO / "docs" / "results.md"
    assert page.read_text() == render(REPO / "benchmarks" / "results"), "run edge-seg-report (make report)"
    # a new results file changes the page: --check says so
    results = tmp_path / "results"
    results.mkdir()
    (results / "bench.json").write_text('{"command": "python b.py", "date": "2026-12-06", "machine": "2 cores", '
                                        '"rows": [{"name": "a", "s": 1.5}, {"name": "b", "s": 2.25}]}')
    out = tmp_path / "results.md"
    assert main(["--results", str(results), "--page", str(out)]) == 0
    text = out.read_text()
    assert "- **command**: python b.py" in text and "- **date**: 2026-12-06" in text
    assert "| a | 1.5 |" in text and "| b | 2.25 |" in text  # the name column once, as the row name
    assert main(["--check", "--results", str(results), "--page", str(out)]) == 0
    (results / "more.json").write_text('{"x": 1, "y": null}')
    assert main(["--check", "--results", str(results), "--page", str(out)]) == 1
    text = render(results)
    assert "not recorded in the file: command, date, machine" in text and "- **y**:" in text and "None" not in text
    # a folder's provenance: its provenance.json, else its results.json's runs (distinct values), else a line
    (results / "runs").mkdir()
    (results / "runs" / "results.json").write_text(
        '{"machine": "m1", "runs": {"a": {"command": "c1", "date": "d1"}, "b": {"command": "c2", "date": "d1"}}}')
    (results / "board").mkdir()
    (results / "board" / "board.md").write_text("# Board\n\n| x |\n")
    text = render(results)
    runs = text.split("## runs", 1)[1].split("\n## ", 1)[0]
    assert "- **command**: c1; c2\n- **date**: d1\n- **machine**: m1" in runs and "not recorded" not in runs
    board = text.split("## board", 1)[1].split("\n## ", 1)[0]
    assert "- not recorded in the folder: command, date, machine" in board and "### Board" in board
    (results / "board" / "provenance.json").write_text('{"command": "lb", "date": "d2", "machine": "m2"}')
    assert "- **command**: lb\n- **date**: d2\n- **machine**: m2" in render(results)


def test_bundle_docs_show_their_short_runs_from_the_results_files(tmp_path):
    """A bundle's measured table is read from its results file: the committed docs hold the file's numbers, and a
    changed number in the file changes the table."""
    import json

    from edge_networks.bundle.docs import results_table

    runs = json.loads((REPO / "benchmarks" / "results" / "cenet_2d_short" / "results.json").read_text())["runs"]
    easy = runs["cenet_drive/easy"]
    readme = (REPO / "bundles" / "cenet_drive" / "docs" / "README.md").read_text()
    row = f"| easy | {easy['train_s']:.0f} | {easy['evaluate_s']:.0f} | {easy['metrics']['val_mean_dice']:.3f} |"
    assert row in readme
    assert "Read from `benchmarks/results/cenet_2d_short/results.json`" in readme
    (tmp_path / "r.json").write_text(json.dumps({"runs": {"cenet_drive/easy": {**easy, "train_s": 1.0}}}))
    assert "| easy | 1 | " in results_table("cenet_drive", "r.json", tmp_path)
    with pytest.raises(ValueError, match="has no run of banet_isic"):
        results_table("banet_isic", "r.json", tmp_path)
