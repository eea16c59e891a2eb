"""The network a :class:`~skmeta.meta.model.MetaModel` describes, built from
its config and loaded with its weights, ready for inference on a device."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch

from .net import MetaNet, build_net
from .seeding import default_generator_untouched

__all__ = ["network_of"]


def network_of(
    config: Mapping,
    backbone: Callable | None,
    state: Mapping[str, torch.Tensor],
    device: torch.device,
) -> MetaNet:
    """The network `config` describes, with the weights `state`, in eval mode
    on `device` and frozen.

    Parameters
    ----------
    config : mapping
        The model's config (a plain, mutable copy).
    backbone : callable or None
        The backbone factory or module a custom model was loaded with.
    state : mapping of str to Tensor
        Every weight, the ``"extra."`` ones (method parameters, statistics)
        included; on the CPU the network shares their memory.
    device : torch.device

    Returns
    -------
    MetaNet

    Raises
    ------
    ValueError
        When the weights do not fit the network the config describes.
    """
    with default_generator_untouched():  # its initial weights are replaced
        net = build_net(config, backbone)
    for name, tensor in state.items():
        if name.startswith("extra."):
            net.extra[name[len("extra.") :]] = torch.nn.Parameter(
                tensor.clone(), requires_grad=False
            )
    expected, found = set(net.state_dict()), set(state)
    if expected != found:
        raise ValueError(
            "The weights do not fit the network the config describes: "
            f"missing {sorted(expected - found)[:5]}, "
            f"unexpected {sorted(found - expected)[:5]}."
        )
    try:
        net.load_state_dict(dict(state), assign=device.type == "cpu")
    except RuntimeError as exc:
        raise ValueError(f"The weights do not fit the network: {exc}") from None
    net.requires_grad_(False)
    return net.to(device).eval()
