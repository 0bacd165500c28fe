"""A MONAI Label app that serves this project's bundles from their folders (``bundles/<name>``), offline.

Start it with (the app folder's ``main.py`` imports :class:`EdgeSegApp`)::

    monailabel start_server --app apps/monailabel --studies /data/studies --host 127.0.0.1 \
        --conf models egcnn_brats,egcnn_kits,boundary_aware_brats

``--conf models`` takes bundle names (comma-separated) or ``all``; ``--conf bundles DIR`` serves bundles from
another folder (default: this repository's ``bundles/``). Every bundle gets an infer task (its
``configs/inference.json``, weights ``models/model.pt`` or else ``models/model.ts``); 3D bundles also get a train
task (``configs/train.json``, MONAI Label's datastore as the datalist).

Studies: one image file per study. A 2D bundle's study is a PNG, JPEG or TIFF photograph (DRIVE, ORIGA, ...), and
its label comes back as a PNG of the study's size with the bundle's label values (0/255 masks, class indices for
OCT). A BraTS study is one 4D NIfTI with the four contrasts in the Decathlon
Task01 order (FLAIR, T1w, T1gd, T2w: the bundles' channel order); a KiTS study is the CT volume. The label
names ``/info`` reports come from each bundle's ``outputs.pred.channel_def``, whose keys are the values the
returned label map holds (BraTS: 1 necrotic tumour core, 2 peritumoral edema, 4 enhancing tumour), so a saved
label map trains the BraTS bundles unchanged.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from fastapi import HTTPException
from monai.transforms import SaveImaged
from monailabel.interfaces.app import MONAILabelApp
from monailabel.tasks.infer.bundle import BundleInferTask
from monailabel.tasks.train.bundle import BundleTrainTask
from PIL import Image

from .. import __version__
from ..bundle import REPO_BUNDLES
from ..data.image2d import IMAGE_2D_SUFFIXES, read_image_2d
from ..data.layouts import LAYOUTS

__all__ = ["EdgeSegApp", "EdgeBundleInferTask", "EdgeBundleTrainTask", "served_bundles", "check_study"]

logger = logging.getLogger(__name__)


def served_bundles(bundles_dir: str | Path, models: str | Sequence[str]) -> dict[str, Path]:
    """Bundle folders to serve: ``models`` is ``"all"``, a comma-separated string or a list of names.

    Raises:
        FileNotFoundError: a named bundle has no ``configs/metadata.json`` under ``bundles_dir`` (the message lists
            the bundles that exist).
        ValueError: no bundle named.
    """
    root = Path(bundles_dir)
    available = sorted(p.name for p in root.iterdir() if (p / "configs" / "metadata.json").exists()) \
        if root.is_dir() else []
    names = [m.strip() for m in (models.split(",") if isinstance(models, str) else models) if m.strip()]
    if names == ["all"]:
        names = available
    if not names:
        raise ValueError(f"no bundle to serve: pass --conf models <names|all>; available in {root}: {available}")
    missing = [n for n in names if n not in available]
    if missing:
        raise FileNotFoundError(f"bundle(s) {missing} not found in {root} (a bundle has configs/metadata.json); "
                                f"available: {available}")
    return {n: root / n for n in names}


def spatial_dims(bundle: Path) -> int:
    """Spatial dimensions of a bundle's network input, from its metadata."""
    meta = json.loads((bundle / "configs" / "metadata.json").read_text())
    return len(meta["network_data_format"]["inputs"]["image"]["spatial_shape"])


def _input_spec(bundle: Path) -> tuple[int, bool, int]:
    """(network spatial dims, reads 2D image files, channels of a study) of a bundle, from its configs: a study
    holds every modality of the bundle's dataset layout (BraTS: 4, in the Decathlon order; KiTS: 1), whatever
    the network picks from them."""
    meta = json.loads((bundle / "configs" / "metadata.json").read_text())
    image = meta["network_data_format"]["inputs"]["image"]
    layout = json.loads((bundle / "configs" / "inference.json").read_text()).get("layout")
    known = isinstance(layout, str) and layout in LAYOUTS
    image_files = known and LAYOUTS[layout].spatial_dims == 2
    channels = len(LAYOUTS[layout].modalities) if known else int(image["num_channels"])
    return len(image["spatial_shape"]), image_files, channels


def check_study(path: str, model: str, bundle: Path) -> None:
    """Refuse, with an HTTP 4xx that says why, a study ``model`` cannot segment, before any work starts.

    Raises:
        HTTPException: 404 no such file; 415 not an image file this bundle reads (the file's first bytes do not
            parse); 422 an image of the wrong kind (a 2D photograph for a 3D model, a volume for a photograph
            model, the wrong number of channels).
    """
    name = Path(path).name
    if not path or not Path(path).is_file():
        raise HTTPException(status_code=404, detail=f"study {name or path!r} not found")
    _, image_files, channels = _input_spec(bundle)
    is_photo = path.lower().endswith(IMAGE_2D_SUFFIXES)
    if image_files and not is_photo:
        raise HTTPException(status_code=422, detail=f"{model} segments 2D photographs "
                                                    f"({', '.join(IMAGE_2D_SUFFIXES)}); study {name!r} is not one")
    if image_files:
        try:
            read_image_2d(path)
        except Exception as e:  # noqa: BLE001 - any reader failure is the client's file
            raise HTTPException(status_code=415, detail=f"study {name!r} is not a readable image: {e}") from None
        return
    if is_photo:
        raise HTTPException(status_code=422, detail=f"{model} segments volumes; study {name!r} is a 2D image")
    try:
        shape = nib.load(path).shape
    except Exception as e:  # noqa: BLE001
        raise HTTPException(status_code=415, detail=f"study {name!r} is not a NIfTI volume this model reads: "
                                                    f"{type(e).__name__}: {e}") from None
    got = shape[3] if len(shape) == 4 else 1 if len(shape) == 3 else None
    if got is None or got != channels:
        raise HTTPException(status_code=422, detail=f"{model} needs a volume with {channels} channel(s) "
                                                    f"(x, y, z{', c' if channels > 1 else ''}); study {name!r} has "
                                                    f"shape {tuple(shape)}")


