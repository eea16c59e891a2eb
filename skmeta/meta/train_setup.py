"""The parts a meta-training run is assembled from (:func:`.train.meta_train`):
the rows checked, the network built with its input scaling and the method's
meta-parameters, the built-in callbacks, and the config the model records.
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import torch

from .algorithms.feature_norm import BASE_MEAN
from .augment import describe_augmentation
from .backbones import build_backbone
from .callbacks import Callback, EarlyStopping, GradientClipping, History
from .distributed import DistributedSync
from .input_normalization import default_input_normalization
from .net import MetaNet
from .norm import use_task_norm
from .progress import ProgressBar
from .rows import Rows

__all__ = ["as_rows", "build_net", "built_in_callbacks", "pixel_sample", "run_config"]


def as_rows(X) -> np.ndarray:
    """`X` as a 2-D array of real or integer numbers, without a copy."""
    X = X if isinstance(X, np.ndarray) else np.asarray(X)
    if X.ndim != 2 or not (
        np.issubdtype(X.dtype, np.floating) or np.issubdtype(X.dtype, np.integer)
    ):
        raise ValueError(
            f"X must be a 2-D array of numbers; got shape {X.shape}, dtype {X.dtype}."
        )
    return X


def pixel_sample(rows: Rows) -> np.ndarray:
    """Up to 2,048 evenly spaced rows, to tell 0-255 from 0-1 pixels (integer
    data needs none: its dtype says)."""
    X = rows.X
    if np.issubdtype(X.dtype, np.integer):
        return X[:0]
    return rows.read(np.unique(np.linspace(0, X.shape[0] - 1, 2048).astype(np.int64)))


def run_config(settings, algorithm, backbone, net, n_classes, made) -> dict:
    """The config a meta-trained model records: method and its resolved
    settings, backbone, input shape and scaling (the features it ignores
    included), embedding width, the training
    settings, and `made` (the provenance record)."""
    custom = not isinstance(backbone, str)
    return {
        "provenance": made,
        "method": settings.method,
        # resolved values, defaults included, so the file says what was used
        "method_params": algorithm.method_params(),
        "backbone": "custom" if custom else backbone,
        "backbone_name": (
            f"{getattr(backbone, '__module__', '?')}."
            f"{getattr(backbone, '__qualname__', type(backbone).__name__)}"
            if custom
            else backbone
        ),
        "backbone_params": dict(settings.backbone_params or {}),
        "input_shape": list(settings.input_shape),
        "per_feature_scaling": len(settings.input_shape) != 3
        or net.input_normalization is not None,
        "input_normalization": net.input_normalization,
        # constant in the meta-training rows: multiplied by 0 (MetaNet)
        "ignored_features": list(net.ignored_features),
        "task_norm": algorithm.task_norm,
        "embedding_dim": net.embedding_dim(),
        "training": {
            **{
                k: v
                for k, v in asdict(settings).items()
                if k not in ("backbone", "backbone_params", "method_params")
            },
            "augmentation": describe_augmentation(settings.augmentation),
            "n_classes": n_classes,
        },
    }


def build_net(
    settings, algorithm, backbone, statistics, pixel_sample, n_classes, device
) -> MetaNet:
    """The network to meta-train, its input scaling set: the data's
    `statistics()` (mean, std), or the per-channel normalisation the backbone's
    pretrained weights expect (pixel range read from `pixel_sample`)."""
    try:
        backbone_module = build_backbone(
            backbone, settings.input_shape, settings.backbone_params
        )
    except RuntimeError as exc:  # negative or absurd sizes: torch's message
        raise _unfit_backbone(settings, exc) from exc
    except TypeError as exc:  # a size of the wrong type, an unknown keyword
        raise TypeError(str(_unfit_backbone(settings, exc))) from exc
    if algorithm.task_norm:
        use_task_norm(backbone_module)
    net = MetaNet(
        backbone_module,
        settings.input_shape,
        per_feature_scaling=len(settings.input_shape) != 3,
    )
    norm = default_input_normalization(
        backbone, settings.backbone_params, settings.input_shape, pixel_sample
    )
    if norm is None:
        net.set_input_statistics(*statistics())
    else:
        net.set_channel_normalization(**norm)
    try:
        embedding_dim = net.embedding_dim()
    except RuntimeError as exc:  # e.g. images too small for the poolings
        raise _unfit_backbone(settings, exc) from exc
    if embedding_dim < 1:
        raise _unfit_backbone(settings, "its embedding has no features")
    # a fixed-way method's output layer has one unit per way of the episodes
    n_outputs = settings.n_way if algorithm.fixed_way else n_classes
    for name, value in algorithm.meta_parameters(net, embedding_dim, n_outputs).items():
        net.extra[name] = torch.nn.Parameter(value.clone().float())
    if getattr(algorithm, "keeps_base_mean", False):  # filled after training
        zeros = torch.zeros(embedding_dim)
        net.extra[BASE_MEAN] = torch.nn.Parameter(zeros, requires_grad=False)
    if not any(p.requires_grad for p in net.parameters()):
        raise ValueError(
            f"Nothing to meta-train: backbone_params={settings.backbone_params!r} "
            f"freezes the whole backbone and method={settings.method!r} learns "
            "nothing else. Train at least one block, or use "
            "MetaModel.from_module to use the backbone as it is."
        )
    return net.to(device)


def _unfit_backbone(settings, problem) -> ValueError:
    """The error for a backbone that cannot be built or run on `input_shape`."""
    problem = str(problem).splitlines()[0] if str(problem) else repr(problem)
    return ValueError(
        f"backbone={settings.backbone!r} with backbone_params="
        f"{settings.backbone_params!r} does not work on rows of input_shape="
        f"{settings.input_shape}: {problem}. Check the sizes in backbone_params, "
        "and input_shape (images must be large enough for the backbone's "
        "poolings, e.g. 16x16 or more for conv4)."
    )


def built_in_callbacks(settings, val_batch, ranks, generation, generations) -> list:
    """The built-in callbacks, new ones for each network trained (one per
    generation for distillation)."""
    built_in: list[Callback] = [] if ranks is None else [DistributedSync(ranks)]
    built_in.append(History())
    if settings.max_grad_norm is not None:
        built_in.append(GradientClipping(settings.max_grad_norm))
    if settings.early_stopping and ranks is None:
        built_in.append(EarlyStopping(val_batch, settings.n_iter_no_change))
    elif settings.early_stopping:  # each process validates its share
        share = val_batch.tasks(ranks.share(val_batch.n_tasks))
        stopping = EarlyStopping(share, settings.n_iter_no_change, reduce=ranks.sum)
        built_in.append(stopping)
    if settings.verbose and (ranks is None or ranks.is_main):
        which = "" if generations is None else f" generation {generation}"
        built_in.append(ProgressBar(f"meta-training {settings.method}{which}"))
    return built_in
