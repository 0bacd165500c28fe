"""The dictionary side of the project's array transforms, kept once."""

from __future__ import annotations

from collections.abc import Hashable, Mapping

from monai.config import NdarrayOrTensor
from monai.transforms import MapTransform, Transform

__all__ = ["ArrayTransformd"]


class ArrayTransformd(MapTransform):
    """Base of the dictionary versions: applies ``self.array_transform`` (set by the subclass's ``__init__``) to
    every key."""

    array_transform: Transform

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.array_transform(d[key])
        return d
