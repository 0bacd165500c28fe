"""``edge_networks.demo``: the edge loss the main job trains with (the training itself is ``make run``)."""

import pytest

from edge_networks import demo


@pytest.mark.parametrize("extra,balanced", [([], "false"), (["--paper-edge-loss"], "true")])
def test_demo_trains_with_the_plain_edge_bce_unless_asked_for_the_papers(tmp_path, monkeypatch, extra, balanced):
    calls = []

    def stop_after_training(args, log):
        calls.append(list(args))
        raise SystemExit(0)

    monkeypatch.setattr(demo, "write_brats_dataset", lambda *a, **k: None)
    monkeypatch.setattr(demo, "prepare_datalist", lambda *a, **k: {"training": [], "validation": []})
    monkeypatch.setattr(demo, "_bundle", stop_after_training)
    with pytest.raises(SystemExit):
        demo.main(["--out", str(tmp_path), *extra])
    (train,) = calls
    assert train[:2] == ["run", "training"]
    assert train[train.index("--edge_bce_balanced") + 1] == balanced
