"""Data augmentation for meta-training (the estimators' ``augmentation=``).

Augmentation applies to the rows meta-training draws, one batch at a time, and
never to validation, adaptation or ``transform``.
"""

from .meta.augment import FeatureAugmentation, ImageAugmentation

__all__ = ["FeatureAugmentation", "ImageAugmentation"]
