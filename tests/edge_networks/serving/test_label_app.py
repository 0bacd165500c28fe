"""The MONAI Label app against a real server on 127.0.0.1: ``/info/``, ``/infer/<model>`` for a BraTS and a KiTS
bundle, a one-epoch ``/train/<model>``, then shutdown.

The served bundles are copies of the repository's bundles with narrower networks and small windows written into
their configs (the same keys ``cpu_small.json`` sets), and random weights for inference: the checks are about
serving (geometry, label values, label names), not accuracy.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import shutil
import threading
import time
import warnings
from pathlib import Path
from urllib.parse import unquote

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

NEEDS_LABEL_EXTRA = "the MONAI Label app needs the label extra: pip install -e '.[label,dev]'"
pytest.importorskip("monailabel", reason=NEEDS_LABEL_EXTRA)
requests = pytest.importorskip("requests", reason=NEEDS_LABEL_EXTRA)

from edge_networks.data import build_datalist, read_image_2d  # noqa: E402
from edge_networks.serving.label_app import served_bundles, spatial_dims  # noqa: E402
from edge_networks.serving.launch import bundle_copy, free_port, local_server  # noqa: E402
from tests.helpers import (  # noqa: E402
    REPO,
    REPRESENTATIVE,
    SMALL,
    asymmetric,
    bundle_cli,
    discovered_bundles,
    is_image2d,
    label_values,
    layout,
    read_json,
    write_dicom,
)

# CI serves the representative 3D and 2D bundles, egcnn_kits (the one with Spacingd, which MONAI Label's
# "image_path" entry broke; EdgeBundleInferTask works around it), etnet_refuge (a 2D bundle of softmax classes:
# one label image of values 0/1/2) and banet_rim_one (BA-Net, whose network returns deep-supervision outputs in
# training); make test-all serves every bundle.
SERVED = tuple(dict.fromkeys((*REPRESENTATIVE, "egcnn_kits", "etnet_refuge", "banet_rim_one")))
# float32 on every CPU: the served and the command-line labels are compared voxel for voxel (bf16 autocast, the
# default on CPUs with native bfloat16, is not bit-reproducible between the two processes)
EXTRA = {"num_workers": 0, "sw_overlap": 0.25, "cpu_bf16": False}
BRATS_LABELS = {"necrotic tumour core": 1, "peritumoral edema": 2, "enhancing tumour": 4}


def documented_host() -> str:
    """The ``--host`` of the README's ``monailabel start_server`` command (every such command must name one)."""
    commands = [line for line in (REPO / "README.md").read_text().splitlines() if "monailabel start_server" in line]
    assert commands, "the README documents no monailabel start_server command"
    hosts = {re.search(r"--host (\S+)", c).group(1) if "--host" in c else None for c in commands}
    assert len(hosts) == 1, f"README start_server commands differ in --host: {hosts}"
    return hosts.pop()


