"""Networks, one file per paper (:mod:`.egcnn`, :mod:`.boundary_aware`, :mod:`.cenet`, :mod:`.etnet`,
:mod:`.banet`), the MONAI backbones they plug into (:mod:`.backbones`) and the blocks shared between papers
(:mod:`.blocks`)."""

from .backbones import BACKBONES, CENetBackbone, SegResNetBackbone, UNetBackbone, VNetBackbone, build_backbone
from .banet import BANet, BANetASPP, CrossFeatureFusion, MiniMultiTask, PyramidEdgeExtraction
from .blocks import EdgeGatedLayer, interpolate_to, replace_batchnorm_with_groupnorm
from .boundary_aware import BoundaryAwareNet
from .cenet import CENet, CENetDecoderBlock, DACBlock, RMPBlock
from .egcnn import EGCNN
from .etnet import EdgeGuidanceModule, ETNet, ETNetDecoderBlock, WeightedAggregationModule

__all__ = [
    "EGCNN",
    "BoundaryAwareNet",
    "CENet",
    "DACBlock",
    "RMPBlock",
    "CENetDecoderBlock",
    "ETNet",
    "ETNetDecoderBlock",
    "EdgeGuidanceModule",
    "WeightedAggregationModule",
    "BANet",
    "BANetASPP",
    "PyramidEdgeExtraction",
    "MiniMultiTask",
    "CrossFeatureFusion",
    "CENetBackbone",
    "BACKBONES",
    "SegResNetBackbone",
    "UNetBackbone",
    "VNetBackbone",
    "build_backbone",
    "EdgeGatedLayer",
    "interpolate_to",
    "replace_batchnorm_with_groupnorm",
]
