"""Any torch module as a :class:`~skmeta.meta.model.MetaModel`, without
meta-training (``MetaModel.from_module``): transfer learning and meta-learning
through one API.

The model keeps a private copy of the module as the template its networks are
built from (deep copies sharing the model's tensors), so the user's module is
never changed and later changes to it do not reach the model. Saved, the file
holds the weights and a config that records ``"from_module": true``; loading
it needs ``backbone=``: a module of the same architecture (its weights are
replaced by the file's) or a factory that builds one, as for any custom
backbone.
"""

from __future__ import annotations

import copy
import numbers

import torch
from torch import nn

from .algorithms import make_algorithm
from .input_normalization import resolve_input_normalization
from .net import MetaNet, float32_default
from .norm import use_task_norm

__all__ = ["model_from_module"]


def _qualified_name(obj) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def model_from_module(
    module: nn.Module,
    input_shape,
    method: str = "protonet",
    method_params: dict | None = None,
    input_normalization=None,
    pixel_range: float = 1.0,
):
    """Wrap `module` as a MetaModel; see :meth:`MetaModel.from_module
    <skmeta.meta.model.MetaModel.from_module>` for the parameters.

    Returns
    -------
    MetaModel
    """
    with float32_default():  # the wrapper and its probe, as skmeta's networks
        return _model_from_module(
            module, input_shape, method, method_params, input_normalization, pixel_range
        )


def _model_from_module(
    module, input_shape, method, method_params, input_normalization, pixel_range
):
    from .model import MetaModel

    if not isinstance(module, nn.Module):
        raise TypeError(
            f"module must be a torch.nn.Module instance, got {type(module).__name__}."
        )
    input_shape = tuple(input_shape)
    if not input_shape or not all(
        isinstance(s, numbers.Integral) and s > 0 for s in input_shape
    ):
        raise ValueError(
            f"input_shape must be a tuple of positive ints, got {input_shape!r}."
        )
    input_shape = tuple(int(s) for s in input_shape)
    images = len(input_shape) == 3
    if input_normalization not in (None, "data") and not images:
        raise ValueError(
            "input_normalization normalises image channels; it needs "
            f"input_shape=(C, H, W), got {input_shape}."
        )
    if input_normalization is None and float(pixel_range) != 1.0:
        if not images:
            raise ValueError(
                f"pixel_range={pixel_range!r} scales image pixels; it needs "
                f"input_shape=(C, H, W), got {input_shape}."
            )
        # 0-255 rows reach the module in [0, 1], as the parameter says
        input_normalization = {"kind": "pixel_range", "mean": [0.0], "std": [1.0]}
    norm = resolve_input_normalization(
        input_normalization, input_shape[0] if images else 1, pixel_range
    )
    algorithm = make_algorithm(method, **(method_params or {}))
    template = copy.deepcopy(module).float().cpu()
    if algorithm.task_norm:
        use_task_norm(template)
    net = MetaNet(template, input_shape, not images or norm is not None)
    if norm is not None:
        net.set_channel_normalization(**norm)
    try:
        embedding_dim = net.embedding_dim()
    except Exception as exc:  # the user's module: any error it raises
        raise ValueError(
            f"The module does not embed rows of input_shape={input_shape}: a batch "
            f"of shape (2, *input_shape) raised {type(exc).__name__}: {exc}"
        ) from exc
    for name, value in algorithm.meta_parameters(net, embedding_dim, 1).items():
        net.extra[name] = nn.Parameter(value.detach().clone().float())
    config = {
        "method": method,
        "method_params": algorithm.method_params(),
        "backbone": "custom",
        "backbone_name": _qualified_name(module),
        "backbone_params": {},
        "input_shape": list(input_shape),
        "per_feature_scaling": net.per_feature_scaling,
        "task_norm": algorithm.task_norm,
        "embedding_dim": embedding_dim,
        "input_normalization": norm,
        "frozen_parameters": sorted(net.frozen_parameters),
        "from_module": True,
        "training": {"from_module": True, "n_iter": 0, "best_iter": 0},
    }
    with torch.no_grad():
        state = net.state_dict()
    return MetaModel(state, config, (), backbone=template)
