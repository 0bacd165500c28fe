"""Start the MONAI Label app as a real server process on loopback, wait until it answers, and stop it: what the
server tests and ``benchmarks/label_load.py`` run, and a way to drive the app from a script.

>>> with local_server("apps/monailabel", "studies", ["egcnn_brats"], log="server.log") as url:  # doctest: +SKIP
...     requests.get(f"{url}/info/").json()
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

__all__ = ["free_port", "local_server", "bundle_copy"]


def bundle_copy(source: str | os.PathLike, dest: str | os.PathLike, overrides: dict | None = None,
                seed: int = 0) -> Path:
    """Copy bundle folder ``source`` into ``dest``, with ``overrides`` written into its ``inference.json`` and
    ``train.json`` (keys those files define), and random weights (``seed``) in ``models/model.pt``: a bundle to serve
    in tests and benchmarks, where latency and shapes do not depend on trained weights.

    Returns:
        The new bundle folder.
    """
    import json
    import shutil

    import torch
    from monai.bundle import ConfigParser

    bundle = Path(dest) / Path(source).name
    shutil.copytree(source, bundle, ignore=shutil.ignore_patterns("models"))
    (bundle / "models").mkdir()
    for cfg in ("inference.json", "train.json"):
        path = bundle / "configs" / cfg
        content = json.loads(path.read_text())
        content.update({k: v for k, v in (overrides or {}).items() if k in content})
        path.write_text(json.dumps(content, indent=1))
    parser = ConfigParser()
    parser.read_config(str(bundle / "configs" / "inference.json"))
    torch.manual_seed(seed)
    torch.save(parser.get_parsed_content("network_def").state_dict(), bundle / "models" / "model.pt")
    return bundle


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on at the moment."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def local_server(app: str | os.PathLike, studies: str | os.PathLike, models: Sequence[str],
                 bundles: str | os.PathLike | None = None, log: str | os.PathLike = "server.log",
                 host: str = "127.0.0.1", port: int | None = None, timeout: float = 180,
                 env: dict[str, str] | None = None) -> Iterator[str]:
    """``monailabel start_server`` for ``models`` in its own process group; yields its URL once ``/info/`` answers.

    Args:
        app: the app folder (a copy of ``apps/monailabel``: MONAI Label writes ``logs/`` into it).
        studies: the studies folder.
        models: bundle names to serve.
        bundles: the bundles folder (``--conf bundles``). Defaults to the repository's ``bundles/``.
        log: the server's stdout and stderr.
        host: the address to listen on. Defaults to loopback.
        port: defaults to a free port.
        timeout: seconds to wait for ``/info/``. Defaults to 180.
        env: extra environment variables.

    Raises:
        RuntimeError: the server exits or does not answer within ``timeout`` (the log's tail in the message).
    """
    import requests

    port = port or free_port(host)
    launcher = Path(sys.executable).parent / "monailabel"
    # the monailabel launcher is a bash script that runs `python` from PATH (or $MONAILABEL_PYEXE): this interpreter
    full_env = {**os.environ, "CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES", ""),
                "MONAI_LABEL_DATASTORE_AUTO_RELOAD": "false", "MONAILABEL_PYEXE": sys.executable,
                "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}", **(env or {})}
    command = [str(launcher), "start_server", "--app", str(app), "--studies", str(studies),
               "--conf", "models", ",".join(models), "--host", host, "--port", str(port)]
    if bundles is not None:
        command += ["--conf", "bundles", str(bundles)]
    log = Path(log)
    with open(log, "w") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=log.parent, env=full_env,
                                start_new_session=True)
        url = f"http://{host}:{port}"
        try:
            deadline = time.time() + timeout
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"server exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
                with contextlib.suppress(requests.ConnectionError):
                    if requests.get(f"{url}/info/", timeout=5).ok:
                        break
                if time.time() > deadline:
                    raise RuntimeError(f"no /info/ in {timeout} s:\n{log.read_text()[-4000:]}")
                time.sleep(1)
            yield url
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
