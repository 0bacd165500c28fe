"""Sharing and serving: TorchScript/ONNX export and the bundle zip (:mod:`.sharing`), the MONAI Label app
(:mod:`.label_app`, imported on its own: it needs the ``label`` extra)."""

from .sharing import export_onnx, export_torchscript, pack_bundle

__all__ = ["export_torchscript", "export_onnx", "pack_bundle"]
