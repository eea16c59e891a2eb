"""MetaNet: input scaling, backbone and a method's meta-parameters in one module.

Rows come in flat, ``(batch, n_features)``, as scikit-learn hands them over; the
net standardises them with statistics of the meta-training data, reshapes them to
``input_shape`` and runs the backbone.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["MetaNet", "build_net", "embed_rows", "widest_activations"]


class MetaNet(nn.Module):
    """The trainable whole behind a :class:`~skmeta.MetaModel`.

    Parameters
    ----------
    backbone : torch.nn.Module
        Maps ``(batch, *input_shape)`` to ``(batch, embedding_dim)``.
    input_shape : tuple of int
        Shape of one row, e.g. ``(n_features,)`` or ``(C, H, W)``.
    per_feature_scaling : bool
        Standardise each feature (tabular rows) rather than with one global mean
        and scale (images).

    Attributes
    ----------
    frozen_parameters : frozenset of str
        Names (``"backbone. ..."``) of the backbone's parameters that did not
        require gradients when the net was built: frozen ones
        (:mod:`~skmeta.meta.freezing`), which gradient-based methods do not
        adapt either.
    """

    def __init__(
        self,
        backbone: nn.Module,
        input_shape: tuple[int, ...],
        per_feature_scaling: bool,
    ) -> None:
        super().__init__()
        self.input_shape = tuple(int(s) for s in input_shape)
        self.n_features = math.prod(self.input_shape)  # width of a flat row
        stats_shape = (self.n_features,) if per_feature_scaling else (1,)
        self.register_buffer("input_mean", torch.zeros(stats_shape))
        self.register_buffer("input_scale", torch.ones(stats_shape))
        self.frozen_parameters = frozenset(
            f"backbone.{name}"
            for name, p in backbone.named_parameters()
            if not p.requires_grad
        )
        self.backbone = backbone
        self.extra = nn.ParameterDict()

    @torch.no_grad()
    def set_input_statistics(self, x: torch.Tensor) -> None:
        """Set the standardisation from training rows x, shape (n, n_features)."""
        if self.input_mean.numel() == 1:
            mean, std = x.mean(), x.std()
        else:
            mean, std = x.mean(0), x.std(0)
        std = torch.where(torch.isfinite(std) & (std > 1e-8), std, torch.ones_like(std))
        self.input_mean.copy_(mean)
        self.input_scale.copy_(std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embed rows: (batch, n_features) -> (batch, embedding_dim)."""
        x = self.standardize(x)
        return self.backbone(x.view(x.shape[0], *self.input_shape)).flatten(1)

    def standardize(self, x: torch.Tensor) -> torch.Tensor:
        """Rows scaled as the backbone sees them: (..., n_features) -> same."""
        # (x - mean) / scale as one fused kernel: x * (1 / scale) + (-mean / scale)
        return torch.addcmul(
            -self.input_mean / self.input_scale, x, 1 / self.input_scale
        )

    @torch.no_grad()
    def embedding_dim(self) -> int:
        """Width of the embedding, found by one forward pass in eval mode."""
        was_training = self.training
        self.eval()
        out = self(self.input_mean.new_zeros(2, self.n_features))
        self.train(was_training)
        return int(out.shape[1])


def widest_activations(net: MetaNet) -> tuple[int, int]:
    """Largest number of floats any layer of `net` outputs for one row, and the
    largest any layer outputs as a 2-D ``(rows, features)`` tensor.

    One probe forward of two rows in eval mode (nothing updated), cached on
    `net`: the shapes of its layers' outputs do not change with training.
    """
    cached = net.__dict__.get("_widest_activations")
    if cached is not None:
        return cached
    widest, dense = [1], [1]

    def record(module, inputs, output):
        if isinstance(output, torch.Tensor):
            widest.append(output[0].numel())
            if output.dim() == 2:
                dense.append(output.shape[1])

    was_training = net.training
    hooks = [m.register_forward_hook(record) for m in net.modules()]
    try:
        with torch.inference_mode():
            # two rows: batch norm without running statistics needs them
            net.eval()(net.input_mean.new_zeros(2, net.n_features))
    finally:
        net.train(was_training)
        for hook in hooks:
            hook.remove()
    net.__dict__["_widest_activations"] = cached = (max(widest), max(dense))
    return cached


def build_net(config: dict, backbone_factory=None) -> MetaNet:
    """Build a fresh :class:`MetaNet` from a model config.

    Parameters
    ----------
    config : dict
        Keys ``backbone`` (a built-in or torchvision name, or ``"custom"``),
        ``backbone_params``, ``input_shape``, ``per_feature_scaling``,
        optionally ``task_norm`` and ``frozen_parameters`` (names of
        parameters to freeze).
    backbone_factory : callable or torch.nn.Module, optional
        The user's module class, factory or template module when
        ``config["backbone"] == "custom"``.

    Returns
    -------
    MetaNet
        Its tensors are to be loaded from a state dict: a torchvision
        backbone is built without reading its ``weights``.
    """
    from .backbones import build_backbone

    name = config["backbone"]
    if name == "custom":
        if backbone_factory is None:
            raise ValueError(
                "This model uses a custom backbone "
                f"({config.get('backbone_name', 'unknown')}); pass the same "
                "torch.nn.Module class or factory as backbone=."
            )
        name = backbone_factory
    backbone = build_backbone(
        name,
        tuple(config["input_shape"]),
        config["backbone_params"],
        load_weights=False,
    )
    for parameter in config.get("frozen_parameters", ()):
        backbone.get_parameter(parameter.removeprefix("backbone.")).requires_grad_(
            False
        )
    if config.get("task_norm"):
        from .norm import use_task_norm

        use_task_norm(backbone)
    return MetaNet(
        backbone, tuple(config["input_shape"]), config["per_feature_scaling"]
    )


def embed_rows(net: MetaNet, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Embed rows in chunks of `batch_size` (bounded memory, faster on a CPU).

    Parameters
    ----------
    net : MetaNet
    x : Tensor of shape (n, n_features)
    batch_size : int

    Returns
    -------
    Tensor of shape (n, embedding_dim)
    """
    if x.shape[0] <= batch_size:
        return net(x)
    return torch.cat([net(chunk) for chunk in x.split(batch_size)])
