"""``skmeta train``'s estimator, its options checked before the data is read.

Decoding an image folder can take minutes, so whatever the flags alone
decide is refused first (:func:`check_options`): unknown backbone and
augmentation names (listed sorted, by flag), the estimator's parameter
constraints, the device, the method's settings and torchvision where the
options need it.
"""

from __future__ import annotations

import difflib

from ._cli_help import TRAIN_FLAGS

__all__ = ["check_options", "estimator_and_data"]


def estimator_and_data(args, options: dict):
    """The ``MetaFeatureExtractor`` that ``skmeta train`` fits, and DATA.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed ``train`` flags.
    options : dict
        How to read DATA (``load_dataset``'s keywords).

    Returns
    -------
    extractor : MetaFeatureExtractor
        Its ``input_shape`` that of DATA; not fitted.
    data : Dataset
    """
    from ._cli_data import load_dataset
    from ._extractor import MetaFeatureExtractor

    names = [name for _, name, _ in TRAIN_FLAGS] + ["calibrate", "early_stopping"]
    params = {n: getattr(args, n) for n in names if getattr(args, n) is not None}
    extractor = MetaFeatureExtractor(verbose=0 if args.quiet else 1, **params)
    check_options(extractor)
    data = load_dataset(args.data, **options, classes=True)
    return extractor.set_params(input_shape=data.input_shape), data


def _unknown(flag: str, value: str, valid: list[str], more: str = "") -> ValueError:
    close = difflib.get_close_matches(value, valid, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    listed = ", ".join(sorted(valid))
    return ValueError(f"{flag} {value} is unknown{hint}; choose from {listed}{more}.")


def check_options(extractor) -> None:
    """Refuse what `extractor`'s parameters alone make fail, before any data
    is read.

    Parameters
    ----------
    extractor : MetaFeatureExtractor
        Built from the ``train`` flags, ``input_shape`` not yet set.

    Raises
    ------
    ValueError
        An unknown backbone or augmentation preset (naming the flag, the valid
        values sorted), a parameter out of its range, a bad device or method
        setting.
    ImportError
        torchvision missing or broken where ``--backbone torchvision:<name>``
        or ``--augmentation images`` needs it.
    """
    from ._checks import resolve_device
    from ._optional import import_torchvision
    from .meta.augment import PRESETS
    from .meta.backbones import BUILTIN_BACKBONES
    from .meta.vision import PREFIX, check_name

    backbone = extractor.backbone
    if not backbone.startswith(PREFIX) and backbone not in BUILTIN_BACKBONES:
        if backbone != "auto":
            more = f", or {PREFIX}<name> (a torchvision classification model)"
            raise _unknown("--backbone", backbone, ["auto", *BUILTIN_BACKBONES], more)
    augmentation = extractor.augmentation
    presets = [augmentation] if isinstance(augmentation, str) else augmentation or []
    for name in presets:
        if name not in PRESETS:
            more = " (or several, separated by commas)"
            raise _unknown("--augmentation", name, list(PRESETS), more)
    extractor._validate_params()
    resolve_device(extractor.device)
    extractor._training_settings(extractor.method or extractor._task.default_method)
    if backbone.startswith(PREFIX):
        import_torchvision(f"backbone='{backbone}'")
        check_name(backbone[len(PREFIX) :])
    if "images" in presets:
        import_torchvision("augmentation='images'")
