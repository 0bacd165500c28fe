"""The MONAI Label app under concurrent use on 127.0.0.1: N clients sending ``/infer`` for a 3D and a 2D bundle at
once while one ``/train`` runs, then wrong input, then ``/info`` again.

    python benchmarks/label_load.py [--out benchmarks/results/label_load.json] [--clients 1 4 8] [--requests 2]

A real server (``edge_networks.serving.launch.local_server``) serves ``egcnn_brats`` (3D, 4-channel BraTS studies)
and ``cenet_drive`` (2D fundus photographs) with their ``cpu_small.json`` settings and random weights (latency does
not depend on the weights). Studies: synthetic BraTS cases at half the real size (120x120x78, 4 contrasts in one 4D
NIfTI, the Decathlon order) and DRIVE-sized photographs (584x565 PNG). A one-epoch-at-a-time ``/train/egcnn_brats``
is started before each load level and runs during it (MONAI Label runs one training at a time).

For each N: N client threads each send ``--requests`` requests per study kind, alternating 3D and 2D (``N x 2 x
--requests`` in all), bounded by a 600 s timeout each. Every answer must be HTTP 200 with a label of the study's shape
and only the bundle's label values; anything else is counted as an error. Reported per N: throughput (requests per
second over the level's wall time), p50/p95 latency, errors, and the peak resident memory of the server's process
tree (sampled every 0.2 s). Afterwards: the wrong inputs of the server test (404/415/422 expected) and ``/info``.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

BUNDLES = {"egcnn_brats": 3, "cenet_drive": 2}


def _bundle(name: str, dest: Path) -> Path:
    """Copy bundle ``name`` with its cpu_small settings in the configs and random weights in models/model.pt."""
    from edge_networks.serving.launch import bundle_copy

    small = json.loads((REPO / "bundles" / name / "configs" / "cpu_small.json").read_text())
    return bundle_copy(REPO / "bundles" / name, dest, {**small, "num_workers": 0, "sw_overlap": 0.25})


def _studies(dest: Path, work: Path) -> dict[str, list[tuple[str, tuple[int, ...]]]]:
    """BraTS studies with final labels (so /train has data) and DRIVE photographs; {bundle: [(study id, shape)]}."""
    import nibabel as nib
    import numpy as np
    from PIL import Image

    from edge_networks.data import build_datalist, read_image_2d
    from edge_networks.data.synthetic import write_brats_dataset
    from edge_networks.data.synthetic.layouts2d import write_2d_dataset

    final = dest / "labels" / "final"
    final.mkdir(parents=True)
    write_brats_dataset(work / "brats", 4, (120, 120, 78), seed=0, progress=False)
    write_2d_dataset("fundus", "drive", work / "drive", cases=4, size=(584, 565), seed=0)
    studies: dict[str, list] = {"egcnn_brats": [], "cenet_drive": []}
    for i, item in enumerate(build_datalist("brats2021", work / "brats")):
        vols = [nib.load(p) for p in item["image"]]
        name = f"BRATS_{i:03d}"
        nib.save(nib.Nifti1Image(np.stack([np.asarray(v.dataobj) for v in vols], -1), vols[0].affine),
                 str(dest / f"{name}.nii.gz"))
        shutil.copy(item["label"], final / f"{name}.nii.gz")
        studies["egcnn_brats"].append((name, vols[0].shape))
    for i, item in enumerate(build_datalist("drive", work / "drive")[:2]):
        photo = read_image_2d(item["image"]).array
        Image.fromarray(photo).save(dest / f"FUNDUS_{i}.png")
        studies["cenet_drive"].append((f"FUNDUS_{i}", photo.shape[:2]))
    return studies


def _tree_rss_mib(pid: int) -> float:
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total / 2**20


def _check(model: str, content: bytes, shape: tuple[int, ...]) -> str | None:
    """None if the answer is a label of the study's shape with the bundle's values, else what is wrong."""
    import nibabel as nib
    import numpy as np
    from PIL import Image

    try:
        if BUNDLES[model] == 3:
            with tempfile.NamedTemporaryFile(suffix=".nii.gz") as f:
                f.write(content)
                f.flush()
                arr = np.asarray(nib.load(f.name).dataobj)
            allowed = {0, 1, 2, 4}
        else:
            arr = np.asarray(Image.open(io.BytesIO(content)))
            allowed = {0, 255}
    except Exception as e:  # noqa: BLE001 - an unreadable answer is an error of the server
        return f"unreadable label: {type(e).__name__}: {e}"
    if tuple(arr.shape) != tuple(shape):
        return f"label shape {arr.shape}, study {tuple(shape)}"
    values = set(np.unique(arr).astype(int).tolist())
    return None if values <= allowed else f"label values {sorted(values)}"


def run_level(url: str, server_pid: int, clients: int, per_client: int, studies: dict) -> dict:
    import requests

    jobs = []
    for c in range(clients):
        for r in range(per_client):
            for model in BUNDLES:
                study, shape = studies[model][(c + r) % len(studies[model])]
                jobs.append((model, study, shape))
    peak = [0.0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _tree_rss_mib(server_pid))
            time.sleep(0.2)

    def one(job) -> tuple[float, str | None]:
        model, study, shape = job
        t0 = time.perf_counter()
        try:
            r = requests.post(f"{url}/infer/{model}", params={"image": study, "output": "image"},
                              data={"params": "{}"}, timeout=600)
        except requests.RequestException as e:
            return time.perf_counter() - t0, f"{type(e).__name__}: {e}"
        latency = time.perf_counter() - t0
        if r.status_code != 200:
            return latency, f"HTTP {r.status_code}: {r.text[:200]}"
        return latency, _check(model, r.content, shape)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        results = list(pool.map(one, jobs))
    wall = time.perf_counter() - t0
    stop.set()
    sampler.join()
    latencies = sorted(lat for lat, _ in results)
    errors = [f"{job[0]} {job[1]}: {err}" for job, (_, err) in zip(jobs, results) if err]
    q = statistics.quantiles(latencies, n=20, method="inclusive") if len(latencies) > 1 else latencies * 19
    return {"clients": clients, "requests": len(jobs), "wall_s": round(wall, 2),
            "throughput_rps": round(len(jobs) / wall, 3), "p50_s": round(statistics.median(latencies), 2),
            "p95_s": round(q[18], 2), "errors": len(errors), "error_messages": errors[:10],
            "peak_server_rss_mib": round(peak[0], 1)}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "label_load.json"))
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 4, 8])
    ap.add_argument("--requests", type=int, default=2, help="requests per client and bundle (default 2)")
    args = ap.parse_args(argv)
    import platform

    import requests

    from edge_networks.serving.launch import local_server

    report = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{platform.machine()}, "
              f"{__import__('os').cpu_count()} CPUs", "bundles": list(BUNDLES), "levels": [], "train": [],
              "wrong_input": {}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        bundles = tmp / "bundles"
        for name in BUNDLES:
            _bundle(name, bundles)
        studies = _studies(tmp / "studies", tmp / "work")
        app = tmp / "app"
        shutil.copytree(REPO / "apps" / "monailabel", app, ignore=shutil.ignore_patterns("logs", "__pycache__"))
        with local_server(app, tmp / "studies", list(BUNDLES), bundles=bundles, log=tmp / "server.log") as url:
            import psutil

            port = int(url.rsplit(":", 1)[1])
            pid = next(c.pid for c in psutil.net_connections("tcp") if c.laddr and c.laddr.port == port
                       and c.status == "LISTEN")
            report["idle_server_rss_mib"] = round(_tree_rss_mib(pid), 1)
            for n in args.clients:
                r = requests.post(f"{url}/train/egcnn_brats", json={"max_epochs": 2, "val_split": 0.25,
                                                                    "device": "cpu", "multi_gpu": False}, timeout=60)
                report["train"].append({"clients": n, "start_http": r.status_code})
                level = run_level(url, pid, n, args.requests, studies)
                level["train_running_at_end"] = requests.get(f"{url}/train/", timeout=30).json().get("status")
                report["levels"].append(level)
                print(json.dumps(level), flush=True)
                deadline = time.time() + 600  # let the training end before the next level starts its own
                while time.time() < deadline:
                    status = requests.get(f"{url}/train/", timeout=30).json().get("status")
                    if status in ("DONE", "ERROR", None):
                        break
                    time.sleep(2)
                report["train"][-1]["status"] = status
            junk = requests.put(f"{url}/datastore/image", params={"image": "JUNK"},
                                files={"file": ("junk.nii.gz", b"not an image")}, timeout=60)
            for model, image in (("egcnn_brats", "JUNK"), ("egcnn_brats", "FUNDUS_0"), ("cenet_drive", "BRATS_000"),
                                 ("no_such_model", "BRATS_000"), ("egcnn_brats", "NO_SUCH_STUDY")):
                r = requests.post(f"{url}/infer/{model}", params={"image": image, "output": "image"},
                                  data={"params": "{}"}, timeout=120)
                report["wrong_input"][f"{model} {image}"] = r.status_code
            report["wrong_input"]["upload of the non-image"] = junk.status_code
            report["info_after"] = requests.get(f"{url}/info/", timeout=30).status_code
            report["peak_server_rss_mib"] = max(level["peak_server_rss_mib"] for level in report["levels"])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out.with_name(f".{out.name}.partial")
    tmp_out.write_text(json.dumps(report, indent=2))
    tmp_out.replace(out)
    print(json.dumps({k: v for k, v in report.items() if k != "levels"}, indent=1))
    return report


if __name__ == "__main__":
    result = main()
    sys.exit(1 if any(level["errors"] for level in result["levels"]) or result["info_after"] != 200 else 0)
