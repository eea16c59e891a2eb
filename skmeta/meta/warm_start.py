"""Warm starts: meta-training on from the weights of a meta-trained model."""

from __future__ import annotations

__all__ = ["iterations_behind", "start_from"]

_HEAD = "extra.head_weight"  # (n_outputs, embedding) of the methods with a head


def iterations_behind(model) -> int:
    """Meta-training iterations behind `model` (0 for a wrapped module)."""
    return int(model.config.get("training", {}).get("n_iter", 0))


def _shape_changes(theirs: dict, own: dict) -> list[str]:
    """The parameters whose shapes differ between the model (`theirs`) and
    the network these settings build (`own`), in words."""
    found = []
    head = _HEAD in theirs and _HEAD in own and theirs[_HEAD][0] != own[_HEAD][0]
    if head:
        found.append(
            f"the classifier head ({_HEAD}) has {theirs[_HEAD][0]} outputs in "
            f"the model and {own[_HEAD][0]} for this run's classes (the number "
            "of classes of y for method='pretrain', n_way for the others)"
        )
    for name in sorted(theirs.keys() | own.keys()):
        if head and name.startswith("extra.head_"):
            continue  # said above
        if name not in own:
            found.append(f"{name} {theirs[name]} is in the model only")
        elif name not in theirs:
            found.append(f"{name} {own[name]} is new in these settings")
        elif theirs[name] != own[name]:
            found.append(
                f"{name} has shape {theirs[name]} in the model and {own[name]} here"
            )
    if len(found) > 4:
        found = [*found[:4], f"and {len(found) - 4} more"]
    return found


def start_from(net, model, settings) -> int:
    """Load the weights of a meta-trained `model` into `net` (a warm start).

    Parameters
    ----------
    net : MetaNet
        Built from `settings`; its weights and input scaling are replaced.
    model : MetaModel
    settings : TrainSettings

    Returns
    -------
    int
        The iterations behind `model`, which the warm start counts on from.

    Raises
    ------
    ValueError
        If `model` is of another method or its network is not the one
        `settings` build (backbone, its parameters, the method's
        meta-parameters, input shape, a classifier head's classes); the
        message names the parameters whose shapes differ.
    """
    advice = "keep the fitted model's settings, or set warm_start=False"
    if model.method != settings.method:
        raise ValueError(
            f"warm_start=True continues the fitted model, meta-trained with "
            f"method={model.method!r}, not {settings.method!r}; {advice}."
        )
    theirs = {k: tuple(v.shape) for k, v in model.state.items()}
    own = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    if theirs != own:
        raise ValueError(
            "warm_start=True continues the fitted model, whose network differs "
            "from the one these settings build: "
            f"{'; '.join(_shape_changes(theirs, own))} "
            f"(backbone={settings.backbone!r}, backbone_params="
            f"{settings.backbone_params!r}, input_shape={settings.input_shape}); "
            f"{advice}."
        )
    net.load_state_dict(dict(model.state))
    # the model's input scaling, the features it ignores included
    net.ignore_features(model.config.get("ignored_features", ()))
    return iterations_behind(model)