class EdgeBundleInferTask(BundleInferTask):
    """MONAI Label's bundle infer task, loading weights strictly (a mismatched checkpoint is an error, not a
    silently random network) and keeping the bundle's own loading and ``Invertd``; ``SaveImaged`` is dropped."""

    def __init__(self, path: str, conf: dict[str, str], **kwargs: Any) -> None:
        super().__init__(path, conf, post_filter=[SaveImaged], load_strict=True, **kwargs)

    def run_pre_transforms(self, data, transforms):
        # MONAI 1.6's Spacingd updates every "image_*" entry as a meta dict, and MONAI Label 0.8.5 puts the string
        # "image_path" in the request: AttributeError for every bundle with Spacingd (KiTS). Hide it meanwhile.
        path = data.pop("image_path", None)
        out = super().run_pre_transforms(data, transforms)
        if path is not None:
            out["image_path"] = path
        return out

    def writer(self, data: dict, extension=None, dtype=None):
        """2D image studies (PNG/JPEG/TIFF/...) of 2D bundles: the label image as a lossless PNG, rows first, of the
        study's size.

        MONAI Label 0.8.5's writer hands a channel-first ``(1, W, H)`` 2D prediction to ITK as a 3D image with a
        2D affine and fails (``SetDirection``: "argument 2 of type itkMatrixD33"); a JPEG study would also get a
        lossy label. 3D bundles keep MONAI Label's writer."""
        study = str(data.get("image_path") or data.get("image") or "")
        if self.dimension != 2 or extension not in (None, ".png") or not study.lower().endswith(IMAGE_2D_SUFFIXES):
            return super().writer(data, extension, dtype)  # 3D bundles, and 2D networks on volumes
        pred = data[self.output_label_key]
        arr = np.asarray(pred.detach().cpu() if hasattr(pred, "detach") else pred)
        arr = arr[0] if arr.ndim == 3 else arr  # (1, W, H) -> (W, H), MONAI's x-first order
        if arr.ndim != 2:
            raise ValueError(f"2D bundle {self.name}: prediction of shape {arr.shape}, expected (1, W, H)")
        with tempfile.NamedTemporaryFile(suffix=".png", delete=False) as f:
            Image.fromarray(np.ascontiguousarray(arr.T).astype(np.uint8)).save(f, format="PNG")
        return f.name, data.get(self.output_json_key, {})


class EdgeBundleTrainTask(BundleTrainTask):
    """MONAI Label's bundle train task; the poly schedule spans the requested epochs and every epoch validates,
    so ``models/model.pt`` (the best checkpoint, what inference loads) is written by any run."""

    def __init__(self, path: str, conf: dict[str, str]) -> None:
        super().__init__(path, conf, load_strict=True)
        self._request: dict = {}

    def __call__(self, request, datastore):
        self._request = dict(request)
        return super().__call__(request, datastore)

    def _update_overrides(self, overrides: dict) -> dict:
        overrides["epochs"] = int(self._request.get("max_epochs", 50))
        overrides["val_interval"] = int(self._request.get("val_interval", 1))
        if "num_workers" in self._request:
            overrides["num_workers"] = int(self._request["num_workers"])
        overrides["check_data"] = False  # the datastore's files, not a dataset layout
        return overrides


class EdgeSegApp(MONAILabelApp):
    """Infer with every served bundle, train the 3D ones (see the module docstring for ``--conf`` keys)."""

    def __init__(self, app_dir: str, studies: str, conf: dict[str, str]) -> None:
        self.bundles = served_bundles(conf.get("bundles", str(REPO_BUNDLES)), conf.get("models", "all"))
        logger.info("serving bundles: %s", {k: str(v) for k, v in self.bundles.items()})
        super().__init__(
            app_dir=app_dir,
            studies=studies,
            conf=conf,
            name="edge-seg",
            description=("Edge- and boundary-aware segmentation bundles (EG-CNN, boundary-aware networks, CE-Net, "
                         "ET-Net, BA-Net)"),
            version=__version__,
        )

    def infer(self, request, datastore=None):
        """MONAI Label's ``infer``, with the request checked first: an unknown model, a missing study or a study the
        model cannot read is answered with an HTTP 4xx and a message (MONAI Label's own checks raise plain
        exceptions, which reach the client as a 500)."""
        model = request.get("model")
        if model not in self._infers:
            raise HTTPException(status_code=404, detail=f"no model {model!r}; served: {sorted(self._infers)}")
        image = request.get("image")
        if isinstance(image, str):
            path = image if Path(image).is_file() else (datastore or self.datastore()).get_image_uri(image)
            if not path:
                raise HTTPException(status_code=404, detail=f"study {image!r} not found")
            check_study(path, model, self.bundles[model])
        return super().infer(request, datastore)

    def init_infers(self):
        infers = {}
        for name, path in self.bundles.items():
            task = EdgeBundleInferTask(str(path), self.conf)
            if task.is_valid():
                infers[name] = task
            else:
                logger.warning("%s: not served for inference: put weights in %s/models (model.pt or model.ts)",
                               name, path)
        return infers

    def init_trainers(self):
        return {name: EdgeBundleTrainTask(str(path), self.conf) for name, path in self.bundles.items()
                if spatial_dims(path) == 3}
