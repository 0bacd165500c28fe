"""Datastore ids (:mod:`edge_networks.serving.ids`) and the checks of ``/infer``'s arguments
(:mod:`edge_networks.serving.routes`), without a server (the running server is tested in test_label_app.py)."""

from __future__ import annotations

import io
import os
import shutil

import pytest

pytest.importorskip("monailabel", reason="the MONAI Label app needs the label extra: pip install -e '.[label,dev]'")

from fastapi import HTTPException  # noqa: E402

from edge_networks.serving.ids import SafeLocalDatastore, StudyNotFound, decoded_forms, is_valid_id, scrub_paths  # noqa: E402
from edge_networks.serving.label_app import study_extensions  # noqa: E402
from edge_networks.serving.routes import _threaded, check_infer_request  # noqa: E402
from tests.helpers import REPO, asymmetric, write_dicom  # noqa: E402

BAD = ["../etc/passwd", "..%2Fetc", "%2e%2e%2fetc", "..%252fetc", "/etc/passwd", "%2Fetc%2Fpasswd", "a\\b", "..", ".",
       "", "  ", "a\x00b", "sub/case"]
GOOD = ["BRATS_001", "case 1", "a..b", "..a", "x.y", "KITS-0001"]


@pytest.mark.parametrize("value", BAD)
def test_ids_that_leave_the_datastore_are_refused(value):
    assert not is_valid_id(value)


@pytest.mark.parametrize("value", GOOD)
def test_datastore_names_are_ids(value):
    assert is_valid_id(value)


def test_decoded_forms_and_scrubbed_messages():
    assert decoded_forms("%252e%252e") == ["%252e%252e", "%2e%2e", ".."]
    assert scrub_paths("cannot open '/srv/data/studies/A.nii.gz': see /tmp/x.log") == \
        "cannot open 'A.nii.gz': see x.log"
    assert scrub_paths("study 'A' is 3 x 4 x 5 (a/b)") == "study 'A' is 3 x 4 x 5 (a/b)"


@pytest.fixture
def store(tmp_path):
    studies = tmp_path / "studies"
    studies.mkdir()
    (studies / "CASE_1.nii.gz").write_bytes(b"not read")
    write_dicom(studies / "XRAY.dcm", asymmetric(8, 12))
    (tmp_path / "outside.nii.gz").write_bytes(b"secret")
    bundles = [REPO / "bundles" / "egcnn_brats", REPO / "bundles" / "cenet_drive"]
    return SafeLocalDatastore(str(studies), extensions=study_extensions(bundles), auto_reload=False)


def test_safe_datastore_lists_dicom_and_answers_bad_ids_like_missing_ones(store, tmp_path):
    assert set(store.list_images()) == {"CASE_1", "XRAY"}
    assert store.get_image_uri("CASE_1").endswith("CASE_1.nii.gz")
    assert "path" not in store.get_image_info("CASE_1")
    for value in ("../outside", "NOPE", "%2e%2e%2foutside", ""):
        with pytest.raises(StudyNotFound) as e:
            store.get_image_uri(value)
        assert e.value.status_code == 404 and e.value.detail == f"study {value!r} not found"
    upload = tmp_path / "upload.nii.gz"
    upload.write_bytes(b"new")
    with pytest.raises(StudyNotFound):
        store.add_image("../escaped", str(upload), {})
    with pytest.raises(StudyNotFound):
        store.save_label("CASE_1", str(upload), "../../tag", {})
    with pytest.raises(StudyNotFound):
        store.get_label_uri("CASE_1", "final")  # no label yet: 404, not an empty path
    assert not (tmp_path / "escaped.nii.gz").exists() and not list(tmp_path.glob("tag*"))
    assert store.add_image("NEW_CASE", str(upload), {}) == "NEW_CASE"


class _Upload:
    def __init__(self, name, data):
        self.filename, self.file = name, io.BytesIO(data)


def test_infer_arguments_are_checked_and_uploads_saved_privately():
    with pytest.raises(HTTPException) as e:
        check_infer_request({"image": "", "params": "{}"})
    assert e.value.status_code == 422
    with pytest.raises(HTTPException) as e:
        check_infer_request({"image": "A", "params": "[1]"})
    assert e.value.status_code == 422 and "JSON object" in e.value.detail
    assert check_infer_request({"image": "A", "params": "{}"}) == {}
    kwargs = {"image": "", "params": "{}", "file": _Upload("../../scan.nii.gz", b"data")}
    allowed = check_infer_request(kwargs)
    (path, name), = allowed.items()
    assert kwargs["image"] == path and kwargs["file"] is None and name == "scan.nii.gz"
    assert path.endswith(".nii.gz") and open(path, "rb").read() == b"data"
    shutil.rmtree(os.path.dirname(path))


def test_threaded_routes_check_every_id_parameter_before_the_handler():
    """The ``def`` endpoint that replaces a MONAI Label handler refuses an ill-formed id in any id parameter
    (``image``, ``label``, ``id``, ``tag``, ``session_id``) before the handler runs; a good request reaches it."""
    calls = []

    async def handler(image: str = "", tag: str = "final", session_id: str = "", params: str = "{}"):
        calls.append((image, tag, session_id))
        return "ran"

    endpoint = _threaded(handler, infer=True)
    for kwargs in ({"image": "..%2fx"}, {"image": "A", "tag": "../t"}, {"session_id": "../s"}):
        with pytest.raises(StudyNotFound):
            endpoint(**{"params": "{}", **kwargs})
    assert calls == []
    assert endpoint(image="A", params="{}") == "ran" and calls == [("A", "final", "")]
