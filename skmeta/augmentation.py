"""Data augmentation for meta-training (the estimators' ``augmentation=``).

Augmentation applies to the rows meta-training draws, one batch at a time, and
never to validation, adaptation or ``transform``.
"""

from .meta.augment import AffineAugmentation, FeatureAugmentation, ImageAugmentation
from .meta.elastic import ElasticAugmentation

__all__ = [
    "AffineAugmentation",
    "ElasticAugmentation",
    "FeatureAugmentation",
    "ImageAugmentation",
]
