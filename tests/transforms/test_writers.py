"""Atomic output files (the kill tests with real bundle processes are in tests/bundles/test_faults.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import LoadImage, SaveImage

from transforms.writers import atomic_path, is_partial_output, remove_partial_outputs, write_json_atomic


def test_atomic_path_renames_on_success_and_removes_on_error(tmp_path):
    target = tmp_path / "case_seg.nii.gz"
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.endswith(".nii.gz") and is_partial_output(tmp)
        tmp.write_bytes(b"whole")
    assert target.read_bytes() == b"whole"
    with pytest.raises(KeyboardInterrupt), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise KeyboardInterrupt
    assert target.read_bytes() == b"whole" and sorted(p.name for p in tmp_path.iterdir()) == ["case_seg.nii.gz"]


def test_write_json_atomic_makes_the_folder_and_leaves_the_old_file_on_error(tmp_path):
    target = write_json_atomic(tmp_path / "results" / "bench.json", {"ratio": 1.2})
    assert json.loads(target.read_text()) == {"ratio": 1.2}
    with pytest.raises(TypeError):
        write_json_atomic(target, {"first": list(range(1000)), "not json": object()})  # fails half-written
    assert json.loads(target.read_text()) == {"ratio": 1.2} and [p.name for p in target.parent.iterdir()] == [
        "bench.json"]


def test_partial_outputs_are_removed_and_nothing_else(tmp_path):
    (tmp_path / ".case_seg.partial123.png").write_bytes(b"x")
    (tmp_path / "case_seg.png").write_bytes(b"x")
    (tmp_path / ".hidden").write_bytes(b"x")
    assert [p.name for p in remove_partial_outputs(tmp_path)] == [".case_seg.partial123.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".hidden", "case_seg.png"]


@pytest.mark.parametrize("writer, ext", [("transforms.readers.NibabelWriterKeepGeometry", ".nii.gz"),
                                         ("transforms.writers.AtomicPILWriter", ".png")])
def test_atomic_writers_write_the_array(writer, ext, tmp_path):
    arr = MetaTensor(torch.arange(30, dtype=torch.float32).reshape(1, 5, 6), meta={"filename_or_obj": "a.png"})
    kwargs = {"output_ext": ext, "separate_folder": False, "resample": False, "output_dtype": np.uint8}
    SaveImage(output_dir=tmp_path / "atomic", writer=writer, **kwargs)(arr)
    out = sorted((tmp_path / "atomic").iterdir())
    assert [p.name for p in out] == [f"a_trans{ext}"]
    loaded = LoadImage(image_only=True)(str(out[0]))
    np.testing.assert_array_equal(np.asarray(loaded).squeeze(), arr[0].numpy())
