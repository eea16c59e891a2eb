"""MetaModel: the immutable result of meta-training.

It holds the network's tensors (backbone, input scaling, a method's
meta-parameters), the config that rebuilds it, and the training history.
Adaptation reads it and never writes into it, so scikit-learn's ``clone`` and
``copy.deepcopy`` share one copy of the weights across estimators.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType

import numpy as np
import torch

from . import accel, inference, io, shipping
from .algorithms import Algorithm, make_algorithm
from .input_normalization import check_pixel_range
from .model_network import network_of
from .model_records import ModelRecords
from .net import MetaNet, float32_default

__all__ = ["MetaModel"]


def _json_roundtrip(value):
    """`value` as it reads back from JSON (tuples as lists, NumPy scalars as
    Python numbers)."""
    return json.loads(json.dumps(io.thawed(value), default=io.json_value))


class MetaModel(ModelRecords):
    """What meta-training produces, immutable once built.

    Build one with :class:`~skmeta.MetaFeatureExtractor` or
    :class:`~skmeta.FewShotClassifier` (``meta_model_``), or load one with
    :meth:`load`. Pass it as ``pretrained=`` to reuse it without meta-training.

    Parameters
    ----------
    state : mapping of str to Tensor
        The network's state dict (CPU tensors).
    config : mapping
        JSON-compatible description: ``method``, ``method_params``, ``backbone``,
        ``backbone_params``, ``input_shape``, ``per_feature_scaling``,
        ``embedding_dim``, ``training``.
    history : sequence of mapping, default=()
        Training log, one record per evaluation point.
    backbone : callable or torch.nn.Module, optional
        The user's backbone class or factory, or a template module (copied),
        when ``config["backbone"]`` is ``"custom"``.

    Attributes
    ----------
    method : str
    input_shape : tuple of int
    n_features : int
    embedding_dim : int
    config : mapping (read-only)
    history : tuple of mapping (read-only)
    """

    def __init__(
        self,
        state: Mapping[str, torch.Tensor],
        config: Mapping,
        history: Sequence[Mapping] = (),
        backbone: Callable | None = None,
    ) -> None:
        tensors = {
            k: v.detach().to("cpu").requires_grad_(False) for k, v in state.items()
        }
        object.__setattr__(self, "_state", MappingProxyType(tensors))
        object.__setattr__(self, "_config", io.frozen(_json_roundtrip(config)))
        object.__setattr__(self, "_history", io.frozen(_json_roundtrip(history)))
        object.__setattr__(self, "_backbone", backbone)
        object.__setattr__(self, "_nets", {})
        object.__setattr__(self, "_embedders", {})
        object.__setattr__(self, "_batch_sizes", {})
        self.network(torch.device("cpu"))  # fail now, not at first use

    # -- immutability -----------------------------------------------------
    def __setattr__(self, name, value):
        raise AttributeError("MetaModel is immutable.")

    def __sklearn_clone__(self) -> MetaModel:
        return self

    def __copy__(self) -> MetaModel:
        return self

    def __deepcopy__(self, memo) -> MetaModel:
        return self

    def alias(self) -> MetaModel:
        """Another object for this model, sharing its weights, config,
        history and built networks (``is`` tells them apart): what
        ``episodic_score`` ships as a handle, so that the caller's own object,
        pickled meanwhile by another thread, still pickles whole."""
        twin = object.__new__(MetaModel)
        for name, value in vars(self).items():  # the same objects, shared
            object.__setattr__(twin, name, value)
        return twin

    def __getstate__(self):
        return {
            "state": dict(self._state),
            "config": io.thawed(self._config),
            "history": io.thawed(self._history),
            "backbone": self._backbone,
        }

    def __setstate__(self, data):
        MetaModel.__init__(
            self, data["state"], data["config"], data["history"], data["backbone"]
        )

    def __reduce_ex__(self, protocol):
        # Inside a shipment (`shipping`, `ship_once`) a handle, whole otherwise.
        handle = shipping.handle_of(self)
        if handle is not None:
            return shipping.resolve, handle
        return super().__reduce_ex__(protocol)

    # -- description ------------------------------------------------------
    @property
    def config(self) -> Mapping:
        return self._config

    @property
    def history(self) -> tuple:
        return self._history

    @property
    def state(self) -> Mapping[str, torch.Tensor]:
        return self._state

    @property
    def method(self) -> str:
        return self._config["method"]

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self._config["input_shape"])

    @property
    def n_features(self) -> int:
        return int(np.prod(self.input_shape))

    @property
    def embedding_dim(self) -> int:
        return int(self._config["embedding_dim"])

    def __repr__(self) -> str:
        backbone = self._config.get("backbone_name", self._config["backbone"])
        return (
            f"MetaModel(method={self.method!r}, backbone={backbone!r}, "
            f"input_shape={self.input_shape}, embedding_dim={self.embedding_dim})"
        )

    # -- use --------------------------------------------------------------
    def algorithm(self, **overrides) -> Algorithm:
        """The method object that adapts and predicts with this model.

        Parameters
        ----------
        **overrides
            Adaptation settings to change, e.g. ``inner_lr=0.1, inner_steps=5``
            for gradient-based methods; the meta-training values otherwise.
        """
        settings = {**io.thawed(self._config["method_params"]), **overrides}
        return make_algorithm(self.method, **settings)

    def network(self, device: torch.device | str = "cpu") -> MetaNet:
        """The network in eval mode on `device`, built once per device.

        On the CPU it shares memory with this model. Treat it as read-only:
        use ``torch.func.functional_call`` to run it with other parameters.

        Parameters
        ----------
        device : torch device or str, default="cpu"

        Returns
        -------
        MetaNet
        """
        device = torch.device(device)
        net = self._nets.get(device)
        if net is None:
            config = io.thawed(self._config)
            net = network_of(config, self._backbone, self._state, device)
            self._nets[device] = net
        return net

    def inference_network(self, device: torch.device | str = "cpu") -> MetaNet:
        """The network ``transform`` runs on `device`: the speed path's
        inference copy (``skmeta.meta.accel``, e.g. batch norms folded) when
        one is registered, else :meth:`network`; built once per device
        (`device` as there).
        """
        device = torch.device(device)
        net = self._embedders.get(device)
        if net is None:
            reference = self.network(device)
            path = accel.find("inference", reference)
            with float32_default():  # the speed path's probes, as the network
                net = reference if path is None else path(reference)
            self._embedders[device] = net
        return net

    def batch_size(self, device: torch.device | str = "cpu") -> int:
        """Rows per forward pass at inference on `device`, computed once per
        device (:func:`~skmeta.meta.inference.inference_batch_size`;
        `device` as for :meth:`network`).
        """
        device = torch.device(device)
        if device not in self._batch_sizes:
            self._batch_sizes[device] = inference.inference_batch_size(
                self.network(device), device
            )
        return self._batch_sizes[device]

    def transform(
        self,
        X: np.ndarray,
        device: torch.device | str = "cpu",
        batch_size: int | None = None,
        check_finite: bool = False,
        views=None,
    ) -> np.ndarray:
        """Embed rows.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
        device : torch device, default="cpu"
        batch_size : int, optional
            Rows per forward pass; default :meth:`batch_size`.
        check_finite : bool, default=False
            Raise ``ValueError`` naming the first row that holds NaN or
            infinity (one threaded sum over `X`, faster than scikit-learn's
            check).
        views : list of (int, int) or RowViews, optional
            Pixel offsets ``(dy, dx)`` of image rows
            (:func:`~skmeta.meta.views.shift_offsets`) whose embeddings are
            averaged: test-time augmentation; a
            :class:`~skmeta.meta.views.RowViews` may add the quarter turns.
            None: the rows as given.

        Returns
        -------
        ndarray of shape (n_samples, embedding_dim), float32
            4 or 8 times as many columns with quarter turns.
        """
        check_pixel_range(self.config, X)
        return inference.transform(
            self, X, torch.device(device), batch_size, check_finite, views
        )

    def adapt(
        self,
        algorithm: Algorithm,
        X: np.ndarray,
        y: np.ndarray,
        n_classes: int,
        device: torch.device | str = "cpu",
        views=None,
    ) -> dict:
        """Adapt to a support set given as arrays.

        Parameters
        ----------
        algorithm : Algorithm
            Usually :meth:`algorithm`, possibly with other adaptation settings.
        X : ndarray of shape (n_support, n_features), float32
        y : ndarray of shape (n_support,)
            Class codes ``0..n_classes-1``, or float targets for regression.
        n_classes : int
        device : torch device, default="cpu"
        views : list of (int, int), optional
            As for :meth:`transform`, for a method that
            ``classifies_embeddings`` (its embeddings are the views' mean).

        Returns
        -------
        dict
            The adaptation state, as CPU tensors (picklable anywhere).
        """
        check_pixel_range(self.config, X)
        return inference.adapt(
            self, algorithm, X, y, n_classes, torch.device(device), views
        )

    def predict(
        self,
        algorithm: Algorithm,
        state: dict,
        X: np.ndarray,
        device: torch.device | str = "cpu",
        views=None,
    ) -> np.ndarray:
        """Outputs of an adapted state for query rows.

        Parameters
        ----------
        algorithm : Algorithm
            The algorithm `state` was adapted with (:meth:`adapt`).
        state : dict
            The adaptation state :meth:`adapt` returned.
        X : ndarray of shape (n_query, n_features)
            Query rows, on the model's pixel range for images.
        device : torch device or str, default="cpu"
        views : list of (int, int) or RowViews, optional
            As for :meth:`adapt`: the same views the state was adapted with.

        Returns
        -------
        ndarray of shape (n_query, n_outputs), float32
            Class scores (logits), or the regression output.
        """
        check_pixel_range(self.config, X)
        return inference.predict(self, algorithm, state, X, torch.device(device), views)

    @classmethod
    def from_module(
        cls,
        module: torch.nn.Module,
        input_shape: Sequence[int],
        method: str = "protonet",
        method_params: Mapping | None = None,
        input_normalization: str | Mapping | None = None,
        pixel_range: float = 1.0,
    ) -> MetaModel:
        """Wrap any torch module (e.g. a pretrained network without its head)
        as a model, with no meta-training.

        The result serves as ``pretrained=`` of the estimators like any
        meta-trained model. The module is copied: neither it nor the model
        changes the other later. Parameters of `module` that do not require
        gradients are frozen (recorded in ``config["frozen_parameters"]``):
        gradient-based methods do not adapt them.

        Parameters
        ----------
        module : torch.nn.Module
            Maps ``(batch, *input_shape)`` to ``(batch, dim)`` (any output is
            flattened to that).
        input_shape : sequence of int
            Shape of one row, e.g. ``(3, 224, 224)`` for colour images.
        method : str, default="protonet"
            How the model adapts to a support set. Meta-parameters a method
            would learn (e.g. MAML's head) keep their initial values.
        method_params : mapping, optional
            The method's settings, e.g. ``{"distance": "cosine"}``.
        input_normalization : None, "imagenet" or mapping, default=None
            None: rows reach the module as they are. ``"imagenet"``: each
            channel normalised with ImageNet's mean and std; a mapping:
            ``{"mean": [...], "std": [...]}`` per channel, for pixels in [0, 1]
            (:mod:`~skmeta.meta.input_normalization`). Recorded in
            ``config["input_normalization"]``.
        pixel_range : float, default=1.0
            The value of a white pixel in the rows the model will be given:
            255.0 for 0-255 data such as the ``uint8`` rows of
            ``load_image_folder``, 1.0 for float rows in [0, 1]. The module
            gets pixels in [0, 1] either way (with `input_normalization`,
            then normalised; without it, divided by `pixel_range`, recorded
            as ``{"kind": "pixel_range"}``). Rows on the other range warn
            (they would be embedded wrongly). Images only.

        Returns
        -------
        MetaModel
            Its config records ``"from_module": true``. Saved, it loads with
            ``MetaModel.load(path, backbone=...)``, given a module of the same
            architecture (its weights are replaced by the file's) or a factory
            that builds one.

        Examples
        --------
        >>> import numpy as np, torch
        >>> from skmeta import MetaModel
        >>> body = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 8))
        >>> model = MetaModel.from_module(body, (1, 4, 4))
        >>> model.transform(np.zeros((3, 16), dtype=np.float32)).shape
        (3, 8)
        """
        from .wrapping import model_from_module

        return model_from_module(
            module,
            input_shape,
            method,
            None if method_params is None else dict(method_params),
            input_normalization,
            pixel_range,
        )
