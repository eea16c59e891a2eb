"""``skmeta train``'s estimator, its options checked before the data is read.

Decoding an image folder can take minutes, so whatever the flags alone
decide is refused first (:func:`check_options`): unknown backbone and
augmentation names (listed sorted, by flag), the estimator's parameter
constraints, the device, the method's settings (``--method-params``) and
torchvision where the options need it. ``--backbone-params`` need the input
shape (:func:`check_for_shape`): from ``--image-size`` and ``--color``
before an image folder is decoded, after a table is read.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path

from ._cli_help import TRAIN_FLAGS

__all__ = ["check_for_shape", "check_options", "estimator_and_data"]


def estimator_and_data(args, options: dict, id_column=None):
    """The ``MetaFeatureExtractor`` that ``skmeta train`` fits, and DATA.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed ``train`` flags.
    options : dict
        How to read DATA (``load_dataset``'s keywords): ``image_size`` and
        ``color`` give an image folder's input shape before it is decoded.
    id_column : str, optional
        ``--id-column``: a table's column (or array) of the rows' names, if
        there, read as names, not as a feature.

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
    folder = Path(args.data).is_dir()
    if folder:  # the shape its images will be decoded to
        height, width = options["image_size"]
        channels = 1 if options["color"] in ("grey", "gray") else 3
        check_for_shape(extractor, (channels, height, width))
    data = load_dataset(args.data, **options, classes=True, id_column=id_column)
    if not folder:  # a table's shape is known once it is read
        check_for_shape(extractor, data.input_shape)
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
    from .meta.augment_checks import check_flips_with_class_augmentation
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
    check_flips_with_class_augmentation(augmentation, extractor.class_augmentation)
    try:  # builds the method with its settings
        extractor._training_settings(extractor.method or extractor._task.default_method)
    except ValueError as exc:
        text, given = str(exc), extractor.method_params
        if given and "method_params" not in text:  # e.g. 'inner_steps must be'
            text = f"--method-params {json.dumps(given)}: {text}"
        raise ValueError(text) from None
    if backbone.startswith(PREFIX):
        import_torchvision(f"backbone='{backbone}'")
        check_name(backbone[len(PREFIX) :])
    if "images" in presets:
        import_torchvision("augmentation='images'")


def check_for_shape(extractor, input_shape: tuple[int, ...]) -> None:
    """Refuse ``backbone_params`` that do not build `extractor`'s backbone on
    rows of `input_shape`, or whose ``input_normalization`` is not valid for
    them. The backbone is built without reading pretrained weights.

    Parameters
    ----------
    extractor : MetaFeatureExtractor
        Its options checked by :func:`check_options`.
    input_shape : tuple of int
        ``(C, H, W)`` for images, ``(n_features,)`` for table rows.

    Raises
    ------
    ValueError
        Naming ``--backbone-params``.
    """
    from .meta.backbones import build_backbone, resolve_backbone
    from .meta.input_normalization import default_input_normalization

    params = extractor.backbone_params
    if not params:
        return
    backbone = resolve_backbone(extractor.backbone, input_shape)
    try:
        build_backbone(backbone, input_shape, params, load_weights=False)
        default_input_normalization(backbone, params, input_shape)
    except (TypeError, ValueError) as exc:  # e.g. a keyword it does not take
        text = str(exc)
        if "backbone_params" in text:  # the message names the flag
            raise ValueError(text) from None
        raise ValueError(
            f"--backbone-params {json.dumps(params)} (--backbone {backbone}, input "
            f"shape {tuple(input_shape)}): {text}"
        ) from None
