"""Atomic checkpoint files and the choice of the checkpoint to resume from (the kill tests with real bundle processes
are in tests/bundles/test_faults.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ignite.engine import Engine, Events

from edge_networks.bundle.checkpoints import (
    AtomicDiskSaver,
    ResumableCheckpointSaver,
    TrainingState,
    attach_resume,
    find_resume_checkpoint,
    load_checkpoint,
    random_transforms,
    resume_path,
)


class _Unpicklable:
    def __reduce__(self):
        raise RuntimeError("serialisation fails half-way")


def test_atomic_saver_leaves_no_file_when_the_write_fails(tmp_path):
    saver = AtomicDiskSaver(tmp_path, "model.pt")
    saver({"w": torch.ones(3)}, "ignored.pt")
    with pytest.raises(RuntimeError, match="half-way"):
        saver({"w": torch.zeros(3), "bad": _Unpicklable()}, "ignored.pt")
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]  # no temporary left, the old file untouched
    assert torch.equal(torch.load(tmp_path / "model.pt")["w"], torch.ones(3))
    saver.remove("model.pt")  # a fixed name is never deleted ahead of its replacement
    assert (tmp_path / "model.pt").exists()


def _trainer(epochs: int) -> Engine:
    net = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)

    def step(engine, batch):
        opt.zero_grad()
        net(batch).sum().backward()
        opt.step()

    trainer = Engine(step)
    trainer.net, trainer.opt = net, opt
    return trainer


def test_epoch_checkpoints_rotate_and_resume(tmp_path):
    data = [torch.ones(1, 2)] * 3
    trainer = _trainer(4)
    objects = {"model": trainer.net, "optimizer": trainer.opt, "trainer": trainer}
    (tmp_path / "last_checkpoint_epoch=9.pt").write_bytes(b"stale run")
    (tmp_path / "tmpab12cd34").write_bytes(b"partial")
    ResumableCheckpointSaver(tmp_path, objects).attach(trainer)
    trainer.run(data, max_epochs=4)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last_checkpoint_epoch=3.pt", "last_checkpoint_epoch=4.pt",
                                                          "model_last.pt"]
    # the newest epoch that loads is chosen; a damaged newest file is skipped
    assert find_resume_checkpoint(tmp_path).endswith("last_checkpoint_epoch=4.pt")
    (tmp_path / "last_checkpoint_epoch=4.pt").write_bytes(b"\x80\x02 damaged")
    assert find_resume_checkpoint(tmp_path).endswith("last_checkpoint_epoch=3.pt")
    assert resume_path(tmp_path, False, None) is None
    assert resume_path(tmp_path / "empty", True, None) is None

    # continuing to 6 epochs from epoch 3: 3 more epochs, the rotation continues from the resumed files
    resumed = _trainer(6)
    objects = {"model": resumed.net, "optimizer": resumed.opt, "trainer": resumed}
    attach_resume(resumed, objects, resume_path(tmp_path, True, None))
    ResumableCheckpointSaver(tmp_path, objects, resuming=True).attach(resumed)
    seen = []
    resumed.add_event_handler(Events.EPOCH_STARTED, lambda e: seen.append(e.state.epoch))
    resumed.run(data, max_epochs=6)
    assert seen == [4, 5, 6] and resumed.state.iteration == 18
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last_checkpoint_epoch=5.pt", "last_checkpoint_epoch=6.pt",
                                                          "model_last.pt"]


def test_resume_errors(tmp_path):
    trainer = _trainer(2)
    objects = {"model": trainer.net, "optimizer": trainer.opt, "trainer": trainer}
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        attach_resume(trainer, objects, tmp_path / "missing.pt")
    with pytest.raises(ValueError, match="at least 2"):
        ResumableCheckpointSaver(tmp_path, objects, n_saved=1)
    ResumableCheckpointSaver(tmp_path, objects).attach(trainer)
    trainer.run([torch.ones(1, 2)], max_epochs=3)
    short = _trainer(2)
    attach_resume(short, {"model": short.net, "optimizer": short.opt, "trainer": short},
                  tmp_path / "last_checkpoint_epoch=3.pt")
    with pytest.raises(ValueError, match="past the configured 2 epochs"):
        short.run([torch.ones(1, 2)], max_epochs=2)


def test_training_state_restores_random_streams():
    from monai.transforms import Compose, RandFlipd, RandGaussianNoised

    pipeline = Compose([RandFlipd("x", prob=0.5), RandGaussianNoised("x", prob=1.0)])
    pipeline.set_random_state(3)
    names = [type(t).__name__ for t in random_transforms(pipeline)]
    assert {"RandFlipd", "RandGaussianNoised"} <= set(names), names
    state = TrainingState(dataset=pipeline).state_dict()
    first = (torch.rand(2), pipeline({"x": torch.zeros(1, 4, 4)})["x"])
    TrainingState(dataset=pipeline).load_state_dict(state)
    again = (torch.rand(2), pipeline({"x": torch.zeros(1, 4, 4)})["x"])
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    TrainingState(dataset=pipeline, restore_rng="false").load_state_dict(state)
    assert not torch.equal(first[1], pipeline({"x": torch.zeros(1, 4, 4)})["x"])


def test_training_state_round_trips_through_a_weights_only_load(tmp_path):
    """The random states are saved as tensors and plain values: ``torch.load``'s default ``weights_only=True`` reads
    them, and the restored streams draw what the saved ones would have drawn."""
    from monai.transforms import Compose, RandGaussianNoised

    pipeline = Compose([RandGaussianNoised("x", prob=1.0)])
    pipeline.set_random_state(5)
    np.random.seed(11)  # noqa: NPY002 - the global stream MONAI seeds
    torch.save({"training_state": TrainingState(dataset=pipeline).state_dict()}, tmp_path / "state.pt")
    first = (np.random.rand(3), pipeline({"x": torch.zeros(1, 4, 4)})["x"])  # noqa: NPY002
    loaded = torch.load(tmp_path / "state.pt")  # weights_only=True
    TrainingState(dataset=pipeline).load_state_dict(loaded["training_state"])
    again = (np.random.rand(3), pipeline({"x": torch.zeros(1, 4, 4)})["x"])  # noqa: NPY002
    np.testing.assert_array_equal(first[0], again[0])
    assert torch.equal(first[1], again[1])


def test_a_checkpoint_of_an_earlier_release_still_loads_after_a_warning(tmp_path):
    torch.save({"rng": np.random.get_state()}, tmp_path / "old.pt")  # noqa: NPY002 - NumPy objects inside
    with pytest.warns(UserWarning, match="earlier release"):
        assert load_checkpoint(tmp_path / "old.pt")["rng"][0] == "MT19937"