def _listening_addresses(port: int) -> set[str]:
    """Local IPv4/IPv6 addresses with a socket listening on ``port`` (from /proc/net/tcp*)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hexport = local.split(":")
            if state == "0A" and int(hexport, 16) == port:  # 0A: LISTEN
                found.add(str(ipaddress.ip_address(bytes.fromhex(address)[::-1])) if len(address) == 8
                          else address)
    return found


def _small_bundle(name: str, dest: Path) -> Path:
    """Copy bundle ``name`` with the small settings in its configs and random weights in models/model.pt."""
    return bundle_copy(REPO / "bundles" / name, dest, {**SMALL[name], **EXTRA})


def _studies(brats_root: Path, kits_root: Path, dest: Path, fundus_root: Path) -> dict[str, Path]:
    """BraTS studies as Decathlon-order 4D NIfTIs with BraTS-convention labels (what the app returns and saves),
    one KiTS CT without a label, and one fundus photograph as PNG and as JPEG (the 2D bundles' studies; not square,
    so a transposed answer cannot pass)."""
    final = dest / "labels" / "final"
    final.mkdir(parents=True)
    images = {}
    for i, item in enumerate(build_datalist("brats2021", brats_root)):
        vols = [nib.load(p) for p in item["image"]]  # FLAIR, T1, T1ce, T2: the Decathlon's order
        name = f"BRATS_{i:03d}"
        nib.save(nib.Nifti1Image(np.stack([np.asarray(v.dataobj) for v in vols], -1), vols[0].affine),
                 str(dest / f"{name}.nii.gz"))
        shutil.copy(item["label"], final / f"{name}.nii.gz")
        images[name] = dest / f"{name}.nii.gz"
    kits = build_datalist("kits19", kits_root)[0]
    shutil.copy(kits["image"], dest / "KITS_000.nii.gz")
    images["KITS_000"] = dest / "KITS_000.nii.gz"
    photo = read_image_2d(build_datalist("drive", fundus_root)[0]["image"]).array
    for name, ext in (("FUNDUS_PNG", ".png"), ("FUNDUS_JPG", ".jpg")):
        Image.fromarray(photo).save(dest / f"{name}{ext}")
        images[name] = dest / f"{name}{ext}"
    # a large photograph: one inference of a few seconds, to see whether the server answers meanwhile
    Image.fromarray(photo).resize((1024, 1280)).save(dest / "FUNDUS_LARGE.png")
    images["FUNDUS_LARGE"] = dest / "FUNDUS_LARGE.png"
    # a DICOM study (a grey radiograph-like image; the 2D bundles read DICOM files)
    images["XRAY_DCM"] = write_dicom(dest / "XRAY_DCM.dcm", asymmetric(40, 56).astype(np.uint16) * 16)
    # files outside the studies folder that no request may read: readable images, their access time set far back
    outside = dest.parent / "outside"
    outside.mkdir()
    Image.fromarray(photo).save(outside / "SECRET.png")
    shutil.copy(kits["image"], outside / "SECRET.nii.gz")
    (outside / "CONTROL.txt").write_text("read by the test: shows whether this filesystem updates access times")
    for f in outside.iterdir():
        os.utime(f, (1_000_000, f.stat().st_mtime))
    images["outside"] = outside
    return images


def test_served_bundles_names_and_errors(tmp_path):
    assert set(served_bundles(REPO / "bundles", "all")) >= {"egcnn_brats", "egcnn_kits"}
    assert list(served_bundles(REPO / "bundles", "egcnn_kits, egcnn_brats")) == ["egcnn_kits", "egcnn_brats"]
    with pytest.raises(FileNotFoundError, match=r"\['nope'\] not found.*available: \[.*'boundary_aware_brats', "):
        served_bundles(REPO / "bundles", "egcnn_brats,nope")
    with pytest.raises(ValueError, match="no bundle to serve"):
        served_bundles(REPO / "bundles", "")
    assert spatial_dims(REPO / "bundles" / "boundary_aware_brats") == 2
    assert spatial_dims(REPO / "bundles" / "egcnn_kits") == 3


@contextlib.contextmanager
def _server(served, tmp_path, brats_root, kits_root, fundus_root):
    bundles = tmp_path / "bundles"
    for name in served:
        _small_bundle(name, bundles)
    studies = tmp_path / "studies"
    images = _studies(brats_root, kits_root, studies, fundus_root)
    # a copy of the app folder: MONAI Label writes logs/ into the app folder, which must not be the repository's
    app = tmp_path / "app"
    shutil.copytree(REPO / "apps" / "monailabel", app, ignore=shutil.ignore_patterns("logs", "__pycache__"))
    port = free_port()
    try:
        with local_server(app, studies, served, bundles=bundles, log=tmp_path / "server.log",
                          host=documented_host(), port=port) as url:
            # the README's command listens on the loopback interface only, not on every interface (0.0.0.0)
            assert _listening_addresses(port) == {"127.0.0.1"}, _listening_addresses(port)
            yield {"url": url, "images": images, "bundles": bundles, "log": tmp_path / "server.log"}
    except RuntimeError as e:
        pytest.fail(str(e))
    # shut down: nothing answers on the port any more
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/info/", timeout=5)


def _infer_file(server, model: str, image: str, out: Path) -> Path:
    """``POST /infer/<model>`` on study ``image``; the answer written to ``out``."""
    r = requests.post(f"{server['url']}/infer/{model}", params={"image": image, "output": "image"},
                      data={"params": "{}"}, timeout=600)
    assert r.status_code == 200, (r.text[-2000:], server["log"].read_text()[-4000:])
    out.write_bytes(r.content)
    return out


def _infer(server, model: str, image: str, tmp_path: Path) -> nib.Nifti1Image:
    return nib.load(str(_infer_file(server, model, image, tmp_path / f"{model}_{image}.nii.gz")))


@pytest.fixture
def server(tmp_path, brats_root, kits_root, dataset_roots):
    with _server(SERVED, tmp_path, brats_root, kits_root, dataset_roots["drive"]) as s:
        yield s


def _infer_2d(server, model: str, image: str, tmp_path: Path) -> np.ndarray:
    """``/infer`` on a PNG/JPEG study: the returned PNG label image, rows first as any image viewer shows it."""
    return np.asarray(Image.open(_infer_file(server, model, image, tmp_path / f"{model}_{image}.png")))


def test_server_info_infer_train(server, brats_root, tmp_path):
    info = requests.get(f"{server['url']}/info/", timeout=30).json()
    models = info["models"]
    assert set(models) == set(SERVED)
    # label names match the values written: BraTS 1/2/4, KiTS 1/2, TC 1
    assert models["egcnn_brats"]["labels"] == BRATS_LABELS
    assert models["egcnn_kits"]["labels"] == {"kidney": 1, "tumour": 2}
    assert models["boundary_aware_brats"]["labels"] == {"tumour core": 1}
    assert models["boundary_aware_brats"]["dimension"] == 2
    assert models["cenet_drive"]["labels"] == {"vessel": 255} and models["cenet_drive"]["dimension"] == 2
    assert set(info["trainers"]) == {"egcnn_brats", "egcnn_kits"}  # the 3D bundles

    # a 2D bundle on PNG and JPEG studies: a label image of the study's size, the values /info names, and exactly
    # what the bundle's own inference writes for the same file
    assert models["etnet_refuge"]["labels"] == {"optic disc rim (disc outside the cup)": 1, "optic cup": 2}
    assert models["banet_rim_one"]["labels"] == {"optic disc": 255}
    for name, image, allowed in (("cenet_drive", "FUNDUS_PNG", {0, 255}), ("cenet_drive", "FUNDUS_JPG", {0, 255}),
                                 ("etnet_refuge", "FUNDUS_PNG", {0, 1, 2}), ("banet_rim_one", "FUNDUS_JPG", {0, 255})):
        bundle = server["bundles"] / name
        served2d = _infer_2d(server, name, image, tmp_path)
        src = read_image_2d(server["images"][image]).array
        assert served2d.shape == src.shape[:2], (name, image, served2d.shape, src.shape)
        assert set(np.unique(served2d).tolist()) <= allowed
        out = tmp_path / f"cli_{name}_{image}"
        proc = bundle_cli("run", "--config_file", str(bundle / "configs" / "inference.json"), "--bundle_root",
                          str(bundle), "--datalist", repr([{"image": str(server["images"][image])}]),
                          "--output_dir", str(out))
        assert proc.returncode == 0, proc.stderr[-3000:]
        np.testing.assert_array_equal(served2d, np.asarray(Image.open(out / f"{image}_seg.png")))

    for model, image, allowed in (("egcnn_brats", "BRATS_000", {0, 1, 2, 4}), ("egcnn_kits", "KITS_000", {0, 1, 2}),
                                  ("boundary_aware_brats", "BRATS_001", {0, 1})):
        seg = _infer(server, model, image, tmp_path)
        src = nib.load(str(server["images"][image]))
        assert seg.shape == src.shape[:3], (model, seg.shape, src.shape)
        np.testing.assert_allclose(seg.affine, src.affine, atol=1e-4)
        values = set(np.unique(np.asarray(seg.dataobj)).astype(int).tolist())
        assert values <= allowed, (model, values)
        assert values - {0} <= set(models[model]["labels"].values())

    # the 4D study (Decathlon channel order) gives exactly what the bundle gives on the four BraTS files
    served = _infer(server, "egcnn_brats", "BRATS_000", tmp_path)
    item = build_datalist("brats2021", brats_root)[0]
    bundle = server["bundles"] / "egcnn_brats"
    proc = bundle_cli("run", "--config_file", str(bundle / "configs" / "inference.json"),
                      "--bundle_root", str(bundle), "--datalist", repr([{"image": item["image"]}]),
                      "--output_dir", str(tmp_path / "cli"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    (cli,) = (tmp_path / "cli").glob("*_seg.nii.gz")
    np.testing.assert_array_equal(np.asarray(served.dataobj), np.asarray(nib.load(str(cli)).dataobj))

    _wrong_input_gets_a_4xx(server, tmp_path)
    _bad_requests_read_nothing(server)

    # a DICOM file of the studies folder is a study, listed and segmented by its id
    assert "XRAY_DCM" in requests.get(f"{server['url']}/datastore/", params={"output": "all"}, timeout=30).json()[
        "objects"]
    xray = _infer_2d(server, "cenet_drive", "XRAY_DCM", tmp_path)
    assert xray.shape == (40, 56) and set(np.unique(xray).tolist()) <= {0, 255}

    # the server keeps answering while it infers: four clients on one 2D model queue, one 3D inference
    _info_answers_during_inference(server, "cenet_drive", "FUNDUS_LARGE", 4)

    models_dir = server["bundles"] / "egcnn_brats" / "models"
    before = (models_dir / "model.pt").stat().st_mtime
    # an asynchronous run, as MONAI Label clients start it, polled until it ends
    r = requests.post(f"{server['url']}/train/egcnn_brats",
                      json={"max_epochs": 1, "val_split": 0.34, "device": "cpu", "multi_gpu": False}, timeout=60)
    assert r.status_code == 200, (r.text[-2000:], server["log"].read_text()[-4000:])
    deadline = time.time() + 600
    while True:
        status = requests.get(f"{server['url']}/train/", timeout=30).json()
        if status.get("status") in ("DONE", "ERROR") or time.time() > deadline:
            break
        time.sleep(2)
    log = server["log"].read_text()
    assert status.get("status") == "DONE", (status, log[-4000:])
    assert "Epoch: 1/1" in log and "Key metric: val_mean_dice" in log  # one epoch, validated
    assert (models_dir / "model_last.pt").exists()
    assert (models_dir / "model.pt").stat().st_mtime > before  # the best checkpoint, what inference loads
    # the retrained weights are served: /infer still answers with the label values /info names
    seg = _infer(server, "egcnn_brats", "BRATS_002", tmp_path)
    assert set(np.unique(np.asarray(seg.dataobj)).astype(int).tolist()) <= {0, 1, 2, 4}


def _wrong_input_gets_a_4xx(server, tmp_path):
    """Wrong input over the API: an HTTP 4xx with a message (never a 500), and the server keeps answering."""
    url = server["url"]
    r = requests.put(f"{url}/datastore/image", params={"image": "JUNK"},
                     files={"file": ("junk.nii.gz", b"this is not an image")}, timeout=60)
    assert r.status_code == 200, r.text[-1000:]
    for model, image, code in (("egcnn_brats", "JUNK", 415),  # a non-image upload
                               ("egcnn_brats", "FUNDUS_PNG", 422),  # a 2D photograph to a 3D model
                               ("cenet_drive", "BRATS_000", 422),  # a volume to a photograph model
                               ("egcnn_kits", "BRATS_000", 422),  # 4 channels to a 1-channel model
                               ("no_such_model", "BRATS_000", 404),
                               ("egcnn_brats", "NO_SUCH_STUDY", 404),
                               ("egcnn_brats", "", 422)):  # no study at all
        r = requests.post(f"{url}/infer/{model}", params={"image": image, "output": "image"},
                          data={"params": "{}"}, timeout=120)
        assert r.status_code == code, (model, image, r.status_code, r.text[-1000:])
        assert "Traceback" not in r.text and r.json()["detail"], r.text[-1000:]
    assert requests.get(f"{url}/info/", timeout=30).ok


# ids that must never leave the studies folder: plain, URL-encoded once and twice (the client sends them as written
# in the URL), absolute; each answered like a missing study
TRAVERSALS = ["../outside/SECRET", "../outside/SECRET.png", "..%2Foutside%2FSECRET.png",
              "%2e%2e%2foutside%2fSECRET.png", "..%252foutside%252fSECRET.png", "..%5Coutside%5CSECRET.png",
              "%2Fetc%2Fpasswd", "..", "."]


def _bad_requests_read_nothing(server):
    """The catalogue of bad requests against every endpoint that takes a study or label id: 4xx with a message that
    names no server path, never a 500; ids that point outside the studies folder get the answer a missing study
    gets, and no file outside is opened (its access time is unchanged); the server still answers /info."""
    url, outside = server["url"], server["images"]["outside"]
    tmp_root = outside.parent
    secrets = {p: p.stat().st_atime for p in outside.glob("SECRET*")}
    absolute = [str(outside / "SECRET.png"), str(outside / "SECRET.nii.gz"), "/etc/passwd"]
    calls = []  # (method, url, kwargs, expected status)
    for raw in TRAVERSALS + [a.replace("/", "%2F") for a in absolute]:
        for model in ("cenet_drive", "egcnn_kits"):
            calls.append(("post", f"{url}/infer/{model}?image={raw}&output=image", {"data": {"params": "{}"}}, 404))
        calls += [("get", f"{url}/datastore/image?image={raw}", {}, 404),
                  ("get", f"{url}/datastore/image/info?image={raw}", {}, 404),
                  ("get", f"{url}/datastore/label?label={raw}&tag=final", {}, 404),
                  ("get", f"{url}/datastore/label?label=BRATS_000&tag={raw}", {}, 404),
                  ("put", f"{url}/datastore/image?image={raw}",
                   {"files": {"file": ("x.nii.gz", server["images"]["KITS_000"].read_bytes())}}, 404),
                  ("put", f"{url}/datastore/label?image={raw}&tag=final",
                   {"files": {"label": ("x.nii.gz", b"0")}}, 404),
                  ("put", f"{url}/datastore/label?image=BRATS_000&tag={raw}",
                   {"files": {"label": ("x.nii.gz", b"0")}}, 404),
                  ("post", f"{url}/infer/cenet_drive?session_id={raw}&output=image", {"data": {"params": "{}"}}, 404)]
    # the study named in params (MONAI Label merges params into the request after the query's image)
    for path in absolute:
        calls.append(("post", f"{url}/infer/cenet_drive?image=FUNDUS_PNG&output=image",
                      {"data": {"params": json.dumps({"image": path})}}, 404))
    calls += [("post", f"{url}/infer/cenet_drive?image=FUNDUS_PNG", {"data": {"params": "not json"}}, 422),
              ("post", f"{url}/infer/cenet_drive", {"data": {"params": "{}"}}, 422),  # no study at all
              ("post", f"{url}/infer/cenet_drive?image=", {"data": {"params": "{}"}}, 422),
              ("get", f"{url}/datastore/image?image=NO_SUCH_STUDY", {}, 404),
              ("post", f"{url}/activelearning/no_such_strategy", {"json": {}}, 404)]
    for method, address, kwargs, code in calls:
        r = getattr(requests, method)(address, timeout=120, **kwargs)
        assert r.status_code == code, (method, address, r.status_code, r.text[-500:])
        detail = r.json().get("detail")
        assert detail, (address, r.text[-500:])
        # no server path, except the one the client sent as its id (the message names the id as it was sent)
        sent = unquote(unquote(address)) + json.dumps(kwargs.get("data", {}))
        text = detail
        for path in [*absolute, str(outside / "SECRET.png").replace("/", "%2F")]:
            if path in sent:
                text = text.replace(path, "<the id sent>")
        assert str(tmp_root) not in text and "/tmp" not in text, (address, detail)
        if code == 404 and "session_id" not in address and "no_such" not in address:
            assert re.fullmatch(r"(study|label|label tag) '.*' not found", detail), (address, detail)
    for path, atime in secrets.items():
        assert path.stat().st_atime == atime, f"{path.name} was opened"
    control = outside / "CONTROL.txt"
    before = control.stat().st_atime
    control.read_text()
    if control.stat().st_atime == before:  # noatime: the check above could not have failed
        warnings.warn("this filesystem does not update access times: 'nothing outside was read' was not checked",
                      stacklevel=1)
    assert sorted(p.name for p in outside.iterdir()) == ["CONTROL.txt", "SECRET.nii.gz", "SECRET.png"], \
        "an upload wrote outside the studies folder"
    assert requests.get(f"{url}/info/", timeout=30).ok


def _info_answers_during_inference(server, model: str, image: str, clients: int) -> list[float]:
    """``clients`` concurrent ``/infer`` calls on one model, and ``/info`` and ``/datastore`` polled meanwhile: every
    inference answers 200, the server answers each poll within a second, and the polls did happen while an
    inference ran (the inferences take seconds). Returns the poll latencies."""
    url, results, latencies, ends = server["url"], [], [], []

    def infer():
        r = requests.post(f"{url}/infer/{model}", params={"image": image, "output": "image"},
                          data={"params": "{}"}, timeout=600)
        results.append(r.status_code)
        ends.append(time.perf_counter())

    threads = [threading.Thread(target=infer) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    time.sleep(0.5)
    while any(t.is_alive() for t in threads):
        t0 = time.perf_counter()
        assert requests.get(f"{url}/info/", timeout=30).ok
        requests.get(f"{url}/datastore/", timeout=30).raise_for_status()
        latencies.append(time.perf_counter() - t0)
        time.sleep(0.2)
    for t in threads:
        t.join()
    assert results == [200] * clients, results
    assert max(ends) - start > 2.0 and len(latencies) >= 3, ("the inferences were too short to test", latencies)
    assert max(latencies) < 1.0, latencies
    return latencies


@pytest.mark.slow
def test_server_serves_every_bundle(tmp_path, brats_root, kits_root, dataset_roots):
    """Every bundle of the repository: /info names its label values, /infer returns a label map in the study's
    geometry with those values, and the 3D bundles are trainers."""
    names = discovered_bundles()
    with _server(names, tmp_path, brats_root, kits_root, dataset_roots["drive"]) as server:
        info = requests.get(f"{server['url']}/info/", timeout=30).json()
        assert set(info["models"]) == set(names)
        assert set(info["trainers"]) == {n for n in names if len(read_json(n, "metadata.json")[
            "network_data_format"]["inputs"]["image"]["spatial_shape"]) == 3}
        for name in names:
            # 0 is listed too where it is a class of its own (cenet_em: 0 cell interior, 255 membrane)
            assert set(info["models"][name]["labels"].values()) - {0} == label_values(name) - {0}, name
            if is_image2d(name):
                photo = "FUNDUS_PNG" if read_json(name, "metadata.json")["network_data_format"]["inputs"]["image"][
                    "num_channels"] == 3 else "FUNDUS_JPG"
                seg2d = _infer_2d(server, name, photo, tmp_path)
                assert seg2d.shape == read_image_2d(server["images"][photo]).array.shape[:2], name
                assert set(np.unique(seg2d).tolist()) <= label_values(name), name
                continue
            image = "KITS_000" if layout(name) == "kits19" else "BRATS_000"
            seg = _infer(server, name, image, tmp_path)
            src = nib.load(str(server["images"][image]))
            assert seg.shape == src.shape[:3], name
            np.testing.assert_allclose(seg.affine, src.affine, atol=1e-4)
            assert set(np.unique(np.asarray(seg.dataobj)).astype(int).tolist()) <= label_values(name), name
