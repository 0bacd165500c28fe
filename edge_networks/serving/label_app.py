"""A MONAI Label app that serves this project's bundles from their folders (``bundles/<name>``), offline.

Start it with (the app folder's ``main.py`` imports :class:`EdgeSegApp`)::

    monailabel start_server --app apps/monailabel --studies /data/studies --host 127.0.0.1 \
        --conf models egcnn_brats,egcnn_kits,boundary_aware_brats

``--conf models`` takes bundle names (comma-separated) or ``all``; ``--conf bundles DIR`` serves bundles from
another folder (default: this repository's ``bundles/``). Every bundle gets an infer task (its
``configs/inference.json``, weights ``models/model.pt`` or else ``models/model.ts``); 3D bundles also get a train
task (``configs/train.json``, MONAI Label's datastore as the datalist).

Studies are found in the ``--studies`` folder (not its subfolders): each file whose suffix a served bundle reads
is one study, its id the file name without the suffix (``BRATS_001.nii.gz`` -> ``BRATS_001``). The suffixes are
those of the served bundles -- NIfTI (``.nii.gz``, ``.nii``) for the 3D bundles (and the dataset's own format, NRRD or
MetaImage, for a bundle made by ``edge-seg-new-bundle``), PNG, JPEG, BMP, GIF, TIFF and DICOM
(``.dcm``, ``.dicom``) files for the 2D ones -- plus any ``MONAI_LABEL_DATASTORE_FILE_EXT`` sets. Clients name
studies by id only, never by path (:mod:`.ids`): an id that is absolute, holds ``..`` or a separator, or is not in
the datastore gets 404 ``study 'ID' not found`` before any file is opened. Requests run in worker threads and
queue per model (:mod:`.routes`), so ``/info`` answers during an inference.

A study: one image file. A 2D bundle's study is a PNG, JPEG, TIFF or DICOM photograph (DRIVE, ORIGA, ...), and
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
import os
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from fastapi import HTTPException
from monai.transforms import SaveImaged
from monailabel.config import settings
from monailabel.interfaces.app import MONAILabelApp
from monailabel.interfaces.datastore import DefaultLabelTag
from monailabel.tasks.infer.bundle import BundleInferTask
from monailabel.tasks.train.bundle import BundleTrainTask
from PIL import Image

from transforms.image2d import IMAGE_2D_SUFFIXES, read_image_2d

from .. import __version__
from ..bundle import bundles_dir, flag
from ..data.layouts import LAYOUTS, get_layout
from .ids import SafeLocalDatastore, check_id, extension_patterns, scrub_paths
from .routes import allowed_paths, run_endpoints_in_threads

__all__ = ["EdgeSegApp", "EdgeBundleInferTask", "EdgeBundleTrainTask", "served_bundles", "check_study",
           "study_extensions"]

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


def _layout(bundle: Path):
    """The bundle's dataset :class:`~edge_networks.data.layouts.Layout` (a name of the table, or the fields a bundle
    made by ``edge-seg-new-bundle`` carries), or None for a layout this app does not know."""
    layout = json.loads((bundle / "configs" / "inference.json").read_text()).get("layout")
    try:
        return get_layout(layout) if isinstance(layout, dict) or layout in LAYOUTS else None
    except (TypeError, ValueError):
        return None


def _input_spec(bundle: Path) -> tuple[int, bool, int]:
    """(network spatial dims, reads 2D image files, channels of a study) of a bundle, from its configs: a study
    holds every modality of the bundle's dataset layout (BraTS: 4, in the Decathlon order; KiTS: 1), whatever
    the network picks from them."""
    meta = json.loads((bundle / "configs" / "metadata.json").read_text())
    image = meta["network_data_format"]["inputs"]["image"]
    lay = _layout(bundle)
    image_files = lay is not None and lay.spatial_dims == 2
    channels = len(lay.modalities) if lay is not None else int(image["num_channels"])
    return len(image["spatial_shape"]), image_files, channels


VOLUME_SUFFIXES = (".nii.gz", ".nii")


def study_extensions(bundles) -> list[str]:
    """The datastore's file patterns for ``bundles`` (bundle folders): the suffixes their studies may have (2D
    image files and DICOM for bundles that read photographs, NIfTI for the others), plus those of
    ``MONAI_LABEL_DATASTORE_FILE_EXT`` when it is set."""
    suffixes: list[str] = []
    for bundle in bundles:
        suffixes += IMAGE_2D_SUFFIXES if _input_spec(Path(bundle))[1] else VOLUME_SUFFIXES
        lay = _layout(Path(bundle))
        if lay is not None and lay.file_ending:  # a bundle of one's own dataset: its files' format (NRRD, MHA, ...)
            suffixes.append(lay.file_ending)
    patterns = extension_patterns(dict.fromkeys(suffixes))
    if os.environ.get("MONAI_LABEL_DATASTORE_FILE_EXT"):
        patterns += [p for p in settings.MONAI_LABEL_DATASTORE_FILE_EXT if p not in patterns]
    return patterns


def check_study(path: str, model: str, bundle: Path, name: str | None = None) -> None:
    """Refuse, with an HTTP 4xx that says why, a study ``model`` cannot segment, before any work starts. Messages
    name the study by ``name`` (its id or the uploaded file's name; defaults to the file name), never by its path.

    Raises:
        HTTPException: 404 no such file; 415 not an image file this bundle reads (the file's first bytes do not
            parse); 422 an image of the wrong kind (a 2D photograph for a 3D model, a volume for a photograph
            model, the wrong number of channels).
    """
    name = name or Path(path).name
    if not path or not Path(path).is_file():
        raise HTTPException(status_code=404, detail=f"study {name!r} not found")
    _, image_files, channels = _input_spec(bundle)
    is_photo = path.lower().endswith(IMAGE_2D_SUFFIXES)
    if image_files and not is_photo:
        raise HTTPException(status_code=422, detail=f"{model} segments 2D photographs "
                                                    f"({', '.join(IMAGE_2D_SUFFIXES)}); study {name!r} is not one")
    if image_files:
        try:
            read_image_2d(path)
        except Exception as e:  # noqa: BLE001 - any reader failure is the client's file
            raise HTTPException(status_code=415, detail=scrub_paths(f"study {name!r} is not a readable image: {e}")
                                ) from None
        return
    if is_photo:
        raise HTTPException(status_code=422, detail=f"{model} segments volumes; study {name!r} is a 2D image")
    try:
        shape = _volume_shape(path)
    except Exception as e:  # noqa: BLE001
        raise HTTPException(status_code=415, detail=scrub_paths(f"study {name!r} is not a volume this model "
                                                                f"reads: {type(e).__name__}: {e}")) from None
    got = shape[3] if len(shape) == 4 else 1 if len(shape) == 3 else None
    if got is None or got != channels:
        raise HTTPException(status_code=422, detail=f"{model} needs a volume with {channels} channel(s) "
                                                    f"(x, y, z{', c' if channels > 1 else ''}); study {name!r} has "
                                                    f"shape {tuple(shape)}")


def _volume_shape(path: str) -> tuple[int, ...]:
    """``(x, y, z[, c])`` of a volume file from its header: NIfTI with nibabel, other formats (NRRD, MetaImage)
    with SimpleITK."""
    if path.lower().endswith((".nii", ".nii.gz")):
        return tuple(nib.load(path).shape)
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(path)
    reader.ReadImageInformation()
    components = reader.GetNumberOfComponents()
    return tuple(reader.GetSize()) + ((components,) if components > 1 else ())


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
    """Infer with every served bundle, train the 3D ones (see the module docstring for ``--conf`` keys, the studies
    it lists and the id rules)."""

    def __init__(self, app_dir: str, studies: str, conf: dict[str, str]) -> None:
        self.bundles = served_bundles(bundles_dir(conf.get("bundles"), option="--conf bundles"),
                                      conf.get("models", "all"))
        self._queues = {name: threading.Lock() for name in self.bundles}
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

    def init_datastore(self):
        """A :class:`~.ids.SafeLocalDatastore` of the studies folder listing every format a served bundle reads
        (a remote datastore -- DICOMweb, XNAT, DSA -- as MONAI Label makes it)."""
        if self.studies.startswith(("http://", "https://")):
            return super().init_datastore()
        return SafeLocalDatastore(self.studies, extensions=study_extensions(self.bundles.values()),
                                  auto_reload=settings.MONAI_LABEL_DATASTORE_AUTO_RELOAD,
                                  read_only=settings.MONAI_LABEL_DATASTORE_READ_ONLY)

    def server_mode(self, mode: bool) -> None:
        """MONAI Label calls this once its web app runs: its blocking handlers then move to worker threads."""
        super().server_mode(mode)
        if mode:
            import monailabel.app

            replaced = run_endpoints_in_threads(monailabel.app.app)
            logger.info("%d request handlers run in worker threads", len(replaced))

    def infer(self, request, datastore=None):
        """MONAI Label's ``infer``, with the request checked first: an unknown model, a study id that is not a
        datastore id, a study the model cannot read is answered with an HTTP 4xx and a message that names the study,
        not a server path (MONAI Label's own checks raise plain exceptions, which reach the client as a 500, and it
        takes any existing path as a study). Requests for one model wait for each other."""
        model = request.get("model")
        if model not in self._infers:
            raise HTTPException(status_code=404, detail=f"no model {model!r}; served: {sorted(self._infers)}")
        request = dict(request)
        image = request.get("image")
        allowed = allowed_paths()
        store = datastore or self.datastore()
        study_id = None
        if not isinstance(image, str) or not image:
            raise HTTPException(status_code=422, detail="no study: pass ?image=<study id>, a file or a session_id")
        if image in allowed:
            path, name = image, allowed[image]
        else:  # a study id, also when params named it: checked here, whatever the datastore
            path, name, study_id = store.get_image_uri(check_id(image)), image, image
        if request.get("label") not in (None, *allowed):
            request.pop("label")  # only this request's own upload
        check_study(path, model, self.bundles[model], name)
        save_label = flag(request.get("save_label", False)) and study_id is not None
        request.update(image=path, save_label=False)
        with self._queues[model]:
            result = super().infer(request, datastore)
        if save_label and result.get("file"):
            tag = check_id(request.get("label_tag", DefaultLabelTag.ORIGINAL.value), "label tag")
            result["label"] = store.save_label(
                study_id, result["file"], tag, {"model": model, "params": result.get("params")})
        return result

    def _known(self, kind: str, name: Any, available: dict) -> None:
        if name and name not in available:
            raise HTTPException(status_code=404, detail=f"no {kind} {name!r}; available: {sorted(available)}")

    def next_sample(self, request):
        """MONAI Label's active learning, with an unknown strategy answered 404 and no server path in the answer."""
        self._known("strategy", request.get("strategy"), self._strategies)
        result = super().next_sample(request)
        result.pop("path", None)
        return result

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
