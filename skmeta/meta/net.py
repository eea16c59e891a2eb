"""MetaNet: input scaling, backbone and a method's meta-parameters in one module.

Rows come in flat, ``(batch, n_features)``, as scikit-learn hands them over; the
net standardises them (with statistics of the meta-training data, or with the
per-channel normalisation pretrained weights expect), reshapes them to
``input_shape`` and runs the backbone.
"""

from __future__ import annotations

import math
import threading
from contextlib import contextmanager, nullcontext

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
        Standardise each feature (tabular rows, or images normalised per
        channel) rather than with one global mean and scale (images).

    Attributes
    ----------
    input_mean, input_scale : Tensor of shape (n_features,) or (1,)
        Buffers: the net computes ``(x - input_mean) / input_scale * input_keep``.
    input_keep : Tensor of shape (n_features,) or (1,)
        1, or 0 for the features in :attr:`ignored_features`: a buffer kept out
        of the state dict (the model's config lists the ignored features).
    input_normalization : dict or None
        The per-channel normalisation set by :meth:`set_channel_normalization`
        (``kind``, ``mean``, ``std``, ``pixel_range``), or None.
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
        self.register_buffer("input_keep", torch.ones(stats_shape), persistent=False)
        self.input_normalization: dict | None = None
        self.frozen_parameters = frozenset(
            f"backbone.{name}"
            for name, p in backbone.named_parameters()
            if not p.requires_grad
        )
        self.backbone = backbone
        self.extra = nn.ParameterDict()

    @property
    def per_feature_scaling(self) -> bool:
        """Whether the scaling buffers hold one value per feature."""
        return self.input_mean.numel() > 1

    @property
    def ignored_features(self) -> tuple[int, ...]:
        """Indices of the features the net multiplies by 0: constant in the
        meta-training data (:meth:`set_input_statistics`), so the weights
        they meet never learnt from them."""
        if not self.per_feature_scaling:
            return ()
        return tuple(torch.nonzero(self.input_keep == 0).flatten().tolist())

    @torch.no_grad()
    def ignore_features(self, indices) -> None:
        """Multiply the features at `indices` by 0 (the others by 1).

        Parameters
        ----------
        indices : sequence of int
            Feature indices, in ``[0, n_features)``; only with per-feature
            scaling (flat rows).
        """
        indices = [int(i) for i in indices]
        if indices and not self.per_feature_scaling:
            raise ValueError("Only per-feature scaling can ignore features.")
        self.input_keep.fill_(1.0)
        self.input_keep[indices] = 0.0

    @torch.no_grad()
    def set_channel_normalization(
        self,
        mean,
        std,
        pixel_range: float = 1.0,
        kind: str = "custom",
    ) -> None:
        """Normalise image channels as pretrained weights expect.

        Each pixel ``x`` of channel ``c`` becomes
        ``(x / pixel_range - mean[c]) / std[c]``, filled into the per-feature
        buffers as ``input_mean = mean[c] * pixel_range`` and ``input_scale =
        std[c] * pixel_range`` (so the standardisation stays one fused op).
        Buffers of shape ``(1,)`` are replaced by ``(n_features,)`` ones.

        Parameters
        ----------
        mean, std : sequence of float
            Per channel, for pixels in [0, 1]; one value (or a channel count
            of 1) applies to every channel. ImageNet's are ``(0.485, 0.456,
            0.406)`` and ``(0.229, 0.224, 0.225)``.
        pixel_range : float, default=1.0
            The value of a white pixel in the rows: 255.0 for 0-255 data
            (uint8 images), 1.0 for floats in [0, 1].
        kind : str, default="custom"
            A label recorded in :attr:`input_normalization` (e.g.
            ``"imagenet"``).
        """
        if len(self.input_shape) != 3:
            raise ValueError(
                "Per-channel normalisation needs images, input_shape=(C, H, W); "
                f"got {self.input_shape}."
            )
        n_channels = self.input_shape[0]
        mean = torch.as_tensor(mean, dtype=torch.float32).flatten()
        std = torch.as_tensor(std, dtype=torch.float32).flatten()
        for name, values in (("mean", mean), ("std", std)):
            if values.numel() not in (1, n_channels):
                raise ValueError(
                    f"{name} has {values.numel()} values; the images have "
                    f"{n_channels} channels (input_shape={self.input_shape})."
                )
        if not (bool((std > 0).all()) and pixel_range > 0):
            raise ValueError("std and pixel_range must be positive.")
        per_pixel = self.n_features // n_channels
        if self.input_mean.numel() != self.n_features:
            self.input_mean = self.input_mean.new_empty(self.n_features)
            self.input_scale = self.input_scale.new_empty(self.n_features)
        self.input_keep = self.input_mean.new_ones(self.n_features)  # none ignored
        for buffer, values in ((self.input_mean, mean), (self.input_scale, std)):
            values = values.expand(n_channels) * float(pixel_range)
            buffer.copy_(values.repeat_interleave(per_pixel))
        self.input_normalization = {
            "kind": kind,
            "mean": mean.expand(n_channels).tolist(),
            "std": std.expand(n_channels).tolist(),
            "pixel_range": float(pixel_range),
        }

    @torch.no_grad()
    def set_input_statistics(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Set the standardisation from the training rows' mean and standard
        deviation, tensors shaped like the buffers: ``(n_features,)`` with
        per-feature scaling, else ``(1,)`` (see
        :func:`skmeta.meta.rows.input_statistics`). A zero or non-finite
        deviation scales by 1; with per-feature scaling, a feature of zero
        deviation (constant in the training rows) is also ignored
        (:meth:`ignore_features`): the first layer's weights it meets get no
        gradient in meta-training, so other values of it at deployment would
        pass through random weights."""
        constant = torch.isfinite(std) & (std <= 1e-8)
        usable = torch.isfinite(std) & (std > 1e-8)
        self.input_mean.copy_(mean)
        self.input_scale.copy_(torch.where(usable, std, torch.ones_like(std)))
        if self.per_feature_scaling:
            self.ignore_features(torch.nonzero(constant).flatten().tolist())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embed rows: (batch, n_features) -> (batch, embedding_dim)."""
        x = self.standardize(x)
        return self.backbone(x.view(x.shape[0], *self.input_shape)).flatten(1)

    def standardize(self, x: torch.Tensor) -> torch.Tensor:
        """Rows scaled as the backbone sees them: (..., n_features) -> same."""
        # (x - mean) / scale * keep as one fused kernel: x * f + (-mean * f),
        # f = keep / scale (0 for an ignored feature)
        factor = self.input_keep / self.input_scale
        return torch.addcmul(-self.input_mean * factor, x, factor)

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


_default_lock = threading.Lock()
_default_depth = 0  # float32_default blocks open, in all threads
_default_saved = torch.float32  # the default the outermost block found


@contextmanager
def float32_default():
    """torch's default dtype float32 while skmeta builds networks: a user's
    ``torch.set_default_dtype(torch.float64)`` would otherwise make them
    float64, unlike the float32 rows and model files they take.

    torch has one default for the whole process: while any thread is inside
    such a block, every thread's new tensors default to float32. Blocks of
    several threads nest: the outermost sets the default, the last to close
    restores the user's.
    """
    global _default_depth, _default_saved
    with _default_lock:
        if _default_depth == 0:
            _default_saved = torch.get_default_dtype()
            if _default_saved != torch.float32:
                torch.set_default_dtype(torch.float32)
        _default_depth += 1
    try:
        yield
    finally:
        with _default_lock:
            _default_depth -= 1
            if _default_depth == 0 and _default_saved != torch.float32:
                torch.set_default_dtype(_default_saved)


def build_net(config: dict, backbone_factory=None, backbone_device=None) -> MetaNet:
    """Build a fresh :class:`MetaNet` from a model config.

    Parameters
    ----------
    config : dict
        Keys ``backbone`` (a built-in or torchvision name, or ``"custom"``),
        ``backbone_params``, ``input_shape``, ``per_feature_scaling``,
        optionally ``task_norm``, ``input_normalization``,
        ``frozen_parameters`` (names of parameters to freeze) and
        ``ignored_features`` (indices of features multiplied by 0).
    backbone_factory : callable or torch.nn.Module, optional
        The user's module class, factory or template module when
        ``config["backbone"] == "custom"``.
    backbone_device : str, optional
        Where the backbone's tensors are created: ``"meta"`` allocates and
        initialises none (nor draws random numbers), for a network whose
        weights are then assigned from a state dict. The net's own buffers
        (input scaling, ignored features) are computed on the CPU.

    Returns
    -------
    MetaNet
        Its tensors are to be loaded from a state dict: a torchvision
        backbone is built without reading its ``weights``.
    """
    with float32_default():
        return _build_net(config, backbone_factory, backbone_device)


def _build_net(config: dict, backbone_factory, backbone_device=None) -> MetaNet:
    from .backbones import build_backbone

    name = config["backbone"]
    if name == "custom":
        if backbone_factory is None:
            raise ValueError(
                "This model uses a custom backbone "
                f"({config.get('backbone_name', 'unknown')}); pass the same "
                "torch.nn.Module class or factory as backbone=, or a module of "
                "the same architecture (its weights are replaced by the file's)."
            )
        name = backbone_factory
    with torch.device(backbone_device) if backbone_device else nullcontext():
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
    net = MetaNet(backbone, tuple(config["input_shape"]), config["per_feature_scaling"])
    net.input_normalization = config.get("input_normalization")
    net.ignore_features(config.get("ignored_features", ()))  # older models: none
    return net


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
