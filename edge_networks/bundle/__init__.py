"""What the bundle configs call (:mod:`.helpers`: ``edge_networks.bundle.flag``, ``AutocastInferer``, ...) and the
generator that writes every bundle's configs from shared parts (:mod:`.generate`)."""

from .helpers import (
    REPO_BUNDLES,
    AutocastInferer,
    bundle_root,
    case_name_formatter,
    cpu_supports_bf16,
    flag,
    foreground_slices,
    inference_datalist,
    load_datalist,
    poly_lr,
    select_channel,
)

__all__ = [
    "REPO_BUNDLES",
    "flag",
    "bundle_root",
    "load_datalist",
    "inference_datalist",
    "poly_lr",
    "cpu_supports_bf16",
    "AutocastInferer",
    "select_channel",
    "case_name_formatter",
    "foreground_slices",
]
